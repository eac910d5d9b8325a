//! The thoughts API contract ([`mythoughts_testkit::contract`]), run against the monolith: it also serves
//! the users API and the pages, which the contract's [`Profile::MONOLITH`] accounts for.

use mythoughts_testkit::contract::Profile;

mythoughts_testkit::thoughts_api_contract!(crate::support::seeded_router, Profile::MONOLITH);

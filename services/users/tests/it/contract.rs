//! The users API contract ([`mythoughts_testkit::contract`]), run against this service: the users API alone
//! ([`Profile::USERS_SERVICE`]), every other path a JSON 404.

use mythoughts_testkit::contract::Profile;

mythoughts_testkit::users_api_contract!(crate::support::started, Profile::USERS_SERVICE);

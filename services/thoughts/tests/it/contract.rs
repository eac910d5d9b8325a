//! The thoughts API contract ([`mythoughts_testkit::contract`]), run against this service: the thoughts API
//! alone ([`Profile::THOUGHTS_SERVICE`]), every other path a JSON 404.

use mythoughts_testkit::contract::Profile;

mythoughts_testkit::thoughts_api_contract!(crate::support::started, Profile::THOUGHTS_SERVICE);

//! The API contracts ([`mythoughts_testkit::contract`]) run against the monolith: it serves the thoughts API,
//! the users API and the pages ([`Profile::MONOLITH`]), so it passes both contracts, as the services each
//! pass theirs.

/// The thoughts API, shared with thoughts-service.
mod thoughts_api {
    use mythoughts_testkit::contract::Profile;

    mythoughts_testkit::thoughts_api_contract!(crate::support::started, Profile::MONOLITH);
}

/// The users API, shared with users-service.
mod users_api {
    use mythoughts_testkit::contract::Profile;

    mythoughts_testkit::users_api_contract!(crate::support::started, Profile::MONOLITH);
}

//! The API contracts, written once and run against every app that serves them: the thoughts API
//! ([`thoughts`]) against the monolith (`mythoughts-legacy`) and `thoughts-service`, the users API
//! ([`users`]) against the monolith and `users-service`.
//!
//! Each crate's test binary invokes [`thoughts_api_contract!`](crate::thoughts_api_contract) and/or
//! [`users_api_contract!`](crate::users_api_contract) with a function that starts its app (seeded,
//! holding the test keys, [`crate::key_pair`] 0) and the [`Profile`] that says how the app differs
//! from the others on purpose; every check then runs against it through `oneshot`, no sockets.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use mythoughts_common::db::Db;
use serde_json::{Value, json};

use crate::{RequestExt, TestResponse, req, send};

pub mod thoughts;
pub mod users;

pub use thoughts::bad_credentials;

/// What an app under test serves, where the apps differ on purpose. A path an app does not serve
/// is its JSON 404 (the contracts check that too), so a service cannot answer for another's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The thoughts API (`/api/thoughts/…`, `/api/me/thoughts/`, `/admin/thoughts/…`).
    pub thoughts_api: bool,
    /// The users API (`/api/login/`, `/admin/users/`).
    pub users_api: bool,
    /// The HTML pages (`/`, `/login/`, …).
    pub pages: bool,
}

impl Profile {
    /// The monolith: everything in one app.
    pub const MONOLITH: Profile = Profile {
        thoughts_api: true,
        users_api: true,
        pages: true,
    };
    /// `thoughts-service`: the thoughts API alone.
    pub const THOUGHTS_SERVICE: Profile = Profile {
        thoughts_api: true,
        users_api: false,
        pages: false,
    };
    /// `users-service`: the users API alone.
    pub const USERS_SERVICE: Profile = Profile {
        thoughts_api: false,
        users_api: true,
        pages: false,
    };
}

/// A freshly started app: its router, and its database (for what the API does not show, such as
/// how a password is stored).
#[derive(Debug)]
pub struct App {
    /// The whole app, seeded, holding the test keys.
    pub router: Router,
    /// Its SQLite pool.
    pub db: Db,
}

/// An app under test: the app, what it serves, and the version it reports.
#[derive(Debug)]
pub struct Subject {
    app: App,
    profile: Profile,
    version: &'static str,
}

impl Subject {
    /// `app` with its `profile`; `version` is the serving crate's `CARGO_PKG_VERSION`, which
    /// `/admin/version/` must report.
    pub fn new(app: App, profile: Profile, version: &'static str) -> Self {
        Self { app, profile, version }
    }

    async fn send(&self, request: Request<Body>) -> TestResponse {
        send(&self.app.router, request).await
    }

    async fn get(&self, uri: &str) -> TestResponse {
        self.send(req(Method::GET, uri).empty()).await
    }
}

/// Generates one `#[tokio::test]` per check of the thoughts API contract ([`thoughts`]), each on a
/// fresh app from `$start` (an `async fn() -> App`) with the given [`Profile`].
///
/// ```text
/// mythoughts_testkit::thoughts_api_contract!(crate::support::started, Profile::THOUGHTS_SERVICE);
/// ```
#[macro_export]
macro_rules! thoughts_api_contract {
    ($start:path, $profile:expr) => {
        $crate::contract_tests!(thoughts, $start, $profile;
            list_returns_every_thought_by_id_in_the_books_shape,
            list_search_is_a_case_insensitive_substring_from_any_location,
            get_one_thought_or_the_null_thought,
            my_thoughts_are_the_callers_own,
            bad_credentials_are_401_on_both_methods,
            create_thought_from_form_json_or_query,
            create_thought_validates_text_before_credentials,
            admin_delete_is_204_even_for_missing_ids,
            version_health_and_metrics,
            paths_without_trailing_slash_redirect_permanently,
            wrong_methods_are_405_with_allow,
            unknown_paths_are_json_404s,
        );
    };
}

/// Generates one `#[tokio::test]` per check of the users API contract ([`users`]), as
/// [`thoughts_api_contract!`](crate::thoughts_api_contract) does.
#[macro_export]
macro_rules! users_api_contract {
    ($start:path, $profile:expr) => {
        $crate::contract_tests!(users, $start, $profile;
            login_from_form_json_or_query_issues_a_two_day_rs256_token,
            failed_login_is_401_with_an_empty_json_string,
            login_needs_both_fields_and_a_parseable_body,
            admin_creates_users_who_can_then_log_in,
            admin_refuses_duplicates_and_invalid_fields,
            version_health_and_metrics,
            paths_without_trailing_slash_redirect_and_wrong_methods_are_405,
            unknown_paths_are_json_404s,
        );
    };
}

/// The test functions behind the contract macros: one per check of `contract::$module`.
#[doc(hidden)]
#[macro_export]
macro_rules! contract_tests {
    ($module:ident, $start:path, $profile:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let subject = $crate::contract::Subject::new($start().await, $profile, env!("CARGO_PKG_VERSION"));
                $crate::contract::$module::$check(&subject).await;
            }
        )*
    };
}

/// The book's 400 body for one invalid field.
fn validation_error(field: &str, problem: &str) -> Value {
    json!({"errors": {field: problem}, "message": "Input payload validation failed"})
}

/// The `Allow` header's methods, sorted and joined by commas.
fn allowed(response: &TestResponse) -> String {
    let mut methods: Vec<String> = response
        .header("allow")
        .unwrap()
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect();
    methods.sort();
    methods.join(",")
}

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
use axum::http::{Method, Request, StatusCode};
use mythoughts_common::db::Db;
use mythoughts_common::errors::{BAD_REQUEST_MESSAGE, METHOD_NOT_ALLOWED_MESSAGE, NOT_FOUND_MESSAGE};
use serde_json::{Value, json};

use crate::{RequestExt, TEST_COMMIT, TestResponse, req, send};

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
            request_ids_are_echoed_or_made,
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

/// `method uri` with an unparseable JSON body is the plain 400 `{"message"}`.
async fn assert_garbled_json_is_400(app: &Subject, method: Method, uri: &str) {
    let response = app
        .send(
            req(method, uri)
                .header("content-type", "application/json")
                .body("{nope".into())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST, "{uri}");
    assert_eq!(response.json(), json!({"message": BAD_REQUEST_MESSAGE}), "{uri}");
}

/// `/admin/version/` is `{"commit","version"}` in that order; `/healthz` is `ok`.
async fn assert_version_and_health(app: &Subject) {
    let version = app.get("/admin/version/").await;
    assert_eq!(version.status, StatusCode::OK);
    assert_eq!(
        version.text(),
        format!(r#"{{"commit":"{TEST_COMMIT}","version":"{}"}}"#, app.version)
    );
    let health = app.get("/healthz").await;
    assert_eq!((health.status, health.text().as_str()), (StatusCode::OK, "ok"));
}

/// `/metrics` is Prometheus text holding every one of `lines`, and not `raw_path` (requests are
/// counted by route template, never by raw path).
async fn assert_metrics(app: &Subject, lines: &[&str], raw_path: &str) {
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text();
    for line in lines {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
    assert!(!text.contains(raw_path), "raw paths must not be labels:\n{text}");
}

/// Each `(method, path, allow)` is the JSON 405 with exactly those methods in `Allow`.
async fn assert_json_405s(app: &Subject, cases: &[(Method, &str, &str)]) {
    for (method, path, allow) in cases {
        let response = app.send(req(method.clone(), path).empty()).await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(
            response.json(),
            json!({"message": METHOD_NOT_ALLOWED_MESSAGE}),
            "{method} {path}"
        );
        assert_eq!(allowed(&response), *allow, "{method} {path}");
    }
}

/// Each `GET path` is the JSON 404 `{"message"}`.
async fn assert_json_404s(app: &Subject, paths: &[&str]) {
    for path in paths {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.json(), json!({"message": NOT_FOUND_MESSAGE}), "{path}");
    }
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

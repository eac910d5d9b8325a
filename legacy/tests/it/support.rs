//! Helpers: a seeded app on an in-memory database. Keys, request builders and the response type are the
//! shared [`mythoughts_testkit`]'s.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::{Metrics, PasswordHasher};
use mythoughts_legacy::{AppState, Db, app, startup};
use mythoughts_testkit::contract::App;
pub use mythoughts_testkit::{RequestExt, TEST_COMMIT, TestResponse, issuer, positions, req, send, verifier};

/// A seeded app on a private in-memory database.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
}

impl TestApp {
    pub async fn new() -> Self {
        let db = Db::open_in_memory().unwrap();
        let passwords = PasswordHasher::insecure_fast();
        startup::prepare_database(&db, &passwords, true).await.unwrap();
        let state = AppState {
            db,
            issuer: Arc::new(issuer(0)),
            verifier: Arc::new(verifier()),
            passwords,
            metrics: Metrics::new().unwrap(),
            version: Arc::new(VersionInfo::new(TEST_COMMIT, env!("CARGO_PKG_VERSION"))),
        };
        Self {
            router: app(state.clone()),
            state,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        send(&self.router, request).await
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.send(req(Method::GET, uri).empty()).await
    }

    /// `Authorization: Bearer <token>` for `username`, signed with the app's key.
    pub fn bearer(&self, username: &str) -> String {
        self.state.issuer.issue_bearer(username).unwrap()
    }
}

/// A seeded monolith, for the shared contract suites.
pub async fn started() -> App {
    let app = TestApp::new().await;
    App {
        router: app.router,
        db: app.state.db,
    }
}

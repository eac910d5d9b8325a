//! Helpers: a seeded service (and a seeded monolith) on in-memory databases. Keys, request builders and the
//! response type are the shared [`mythoughts_testkit`]'s.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use mythoughts_common::db::Db;
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::{Metrics, PasswordHasher};
use mythoughts_testkit::contract::App;
pub use mythoughts_testkit::{TEST_COMMIT, TestResponse, issuer, send, verifier};
use thoughts_service::{AppState, app, startup};

/// A seeded service on a private in-memory database.
pub struct TestApp {
    pub router: Router,
    pub db: Db,
}

impl TestApp {
    pub async fn new() -> Self {
        let db = Db::open_in_memory().unwrap();
        startup::prepare_database(&db, true).await.unwrap();
        let state = AppState {
            db: db.clone(),
            verifier: Arc::new(verifier()),
            metrics: Metrics::new().unwrap(),
            version: Arc::new(VersionInfo::new(TEST_COMMIT, env!("CARGO_PKG_VERSION"))),
        };
        Self { router: app(state), db }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        send(&self.router, request).await
    }
}

/// A seeded service, for the shared contract suite.
pub async fn started() -> App {
    let TestApp { router, db } = TestApp::new().await;
    App { router, db }
}

/// The monolith, seeded, on a private in-memory database, with the same keys and commit as [`TestApp`].
pub async fn legacy_router() -> Router {
    let db = mythoughts_legacy::Db::open_in_memory().unwrap();
    let passwords = PasswordHasher::insecure_fast();
    mythoughts_legacy::startup::prepare_database(&db, &passwords, true)
        .await
        .unwrap();
    mythoughts_legacy::app(mythoughts_legacy::AppState {
        db,
        issuer: Arc::new(issuer(0)),
        verifier: Arc::new(verifier()),
        passwords,
        metrics: Metrics::new().unwrap(),
        version: Arc::new(VersionInfo::new(TEST_COMMIT, env!("CARGO_PKG_VERSION"))),
    })
}

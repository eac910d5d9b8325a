//! Shared helpers: cached test keys, a seeded service (and a seeded monolith) on in-memory databases, request
//! builders and a response type that is easy to assert on.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use mythoughts_common::db::Db;
use mythoughts_common::jwt::{PemKeyPair, generate_key_pair};
use mythoughts_common::{Metrics, PasswordHasher, TokenIssuer, TokenVerifier};
use serde_json::Value;
use tower::ServiceExt;
use users_service::{AppState, VersionInfo, app, startup};

/// Commit reported by test apps.
pub const TEST_COMMIT: &str = "0123abc";

/// A key pair generated once per test binary. 1024 bits keeps a debug build fast; the code paths are those
/// of 2048-bit keys.
pub fn key_pair() -> &'static PemKeyPair {
    static PAIR: OnceLock<PemKeyPair> = OnceLock::new();
    PAIR.get_or_init(|| generate_key_pair(1024).unwrap())
}

/// An issuer with the apps' private key.
pub fn issuer() -> TokenIssuer {
    TokenIssuer::from_pem(key_pair().private_pem.as_bytes()).unwrap()
}

/// A verifier with the apps' public key: what every other service checks tokens with.
pub fn verifier() -> TokenVerifier {
    TokenVerifier::from_pem(key_pair().public_pem.as_bytes()).unwrap()
}

/// Sends `request` to `router` and reads the whole answer.
pub async fn send(router: &Router, request: Request<Body>) -> TestResponse {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    TestResponse { status, headers, body }
}

/// A seeded service on a private in-memory database.
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
            issuer: Arc::new(issuer()),
            passwords,
            metrics: Metrics::new().unwrap(),
            version: Arc::new(VersionInfo::new(TEST_COMMIT)),
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
        issuer: Arc::new(issuer()),
        verifier: Arc::new(verifier()),
        passwords,
        metrics: Metrics::new().unwrap(),
        version: Arc::new(mythoughts_legacy::VersionInfo::new(TEST_COMMIT)),
    })
}

/// A response with its body already read.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    pub fn json(&self) -> Value {
        assert_eq!(
            self.header(header::CONTENT_TYPE.as_str()).as_deref(),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }
}

/// Starts a request; finish it with one of [`RequestExt`]'s methods.
pub fn req(method: Method, uri: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri)
}

pub trait RequestExt {
    fn empty(self) -> Request<Body>;
    fn form(self, body: &str) -> Request<Body>;
    fn json(self, body: &Value) -> Request<Body>;
}

impl RequestExt for axum::http::request::Builder {
    fn empty(self) -> Request<Body> {
        self.body(Body::empty()).unwrap()
    }

    fn form(self, body: &str) -> Request<Body> {
        self.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    fn json(self, body: &Value) -> Request<Body> {
        self.header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }
}

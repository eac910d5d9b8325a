//! Test helpers shared by the MyThoughts test suites (the monolith's and each service's):
//! cached test keys, one-shot requests against an `axum::Router` without sockets, request
//! builders, and a response type that is easy to assert on; [`contract`], the thoughts and users
//! API contracts that the monolith's and the services' suites run; [`parity`], requests sent to
//! two apps and their answers compared; [`process`], a real executable under test; [`book`], the
//! tokens the book's recorded answers (`tests/parity/book-chapter11.har`) need (the strangler suite's
//! tests/it/book_parity.rs replays them with `strangler parity --legacy-from`). A dev-dependency only; the app-specific fixtures (a seeded app of each kind) stay in each crate's
//! `tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod book;
pub mod contract;
pub mod parity;
pub mod process;

use std::sync::OnceLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use mythoughts_common::jwt::{PemKeyPair, generate_key_pair};
use mythoughts_common::{TokenIssuer, TokenVerifier};
use serde_json::Value;
use tower::ServiceExt;

/// Commit reported by test apps.
pub const TEST_COMMIT: &str = "0123abc";

/// Key pairs generated once per test binary: index 0 is the apps', index 1 a stranger's.
/// 1024 bits keeps a debug build fast; the code paths are those of 2048-bit keys.
pub fn key_pair(index: usize) -> &'static PemKeyPair {
    static PAIRS: OnceLock<[PemKeyPair; 2]> = OnceLock::new();
    &PAIRS.get_or_init(|| [generate_key_pair(1024).unwrap(), generate_key_pair(1024).unwrap()])[index]
}

/// An issuer with the apps' private key (index 0) or a stranger's (index 1).
pub fn issuer(index: usize) -> TokenIssuer {
    TokenIssuer::from_pem(key_pair(index).private_pem.as_bytes()).unwrap()
}

/// A verifier with the apps' public key.
pub fn verifier() -> TokenVerifier {
    TokenVerifier::from_pem(key_pair(0).public_pem.as_bytes()).unwrap()
}

/// `Bearer <token>` for `username`, signed with the apps' key.
pub fn bearer(username: &str) -> String {
    issuer(0).issue_bearer(username).unwrap()
}

/// Sends `request` to `router` (no socket) and reads the whole answer.
pub async fn send(router: &Router, request: Request<Body>) -> TestResponse {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    TestResponse { status, headers, body }
}

/// A response with its body already read.
#[derive(Debug)]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    /// The body as JSON; asserts the content type says so.
    pub fn json(&self) -> Value {
        assert_eq!(
            self.header(header::CONTENT_TYPE.as_str()).as_deref(),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }
}

/// Starts a request; finish it with one of [`RequestExt`]'s methods.
pub fn req(method: Method, uri: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri)
}

/// Ways to finish a request builder.
pub trait RequestExt {
    /// No body.
    fn empty(self) -> Request<Body>;
    /// A form body.
    fn form(self, body: &str) -> Request<Body>;
    /// A JSON body.
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

/// Positions of `needles` in `haystack`, asserting each is present.
pub fn positions(haystack: &str, needles: &[&str]) -> Vec<usize> {
    needles
        .iter()
        .map(|n| {
            haystack
                .find(n)
                .unwrap_or_else(|| panic!("{n:?} not found in:\n{haystack}"))
        })
        .collect()
}

//! Parity with the monolith: the same requests, in the same order, to `mythoughts-legacy`'s app and to this
//! service's app, both seeded with the same rows and holding the same keys; every answer must agree on status,
//! content type, `Location`, `Allow` and body.
//!
//! Bodies are compared byte for byte (so key order counts), except where a value depends on the wall clock:
//! - a login's token carries `iat`/`exp` in seconds, taken by each app when it handled the request. RS256
//!   signatures are deterministic, so the two tokens are identical whenever both requests fall in the same
//!   second, but a second may tick between them. The token is therefore verified with the shared public key
//!   and replaced by what it says (username, lifetime, `iat` within a second of the other app's).
//! - a user created during the test carries `creation = now`: checked to be well-formed, then masked.
//!
//! Masked bodies are compared as JSON values; ids are never masked (both apps hand out the same ids).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use mythoughts_common::{Timestamp, seed};
use mythoughts_testkit::parity::{Case, assert_same};
use serde_json::{Value, json};

use crate::support::{TestApp, TestResponse, legacy_router, send, verifier};

/// Replaces clock-dependent values with what they must say; returns `iat` of a login token, if any.
fn mask_clock(value: &mut Value, masked: &mut bool) -> Option<u64> {
    let object = value.as_object_mut()?;
    if let Some(Value::String(authorization)) = object.get_mut("Authorized") {
        let claims = verifier()
            .verify_authorization(Some(authorization))
            .unwrap_or_else(|e| panic!("{authorization}: {e}"));
        *authorization = format!("{} for {} s", claims.username, claims.exp - claims.iat);
        *masked = true;
        return Some(claims.iat);
    }
    let is_new_user = object
        .get("id")
        .and_then(Value::as_i64)
        .is_some_and(|id| id > seed::USERS.len() as i64);
    if let (true, Some(Value::String(creation))) = (is_new_user, object.get_mut("creation")) {
        let parsed: Timestamp = creation.parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed <= Timestamp::now_utc(), "{creation} is in the future");
        *creation = "<now>".to_owned();
        *masked = true;
    }
    None
}

/// [`assert_same`] with login tokens and new users' creation times masked; two tokens' `iat` may differ
/// by the second that can tick between the two requests, no more.
fn assert_same_answers(case: &Case, legacy: &TestResponse, service: &TestResponse) {
    let mut iats = Vec::new();
    assert_same(case, legacy, service, |value| {
        let mut masked = false;
        iats.extend(mask_clock(value, &mut masked));
        masked
    });
    if let [x, y] = iats[..] {
        assert!(x.abs_diff(y) <= 1, "iat {x} vs {y} for {case:?}");
    }
}

fn cases() -> Vec<Case> {
    vec![
        // Logins that work, from each location.
        Case::post("/api/login/").form("username=bruce&password=password"),
        Case::post("/api/login/").json(&json!({"username": "stephen", "password": "password"})),
        Case::post("/api/login/?username=bruce&password=password"),
        // Logins that do not.
        Case::post("/api/login/").form("username=bruce&password=wrong"),
        Case::post("/api/login/").form("username=nobody&password=password"),
        Case::post("/api/login/").form("username=bruce&password="),
        Case::post("/api/login/").json(&json!({"username": "bruce", "password": 123})),
        Case::post("/api/login/").form("username=bruce"),
        Case::post("/api/login/").form("password=password"),
        Case::post("/api/login/"),
        Case::post("/api/login/").raw_json("{nope"),
        // Creating users.
        Case::post("/admin/users/").form("username=tony&password=ir0n"),
        Case::post("/admin/users/").form("username=tony&password=other"),
        Case::post("/admin/users/").form("username=bruce&password=x"),
        Case::post("/admin/users/").json(&json!({"username": "pepper"})),
        Case::post("/admin/users/"),
        Case::post("/admin/users/").form(&format!("username={}&password=x", "a".repeat(51))),
        Case::post("/admin/users/").json(&json!({"username": "natasha", "password": "red"})),
        Case::post("/api/login/").json(&json!({"username": "tony", "password": "ir0n"})),
        Case::post("/api/login/").json(&json!({"username": "tony", "password": "other"})),
        // Trailing slashes.
        Case::post("/api/login"),
        Case::post("/api/login?username=bruce&password=password"),
        Case::post("/admin/users"),
        Case::new(Method::GET, "/admin/version"),
        // Wrong methods.
        Case::new(Method::GET, "/api/login/"),
        Case::new(Method::PUT, "/api/login/"),
        Case::new(Method::GET, "/admin/users/"),
        Case::new(Method::DELETE, "/admin/users/"),
        Case::post("/admin/version/"),
        Case::post("/healthz"),
        // Operations and unknown API paths.
        Case::new(Method::GET, "/admin/version/"),
        Case::new(Method::HEAD, "/admin/version/"),
        Case::new(Method::GET, "/healthz"),
        Case::new(Method::GET, "/api/nothing/"),
        Case::new(Method::GET, "/admin/"),
    ]
}

#[tokio::test]
async fn answers_like_the_monolith() {
    let legacy = legacy_router().await;
    let service = TestApp::new().await;
    for case in &cases() {
        let from_legacy = send(&legacy, case.build()).await;
        let from_service = service.send(case.build()).await;
        assert_same_answers(case, &from_legacy, &from_service);
    }
}

/// The point of the split: a token the users service issues opens the monolith's (and so any thoughts
/// backend's) `/api/me/thoughts/`.
#[tokio::test]
async fn tokens_from_the_service_open_the_monoliths_api() {
    let legacy = legacy_router().await;
    let service = TestApp::new().await;
    let login = service
        .send(
            Case::post("/api/login/")
                .form("username=stephen&password=password")
                .build(),
        )
        .await;
    let authorization = login.json()["Authorized"].as_str().unwrap().to_owned();
    let request = Request::builder()
        .uri("/api/me/thoughts/")
        .header("authorization", authorization)
        .body(Body::empty())
        .unwrap();
    let mine = send(&legacy, request).await;
    assert_eq!(mine.status, StatusCode::OK);
    let ids: Vec<i64> = mine
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [4, 5]);
}

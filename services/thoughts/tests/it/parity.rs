//! Parity with the monolith: the same requests, in the same order, to `mythoughts-legacy`'s app and to this
//! service's app, both seeded with the same rows and holding the same keys; every answer must agree on status,
//! content type, `Location`, `Allow`, `WWW-Authenticate` and body.
//!
//! Bodies are compared byte for byte (so key order counts), except where a value depends on the wall clock:
//! a thought created during the test carries `Timestamp::now_utc()` taken by each app when it handled the
//! request, and neither app lets a test inject its clock. For those, and only those, the `timestamp` of a
//! thought whose id is above the seed rows is checked to be well-formed and recent, then masked, and the
//! bodies are compared as JSON values. Ids are never masked: both apps hand out the same ids.

use axum::http::Method;
use mythoughts_common::{Timestamp, seed};
use mythoughts_testkit::contract::bad_credentials;
use mythoughts_testkit::parity::{Case, assert_same};
use serde_json::{Value, json};

use crate::support::{TestApp, TestResponse, legacy_router, send};

/// A clock-dependent timestamp of a thought created during the test: checked, then masked.
fn mask_new_timestamps(value: &mut Value, masked: &mut bool) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|item| mask_new_timestamps(item, masked)),
        Value::Object(object) => {
            let seed_max = seed::THOUGHTS.len() as i64;
            let is_new = object.get("id").and_then(Value::as_i64).is_some_and(|id| id > seed_max);
            if let (true, Some(Value::String(stamp))) = (is_new, object.get_mut("timestamp")) {
                let parsed: Timestamp = stamp.parse().unwrap_or_else(|e| panic!("{e}"));
                assert!(parsed <= Timestamp::now_utc(), "{stamp} is in the future");
                *stamp = "<now>".to_owned();
                *masked = true;
            }
        }
        _ => {}
    }
}

/// [`assert_same`] with the timestamps of thoughts created during the test masked.
fn assert_same_answers(case: &Case, legacy: &TestResponse, service: &TestResponse) {
    assert_same(case, legacy, service, |value| {
        let mut masked = false;
        mask_new_timestamps(value, &mut masked);
        masked
    });
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        // Reads and search.
        Case::get("/api/thoughts/"),
        Case::get("/api/thoughts/?search=GREEN"),
        Case::get("/api/thoughts/?search=IN"),
        Case::get("/api/thoughts/?search=zebra"),
        Case::get("/api/thoughts/?search="),
        Case::get("/api/thoughts/?search=%25"),
        Case::get("/api/thoughts/").json(&json!({"search": "cloak"})),
        Case::get("/api/thoughts/").raw_json("{nope"),
        Case::get("/api/thoughts/3/"),
        Case::new(Method::HEAD, "/api/thoughts/3/"),
        Case::get("/api/thoughts/99/"),
        Case::get("/api/thoughts/abc/"),
        Case::get("/api/thoughts/-1/"),
        Case::get("/api/thoughts/3/extra/"),
        Case::get("/api/me/thoughts/").by("bruce"),
        Case::get("/api/me/thoughts/").by("stephen"),
        Case::get("/api/me/thoughts/").by("nobody"),
    ];
    // Every kind of bad credentials, on both methods.
    for (_, header) in bad_credentials() {
        cases.push(Case::get("/api/me/thoughts/").auth(header.clone()));
        cases.push(
            Case::new(Method::POST, "/api/me/thoughts/")
                .auth(header)
                .form("text=hello"),
        );
    }
    cases.extend([
        // Validation (before credentials), then creation from each location.
        Case::new(Method::POST, "/api/me/thoughts/").by("bruce").form(""),
        Case::new(Method::POST, "/api/me/thoughts/").form(""),
        Case::new(Method::POST, "/api/me/thoughts/")
            .by("bruce")
            .json(&json!({"text": "é".repeat(251)})),
        Case::new(Method::POST, "/api/me/thoughts/")
            .by("bruce")
            .raw_json("{nope"),
        Case::new(Method::POST, "/api/me/thoughts/")
            .by("bruce")
            .json(&json!({"text": null})),
        Case::new(Method::POST, "/api/me/thoughts/")
            .by("stephen")
            .form("text=from+a+form"),
        Case::new(Method::POST, "/api/me/thoughts/")
            .by("stephen")
            .json(&json!({"text": "from JSON", "extra": 1})),
        Case::new(Method::POST, "/api/me/thoughts/?text=from%20the%20query").by("stephen"),
        Case::new(Method::POST, "/api/me/thoughts/").by("stephen").form("text="),
        Case::get("/api/thoughts/6/"),
        Case::get("/api/me/thoughts/").by("stephen"),
        Case::get("/api/thoughts/?search=from"),
        // Deletion.
        Case::new(Method::DELETE, "/admin/thoughts/1/"),
        Case::new(Method::DELETE, "/admin/thoughts/1/"),
        Case::new(Method::DELETE, "/admin/thoughts/999/"),
        Case::new(Method::DELETE, "/admin/thoughts/x/"),
        Case::get("/api/thoughts/1/"),
        Case::get("/api/thoughts/"),
        // Trailing slashes.
        Case::get("/api/thoughts"),
        Case::get("/api/thoughts?search=green"),
        Case::get("/api/thoughts/3"),
        Case::get("/api/me/thoughts"),
        Case::new(Method::POST, "/api/me/thoughts?text=hi"),
        Case::new(Method::DELETE, "/admin/thoughts/3"),
        Case::get("/admin/version"),
        // Wrong methods.
        Case::new(Method::POST, "/api/thoughts/"),
        Case::new(Method::DELETE, "/api/thoughts/3/"),
        Case::new(Method::PUT, "/api/me/thoughts/"),
        Case::get("/admin/thoughts/3/"),
        Case::new(Method::POST, "/admin/version/"),
        Case::new(Method::POST, "/healthz"),
        // Operations and unknown API paths.
        Case::get("/admin/version/"),
        Case::get("/healthz"),
        Case::get("/api/nothing/"),
        Case::get("/admin/"),
    ]);
    cases
}

#[tokio::test]
async fn answers_like_the_monolith() {
    let legacy = legacy_router().await;
    let service = TestApp::new().await;
    let cases = cases();
    for case in &cases {
        let from_legacy = send(&legacy, case.build()).await;
        let from_service = service.send(case.build()).await;
        assert_same_answers(case, &from_legacy, &from_service);
    }
    assert!(cases.len() > 60, "{} cases", cases.len());
}

#[test]
fn masking_touches_only_new_thoughts() {
    let mut seeded = json!([{"id": 5, "timestamp": "2019-05-08T10:30:45"}]);
    let mut masked = false;
    mask_new_timestamps(&mut seeded, &mut masked);
    assert!(!masked);
    assert_eq!(seeded[0]["timestamp"], "2019-05-08T10:30:45");
    let mut created = json!({"id": 6, "timestamp": "2020-01-01T00:00:00.5"});
    mask_new_timestamps(&mut created, &mut masked);
    assert!(masked);
    assert_eq!(created["timestamp"], "<now>");
}

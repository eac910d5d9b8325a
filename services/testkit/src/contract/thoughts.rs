//! The thoughts API contract (`/api/thoughts/…`, `/api/me/thoughts/`, `/admin/thoughts/…`, and the
//! version, health and metrics endpoints every service has): the book's JSON shapes and key order,
//! search, the caller's own thoughts, every way credentials can be wrong, validation before
//! credentials, 204 deletes, the 308 and 405 rules, and JSON 404s.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use mythoughts_common::errors::{BAD_REQUEST_MESSAGE, NOT_FOUND_MESSAGE, UNAUTHORIZED_MESSAGE, missing_parameter};
use mythoughts_common::jwt::{Claims, TOKEN_LIFETIME, unix_now};
use mythoughts_common::{Thought, Timestamp, seed};
use serde_json::{Value, json};

use super::{
    Subject, assert_garbled_json_is_400, assert_json_404s, assert_json_405s, assert_metrics, assert_version_and_health,
    validation_error,
};
use crate::{RequestExt, bearer, issuer, key_pair, positions, req};

pub(super) fn seed_json(ids: &[i64]) -> Value {
    let thoughts: Vec<Thought> = seed::THOUGHTS
        .iter()
        .filter(|t| ids.contains(&t.id))
        .map(|t| t.to_thought())
        .collect();
    serde_json::to_value(thoughts).unwrap()
}

pub(super) fn ids(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

/// The raw text of one serialized Thought has its keys in the book's order.
fn assert_thought_key_order(raw: &str) {
    let at = positions(raw, &[r#""id":"#, r#""username":"#, r#""text":"#, r#""timestamp":"#]);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "keys out of order: {raw}");
}

/// Every way credentials can be wrong, as `(case, Authorization header)`. Also sent by the parity
/// tests, which compare the monolith's answers with a service's.
pub fn bad_credentials() -> Vec<(&'static str, Option<String>)> {
    let now = unix_now();
    let ours = issuer(0);
    let expired = ours.issue_at("bruce", now - TOKEN_LIFETIME.as_secs() - 5).unwrap();
    let stranger = issuer(1).issue("bruce").unwrap();
    let hs256 = {
        let claims = Claims {
            username: "bruce".into(),
            iat: now,
            exp: now + 60,
        };
        let key = jsonwebtoken::EncodingKey::from_secret(key_pair(0).public_pem.as_bytes());
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &key,
        )
        .unwrap()
    };
    let no_username = ours.sign(&json!({"iat": now, "exp": now + 60})).unwrap();
    let no_exp = ours.sign(&json!({"username": "bruce", "iat": now})).unwrap();
    // Valid in an hour: the book refuses it (with a 500, PyJWT's uncaught ImmatureSignatureError).
    let not_yet = ours
        .sign(&json!({"username": "bruce", "iat": now, "nbf": now + 3600, "exp": now + 7200}))
        .unwrap();
    vec![
        ("missing header", None),
        ("not bearer", Some("Basic YnJ1Y2U6cGFzc3dvcmQ=".to_owned())),
        ("no token", Some("Bearer".to_owned())),
        ("two words", Some("Bearer a b".to_owned())),
        // The book's `parse('Bearer {}', …)` keeps the second space in the token, which then fails.
        ("two spaces", Some(format!("Bearer  {}", ours.issue("bruce").unwrap()))),
        ("garbage token", Some("Bearer not.a.token".to_owned())),
        ("expired", Some(format!("Bearer {expired}"))),
        ("other key", Some(format!("Bearer {stranger}"))),
        ("HS256 keyed with the public key", Some(format!("Bearer {hs256}"))),
        ("no username", Some(format!("Bearer {no_username}"))),
        ("no exp", Some(format!("Bearer {no_exp}"))),
        ("nbf in the future", Some(format!("Bearer {not_yet}"))),
    ]
}

/// `GET /api/thoughts/`: every thought by id, in the book's shape and key order.
pub async fn list_returns_every_thought_by_id_in_the_books_shape(app: &Subject) {
    let response = app.get("/api/thoughts/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), seed_json(&[1, 2, 3, 4, 5]));
    let raw = response.text();
    assert!(
        raw.starts_with(
            r#"[{"id":1,"username":"bruce","text":"Gamma ray test in a few minutes. What could possibly go wrong?","timestamp":"2019-05-07T13:47:34"},"#
        ),
        "{raw}"
    );
    assert_thought_key_order(&raw);
}

/// `?search=` is a case-insensitive substring, read from the query or a JSON body, like every
/// Flask-RESTPlus argument; `%` and `_` are characters, not wildcards (a deliberate difference: the
/// book's `ILIKE` matches everything); a garbled JSON body is a 400.
pub async fn list_search_is_a_case_insensitive_substring_from_any_location(app: &Subject) {
    assert_eq!(app.get("/api/thoughts/?search=GREEN").await.json(), seed_json(&[3]));
    assert_eq!(ids(&app.get("/api/thoughts/?search=IN").await.json()), [1, 3, 4, 5]);
    assert_eq!(app.get("/api/thoughts/?search=zebra").await.json(), json!([]));
    assert_eq!(app.get("/api/thoughts/?search=%25").await.json(), json!([]));
    assert_eq!(app.get("/api/thoughts/?search=_").await.json(), json!([]));
    assert_eq!(app.get("/api/thoughts/?search=%").await.json(), json!([]));
    assert_eq!(ids(&app.get("/api/thoughts/?search=").await.json()), [1, 2, 3, 4, 5]);
    let response = app
        .send(req(Method::GET, "/api/thoughts/").json(&json!({"search": "cloak"})))
        .await;
    assert_eq!(ids(&response.json()), [5]);
    assert_garbled_json_is_400(app, Method::GET, "/api/thoughts/").await;
}

/// `GET /api/thoughts/{id}/`: the thought, or the book's all-null thought with a 404; a path
/// that is not a thought id is the JSON 404.
pub async fn get_one_thought_or_the_null_thought(app: &Subject) {
    let response = app.get("/api/thoughts/3/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.json(),
        json!({"id": 3, "username": "bruce", "text": "Feeling a bit green today.", "timestamp": "2019-05-07T14:05:51"})
    );
    assert_eq!(
        response.text(),
        r#"{"id":3,"username":"bruce","text":"Feeling a bit green today.","timestamp":"2019-05-07T14:05:51"}"#
    );

    let missing = app.get("/api/thoughts/99/").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json(),
        json!({"id": null, "username": null, "text": null, "timestamp": null})
    );
    assert_eq!(
        missing.text(),
        r#"{"id":null,"username":null,"text":null,"timestamp":null}"#
    );

    for path in ["/api/thoughts/abc/", "/api/thoughts/-1/", "/api/thoughts/3/extra/"] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.json(), json!({"message": NOT_FOUND_MESSAGE}), "{path}");
    }
}

/// `GET /api/me/thoughts/`: the caller's own thoughts; the `Bearer` scheme is case-insensitive.
pub async fn my_thoughts_are_the_callers_own(app: &Subject) {
    for (user, expected) in [("bruce", vec![1, 2, 3]), ("stephen", vec![4, 5]), ("nobody", vec![])] {
        let request = req(Method::GET, "/api/me/thoughts/")
            .header("authorization", bearer(user))
            .empty();
        let response = app.send(request).await;
        assert_eq!(response.status, StatusCode::OK, "{user}");
        assert_eq!(response.json(), seed_json(&expected), "{user}");
    }
    let token = issuer(0).issue("bruce").unwrap();
    let request = req(Method::GET, "/api/me/thoughts/")
        .header("authorization", format!("bearer {token}"))
        .empty();
    assert_eq!(
        app.send(request).await.status,
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
    // As in the book: `iat` is no validity bound, a token "issued in an hour" is accepted.
    let now = unix_now();
    let issued_later = issuer(0)
        .sign(&json!({"username": "bruce", "iat": now + 3600, "exp": now + 7200}))
        .unwrap();
    let request = req(Method::GET, "/api/me/thoughts/")
        .header("authorization", format!("Bearer {issued_later}"))
        .empty();
    assert_eq!(ids(&app.send(request).await.json()), [1, 2, 3], "iat in the future");
    // As in the book: a number as `username` is a name nobody has, so no thoughts (not a 401).
    let numeric = issuer(0)
        .sign(&json!({"username": 123, "iat": now, "exp": now + 3600}))
        .unwrap();
    let request = req(Method::GET, "/api/me/thoughts/")
        .header("authorization", format!("Bearer {numeric}"))
        .empty();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!([]), "numeric username");
}

/// Every answer of the thoughts API carries `x-request-id`: the client's, or a fresh one, as the
/// book's thoughts backend does.
pub async fn request_ids_are_echoed_or_made(app: &Subject) {
    let request = req(Method::GET, "/api/thoughts/1/")
        .header("x-request-id", "parity-run-42")
        .empty();
    assert_eq!(
        app.send(request).await.header("x-request-id").as_deref(),
        Some("parity-run-42")
    );
    let first = app.get("/api/thoughts/").await.header("x-request-id").unwrap();
    let second = app.get("/api/me/thoughts/").await.header("x-request-id").unwrap();
    assert_eq!(first.len(), 36, "a UUID: {first}");
    assert_ne!(first, second);
}

/// Every way credentials can be wrong ([`bad_credentials`]), each answered 401 `{"message"}` with
/// `WWW-Authenticate: Bearer` on both `/api/me/thoughts/` methods; nothing is written.
pub async fn bad_credentials_are_401_on_both_methods(app: &Subject) {
    for (case, header) in bad_credentials() {
        for method in [Method::GET, Method::POST] {
            let mut request = req(method.clone(), "/api/me/thoughts/");
            if let Some(value) = &header {
                request = request.header("authorization", value);
            }
            let response = app.send(request.form("text=hello")).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{case} {method}");
            assert_eq!(
                response.header("www-authenticate").as_deref(),
                Some("Bearer"),
                "{case} {method}"
            );
            assert_eq!(
                response.json(),
                json!({"message": UNAUTHORIZED_MESSAGE}),
                "{case} {method}"
            );
        }
    }
    assert_eq!(
        ids(&app.get("/api/thoughts/").await.json()),
        [1, 2, 3, 4, 5],
        "nothing written"
    );
}

/// `POST /api/me/thoughts/` takes `text` from a form, JSON or the query; the new thought has the
/// next id, the caller's name, the book's key order and an ISO-8601 timestamp, and reads back.
pub async fn create_thought_from_form_json_or_query(app: &Subject) {
    let bearer = bearer("stephen");
    let before = Timestamp::now_utc();
    let requests = [
        req(Method::POST, "/api/me/thoughts/")
            .header("authorization", &bearer)
            .form("text=from+a+form"),
        req(Method::POST, "/api/me/thoughts/")
            .header("authorization", &bearer)
            .json(&json!({"text": "from JSON"})),
        req(Method::POST, "/api/me/thoughts/?text=from%20the%20query")
            .header("authorization", &bearer)
            .empty(),
        req(Method::POST, "/api/me/thoughts/")
            .header("authorization", &bearer)
            .form("text="),
    ];
    let expected = ["from a form", "from JSON", "from the query", ""];
    for (index, (request, text)) in requests.into_iter().zip(expected).enumerate() {
        let response = app.send(request).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
        let raw = response.text();
        assert_thought_key_order(&raw);
        let thought: Thought = serde_json::from_str(&raw).unwrap();
        assert_eq!(thought.id, 6 + index as i64);
        assert_eq!((thought.username.as_str(), thought.text.as_str()), ("stephen", text));
        assert!(thought.timestamp >= before && thought.timestamp <= Timestamp::now_utc());
        // ISO-8601 without zone; microseconds unless the clock hit a whole second.
        let stamp = response.json()["timestamp"].as_str().unwrap().to_owned();
        assert!(stamp.len() == 26 || stamp.len() == 19, "{stamp}");
        assert_eq!(&stamp[10..11], "T");
        // And it is there to read back.
        assert_eq!(app.get(&format!("/api/thoughts/{}/", thought.id)).await.text(), raw);
    }
    let mine = app
        .send(
            req(Method::GET, "/api/me/thoughts/")
                .header("authorization", &bearer)
                .empty(),
        )
        .await;
    assert_eq!(ids(&mine.json()), [4, 5, 6, 7, 8, 9]);
}

/// `text` is required (`null` counts as absent) and at most 250 characters; as in the book,
/// arguments are validated before credentials; an unparseable JSON body is a plain 400.
pub async fn create_thought_validates_text_before_credentials(app: &Subject) {
    let bearer = bearer("bruce");
    let missing = app
        .send(
            req(Method::POST, "/api/me/thoughts/")
                .header("authorization", &bearer)
                .form(""),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.json(),
        validation_error("text", &missing_parameter("Text of the thought"))
    );
    assert_eq!(
        missing.text(),
        r#"{"errors":{"text":"Text of the thought Missing required parameter in the JSON body or the post body or the query string"},"message":"Input payload validation failed"}"#
    );
    let anonymous = app.send(req(Method::POST, "/api/me/thoughts/").form("")).await;
    assert_eq!(anonymous.status, StatusCode::BAD_REQUEST, "validation comes first");

    let too_long = json!({ "text": "é".repeat(251) });
    let response = app
        .send(
            req(Method::POST, "/api/me/thoughts/")
                .header("authorization", &bearer)
                .json(&too_long),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json(),
        validation_error("text", "Text is longer than 250 characters")
    );
    let just_fits = json!({ "text": "é".repeat(250) });
    let response = app
        .send(
            req(Method::POST, "/api/me/thoughts/")
                .header("authorization", &bearer)
                .json(&just_fits),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    let null_text = app
        .send(
            req(Method::POST, "/api/me/thoughts/")
                .header("authorization", &bearer)
                .json(&json!({"text": null})),
        )
        .await;
    assert_eq!(
        null_text.json(),
        validation_error("text", &missing_parameter("Text of the thought")),
        "a null text has no value"
    );
    // As in the book, a given `text` (null, a number, too long) passes the first check, so bad
    // credentials are what the caller hears about.
    for body in [json!({"text": null}), json!({"text": 5}), too_long.clone()] {
        let response = app
            .send(
                req(Method::POST, "/api/me/thoughts/")
                    .header("authorization", "Bearer garbage")
                    .json(&body),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(response.json(), json!({"message": UNAUTHORIZED_MESSAGE}), "{body}");
    }

    let request = req(Method::POST, "/api/me/thoughts/")
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.json(), json!({"message": BAD_REQUEST_MESSAGE}));
}

/// `DELETE /admin/thoughts/{id}/` is a 204 with no body (and the book's `Content-Type:
/// application/json`) whether or not the thought exists; a path that is not an id is a 404.
pub async fn admin_delete_is_204_even_for_missing_ids(app: &Subject) {
    for id in ["1", "1", "999"] {
        let response = app
            .send(req(Method::DELETE, &format!("/admin/thoughts/{id}/")).empty())
            .await;
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{id}");
        assert!(response.body.is_empty());
        assert_eq!(response.header("content-type").as_deref(), Some("application/json"));
    }
    let response = app.send(req(Method::DELETE, "/admin/thoughts/x/").empty()).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/thoughts/1/").await.status, StatusCode::NOT_FOUND);
    assert_eq!(ids(&app.get("/api/thoughts/").await.json()), [2, 3, 4, 5]);
}

/// `/admin/version/` is `{"commit","version"}` in that order; `/healthz` is `ok`; `/metrics`
/// counts by route template (never the raw path), method and status.
pub async fn version_health_and_metrics(app: &Subject) {
    assert_version_and_health(app).await;
    app.get("/api/thoughts/2/").await;
    app.get("/api/thoughts/99/").await;
    app.get("/no/such/path").await;
    app.send(req(Method::PUT, "/api/thoughts/2/").empty()).await;
    let lines = [
        r#"requests_total{endpoint="/api/thoughts/{id}/",method="GET",status="200"} 1"#,
        r#"requests_total{endpoint="/api/thoughts/{id}/",method="GET",status="404"} 1"#,
        r#"requests_total{endpoint="/api/thoughts/{id}/",method="PUT",status="405"} 1"#,
        r#"requests_total{endpoint="unmatched",method="GET",status="404"} 1"#,
        r#"requests_total{endpoint="/healthz",method="GET",status="200"} 1"#,
        r#"request_duration_seconds_count{endpoint="/admin/version/"} 1"#,
    ];
    assert_metrics(app, &lines, "/api/thoughts/2/").await;
}

/// An API path without its trailing slash is a 308 to the canonical path, query kept, whatever
/// the method, with Werkzeug's redirect page; the redirect itself changes nothing.
pub async fn paths_without_trailing_slash_redirect_permanently(app: &Subject) {
    let cases = [
        (Method::GET, "/api/thoughts", "/api/thoughts/"),
        (Method::GET, "/api/thoughts?search=green", "/api/thoughts/?search=green"),
        (Method::GET, "/api/thoughts/3", "/api/thoughts/3/"),
        (Method::GET, "/api/me/thoughts", "/api/me/thoughts/"),
        (Method::POST, "/api/me/thoughts?text=hi", "/api/me/thoughts/?text=hi"),
        (Method::DELETE, "/admin/thoughts/3", "/admin/thoughts/3/"),
        (Method::GET, "/admin/version", "/admin/version/"),
    ];
    for (method, from, to) in cases {
        let response = app.send(req(method.clone(), from).empty()).await;
        assert_eq!(response.status, StatusCode::PERMANENT_REDIRECT, "{method} {from}");
        assert_eq!(response.header("location").as_deref(), Some(to), "{method} {from}");
        assert_eq!(
            response.header("content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(response.text(), mythoughts_common::api::redirect_page(to));
        assert!(
            response
                .text()
                .contains(&format!(r#"<a href="{to}">{to}</a>.  If not click the link."#)),
            "{}",
            response.text()
        );
    }
    assert_eq!(
        app.get("/api/thoughts/3/").await.status,
        StatusCode::OK,
        "nothing was deleted"
    );
}

/// A known API path with the wrong method is a 405 with the JSON message and Flask's `Allow`
/// (`OPTIONS` included, `, `-separated); `OPTIONS` is a 200 with an empty body and `Allow`; a
/// non-API path (`/healthz`) gets the plain-text 405. The allowed method still works afterwards.
pub async fn wrong_methods_are_405_with_allow(app: &Subject) {
    let cases = [
        (Method::POST, "/api/thoughts/", "GET,HEAD,OPTIONS"),
        (Method::DELETE, "/api/thoughts/3/", "GET,HEAD,OPTIONS"),
        (Method::PUT, "/api/me/thoughts/", "GET,HEAD,OPTIONS,POST"),
        (Method::GET, "/admin/thoughts/3/", "DELETE,OPTIONS"),
        (Method::POST, "/admin/version/", "GET,HEAD,OPTIONS"),
    ];
    assert_json_405s(app, &cases).await;
    let response = app.send(req(Method::POST, "/api/thoughts/").empty()).await;
    assert_eq!(response.header("allow").as_deref(), Some("GET, HEAD, OPTIONS"));
    for (path, allow) in [
        ("/api/thoughts/", "GET, HEAD, OPTIONS"),
        ("/api/me/thoughts/", "GET, HEAD, POST, OPTIONS"),
        ("/admin/thoughts/3/", "DELETE, OPTIONS"),
    ] {
        let response = app.send(req(Method::OPTIONS, path).empty()).await;
        assert_eq!(response.status, StatusCode::OK, "OPTIONS {path}");
        assert_eq!(response.header("allow").as_deref(), Some(allow), "OPTIONS {path}");
        assert_eq!(
            response.header("content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert!(response.body.is_empty(), "OPTIONS {path}");
    }
    assert_eq!(
        app.get("/api/thoughts/3/").await.status,
        StatusCode::OK,
        "OPTIONS deleted nothing"
    );
    let response = app.send(req(Method::POST, "/healthz").empty()).await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.text(), "Method Not Allowed\n", "not an API path: plain text");
    assert_eq!(app.get("/api/thoughts/3/").await.status, StatusCode::OK);
}

/// An API path that is no route is the JSON 404; so are the users API and `/` on an app that
/// does not serve them (see [`super::Profile`]).
pub async fn unknown_paths_are_json_404s(app: &Subject) {
    let mut paths = vec!["/api/nothing/", "/admin/", "/api/thoughts/3/extra/"];
    if !app.profile.users_api {
        paths.extend(["/api/login/", "/admin/users/"]);
    }
    if !app.profile.pages {
        paths.push("/");
    }
    assert_json_404s(app, &paths).await;
}

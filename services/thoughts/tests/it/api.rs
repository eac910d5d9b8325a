//! The thoughts API contract, endpoint by endpoint, through `app(state)` without sockets.

use axum::http::{Method, StatusCode};
use mythoughts_common::errors::{
    BAD_REQUEST_MESSAGE, METHOD_NOT_ALLOWED_MESSAGE, MISSING_PARAMETER_MESSAGE, NOT_FOUND_MESSAGE, UNAUTHORIZED_MESSAGE,
};
use mythoughts_common::jwt::{Claims, TOKEN_LIFETIME, unix_now};
use mythoughts_common::{Thought, Timestamp, seed};
use serde_json::{Value, json};

use crate::support::{RequestExt, TEST_COMMIT, TestApp, bearer, issuer, key_pair, req};

fn seed_json(ids: &[i64]) -> Value {
    let thoughts: Vec<Thought> = seed::THOUGHTS
        .iter()
        .filter(|t| ids.contains(&t.id))
        .map(|t| t.to_thought())
        .collect();
    serde_json::to_value(thoughts).unwrap()
}

fn ids(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

fn validation_error(field: &str, problem: &str) -> Value {
    json!({"errors": {field: problem}, "message": "Input payload validation failed"})
}

#[tokio::test]
async fn list_returns_every_thought_by_id_with_the_books_key_order() {
    let app = TestApp::new().await;
    let response = app.get("/api/thoughts/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), seed_json(&[1, 2, 3, 4, 5]));
    assert!(
        response.text().starts_with(
            r#"[{"id":1,"username":"bruce","text":"Gamma ray test in a few minutes. What could possibly go wrong?","timestamp":"2019-05-07T13:47:34"},"#
        ),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn list_search_is_a_case_insensitive_substring_from_any_location() {
    let app = TestApp::new().await;
    assert_eq!(app.get("/api/thoughts/?search=GREEN").await.json(), seed_json(&[3]));
    assert_eq!(ids(&app.get("/api/thoughts/?search=IN").await.json()), [1, 3, 4, 5]);
    assert_eq!(app.get("/api/thoughts/?search=zebra").await.json(), json!([]));
    assert_eq!(app.get("/api/thoughts/?search=%25").await.json(), json!([]));
    assert_eq!(ids(&app.get("/api/thoughts/?search=").await.json()), [1, 2, 3, 4, 5]);
    let response = app
        .send(req(Method::GET, "/api/thoughts/").json(&json!({"search": "cloak"})))
        .await;
    assert_eq!(ids(&response.json()), [5]);
    let response = app
        .send(
            req(Method::GET, "/api/thoughts/")
                .header("content-type", "application/json")
                .body("{nope".into())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.json(), json!({"message": BAD_REQUEST_MESSAGE}));
}

#[tokio::test]
async fn get_one_thought_or_the_null_thought() {
    let app = TestApp::new().await;
    let response = app.get("/api/thoughts/3/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.text(),
        r#"{"id":3,"username":"bruce","text":"Feeling a bit green today.","timestamp":"2019-05-07T14:05:51"}"#
    );

    let missing = app.get("/api/thoughts/99/").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
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

#[tokio::test]
async fn my_thoughts_are_the_callers_own() {
    let app = TestApp::new().await;
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
}

/// Every way credentials can be wrong, as `(case, Authorization header)`. Shared with the parity test.
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
    vec![
        ("missing header", None),
        ("not bearer", Some("Basic YnJ1Y2U6cGFzc3dvcmQ=".to_owned())),
        ("no token", Some("Bearer".to_owned())),
        ("two words", Some("Bearer a b".to_owned())),
        ("garbage token", Some("Bearer not.a.token".to_owned())),
        ("expired", Some(format!("Bearer {expired}"))),
        ("other key", Some(format!("Bearer {stranger}"))),
        ("HS256 keyed with the public key", Some(format!("Bearer {hs256}"))),
        ("no username", Some(format!("Bearer {no_username}"))),
        ("no exp", Some(format!("Bearer {no_exp}"))),
    ]
}

#[tokio::test]
async fn bad_credentials_are_401_on_both_methods() {
    let app = TestApp::new().await;
    for (case, header) in bad_credentials() {
        for method in [Method::GET, Method::POST] {
            let mut request = req(method.clone(), "/api/me/thoughts/");
            if let Some(value) = &header {
                request = request.header("authorization", value);
            }
            let response = app.send(request.form("text=hello")).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{case} {method}");
            assert_eq!(response.header("www-authenticate").as_deref(), Some("Bearer"));
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

#[tokio::test]
async fn create_thought_from_form_json_or_query() {
    let app = TestApp::new().await;
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
        let thought: Thought = serde_json::from_str(&raw).unwrap();
        assert_eq!(thought.id, 6 + index as i64);
        assert_eq!((thought.username.as_str(), thought.text.as_str()), ("stephen", text));
        assert!(thought.timestamp >= before && thought.timestamp <= Timestamp::now_utc());
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

#[tokio::test]
async fn create_thought_validates_text_before_credentials() {
    let app = TestApp::new().await;
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
        missing.text(),
        r#"{"errors":{"text":"Missing required parameter in the JSON body or the post body or the query string"},"message":"Input payload validation failed"}"#
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
    let missing = validation_error("text", MISSING_PARAMETER_MESSAGE);
    let null_text = app
        .send(
            req(Method::POST, "/api/me/thoughts/")
                .header("authorization", &bearer)
                .json(&json!({"text": null})),
        )
        .await;
    assert_eq!(null_text.json(), missing, "null counts as absent");
}

#[tokio::test]
async fn admin_delete_is_204_even_for_missing_ids() {
    let app = TestApp::new().await;
    for id in ["1", "1", "999"] {
        let response = app
            .send(req(Method::DELETE, &format!("/admin/thoughts/{id}/")).empty())
            .await;
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{id}");
        assert!(response.body.is_empty());
    }
    let response = app.send(req(Method::DELETE, "/admin/thoughts/x/").empty()).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/thoughts/1/").await.status, StatusCode::NOT_FOUND);
    assert_eq!(ids(&app.get("/api/thoughts/").await.json()), [2, 3, 4, 5]);
}

#[tokio::test]
async fn version_health_and_metrics() {
    let app = TestApp::new().await;
    let version = app.get("/admin/version/").await;
    assert_eq!(version.status, StatusCode::OK);
    assert_eq!(
        version.text(),
        format!(
            r#"{{"commit":"{TEST_COMMIT}","version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );
    let health = app.get("/healthz").await;
    assert_eq!((health.status, health.text().as_str()), (StatusCode::OK, "ok"));

    app.get("/api/thoughts/2/").await;
    app.get("/api/thoughts/99/").await;
    app.get("/no/such/path").await;
    app.send(req(Method::PUT, "/api/thoughts/2/").empty()).await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text();
    for line in [
        r#"requests_total{endpoint="/api/thoughts/{id}/",method="GET",status="200"} 1"#,
        r#"requests_total{endpoint="/api/thoughts/{id}/",method="GET",status="404"} 1"#,
        r#"requests_total{endpoint="/api/thoughts/{id}/",method="PUT",status="405"} 1"#,
        r#"requests_total{endpoint="unmatched",method="GET",status="404"} 1"#,
        r#"requests_total{endpoint="/healthz",method="GET",status="200"} 1"#,
        r#"request_duration_seconds_count{endpoint="/admin/version/"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
    assert!(
        !text.contains("/api/thoughts/2/"),
        "raw paths must not be labels:\n{text}"
    );
}

#[tokio::test]
async fn paths_without_trailing_slash_redirect_permanently() {
    let app = TestApp::new().await;
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
    }
    assert_eq!(
        app.get("/api/thoughts/3/").await.status,
        StatusCode::OK,
        "nothing was deleted"
    );
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let app = TestApp::new().await;
    let cases = [
        (Method::POST, "/api/thoughts/", "GET,HEAD"),
        (Method::DELETE, "/api/thoughts/3/", "GET,HEAD"),
        (Method::PUT, "/api/me/thoughts/", "GET,HEAD,POST"),
        (Method::GET, "/admin/thoughts/3/", "DELETE"),
        (Method::POST, "/admin/version/", "GET,HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = app.send(req(method.clone(), path).empty()).await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(response.json(), json!({"message": METHOD_NOT_ALLOWED_MESSAGE}));
        let mut got: Vec<String> = response
            .header("allow")
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        got.sort();
        assert_eq!(got.join(","), allow, "{method} {path}");
    }
    let response = app.send(req(Method::POST, "/healthz").empty()).await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.text(), "Method Not Allowed\n", "not an API path: plain text");
}

#[tokio::test]
async fn unknown_paths_are_json_404s_and_other_services_routes_are_not_here() {
    let app = TestApp::new().await;
    for path in ["/api/nothing/", "/admin/", "/api/login/", "/admin/users/", "/"] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.json(), json!({"message": NOT_FOUND_MESSAGE}), "{path}");
    }
}

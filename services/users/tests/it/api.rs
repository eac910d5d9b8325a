//! The users API contract, endpoint by endpoint, through `app(state)` without sockets.

use axum::http::{Method, StatusCode};
use mythoughts_common::Timestamp;
use mythoughts_common::errors::{
    BAD_REQUEST_MESSAGE, METHOD_NOT_ALLOWED_MESSAGE, MISSING_PARAMETER_MESSAGE, NOT_FOUND_MESSAGE, USER_EXISTS_MESSAGE,
};
use mythoughts_common::jwt::{TOKEN_LIFETIME, unix_now};
use serde_json::{Value, json};

use crate::support::{RequestExt, TEST_COMMIT, TestApp, req, verifier};

fn validation_error(field: &str, problem: &str) -> Value {
    json!({"errors": {field: problem}, "message": "Input payload validation failed"})
}

#[tokio::test]
async fn login_from_form_json_or_query_issues_a_two_day_rs256_token() {
    let app = TestApp::new().await;
    let requests = [
        req(Method::POST, "/api/login/").form("username=bruce&password=password"),
        req(Method::POST, "/api/login/").json(&json!({"username": "bruce", "password": "password"})),
        req(Method::POST, "/api/login/?username=bruce&password=password").empty(),
    ];
    for request in requests {
        let response = app.send(request).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let body = response.json();
        assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["Authorized"]);
        let header = body["Authorized"].as_str().unwrap();
        assert!(header.starts_with("Bearer "), "{header}");
        // Any service holding only the public key accepts it.
        let claims = verifier().verify_authorization(Some(header)).unwrap();
        assert_eq!(claims.username, "bruce");
        assert_eq!(claims.exp - claims.iat, TOKEN_LIFETIME.as_secs());
        assert!(claims.iat.abs_diff(unix_now()) < 60);
    }
}

#[tokio::test]
async fn failed_login_is_401_with_an_empty_json_string() {
    let app = TestApp::new().await;
    for body in [
        "username=bruce&password=wrong",
        "username=nobody&password=password",
        "username=bruce&password=",
        "username=BRUCE&password=password",
    ] {
        let response = app.send(req(Method::POST, "/api/login/").form(body)).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(response.text(), r#""""#, "{body}");
        assert_eq!(response.json(), json!(""), "{body}");
    }
}

#[tokio::test]
async fn login_needs_both_fields_and_a_parseable_body() {
    let app = TestApp::new().await;
    let missing = app.send(req(Method::POST, "/api/login/").form("username=bruce")).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.text(),
        r#"{"errors":{"password":"Missing required parameter in the JSON body or the post body or the query string"},"message":"Input payload validation failed"}"#
    );
    let missing = app
        .send(req(Method::POST, "/api/login/").form("password=password"))
        .await;
    assert_eq!(missing.json(), validation_error("username", MISSING_PARAMETER_MESSAGE));
    let missing = app.send(req(Method::POST, "/api/login/").empty()).await;
    assert_eq!(missing.json(), validation_error("username", MISSING_PARAMETER_MESSAGE));
    let garbled = app
        .send(
            req(Method::POST, "/api/login/")
                .header("content-type", "application/json")
                .body("{nope".into())
                .unwrap(),
        )
        .await;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbled.json(), json!({"message": BAD_REQUEST_MESSAGE}));
}

#[tokio::test]
async fn admin_creates_users_who_can_then_log_in() {
    let app = TestApp::new().await;
    let before = Timestamp::now_utc();
    let response = app
        .send(req(Method::POST, "/admin/users/").form("username=tony&password=ir0n"))
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    let raw = response.text();
    assert!(!raw.contains("ir0n") && !raw.contains("password"), "{raw}");
    assert!(raw.starts_with(r#"{"id":3,"username":"tony","creation":""#), "{raw}");
    let body = response.json();
    assert_eq!(body.as_object().unwrap().len(), 3);
    let creation: Timestamp = body["creation"].as_str().unwrap().parse().unwrap();
    assert!(creation >= before && creation <= Timestamp::now_utc());

    let login = app
        .send(req(Method::POST, "/api/login/").json(&json!({"username": "tony", "password": "ir0n"})))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let stored = app
        .state
        .db
        .call(|c| {
            c.query_row("SELECT password_hash FROM users WHERE username = 'tony'", [], |r| {
                r.get::<_, String>(0)
            })
        })
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
}

#[tokio::test]
async fn admin_refuses_duplicates_and_invalid_fields() {
    let app = TestApp::new().await;
    for duplicate in ["username=bruce&password=x", "username=stephen&password=y"] {
        let response = app.send(req(Method::POST, "/admin/users/").form(duplicate)).await;
        assert_eq!(response.status, StatusCode::CONFLICT, "{duplicate}");
        assert_eq!(response.json(), json!({"message": USER_EXISTS_MESSAGE}));
    }
    let missing = app
        .send(req(Method::POST, "/admin/users/").json(&json!({"username": "pepper"})))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json(), validation_error("password", MISSING_PARAMETER_MESSAGE));
    let missing = app.send(req(Method::POST, "/admin/users/").empty()).await;
    assert_eq!(missing.json(), validation_error("username", MISSING_PARAMETER_MESSAGE));
    let long = format!("username={}&password=x", "a".repeat(51));
    let response = app.send(req(Method::POST, "/admin/users/").form(&long)).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json(),
        validation_error("username", "Username is longer than 50 characters")
    );
    let fits = format!("username={}&password=x", "a".repeat(50));
    let response = app.send(req(Method::POST, "/admin/users/").form(&fits)).await;
    assert_eq!(response.status, StatusCode::CREATED);
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

    app.send(req(Method::POST, "/api/login/").form("username=bruce&password=wrong"))
        .await;
    app.get("/api/login/").await;
    app.get("/nowhere/7").await;
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
        r#"requests_total{endpoint="/api/login/",method="POST",status="401"} 1"#,
        r#"requests_total{endpoint="/api/login/",method="GET",status="405"} 1"#,
        r#"requests_total{endpoint="unmatched",method="GET",status="404"} 1"#,
        r#"requests_total{endpoint="/healthz",method="GET",status="200"} 1"#,
        r#"request_duration_seconds_count{endpoint="/admin/version/"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
    assert!(!text.contains("/nowhere"), "raw paths must not be labels:\n{text}");
}

#[tokio::test]
async fn paths_without_trailing_slash_redirect_and_wrong_methods_are_405() {
    let app = TestApp::new().await;
    for (method, from, to) in [
        (Method::POST, "/api/login", "/api/login/"),
        (Method::POST, "/api/login?username=bruce", "/api/login/?username=bruce"),
        (Method::POST, "/admin/users", "/admin/users/"),
        (Method::GET, "/admin/version", "/admin/version/"),
    ] {
        let response = app.send(req(method.clone(), from).empty()).await;
        assert_eq!(response.status, StatusCode::PERMANENT_REDIRECT, "{method} {from}");
        assert_eq!(response.header("location").as_deref(), Some(to), "{method} {from}");
    }
    for (method, path, allow) in [
        (Method::GET, "/api/login/", "POST"),
        (Method::PUT, "/api/login/", "POST"),
        (Method::GET, "/admin/users/", "POST"),
        (Method::POST, "/admin/version/", "GET,HEAD"),
    ] {
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
}

#[tokio::test]
async fn unknown_paths_are_json_404s_and_thoughts_are_not_here() {
    let app = TestApp::new().await;
    for path in ["/api/nothing/", "/admin/", "/api/thoughts/", "/api/me/thoughts/", "/"] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.json(), json!({"message": NOT_FOUND_MESSAGE}), "{path}");
    }
}

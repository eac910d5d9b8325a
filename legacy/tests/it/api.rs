//! The monolith's users API (`/api/login/`, `/admin/users/`), endpoint by endpoint. Its thoughts API is
//! checked by the shared contract (`contract.rs`, [`mythoughts_testkit::contract`]).

use axum::http::{Method, StatusCode};
use mythoughts_common::Timestamp;
use mythoughts_common::errors::{MISSING_PARAMETER_MESSAGE, USER_EXISTS_MESSAGE};
use mythoughts_common::jwt::TOKEN_LIFETIME;
use serde_json::{Value, json};

use crate::support::{RequestExt, TestApp, positions, req};

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
async fn login_returns_a_bearer_header_that_works() {
    let app = TestApp::new().await;
    let requests = [
        req(Method::POST, "/api/login/").form("username=bruce&password=password"),
        req(Method::POST, "/api/login/").json(&json!({"username": "bruce", "password": "password"})),
        req(Method::POST, "/api/login/?username=bruce&password=password").empty(),
    ];
    for request in requests {
        let response = app.send(request).await;
        assert_eq!(response.status, StatusCode::OK);
        let body = response.json();
        assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["Authorized"]);
        let header = body["Authorized"].as_str().unwrap().to_owned();
        assert!(header.starts_with("Bearer "), "{header}");
        let claims = app.state.verifier.verify_authorization(Some(&header)).unwrap();
        assert_eq!(claims.username, "bruce");
        assert_eq!(claims.exp - claims.iat, TOKEN_LIFETIME.as_secs());
        let mine = app
            .send(
                req(Method::GET, "/api/me/thoughts/")
                    .header("authorization", &header)
                    .empty(),
            )
            .await;
        assert_eq!(ids(&mine.json()), [1, 2, 3]);
    }
}

#[tokio::test]
async fn failed_login_is_401_with_an_empty_json_string() {
    let app = TestApp::new().await;
    for body in [
        "username=bruce&password=wrong",
        "username=nobody&password=password",
        "username=bruce&password=",
    ] {
        let response = app.send(req(Method::POST, "/api/login/").form(body)).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(response.text(), r#""""#, "{body}");
        assert_eq!(response.json(), json!(""), "{body}");
    }
    let missing = app.send(req(Method::POST, "/api/login/").form("username=bruce")).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json(), validation_error("password", MISSING_PARAMETER_MESSAGE));
    let missing = app
        .send(req(Method::POST, "/api/login/").form("password=password"))
        .await;
    assert_eq!(missing.json(), validation_error("username", MISSING_PARAMETER_MESSAGE));
}

#[tokio::test]
async fn admin_creates_users_without_echoing_passwords() {
    let app = TestApp::new().await;
    let response = app
        .send(req(Method::POST, "/admin/users/").form("username=tony&password=ir0n"))
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    let raw = response.text();
    assert!(!raw.contains("ir0n") && !raw.contains("password"), "{raw}");
    let at = positions(&raw, &[r#""id":"#, r#""username":"#, r#""creation":"#]);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{raw}");
    let body = response.json();
    assert_eq!(body["id"], json!(3));
    assert_eq!(body["username"], json!("tony"));
    assert!(body["creation"].as_str().unwrap().parse::<Timestamp>().is_ok());
    assert_eq!(body.as_object().unwrap().len(), 3);

    // The new user can log in; the password is stored hashed.
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

    for duplicate in ["username=tony&password=x", "username=bruce&password=x"] {
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
}

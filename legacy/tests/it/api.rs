//! The JSON API contract, endpoint by endpoint.

use axum::http::{Method, StatusCode};
use mythoughts_common::errors::{
    BAD_REQUEST_MESSAGE, METHOD_NOT_ALLOWED_MESSAGE, MISSING_PARAMETER_MESSAGE, NOT_FOUND_MESSAGE,
    UNAUTHORIZED_MESSAGE, USER_EXISTS_MESSAGE,
};
use mythoughts_common::jwt::{Claims, TOKEN_LIFETIME, unix_now};
use mythoughts_common::{Thought, Timestamp, seed};
use serde_json::{Value, json};

use crate::support::{RequestExt, TEST_COMMIT, TestApp, issuer, key_pair, positions, req};

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

/// The raw text of one serialized Thought has its keys in the book's order.
fn assert_thought_key_order(raw: &str) {
    let at = positions(raw, &[r#""id":"#, r#""username":"#, r#""text":"#, r#""timestamp":"#]);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "keys out of order: {raw}");
}

#[tokio::test]
async fn list_returns_every_thought_by_id_in_the_books_shape() {
    let app = TestApp::new().await;
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

#[tokio::test]
async fn list_search_is_a_case_insensitive_substring() {
    let app = TestApp::new().await;
    assert_eq!(app.get("/api/thoughts/?search=GREEN").await.json(), seed_json(&[3]));
    assert_eq!(ids(&app.get("/api/thoughts/?search=IN").await.json()), [1, 3, 4, 5]);
    assert_eq!(app.get("/api/thoughts/?search=zebra").await.json(), json!([]));
    assert_eq!(ids(&app.get("/api/thoughts/?search=").await.json()), [1, 2, 3, 4, 5]);
    // JSON body works too, like every Flask-RESTPlus argument.
    let response = app
        .send(req(Method::GET, "/api/thoughts/").json(&json!({"search": "cloak"})))
        .await;
    assert_eq!(ids(&response.json()), [5]);
}

#[tokio::test]
async fn get_one_thought_or_the_null_thought() {
    let app = TestApp::new().await;
    let response = app.get("/api/thoughts/3/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.json(),
        json!({"id": 3, "username": "bruce", "text": "Feeling a bit green today.", "timestamp": "2019-05-07T14:05:51"})
    );
    assert_thought_key_order(&response.text());

    let missing = app.get("/api/thoughts/99/").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json(),
        json!({"id": null, "username": null, "text": null, "timestamp": null})
    );
    assert_thought_key_order(&missing.text());

    let not_an_id = app.get("/api/thoughts/abc/").await;
    assert_eq!(not_an_id.status, StatusCode::NOT_FOUND);
    assert_eq!(not_an_id.json(), json!({"message": NOT_FOUND_MESSAGE}));
}

#[tokio::test]
async fn my_thoughts_are_the_callers_own() {
    let app = TestApp::new().await;
    for (user, expected) in [("bruce", vec![1, 2, 3]), ("stephen", vec![4, 5]), ("nobody", vec![])] {
        let request = req(Method::GET, "/api/me/thoughts/")
            .header("authorization", app.bearer(user))
            .empty();
        let response = app.send(request).await;
        assert_eq!(response.status, StatusCode::OK, "{user}");
        assert_eq!(response.json(), seed_json(&expected), "{user}");
    }
    // The scheme is case-insensitive.
    let token = app.state.issuer.issue("bruce").unwrap();
    let request = req(Method::GET, "/api/me/thoughts/")
        .header("authorization", format!("bearer {token}"))
        .empty();
    assert_eq!(app.send(request).await.status, StatusCode::OK);
}

/// Every way credentials can be wrong, each answered 401 `{"message"}` on both `/api/me/thoughts/` methods.
#[tokio::test]
async fn bad_credentials_are_401() {
    let app = TestApp::new().await;
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
    let headers: Vec<(&str, Option<String>)> = vec![
        ("missing header", None),
        ("not bearer", Some("Basic YnJ1Y2U6cGFzc3dvcmQ=".to_owned())),
        ("no token", Some("Bearer".to_owned())),
        ("garbage token", Some("Bearer not.a.token".to_owned())),
        ("expired", Some(format!("Bearer {expired}"))),
        ("other key", Some(format!("Bearer {stranger}"))),
        ("HS256", Some(format!("Bearer {hs256}"))),
        ("no username", Some(format!("Bearer {no_username}"))),
        ("no exp", Some(format!("Bearer {no_exp}"))),
    ];
    for (case, header) in headers {
        for method in [Method::GET, Method::POST] {
            let mut request = req(method.clone(), "/api/me/thoughts/");
            if let Some(value) = &header {
                request = request.header("authorization", value);
            }
            let response = app.send(request.form("text=hello")).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{case} {method}");
            assert_eq!(
                response.json(),
                json!({"message": UNAUTHORIZED_MESSAGE}),
                "{case} {method}"
            );
        }
    }
    // Nothing was written.
    assert_eq!(ids(&app.get("/api/thoughts/").await.json()), [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn create_thought_from_form_json_or_query() {
    let app = TestApp::new().await;
    let bearer = app.bearer("stephen");
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
        assert_eq!(thought.username, "stephen");
        assert_eq!(thought.text, text);
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

#[tokio::test]
async fn create_thought_validates_text() {
    let app = TestApp::new().await;
    let bearer = app.bearer("bruce");
    let missing = app
        .send(
            req(Method::POST, "/api/me/thoughts/")
                .header("authorization", &bearer)
                .form(""),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json(), validation_error("text", MISSING_PARAMETER_MESSAGE));
    assert_eq!(
        missing.text(),
        r#"{"errors":{"text":"Missing required parameter in the JSON body or the post body or the query string"},"message":"Input payload validation failed"}"#
    );

    let too_long = "é".repeat(251);
    let body = json!({ "text": too_long });
    let response = app
        .send(
            req(Method::POST, "/api/me/thoughts/")
                .header("authorization", &bearer)
                .json(&body),
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

    // As in the book, arguments are validated before credentials.
    let anonymous = app.send(req(Method::POST, "/api/me/thoughts/").form("")).await;
    assert_eq!(anonymous.status, StatusCode::BAD_REQUEST);

    // An unparseable JSON body is a plain 400.
    let request = req(Method::POST, "/api/me/thoughts/")
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.json(), json!({"message": BAD_REQUEST_MESSAGE}));
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

#[tokio::test]
async fn admin_delete_is_204_even_for_missing_ids() {
    let app = TestApp::new().await;
    for id in [1, 1, 999] {
        let response = app
            .send(req(Method::DELETE, &format!("/admin/thoughts/{id}/")).empty())
            .await;
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{id}");
        assert!(response.body.is_empty());
    }
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
    assert_eq!(health.status, StatusCode::OK);

    app.get("/api/thoughts/2/").await;
    app.get("/api/thoughts/99/").await;
    app.get("/no/such/page").await;
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
async fn api_paths_without_trailing_slash_redirect_permanently() {
    let app = TestApp::new().await;
    let cases = [
        (Method::GET, "/api/thoughts", "/api/thoughts/"),
        (Method::GET, "/api/thoughts?search=green", "/api/thoughts/?search=green"),
        (Method::GET, "/api/thoughts/3", "/api/thoughts/3/"),
        (Method::GET, "/api/me/thoughts", "/api/me/thoughts/"),
        (Method::POST, "/api/me/thoughts?text=hi", "/api/me/thoughts/?text=hi"),
        (Method::POST, "/api/login", "/api/login/"),
        (Method::POST, "/admin/users", "/admin/users/"),
        (Method::DELETE, "/admin/thoughts/3", "/admin/thoughts/3/"),
        (Method::GET, "/admin/version", "/admin/version/"),
    ];
    for (method, from, to) in cases {
        let response = app.send(req(method.clone(), from).empty()).await;
        assert_eq!(response.status, StatusCode::PERMANENT_REDIRECT, "{method} {from}");
        assert_eq!(response.header("location").as_deref(), Some(to), "{method} {from}");
    }
    // The redirect did not delete anything.
    assert_eq!(app.get("/api/thoughts/3/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let app = TestApp::new().await;
    let cases = [
        (Method::POST, "/api/thoughts/", "GET,HEAD"),
        (Method::DELETE, "/api/thoughts/3/", "GET,HEAD"),
        (Method::PUT, "/api/me/thoughts/", "GET,HEAD,POST"),
        (Method::GET, "/api/login/", "POST"),
        (Method::GET, "/admin/users/", "POST"),
        (Method::GET, "/admin/thoughts/3/", "DELETE"),
        (Method::POST, "/admin/version/", "GET,HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = app.send(req(method.clone(), path).empty()).await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(
            response.json(),
            json!({"message": METHOD_NOT_ALLOWED_MESSAGE}),
            "{method} {path}"
        );
        let mut got: Vec<String> = response
            .header("allow")
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        got.sort();
        assert_eq!(got.join(","), allow, "{method} {path}");
    }
    // The method that is allowed still works afterwards.
    assert_eq!(app.get("/api/thoughts/3/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_api_paths_are_json_404s() {
    let app = TestApp::new().await;
    for path in ["/api/nothing/", "/admin/", "/api/thoughts/3/extra/"] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.json(), json!({"message": NOT_FOUND_MESSAGE}), "{path}");
    }
}

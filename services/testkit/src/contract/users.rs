//! The users API contract (`/api/login/`, `/admin/users/`, and the version, health and metrics
//! endpoints every service has): logins from any argument location issuing two-day RS256 tokens
//! that the public key alone accepts, the book's empty-string 401, validation, user creation
//! without echoing or storing the password in clear, the 308 and 405 rules, and JSON 404s.

use axum::http::{Method, StatusCode};
use mythoughts_common::Timestamp;
use mythoughts_common::errors::{USER_EXISTS_MESSAGE, missing_parameter};
use mythoughts_common::jwt::{TOKEN_LIFETIME, unix_now};
use serde_json::json;

use super::thoughts::ids;
use super::{
    Subject, assert_garbled_json_is_400, assert_json_404s, assert_json_405s, assert_metrics, assert_version_and_health,
    validation_error,
};
use crate::{RequestExt, positions, req, verifier};

/// A login from a form, JSON or the query answers `{"Authorized": "Bearer <jwt>"}`: a token for
/// two days that a service holding only the public key accepts (and, where the app serves the
/// thoughts API too, that opens the caller's own thoughts).
pub async fn login_from_form_json_or_query_issues_a_two_day_rs256_token(app: &Subject) {
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
        let header = body["Authorized"].as_str().unwrap().to_owned();
        assert!(header.starts_with("Bearer "), "{header}");
        let claims = verifier().verify_authorization(Some(&header)).unwrap();
        assert_eq!(claims.username, "bruce");
        assert_eq!(claims.exp - claims.iat, TOKEN_LIFETIME.as_secs());
        assert!(claims.iat.abs_diff(unix_now()) < 60);
        if app.profile.thoughts_api {
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
}

/// A wrong password, an unknown user (names are case-sensitive) or an empty password is a 401
/// whose body is the JSON empty string, as in the book.
pub async fn failed_login_is_401_with_an_empty_json_string(app: &Subject) {
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

/// A login without `username` or `password` is the book's validation 400 (username reported
/// first); an unparseable JSON body is a plain 400.
pub async fn login_needs_both_fields_and_a_parseable_body(app: &Subject) {
    let missing = app.send(req(Method::POST, "/api/login/").form("username=bruce")).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.json(),
        validation_error("password", &missing_parameter("password"))
    );
    assert_eq!(
        missing.text(),
        r#"{"errors":{"password":"password Missing required parameter in the JSON body or the post body or the query string"},"message":"Input payload validation failed"}"#
    );
    let missing = app
        .send(req(Method::POST, "/api/login/").form("password=password"))
        .await;
    assert_eq!(
        missing.json(),
        validation_error("username", &missing_parameter("username"))
    );
    let missing = app.send(req(Method::POST, "/api/login/").empty()).await;
    assert_eq!(
        missing.json(),
        validation_error("username", &missing_parameter("username"))
    );
    // A body that is not a form is not read: the book reports `username` missing.
    let plain = app
        .send(
            req(Method::POST, "/api/login/")
                .header("content-type", "text/plain")
                .body("username=bruce&password=password".into())
                .unwrap(),
        )
        .await;
    assert_eq!(
        plain.json(),
        validation_error("username", &missing_parameter("username"))
    );
    assert_garbled_json_is_400(app, Method::POST, "/api/login/").await;
}

/// `POST /admin/users/` answers 201 `{"id","username","creation"}` (in that order, never the
/// password); the new user can log in, the password is stored as an argon2id hash, and the name
/// is then taken.
pub async fn admin_creates_users_who_can_then_log_in(app: &Subject) {
    let before = Timestamp::now_utc();
    let response = app
        .send(req(Method::POST, "/admin/users/").form("username=tony&password=ir0n"))
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    let raw = response.text();
    assert!(!raw.contains("ir0n") && !raw.contains("password"), "{raw}");
    assert!(raw.starts_with(r#"{"id":3,"username":"tony","creation":""#), "{raw}");
    let at = positions(&raw, &[r#""id":"#, r#""username":"#, r#""creation":"#]);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{raw}");
    let body = response.json();
    assert_eq!(body["id"], json!(3));
    assert_eq!(body["username"], json!("tony"));
    assert_eq!(body.as_object().unwrap().len(), 3);
    let creation: Timestamp = body["creation"].as_str().unwrap().parse().unwrap();
    assert!(creation >= before && creation <= Timestamp::now_utc());

    let login = app
        .send(req(Method::POST, "/api/login/").json(&json!({"username": "tony", "password": "ir0n"})))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let stored = app
        .app
        .db
        .call(|c| {
            c.query_row("SELECT password_hash FROM users WHERE username = 'tony'", [], |r| {
                r.get::<_, String>(0)
            })
        })
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    let taken = app
        .send(req(Method::POST, "/admin/users/").form("username=tony&password=x"))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(taken.json(), json!({"message": USER_EXISTS_MESSAGE}));
}

/// An existing name is a 409 (the book answers 201 and stores a second row: a deliberate
/// difference); a missing field or a name over 50 characters is the book's validation 400 (the
/// book declares `String(50)` but SQLite does not enforce it: a deliberate difference); 50
/// characters fit.
pub async fn admin_refuses_duplicates_and_invalid_fields(app: &Subject) {
    for duplicate in ["username=bruce&password=x", "username=stephen&password=y"] {
        let response = app.send(req(Method::POST, "/admin/users/").form(duplicate)).await;
        assert_eq!(response.status, StatusCode::CONFLICT, "{duplicate}");
        assert_eq!(response.json(), json!({"message": USER_EXISTS_MESSAGE}));
    }
    let missing = app
        .send(req(Method::POST, "/admin/users/").json(&json!({"username": "pepper"})))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.json(),
        validation_error("password", &missing_parameter("Password"))
    );
    let missing = app.send(req(Method::POST, "/admin/users/").empty()).await;
    assert_eq!(
        missing.json(),
        validation_error("username", &missing_parameter("Username"))
    );
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

/// `/admin/version/` is `{"commit","version"}` in that order; `/healthz` is `ok`; `/metrics`
/// counts the users API by route template (never the raw path), method and status.
pub async fn version_health_and_metrics(app: &Subject) {
    assert_version_and_health(app).await;
    app.send(req(Method::POST, "/api/login/").form("username=bruce&password=wrong"))
        .await;
    app.get("/api/login/").await;
    app.get("/nowhere/7").await;
    let lines = [
        r#"requests_total{endpoint="/api/login/",method="POST",status="401"} 1"#,
        r#"requests_total{endpoint="/api/login/",method="GET",status="405"} 1"#,
        r#"requests_total{endpoint="unmatched",method="GET",status="404"} 1"#,
        r#"requests_total{endpoint="/healthz",method="GET",status="200"} 1"#,
        r#"request_duration_seconds_count{endpoint="/admin/version/"} 1"#,
    ];
    assert_metrics(app, &lines, "/nowhere").await;
}

/// The users API's paths without their trailing slash are a 308 to the canonical path (query
/// kept) with Werkzeug's page; a wrong method is a 405 with the JSON message and Flask's `Allow`;
/// `OPTIONS` is a 200 with `Allow`.
pub async fn paths_without_trailing_slash_redirect_and_wrong_methods_are_405(app: &Subject) {
    for (method, from, to) in [
        (Method::POST, "/api/login", "/api/login/"),
        (Method::POST, "/api/login?username=bruce", "/api/login/?username=bruce"),
        (Method::POST, "/admin/users", "/admin/users/"),
        (Method::GET, "/admin/version", "/admin/version/"),
    ] {
        let response = app.send(req(method.clone(), from).empty()).await;
        assert_eq!(response.status, StatusCode::PERMANENT_REDIRECT, "{method} {from}");
        assert_eq!(response.header("location").as_deref(), Some(to), "{method} {from}");
        assert_eq!(response.text(), mythoughts_common::api::redirect_page(to));
        assert_eq!(
            response.header("content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
    }
    let cases = [
        (Method::GET, "/api/login/", "OPTIONS,POST"),
        (Method::PUT, "/api/login/", "OPTIONS,POST"),
        (Method::GET, "/admin/users/", "OPTIONS,POST"),
        (Method::POST, "/admin/version/", "GET,HEAD,OPTIONS"),
    ];
    assert_json_405s(app, &cases).await;
    let options = app.send(req(Method::OPTIONS, "/api/login/").empty()).await;
    assert_eq!(options.status, StatusCode::OK);
    assert_eq!(options.header("allow").as_deref(), Some("POST, OPTIONS"));
    assert!(options.body.is_empty());
}

/// An API path that is no route is the JSON 404; so are the thoughts API and `/` on an app that
/// does not serve them (see [`super::Profile`]).
pub async fn unknown_paths_are_json_404s(app: &Subject) {
    let mut paths = vec!["/api/nothing/", "/admin/"];
    if !app.profile.thoughts_api {
        paths.extend(["/api/thoughts/", "/api/me/thoughts/"]);
    }
    if !app.profile.pages {
        paths.push("/");
    }
    assert_json_404s(app, &paths).await;
}

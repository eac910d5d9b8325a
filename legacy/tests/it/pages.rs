//! The HTML side: login and session cookie, the user's page, posting, search, escaping, static files.

use axum::http::{Method, StatusCode};
use mythoughts_legacy::html::{INVALID_LOGIN, NO_RESULTS};
use serde_json::json;

use crate::support::{RequestExt, TestApp, TestResponse, positions, req};

const BRUCE_TEXTS: [&str; 3] = [
    "Gamma ray test in a few minutes. What could possibly go wrong?",
    "Note to self: buy stretchier trousers.",
    "Feeling a bit green today.",
];

/// Logs in through the form and returns the `session` cookie's token.
async fn login(app: &TestApp, username: &str) -> String {
    let response = app
        .send(req(Method::POST, "/login/").form(&format!("username={username}&password=password")))
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.text());
    assert_eq!(response.header("location").as_deref(), Some("/"));
    let cookie = response.header("set-cookie").unwrap();
    let token = cookie
        .strip_prefix("session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "Path=/", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    token
}

async fn get_with_session(app: &TestApp, uri: &str, token: &str) -> TestResponse {
    app.send(
        req(Method::GET, uri)
            .header("cookie", format!("theme=dark; session={token}"))
            .empty(),
    )
    .await
}

#[tokio::test]
async fn pages_need_a_session() {
    let app = TestApp::new().await;
    for path in ["/", "/thoughts/"] {
        let response = app.get(path).await;
        assert!(
            matches!(response.status, StatusCode::FOUND | StatusCode::SEE_OTHER),
            "{path}"
        );
        assert_eq!(response.header("location").as_deref(), Some("/login/"), "{path}");
        // A forged or foreign cookie is no session either.
        let response = get_with_session(&app, path, "not.a.token").await;
        assert_eq!(response.header("location").as_deref(), Some("/login/"), "{path}");
    }
    let form = app.get("/login/").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.text().contains(r#"name="username""#) && form.text().contains(r#"name="password""#));
}

#[tokio::test]
async fn failed_login_rerenders_the_form_with_an_error() {
    let app = TestApp::new().await;
    for body in [
        "username=bruce&password=nope",
        "username=nobody&password=password",
        "",
        "username=bruce",
    ] {
        let response = app.send(req(Method::POST, "/login/").form(body)).await;
        assert_eq!(response.status, StatusCode::OK, "{body}");
        assert!(response.text().contains(INVALID_LOGIN), "{body}");
        assert_eq!(response.header("set-cookie"), None, "{body}");
    }
}

#[tokio::test]
async fn login_cookie_shows_the_users_thoughts_newest_first() {
    let app = TestApp::new().await;
    let token = login(&app, "bruce").await;
    for path in ["/", "/thoughts/"] {
        let page = get_with_session(&app, path, &token).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.header("content-type").unwrap().starts_with("text/html"));
        let html = page.text();
        let at = positions(&html, &BRUCE_TEXTS);
        assert!(at[2] < at[1] && at[1] < at[0], "not newest first:\n{html}");
        assert!(!html.contains("cloak"), "stephen's thoughts leaked:\n{html}");
        assert!(html.contains("bruce"));
    }
}

#[tokio::test]
async fn the_session_cookie_is_an_api_token_too() {
    let app = TestApp::new().await;
    let token = login(&app, "stephen").await;
    assert_eq!(app.state.verifier.verify(&token).unwrap().username, "stephen");
    let request = req(Method::GET, "/api/me/thoughts/")
        .header("authorization", format!("Bearer {token}"))
        .empty();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json().as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn posting_a_thought_redirects_back_and_shows_it_first() {
    let app = TestApp::new().await;
    let token = login(&app, "bruce").await;
    let post = |body: &'static str| {
        req(Method::POST, "/thoughts/new")
            .header("cookie", format!("session={token}"))
            .form(body)
    };
    let response = app.send(post("text=Smash%21")).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(response.header("location").as_deref(), Some("/thoughts/"));
    let html = get_with_session(&app, "/thoughts/", &token).await.text();
    let at = positions(&html, &["Smash!", BRUCE_TEXTS[2]]);
    assert!(at[0] < at[1], "{html}");

    // Empty (or blank) text is ignored.
    for body in ["text=", "text=++", ""] {
        let response = app.send(post(body)).await;
        assert_eq!(response.header("location").as_deref(), Some("/thoughts/"), "{body:?}");
    }
    assert_eq!(app.get("/api/thoughts/").await.json().as_array().unwrap().len(), 6);

    // Without a session nothing is stored.
    let anonymous = app.send(req(Method::POST, "/thoughts/new").form("text=sneaky")).await;
    assert_eq!(anonymous.header("location").as_deref(), Some("/login/"));
    assert_eq!(app.get("/api/thoughts/").await.json().as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn logout_clears_the_cookie() {
    let app = TestApp::new().await;
    let response = app.get("/logout/").await;
    assert!(response.status.is_redirection());
    assert_eq!(response.header("location").as_deref(), Some("/"));
    let cookie = response.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with("session=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
}

#[tokio::test]
async fn search_page_needs_no_login() {
    let app = TestApp::new().await;
    let found = app.get("/search?search=GREEN").await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.text().contains(BRUCE_TEXTS[2]));
    assert!(!found.text().contains(NO_RESULTS));

    // Everyone's thoughts, newest first.
    let html = app.get("/search?search=in").await.text();
    let at = positions(&html, &["cloak", "Bent time", BRUCE_TEXTS[2], BRUCE_TEXTS[0]]);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{html}");

    let nothing = app.get("/search?search=zebra").await;
    assert_eq!(nothing.status, StatusCode::OK);
    assert!(nothing.text().contains(NO_RESULTS));

    assert_eq!(app.get("/search").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn user_text_is_escaped_everywhere() {
    let app = TestApp::new().await;
    let evil = "<script>alert('pwned')</script>";
    let request = req(Method::POST, "/api/me/thoughts/").header("authorization", app.bearer("bruce"));
    assert_eq!(
        app.send(request.json(&json!({"text": evil}))).await.status,
        StatusCode::CREATED
    );

    let token = login(&app, "bruce").await;
    let pages = [
        get_with_session(&app, "/thoughts/", &token).await.text(),
        app.get("/search?search=script").await.text(),
        app.get("/search?search=%3Cscript%3E").await.text(),
    ];
    for html in pages {
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;"),
            "{html}"
        );
    }
    // The API returns the text as stored: escaping is the page's job.
    let api = app.get("/api/thoughts/6/").await.json();
    assert_eq!(api["text"], json!(evil));
}

#[tokio::test]
async fn static_files_and_html_errors() {
    let app = TestApp::new().await;
    let css = app.get("/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert!(css.text().contains("body"));

    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.header("content-type").unwrap().starts_with("text/html"));

    let wrong_method = app.send(req(Method::PUT, "/login/").empty()).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.header("allow").unwrap().contains("POST"));
}

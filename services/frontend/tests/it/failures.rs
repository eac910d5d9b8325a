//! Backends that are down, failing, slow, or answering junk: each page answers a clear HTML error page that
//! names the backend (502 refused/5xx/junk, 504 too slow), never a panic; and the request id travels.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{get, post};
use mythoughts_common::jwt::generate_key_pair;
use mythoughts_common::{TokenIssuer, html};

use crate::support::{
    Frontend, Monolith, PageResponse, RequestExt, TestResponse, dead_url, get_with_session, issuer, req, serve,
};

const QUICK: Duration = Duration::from_secs(10);

fn assert_names(response: &TestResponse, status: StatusCode, service: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert!(response.is_html());
    let html = response.text();
    assert!(html.contains(&format!("The {service} service")), "{html}");
}

fn post_thought(token: &str) -> axum::http::Request<axum::body::Body> {
    req(Method::POST, "/thoughts/new")
        .header("cookie", format!("session={token}"))
        .form("text=hello")
}

#[tokio::test]
async fn a_backend_that_is_down_is_a_502_naming_it() {
    let monolith = Monolith::start().await;
    let token = issuer().issue("bruce").unwrap();

    let frontend = Frontend::with(&dead_url().await, &monolith.url, QUICK);
    for response in [
        frontend.send(get_with_session("/thoughts/", &token)).await,
        frontend.get("/search?search=x").await,
        frontend.send(post_thought(&token)).await,
    ] {
        assert_names(&response, StatusCode::BAD_GATEWAY, "thoughts");
    }
    // Pages that need no backend still work.
    assert_eq!(frontend.get("/login/").await.status, StatusCode::OK);
    // The login goes to the users backend, which is up.
    let login = frontend
        .send(req(Method::POST, "/login/").form("username=bruce&password=password"))
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);

    let frontend = Frontend::with(&monolith.url, &dead_url().await, QUICK);
    let login = frontend
        .send(req(Method::POST, "/login/").form("username=bruce&password=password"))
        .await;
    assert_names(&login, StatusCode::BAD_GATEWAY, "users");
    assert_eq!(login.header("set-cookie"), None);
    assert_eq!(frontend.get("/search?search=x").await.status, StatusCode::OK);

    let metrics = frontend.get("/metrics").await.text();
    assert!(
        metrics.contains(r#"backend_requests_total{backend="users",outcome="unreachable"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failing_or_nonsensical_backend_is_a_502() {
    let failing = serve(Router::new().fallback(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") })).await;
    let junk = serve(
        Router::new()
            .route("/api/thoughts/", get(|| async { "<html>not json</html>" }))
            .route("/api/login/", post(|| async { r#"{"Authorized": "Basic abc"}"# })),
    )
    .await;
    let token = issuer().issue("bruce").unwrap();
    for url in [&failing, &junk] {
        let frontend = Frontend::with(url, url, QUICK);
        assert_names(
            &frontend.get("/search?search=x").await,
            StatusCode::BAD_GATEWAY,
            "thoughts",
        );
        let login = frontend
            .send(req(Method::POST, "/login/").form("username=bruce&password=password"))
            .await;
        assert_names(&login, StatusCode::BAD_GATEWAY, "users");
    }
    let frontend = Frontend::with(&failing, &failing, QUICK);
    assert_names(
        &frontend.send(get_with_session("/thoughts/", &token)).await,
        StatusCode::BAD_GATEWAY,
        "thoughts",
    );
}

#[tokio::test]
async fn a_slow_backend_is_a_504() {
    let slow = serve(Router::new().fallback(std::future::pending::<()>)).await;
    let frontend = Frontend::with(&slow, &slow, Duration::from_millis(200));
    assert_names(
        &frontend.get("/search?search=x").await,
        StatusCode::GATEWAY_TIMEOUT,
        "thoughts",
    );
}

#[tokio::test]
async fn a_token_the_frontend_cannot_verify_is_not_stored() {
    // A users service signing with another key: the cookie would log nobody in, so say so instead.
    let stranger = generate_key_pair(1024).unwrap();
    let stranger = TokenIssuer::from_pem(stranger.private_pem.as_bytes()).unwrap();
    let bearer = stranger.issue_bearer("bruce").unwrap();
    let users = serve(Router::new().route(
        "/api/login/",
        post(move || async move { axum::Json(serde_json::json!({ "Authorized": bearer })) }),
    ))
    .await;
    let frontend = Frontend::with(&users, &users, QUICK);
    let login = frontend
        .send(req(Method::POST, "/login/").form("username=bruce&password=password"))
        .await;
    assert_names(&login, StatusCode::BAD_GATEWAY, "users");
    assert_eq!(login.header("set-cookie"), None);
}

#[tokio::test]
async fn a_refused_token_sends_back_to_the_login_page() {
    let thoughts = serve(Router::new().fallback(|| async { StatusCode::UNAUTHORIZED })).await;
    let frontend = Frontend::with(&thoughts, &thoughts, QUICK);
    let token = issuer().issue("bruce").unwrap();
    for response in [
        frontend.send(get_with_session("/thoughts/", &token)).await,
        frontend.send(post_thought(&token)).await,
    ] {
        assert_eq!(response.status, StatusCode::SEE_OTHER);
        assert_eq!(response.header("location").as_deref(), Some("/login/"));
    }
}

#[tokio::test]
async fn the_request_id_and_the_session_token_reach_the_backend() {
    type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;
    let seen: Seen = Arc::default();
    let recorder = seen.clone();
    let thoughts = serve(Router::new().fallback(move |method: Method, headers: HeaderMap| {
        let recorder = recorder.clone();
        async move {
            let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
            recorder
                .lock()
                .unwrap()
                .push((method.to_string(), header("x-request-id"), header("authorization")));
            axum::Json(serde_json::json!([]))
        }
    }))
    .await;
    let frontend = Frontend::with(&thoughts, &thoughts, QUICK);
    let token = issuer().issue("bruce").unwrap();
    let request = req(Method::GET, "/thoughts/")
        .header("x-request-id", "req-42")
        .header("cookie", format!("session={token}"))
        .empty();
    let page = frontend.send(request).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("No thoughts yet."));
    let search = frontend.send(req(Method::GET, "/search?search=x").empty()).await;
    assert!(search.text().contains(html::NO_RESULTS));

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (
                "GET".to_owned(),
                Some("req-42".to_owned()),
                Some(format!("Bearer {token}"))
            ),
            ("GET".to_owned(), None, None),
        ]
    );
}

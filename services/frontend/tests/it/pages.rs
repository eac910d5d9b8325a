//! The pages, with the monolith as both backends: the same behaviour as the monolith's own pages.

use axum::http::{Method, StatusCode};
use mythoughts_common::html::{INVALID_LOGIN, NO_RESULTS};

use crate::support::{Frontend, Monolith, PageResponse, RequestExt, get_with_session, login_via, positions, req};

const BRUCE_TEXTS: [&str; 3] = [
    "Gamma ray test in a few minutes. What could possibly go wrong?",
    "Note to self: buy stretchier trousers.",
    "Feeling a bit green today.",
];

#[tokio::test]
async fn pages_need_a_session() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);
    for path in ["/", "/thoughts/"] {
        let response = frontend.get(path).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.header("location").as_deref(), Some("/login/"), "{path}");
        // A forged cookie, or one signed by another key, is no session either.
        let response = frontend.send(get_with_session(path, "not.a.token")).await;
        assert_eq!(response.header("location").as_deref(), Some("/login/"), "{path}");
    }
    let anonymous = frontend
        .send(req(Method::POST, "/thoughts/new").form("text=sneaky"))
        .await;
    assert_eq!(anonymous.header("location").as_deref(), Some("/login/"));

    let form = frontend.get("/login/").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.is_html());
    assert!(form.text().contains(r#"name="username""#) && form.text().contains(r#"name="password""#));
}

#[tokio::test]
async fn login_sets_the_cookie_and_shows_bruces_thoughts_newest_first() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);
    let token = login_via(async |r| frontend.send(r).await, "bruce").await;
    assert_eq!(frontend.state.verifier.verify(&token).unwrap().username, "bruce");
    for path in ["/", "/thoughts/"] {
        let page = frontend.send(get_with_session(path, &token)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text());
        assert!(page.is_html());
        let html = page.text();
        let at = positions(&html, &BRUCE_TEXTS);
        assert!(at[2] < at[1] && at[1] < at[0], "not newest first:\n{html}");
        assert!(!html.contains("cloak"), "stephen's thoughts leaked:\n{html}");
        assert!(html.contains("bruce · <a href=\"/logout/\">"), "{html}");
    }
}

#[tokio::test]
async fn failed_login_rerenders_the_form_with_an_error() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);
    for body in [
        "username=bruce&password=nope",
        "username=nobody&password=password",
        "",
        "username=bruce",
    ] {
        let response = frontend.send(req(Method::POST, "/login/").form(body)).await;
        assert_eq!(response.status, StatusCode::OK, "{body}");
        assert!(response.text().contains(INVALID_LOGIN), "{body}");
        assert_eq!(response.header("set-cookie"), None, "{body}");
    }
}

#[tokio::test]
async fn posting_a_thought_shows_it_first() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);
    let token = login_via(async |r| frontend.send(r).await, "bruce").await;
    let post = |body: &str| {
        req(Method::POST, "/thoughts/new")
            .header("cookie", format!("session={token}"))
            .form(body)
    };
    let response = frontend.send(post("text=Smash%21")).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.text());
    assert_eq!(response.header("location").as_deref(), Some("/thoughts/"));
    let html = frontend.send(get_with_session("/thoughts/", &token)).await.text();
    let at = positions(&html, &["Smash!", BRUCE_TEXTS[2]]);
    assert!(at[0] < at[1], "{html}");

    // Blank text is ignored; too long a text is a 400 page; neither reaches the backend.
    for body in ["text=", "text=++", ""] {
        let response = frontend.send(post(body)).await;
        assert_eq!(response.header("location").as_deref(), Some("/thoughts/"), "{body:?}");
    }
    let too_long = frontend.send(post(&format!("text={}", "a".repeat(251)))).await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    assert!(too_long.text().contains("at most 250 characters"));
    let all = monolith.send(req(Method::GET, "/api/thoughts/").empty()).await.text();
    assert_eq!(all.matches(r#""id":"#).count(), 6, "{all}");
}

#[tokio::test]
async fn search_needs_no_login_and_escapes_markup() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);

    let found = frontend.get("/search?search=GREEN").await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.text().contains(BRUCE_TEXTS[2]));
    assert!(!found.text().contains(NO_RESULTS));

    // Everyone's thoughts, newest first.
    let html = frontend.get("/search?search=in").await.text();
    let at = positions(&html, &["cloak", "Bent time", BRUCE_TEXTS[2], BRUCE_TEXTS[0]]);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{html}");

    let nothing = frontend.get("/search?search=zebra").await;
    assert_eq!(nothing.status, StatusCode::OK);
    assert!(nothing.text().contains(NO_RESULTS));

    let missing = frontend.get("/search").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.is_html());

    // A thought with markup, posted through the frontend, comes back escaped in both the list and search,
    // and a search term with markup is escaped too (it is echoed in the heading and the search box).
    let token = login_via(async |r| frontend.send(r).await, "bruce").await;
    let evil = "<script>alert('pwned')</script>";
    let body = serde_urlencoded::to_string([("text", evil)]).unwrap();
    let posted = frontend
        .send(
            req(Method::POST, "/thoughts/new")
                .header("cookie", format!("session={token}"))
                .form(&body),
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    let pages = [
        frontend.send(get_with_session("/thoughts/", &token)).await.text(),
        frontend.get("/search?search=script").await.text(),
        frontend.get("/search?search=%3Cscript%3E").await.text(),
    ];
    for html in pages {
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;"),
            "{html}"
        );
    }
}

#[tokio::test]
async fn logout_clears_the_cookie() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);
    let response = frontend.get("/logout/").await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(response.header("location").as_deref(), Some("/"));
    let cookie = response.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with("session=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
}

#[tokio::test]
async fn static_files_health_metrics_and_html_errors() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);
    let css = frontend.get("/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(
        css.body,
        monolith.send(req(Method::GET, "/static/style.css").empty()).await.body
    );

    assert_eq!(frontend.get("/healthz").await.text(), "ok");

    let missing = frontend.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.is_html());

    let wrong_method = frontend.send(req(Method::PUT, "/login/").empty()).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.header("allow").unwrap().contains("POST"));

    frontend.get("/search?search=x").await;
    let metrics = frontend.get("/metrics").await.text();
    assert!(
        metrics.contains(r#"requests_total{endpoint="/search",method="GET",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"backend_requests_total{backend="thoughts",outcome="2xx"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains("search=x"), "raw paths must not become labels");
}

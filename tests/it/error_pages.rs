//! What the answers strangler makes itself say (issue 20): `[proxy] error_bodies =
//! "minimal"` hides the route and upstream names from clients while the access log and the
//! metrics keep them; `[proxy.error_pages]` serves a file per status with the request id in
//! place, read again on every reload (a page that cannot be read rejects the reload and the
//! old page keeps serving); `detailed` stays the default.

use std::time::Duration;

use http::Request;

use crate::support::binary::{BinaryProxy, ServeOptions, Stderr};
use crate::support::*;

/// A table whose route `users-api` (`/users/`) goes to `users-svc`, where nothing listens.
fn table(proxy_extra: &str, legacy: &Upstream, error_pages: &str) -> String {
    let text = routes_toml_with(
        proxy_extra,
        &[("legacy", &legacy.url(), ""), ("users-svc", &dead_url(), "")],
        "[[routes]]\nname = \"users-api\"\npath = \"/users/\"\nstage = \"new\"\nnew = \"users-svc\"\n",
    );
    format!("{text}\n{error_pages}")
}

/// `GET url` with `x-request-id: id`.
async fn get_with_id(url: &str, id: &str) -> Answer {
    let request = Request::get(url).header("x-request-id", id).body(full("")).unwrap();
    send(&client(), request).await
}

/// Proves: with `error_bodies = "minimal"`, a refused connection to an upstream is a 502
/// whose body is the status line's text and the request id, naming neither the upstream
/// nor the route; the access log line and `strangler_upstream_errors_total` still name them.
#[tokio::test(flavor = "multi_thread")]
async fn minimal_bodies_hide_names_that_the_access_log_and_metrics_keep() {
    let legacy = echo_upstream("legacy").await;
    let options = ServeOptions {
        global_args: &["--log-format", "json"],
        rust_log: "warn,strangler::access=info",
        stderr: Stderr::Lines,
    };
    let mut served = BinaryProxy::start_with(&table("error_bodies = \"minimal\"", &legacy, ""), options).await;

    let answer = get_with_id(&format!("http://{}/users/7", served.addr), "ep-minimal-1").await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.body, "502 Bad Gateway\nrequest id: ep-minimal-1\n");
    assert!(!answer.body.contains("users"), "{}", answer.body);
    assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(answer.headers["x-request-id"], "ep-minimal-1");
    assert!(
        answer
            .headers
            .iter()
            .all(|(_, v)| !v.to_str().unwrap_or("").contains("users")),
        "{:?}",
        answer.headers
    );

    let line = served
        .stderr_until(Duration::from_secs(5), |l| {
            l.contains("ep-minimal-1") && l.contains("\"status\":502")
        })
        .await;
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["route"], "users-api", "{entry}");
    assert_eq!(entry["upstream"], "users-svc", "{entry}");
    let errors = metric(
        &served,
        "strangler_upstream_errors_total{kind=\"connect\",upstream=\"users-svc\"}",
    )
    .await;
    assert_eq!(errors, Some(1.0));

    // Not only upstream failures: a refusal is as terse.
    let answer = get_with_id(&format!("http://{}/a%2Fb", served.addr), "ep-minimal-2").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body, "400 Bad Request\nrequest id: ep-minimal-2\n");
    served.signal("TERM");
    assert_eq!(served.exit_within(Duration::from_secs(10)).await.code(), Some(0));
}

/// Proves: a `[proxy.error_pages]` page is served for its status with its extension's
/// Content-Type and the request id in place of `{request_id}`; a reload after the page is
/// edited serves the new page; a reload that finds the page missing is rejected (at the
/// setting's file:line:col) and the page in force keeps serving; `check` reports it too.
#[tokio::test(flavor = "multi_thread")]
async fn a_custom_page_is_served_and_follows_reloads() {
    let legacy = echo_upstream("legacy").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("errors")).unwrap();
    let page = dir.path().join("errors/502.html");
    std::fs::write(&page, "<h1>Back soon</h1><p>Quote {request_id}</p>\n").unwrap();
    let text = table(
        "error_bodies = \"minimal\"",
        &legacy,
        "[proxy.error_pages]\n\"502\" = \"errors/502.html\"\n",
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, &text).unwrap();
    let proxy = TestProxy::start_at(dir, config.clone()).await;

    let answer = get_with_id(&proxy.url("/users/1"), "ep-page-1").await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(answer.body, "<h1>Back soon</h1><p>Quote ep-page-1</p>\n");
    // Another status keeps the minimal text.
    let answer = get_with_id(&proxy.url("/a%2Fb"), "ep-page-2").await;
    assert_eq!(answer.body, "400 Bad Request\nrequest id: ep-page-2\n");

    std::fs::write(&page, "<h1>Maintenance</h1>{request_id}").unwrap();
    let reload = post(&proxy.admin_url("/admin/reload"), "").await;
    assert_eq!(reload.status, 200, "{}", reload.body);
    let answer = get_with_id(&proxy.url("/users/1"), "ep-page-3").await;
    assert_eq!(answer.body, "<h1>Maintenance</h1>ep-page-3");

    std::fs::remove_file(&page).unwrap();
    let reload = post(&proxy.admin_url("/admin/reload"), "").await;
    assert_eq!(reload.status, 422, "{}", reload.body);
    let errors = reload.json()["errors"].to_string();
    let (line, column) = position_of(&text, "\"errors/502.html\"");
    let at = format!(
        "{}:{line}:{column}: cannot read the error page for 502 Bad Gateway",
        config.display()
    );
    assert!(errors.contains(&at), "{errors}");
    let answer = get_with_id(&proxy.url("/users/1"), "ep-page-4").await;
    assert_eq!(
        answer.body, "<h1>Maintenance</h1>ep-page-4",
        "the old page keeps serving"
    );

    let checked = strangler(&[std::ffi::OsStr::new("check"), config.as_os_str()]).await;
    assert!(!checked.status.success(), "{}", both(&checked));
    assert!(stdout(&checked).contains(&at), "{}", both(&checked));
    proxy.stop().await;
}

/// Proves: without `error_bodies`, answers stay detailed (the upstream and route named,
/// as before issue 20).
#[tokio::test(flavor = "multi_thread")]
async fn detailed_stays_the_default() {
    let legacy = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&table("", &legacy, "")).await;
    let answer = get_with_id(&proxy.url("/users/1"), "ep-detailed-1").await;
    assert_eq!(answer.status, 502);
    assert_eq!(
        answer.body,
        "502 Bad Gateway: upstream `users-svc` (route `users-api`) refused the connection or could not be reached\n"
    );
    proxy.stop().await;
}

//! The admin API in a browser (issue 18, finding 4): a rebound DNS name gets 421 on every
//! endpoint, a name in `[proxy] admin_hosts` is served, and a cross-site `POST` (a "simple"
//! request, no preflight) gets 403 and reloads nothing, while the same `POST` without
//! `Origin`, as command-line clients send it, still reloads.

use http::{Method, Request};

use crate::support::*;

/// `method path` on the admin listener with these extra headers (`Host` among them
/// replaces the one the client would send).
async fn admin_request(proxy: &TestProxy, method: Method, path: &str, headers: &[(&str, String)]) -> Answer {
    let mut request = Request::builder().method(method).uri(proxy.admin_url(path));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    send(&client(), request.body(full("")).unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebound_host_is_421_and_a_listed_name_is_served() {
    let legacy = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&routes_toml_with(
        "admin_hosts = [\"strangler-admin.example\"]",
        &[("legacy", &legacy.url(), "")],
        "",
    ))
    .await;
    let port = proxy.admin.port();

    let rebound = format!("attacker.example:{port}");
    for path in ["/admin/routes", "/metrics", "/", "/healthz"] {
        let answer = admin_request(&proxy, Method::GET, path, &[("host", rebound.clone())]).await;
        assert_eq!(answer.status, 421, "GET {path}: {}", answer.body);
        assert!(
            answer.body.contains(&rebound) && answer.body.contains("admin_hosts"),
            "{}",
            answer.body
        );
    }
    for host in [
        format!("Strangler-Admin.example:{port}"),
        "strangler-admin.example".to_owned(),
        format!("localhost:{port}"),
        proxy.admin.to_string(),
        format!("[::1]:{port}"),
    ] {
        let answer = admin_request(&proxy, Method::GET, "/admin/routes", &[("host", host.clone())]).await;
        assert_eq!(answer.status, 200, "Host: {host}: {}", answer.body);
        assert_eq!(answer.json()["default_upstream"], "legacy");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_site_post_is_403_and_reloads_nothing() {
    let legacy = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;
    let own_host = proxy.admin.to_string();
    let attempts = || proxy.state.subscribe().borrow().attempts;
    let before = attempts();

    for origin in ["http://evil.example", "null"] {
        let answer = admin_request(
            &proxy,
            Method::POST,
            "/admin/reload",
            &[("content-type", "text/plain".to_owned()), ("origin", origin.to_owned())],
        )
        .await;
        assert_eq!(answer.status, 403, "Origin: {origin}: {}", answer.body);
        assert!(answer.body.contains(origin), "{}", answer.body);
    }
    assert_eq!(attempts(), before, "a refused POST reloads nothing");
    assert_eq!(
        metric(&proxy, "strangler_config_reloads_total{result=\"ok\"}").await,
        Some(1.0),
        "only the start's load is counted"
    );

    let own = admin_request(
        &proxy,
        Method::POST,
        "/admin/reload",
        &[("origin", format!("http://{own_host}"))],
    )
    .await;
    assert_eq!(own.status, 200, "the listener's own origin: {}", own.body);
    let cli = admin_request(
        &proxy,
        Method::POST,
        "/admin/reload",
        &[("content-type", "text/plain".to_owned())],
    )
    .await;
    assert_eq!(cli.status, 200, "without Origin: {}", cli.body);
    assert_eq!(cli.json()["result"], "ok", "{}", cli.body);
    assert_eq!(attempts(), before + 2, "both allowed POSTs reloaded");
    proxy.stop().await;
}

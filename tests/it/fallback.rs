//! `fallback = true`: requests the new upstream fails are replayed to legacy.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::support::*;

fn fallback_routes(legacy: &str, new: &str, new_extra: &str, route_extra: &str) -> String {
    routes_toml_with(
        "",
        &[("legacy", legacy, ""), ("thoughts", new, new_extra)],
        &format!(
            "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n{route_extra}\n"
        ),
    )
}

async fn failing_upstream(status: StatusCode) -> Upstream {
    upstream_with(move |_request: Request<Incoming>| async move {
        Response::builder()
            .status(status)
            .body(full("new is broken\n"))
            .unwrap()
    })
    .await
}

fn fallbacks(reason: &str) -> String {
    format!("strangler_fallbacks_total{{reason=\"{reason}\",route=\"thoughts-api\"}}")
}

#[tokio::test]
async fn a_refused_connection_falls_back_for_every_method_with_the_body_replayed() {
    let legacy = echo_upstream("legacy").await;
    let dead = dead_url();
    let proxy = TestProxy::start(&fallback_routes(&legacy.url(), &dead, "", "fallback = true")).await;

    let answer = get(&proxy.url("/api/thoughts/1")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["upstream"], "legacy");

    // Nothing reached the new upstream, so even a POST is safe to replay, body included.
    let answer = post(&proxy.url("/api/thoughts/"), "text=hello").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["upstream"], "legacy");
    assert_eq!(answer.json()["body_len"], 10);

    assert_eq!(metric(&proxy, &fallbacks("connect")).await, Some(2.0));
    let legacy_series =
        "strangler_requests_total{method=\"GET\",route=\"thoughts-api\",status=\"200\",upstream=\"legacy\"}";
    assert_eq!(wait_metric(&proxy, legacy_series, |v| v == Some(1.0)).await, Some(1.0));
    assert_eq!(
        metric(
            &proxy,
            "strangler_upstream_errors_total{kind=\"connect\",upstream=\"thoughts\"}"
        )
        .await,
        Some(2.0)
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_5xx_falls_back_only_for_idempotent_methods() {
    let legacy = echo_upstream("legacy").await;
    let new = failing_upstream(StatusCode::SERVICE_UNAVAILABLE).await;
    let proxy = TestProxy::start(&fallback_routes(&legacy.url(), &new.url(), "", "fallback = true")).await;

    let answer = get(&proxy.url("/api/thoughts/1")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["upstream"], "legacy");
    assert_eq!(metric(&proxy, &fallbacks("status_5xx")).await, Some(1.0));

    // A POST that reached new and failed there must not run twice.
    let answer = post(&proxy.url("/api/thoughts/"), "text=once").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body, "new is broken\n");
    assert_eq!(
        legacy.seen().iter().filter(|s| s.method == http::Method::POST).count(),
        0
    );
    assert_eq!(metric(&proxy, &fallbacks("status_5xx")).await, Some(1.0));
    proxy.stop().await;
}

#[tokio::test]
async fn a_timeout_falls_back_for_a_get() {
    let legacy = echo_upstream("legacy").await;
    let slow = upstream_with(|_request: Request<Incoming>| async {
        std::future::pending::<()>().await;
        Response::new(full("never"))
    })
    .await;
    let proxy = TestProxy::start(&fallback_routes(
        &legacy.url(),
        &slow.url(),
        "request_timeout = \"200ms\"",
        "fallback = true",
    ))
    .await;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), get(&proxy.url("/api/thoughts/1")))
        .await
        .expect("no answer within 5 s");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["upstream"], "legacy");
    assert_eq!(metric(&proxy, &fallbacks("timeout")).await, Some(1.0));
    proxy.stop().await;
}

#[tokio::test]
async fn without_fallback_or_with_an_unbufferable_body_the_failure_shows() {
    let legacy = echo_upstream("legacy").await;
    let dead = dead_url();
    let proxy = TestProxy::start(&fallback_routes(&legacy.url(), &dead, "", "")).await;
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 502);
    proxy.stop().await;

    // A body over the replay limit streams to new and is not replayed.
    let proxy = TestProxy::start(&fallback_routes(
        &legacy.url(),
        &dead,
        "",
        "fallback = true\nfallback_max_body = 16",
    ))
    .await;
    assert_eq!(post(&proxy.url("/api/thoughts/"), "short").await.status, 200);
    assert_eq!(post(&proxy.url("/api/thoughts/"), &"x".repeat(64)).await.status, 502);
    // A chunked body (unknown length) is never buffered for a replay either.
    let raw = raw_response(
        proxy.addr,
        b"POST /api/thoughts/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(raw.status, 502);
    assert_eq!(metric(&proxy, &fallbacks("connect")).await, Some(1.0));
    proxy.stop().await;
}

#[tokio::test]
async fn fallback_settings_are_validated() {
    let legacy = echo_upstream("legacy").await;
    let text = fallback_routes(&legacy.url(), &legacy.url(), "", "fallback_max_body = 10");
    let errors = strangler::table::Table::parse("routes.toml", &text)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("only used with `fallback = true`"), "{errors}");
    let text = routes_toml(
        &[("legacy", &legacy.url())],
        "[[routes]]\nname = \"r\"\npath = \"/x/\"\nfallback = true\n",
    );
    let errors = strangler::table::Table::parse("routes.toml", &text)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("needs a `new` upstream"), "{errors}");
}

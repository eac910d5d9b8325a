//! The basics end to end: a route to the new upstream, the default to legacy.

use crate::support::*;

#[tokio::test]
async fn routes_by_prefix_and_defaults_to_legacy() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
        "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n",
    ))
    .await;

    let answer = get(&proxy.url("/api/thoughts/5?x=1")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["upstream"], "thoughts");
    assert_eq!(answer.json()["path"], "/api/thoughts/5");
    assert_eq!(answer.json()["query"], "x=1");
    assert!(answer.headers.contains_key("x-request-id"));

    let answer = get(&proxy.url("/api/thoughtsX")).await;
    assert_eq!(answer.json()["upstream"], "legacy");

    let answer = get(&proxy.url("//api//thoughts")).await;
    assert_eq!(answer.json()["upstream"], "thoughts");
    assert_eq!(answer.json()["path"], "/api/thoughts");

    let seen = thoughts.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers["x-forwarded-proto"], "http");
    assert_eq!(seen[0].headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen[0].headers["via"], "1.1 strangler");

    assert_eq!(
        metric(
            &proxy,
            "strangler_requests_total{method=\"GET\",route=\"thoughts-api\",status=\"200\",upstream=\"thoughts\"}"
        )
        .await,
        Some(2.0)
    );
    proxy.stop().await;
}

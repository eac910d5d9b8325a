//! Forwarding for real monoliths (issue 20): an upstream URL's base path, a route's
//! `strip_prefix` and `rewrite`, `host = "upstream"`, `request_headers` and
//! `response_headers`, seen by real upstreams that echo what they got; and the same
//! rewrite in a shadow copy, a fallback to legacy, `strangler explain` and
//! `strangler parity`.

use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::support::*;

/// An upstream that echoes the path, query, `Host` and headers it got as JSON and answers
/// with `x-powered-by` and `x-internal` headers (for `response_headers` to remove).
async fn echoing(name: &'static str) -> Upstream {
    upstream_with(move |request: Request<Incoming>| async move {
        let (parts, body) = request.into_parts();
        let _ = body.collect().await;
        let headers: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").into()))
            .collect();
        let json = serde_json::json!({
            "upstream": name,
            "target": parts.uri.path_and_query().map(|pq| pq.as_str()),
            "host": parts.headers.get("host").and_then(|h| h.to_str().ok()),
            "headers": headers,
        });
        Response::builder()
            .header("content-type", "application/json")
            .header("x-powered-by", "ASP.NET")
            .header("x-internal", "node-7")
            .body(full(json.to_string()))
            .unwrap()
    })
    .await
}

/// The targets (path and query) an upstream saw, in order, health checks left out.
fn targets(upstream: &Upstream) -> Vec<String> {
    upstream
        .seen()
        .iter()
        .filter(|seen| {
            seen.headers
                .get("user-agent")
                .is_none_or(|ua| ua != "strangler-health-check")
        })
        .map(|seen| seen.uri.path_and_query().map_or("", |pq| pq.as_str()).to_owned())
        .collect()
}

const ROUTES: &str = r#"
[[routes]]
name = "users"
path = "/api/users/"
stage = "new"
new = "thoughts"
strip_prefix = true
host = "upstream"

[[routes]]
name = "moved"
path = "/old/"
rewrite = "/new-home/"

[[routes]]
name = "items"
path = "/v2/items/{id}"
rewrite = "/items/{id}"
request_headers = { set = { x-api-version = "2" }, remove = ["cookie"] }
response_headers = { set = { x-frame-options = "DENY" }, remove = ["x-powered-by"] }
"#;

#[tokio::test]
async fn base_path_strip_rewrite_and_host_reach_the_upstream() {
    let legacy = echoing("legacy").await;
    let thoughts = echoing("thoughts").await;
    let legacy_url = format!("{}/app/", legacy.url());
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy_url), ("thoughts", &thoughts.url())],
        ROUTES,
    ))
    .await;

    // strip_prefix and host = "upstream" towards `thoughts` (no base path).
    let answer = get(&proxy.url("/api/users/7?x=%2F")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json["upstream"], "thoughts");
    assert_eq!(json["target"], "/7?x=%2F");
    assert_eq!(json["host"], thoughts.addr.to_string(), "the upstream URL's authority");
    assert_eq!(
        json["headers"]["x-forwarded-host"],
        proxy.addr.to_string(),
        "X-Forwarded-Host keeps the client's"
    );
    assert_eq!(get(&proxy.url("/api/users")).await.json()["target"], "/");

    // Legacy's base path, under every route's rewrite; the client's Host by default.
    let json = get(&proxy.url("/old/a/b?q")).await.json();
    assert_eq!(
        (&json["upstream"], &json["target"]),
        (&"legacy".into(), &"/app/new-home/a/b?q".into())
    );
    assert_eq!(json["host"], proxy.addr.to_string());
    let json = get(&proxy.url("/v2/items/42?full=1")).await.json();
    assert_eq!(json["target"], "/app/items/42?full=1");
    let json = get(&proxy.url("/elsewhere/x")).await.json();
    assert_eq!(
        json["target"], "/app/elsewhere/x",
        "no route: the default upstream's base"
    );
    assert_eq!(
        targets(&legacy),
        ["/app/new-home/a/b?q", "/app/items/42?full=1", "/app/elsewhere/x"]
    );
    assert_eq!(targets(&thoughts), ["/7?x=%2F", "/"]);
}

#[tokio::test]
async fn header_edits_apply_to_the_request_and_the_response() {
    let legacy = echoing("legacy").await;
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &legacy.url())],
        ROUTES,
    ))
    .await;
    let request = Request::get(proxy.url("/v2/items/1"))
        .header("cookie", "session=abc")
        .header("x-api-version", "1")
        .body(full(""))
        .unwrap();
    let answer = send(&client(), request).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = &legacy.seen()[0].headers;
    assert_eq!(seen["x-api-version"], "2", "set replaces the client's value");
    assert!(!seen.contains_key("cookie"), "{seen:?}");
    assert!(!answer.headers.contains_key("x-powered-by"), "{:?}", answer.headers);
    assert_eq!(answer.headers["x-frame-options"], "DENY");
    assert_eq!(answer.headers["x-internal"], "node-7", "what is not named stays");

    // Another route: untouched.
    let request = Request::get(proxy.url("/other"))
        .header("cookie", "session=abc")
        .body(full(""))
        .unwrap();
    let answer = send(&client(), request).await;
    assert_eq!(answer.headers["x-powered-by"], "ASP.NET");
    assert_eq!(legacy.seen()[1].headers["cookie"], "session=abc");
}

#[tokio::test]
async fn the_mirror_copy_is_rewritten_like_the_primary() {
    let legacy = echoing("legacy").await;
    let thoughts = echoing("thoughts").await;
    let legacy_url = format!("{}/app", legacy.url());
    let routes = "[[routes]]\nname = \"users\"\npath = \"/api/users/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n\
                  strip_prefix = true\nhost = \"upstream\"\nrequest_headers = { set = { x-tenant = \"t1\" } }\n";
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy_url), ("thoughts", &thoughts.url())],
        routes,
    ))
    .await;
    let answer = get(&proxy.url("/api/users/7?x=1")).await;
    assert_eq!(answer.json()["upstream"], "legacy");
    let copies = poll(
        Duration::from_secs(10),
        || async { thoughts.seen() },
        |seen| !seen.is_empty(),
    )
    .await;
    assert_eq!(copies.len(), 1, "the copy never arrived");
    let copy = &copies[0];
    assert_eq!(
        copy.uri.path_and_query().unwrap().as_str(),
        "/7?x=1",
        "new's own (empty) base"
    );
    assert_eq!(copy.headers["host"], thoughts.addr.to_string(), "new's own authority");
    assert_eq!(copy.headers["x-tenant"], "t1");
    assert_eq!(copy.headers["x-strangler-shadow"], "1");
    let primary = &legacy.seen()[0];
    assert_eq!(primary.uri.path_and_query().unwrap().as_str(), "/app/7?x=1");
    assert_eq!(primary.headers["host"], legacy.addr.to_string());
    assert_eq!(primary.headers["x-tenant"], "t1");
}

#[tokio::test]
async fn a_fallback_reaches_legacy_under_its_base_path() {
    let legacy = echoing("legacy").await;
    let legacy_url = format!("{}/app", legacy.url());
    let routes = "[[routes]]\nname = \"users\"\npath = \"/api/users/\"\nstage = \"new\"\nnew = \"broken\"\n\
                  fallback = true\nrewrite = \"/people/\"\nhost = \"upstream\"\n";
    let dead = format!("{}/svc", dead_url());
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy_url), ("broken", &dead)], routes)).await;
    let answer = get(&proxy.url("/api/users/7")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json["upstream"], "legacy");
    assert_eq!(json["target"], "/app/people/7", "legacy's base, not the new upstream's");
    assert_eq!(json["host"], legacy.addr.to_string());
}

#[tokio::test]
async fn health_checks_go_under_the_base_path() {
    let legacy = echoing("legacy").await;
    let text = routes_toml_with(
        "",
        &[(
            "legacy",
            &format!("{}/app/", legacy.url()),
            "[upstreams.legacy.health]\npath = \"/healthz\"\ninterval = \"100ms\"\n",
        )],
        "",
    );
    let _proxy = TestProxy::start(&text).await;
    let checks = poll(
        Duration::from_secs(10),
        || async { legacy.seen() },
        |seen| !seen.is_empty(),
    )
    .await;
    assert_eq!(
        checks.first().map(|c| c.uri.path().to_owned()).as_deref(),
        Some("/app/healthz")
    );
}

#[tokio::test]
async fn explain_shows_what_each_upstream_receives() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    let text = routes_toml(
        &[
            ("legacy", "http://127.0.0.1:9001/app"),
            ("thoughts", "http://thoughts.internal:8080"),
        ],
        ROUTES,
    );
    std::fs::write(&config, text).unwrap();
    let config = config.display().to_string();
    let output = strangler(&["explain", "--config", &config, "GET", "/api/users/7?x=1"]).await;
    let text = stdout(&output);
    assert!(
        text.contains("new `thoughts` receives: GET /7?x=1, Host `thoughts.internal:8080`"),
        "{}",
        both(&output)
    );
    let output = strangler(&["explain", "--config", &config, "--json", "GET", "/v2/items/9"]).await;
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["forwarded"][0]["target"], "/app/items/9", "{json:#}");
    assert_eq!(json["forwarded"][0]["host"], serde_json::Value::Null);
    assert_eq!(
        json["request_headers"]["set"][0],
        serde_json::json!(["x-api-version", "2"])
    );
    assert_eq!(json["response_headers"]["remove"][0], "x-powered-by");
}

#[tokio::test(flavor = "multi_thread")]
async fn parity_replays_with_the_routes_rewrite_and_each_sides_base() {
    let legacy = echoing("legacy").await;
    let thoughts = echoing("thoughts").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    let routes = "[[routes]]\nname = \"users\"\npath = \"/api/users/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n\
                  strip_prefix = true\nrequest_headers = { set = { x-tenant = \"t1\" } }\n";
    let legacy_url = format!("{}/app", legacy.url());
    std::fs::write(
        &config,
        routes_toml(&[("legacy", &legacy_url), ("thoughts", &thoughts.url())], routes),
    )
    .unwrap();
    let corpus = dir.path().join("corpus.jsonl");
    std::fs::write(&corpus, "{\"method\": \"GET\", \"path\": \"/api/users/7?x=1\"}\n").unwrap();
    let (config, corpus) = (config.display().to_string(), corpus.display().to_string());
    let output = strangler(&["parity", "--config", &config, "--requests", &corpus]).await;
    // The two echo different names and targets: a mismatch, but both were asked.
    assert!(output.status.code().is_some(), "{}", both(&output));
    assert_eq!(targets(&legacy), ["/app/7?x=1"], "{}", both(&output));
    assert_eq!(targets(&thoughts), ["/7?x=1"], "{}", both(&output));
    assert_eq!(legacy.seen()[0].headers["x-tenant"], "t1");
    assert_eq!(thoughts.seen()[0].headers["x-tenant"], "t1");
}

/// `response_headers` edit the new answer of a shadow comparison as they edit the client's:
/// a header removed from what the client gets is not a difference.
#[tokio::test]
async fn a_shadow_comparison_sees_both_answers_edited_alike() {
    let legacy = echoing("legacy").await;
    let thoughts = echoing("thoughts").await;
    let routes = "[[routes]]\nname = \"users\"\npath = \"/api/users/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n\
                  compare = { ignore = [\"/upstream\", \"/target\", \"/host\", \"/headers\"], headers = [\"x-powered-by\", \"x-internal\"] }\n\
                  response_headers = { remove = [\"x-powered-by\"], set = { x-internal = \"hidden\" } }\n";
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
        routes,
    ))
    .await;
    let answer = get(&proxy.url("/api/users/1")).await;
    assert_eq!(answer.headers["x-internal"], "hidden");
    let parity = parity_when(proxy.admin, "users", 1).await;
    let route = &parity["routes"]["users"];
    assert_eq!(route["match"], 1, "{parity:#}");
    assert_eq!(route["mismatch"], 0, "{parity:#}");
}

//! The admin API: health, readiness, metrics, the routes view, method and path handling,
//! and that none of it is reachable through the public listener.

use std::time::{Duration, SystemTime};

use http::{Method, Request};

use crate::support::*;

const CONTRACT_METRICS: [&str; 6] = [
    "strangler_requests_total",
    "strangler_request_duration_seconds",
    "strangler_upstream_errors_total",
    "strangler_config_reloads_total",
    "strangler_config_info",
    "strangler_inflight_requests",
];

async fn request(method: Method, url: &str) -> Answer {
    send(
        &client(),
        Request::builder().method(method).uri(url).body(full("")).unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_contract_metrics() {
    let legacy = echo_upstream("legacy").await;
    let dead = dead_url();
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy.url()), ("dead", &dead)],
        "[[routes]]\nname = \"gone\"\npath = \"/gone/\"\nlegacy = \"dead\"\n",
    ))
    .await;

    let answer = get(&proxy.admin_url("/healthz")).await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "ok\n"));
    let answer = get(&proxy.admin_url("/readyz")).await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "ready\n"));

    assert_eq!(get(&proxy.url("/hello")).await.status, 200);
    let failed = get(&proxy.url("/gone/x")).await;
    assert_eq!(failed.status, 502, "{}", failed.body);

    let answer = get(&proxy.admin_url("/metrics")).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        answer.headers
    );
    let text = answer.body;
    for name in CONTRACT_METRICS {
        assert!(text.contains(&format!("# TYPE {name} ")), "missing {name} in\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            "strangler_requests_total{method=\"GET\",route=\"default\",status=\"200\",upstream=\"legacy\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "strangler_requests_total{method=\"GET\",route=\"gone\",status=\"502\",upstream=\"dead\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "strangler_upstream_errors_total{kind=\"connect\",upstream=\"dead\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "strangler_request_duration_seconds_count{route=\"default\",upstream=\"legacy\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "strangler_config_reloads_total{result=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "strangler_config_reloads_total{result=\"error\"}"),
        Some(0.0)
    );
    assert!(sample(&text, "strangler_inflight_requests").is_some(), "{text}");

    let version = get(&proxy.admin_url("/admin/routes")).await.json()["version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(version, proxy.version());
    assert_eq!(
        sample(&text, &format!("strangler_config_info{{version=\"{version}\"}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("strangler_config_info{")).count(),
        1,
        "{text}"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_view_has_the_documented_shape() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let routes = "[[routes]]\nname = \"api\"\npath = \"/api/\"\n\n\
                  [[routes]]\nname = \"login\"\nexact = \"/api/login/\"\nmethods = [\"POST\"]\n\n\
                  [[routes]]\nname = \"thought\"\npath = \"/api/thoughts/{id}\"\nmethods = [\"GET\", \"HEAD\"]\n\
                  stage = \"new\"\nnew = \"thoughts\"\n";
    let text = routes_toml(&[("legacy", &legacy.url()), ("thoughts", &thoughts.url())], routes);
    let before = SystemTime::now() - Duration::from_secs(2);
    let proxy = TestProxy::start(&text).await;
    let after = SystemTime::now() + Duration::from_secs(2);

    let answer = get(&proxy.admin_url("/admin/routes")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], "application/json");
    let json = answer.json();
    assert_eq!(json["version"], strangler::config::version_of(&text).as_str(), "{json}");
    let loaded_at = json["loaded_at"].as_str().unwrap_or_default();
    let loaded_at = humantime::parse_rfc3339(loaded_at).unwrap_or_else(|e| panic!("loaded_at `{loaded_at}`: {e}"));
    assert!(before <= loaded_at && loaded_at <= after, "{json}");
    assert_eq!(json["source"], proxy.config.display().to_string().as_str(), "{json}");
    assert_eq!(json["last_error"], serde_json::Value::Null, "{json}");

    let expected = serde_json::json!([
        {"name": "api", "kind": "prefix", "path": "/api/", "methods": null,
         "stage": "legacy", "legacy": "legacy", "new": null},
        {"name": "login", "kind": "exact", "path": "/api/login/", "methods": ["POST"],
         "stage": "legacy", "legacy": "legacy", "new": null},
        {"name": "thought", "kind": "template", "path": "/api/thoughts/{id}", "methods": ["GET", "HEAD"],
         "stage": "new", "legacy": "legacy", "new": "thoughts"},
    ]);
    assert_eq!(json["routes"], expected, "{json}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_is_405_with_allow_and_unknown_path_is_404() {
    let legacy = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;

    for (method, path) in [
        (Method::POST, "/healthz"),
        (Method::DELETE, "/readyz"),
        (Method::PUT, "/metrics"),
        (Method::POST, "/admin/routes"),
        (Method::GET, "/admin/reload"),
        (Method::DELETE, "/admin/reload"),
        (Method::POST, "/"),
        (Method::PUT, "/admin/traffic"),
    ] {
        let answer = request(method.clone(), &proxy.admin_url(path)).await;
        assert_eq!(answer.status, 405, "{method} {path}");
        let allow = answer
            .headers
            .get("allow")
            .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"))
            .to_str()
            .unwrap()
            .to_owned();
        let allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
        assert!(!allowed.contains(&method.as_str()), "{method} {path}: Allow: {allow}");
        // Every method the Allow header names is accepted.
        for other in allowed {
            let other = Method::from_bytes(other.as_bytes()).unwrap();
            if other == Method::POST {
                continue; // a reload; covered in reload.rs
            }
            let answer = request(other.clone(), &proxy.admin_url(path)).await;
            assert_eq!(answer.status, 200, "{other} {path} (from Allow: {allow})");
        }
    }
    assert_eq!(get(&proxy.admin_url("/admin/routes")).await.headers.get("allow"), None);

    for path in ["/nope", "/admin", "/admin/routes/", "/healthz/x", "/metrics.json"] {
        let answer = get(&proxy.admin_url(path)).await;
        assert_eq!(answer.status, 404, "GET {path}: {}", answer.body);
    }
    assert_eq!(legacy.seen().len(), 0, "admin requests never reach an upstream");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_endpoints_are_not_served_on_the_public_listener() {
    let legacy = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;

    for path in ["/admin/routes", "/metrics", "/healthz", "/readyz"] {
        let answer = get(&proxy.url(path)).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.json()["upstream"], "legacy", "{path}: {}", answer.body);
        assert_eq!(answer.json()["path"], path);
    }
    let answer = post(&proxy.url("/admin/reload"), "").await;
    assert_eq!(answer.json()["upstream"], "legacy", "{}", answer.body);
    assert_eq!(answer.json()["method"], "POST");
    assert_eq!(proxy.state.subscribe().borrow().attempts, 1, "no reload happened");
    assert_eq!(
        metric(&proxy, "strangler_config_reloads_total{result=\"ok\"}").await,
        Some(1.0)
    );
    let seen = legacy.seen();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[4].method, Method::POST);
    assert_eq!(seen[4].uri.path(), "/admin/reload");
    proxy.stop().await;
}

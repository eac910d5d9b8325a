//! `[record]`: sampled real traffic written as a parity corpus, secrets redacted.

use std::time::Duration;

use http::Request;

use crate::support::*;

#[tokio::test]
async fn sampled_requests_become_corpus_lines_with_secrets_redacted() {
    let legacy = echo_upstream("legacy").await;
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "{}\n[record]\npath = \"traffic.jsonl\"\nsample = 1.0\nredact_headers = [\"x-api-key\"]\n",
        routes_toml(&[("legacy", &legacy.url())], "")
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let proxy = TestProxy::start_at(dir, config).await;

    for i in 0..3 {
        let request = Request::get(proxy.url(&format!("/api/thoughts/?search=x{i}")))
            .header("authorization", "Bearer top-secret")
            .header("x-api-key", "also-secret")
            .header("accept", "application/json")
            .body(full(""))
            .unwrap();
        assert_eq!(send(&client(), request).await.status, 200);
    }
    // A request with a body is not recorded (its body is streamed, never held).
    assert_eq!(post(&proxy.url("/api/thoughts/"), "text=hi").await.status, 200);

    let recorded = "strangler_recorded_requests_total{result=\"recorded\"}";
    assert_eq!(wait_metric(&proxy, recorded, |v| v == Some(3.0)).await, Some(3.0));
    assert_eq!(
        metric(&proxy, "strangler_recorded_requests_total{result=\"skipped\"}").await,
        Some(1.0)
    );
    let path = proxy.dir.path().join("traffic.jsonl");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    let text = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= 3 || tokio::time::Instant::now() >= deadline {
            break text;
        }
        backoff.pause().await;
    };
    assert!(!text.contains("secret"), "{text}");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["method"], "GET");
    assert_eq!(lines[0]["path"], "/api/thoughts/?search=x0");
    assert_eq!(lines[0]["headers"]["authorization"], "[redacted]");
    assert_eq!(lines[0]["headers"]["x-api-key"], "[redacted]");
    assert_eq!(lines[0]["headers"]["accept"], "application/json");
    proxy.stop().await;
}

#[tokio::test]
async fn record_settings_are_validated() {
    for (record, what) in [
        ("path = \"t.jsonl\"\nsample = 3.0", "`record.sample`"),
        ("path = \"t.jsonl\"\nmax_bytes = 10", "`record.max_bytes`"),
        ("sample = 1.0", "path"),
        (
            "path = \"t.jsonl\"\nredact_headers = [\"bad header\"]",
            "bad header name",
        ),
    ] {
        let text = format!(
            "{}\n[record]\n{record}\n",
            routes_toml(&[("legacy", "http://127.0.0.1:1")], "")
        );
        let errors = strangler::table::Table::parse("routes.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(errors.contains(what), "{record}: {errors}");
    }
}

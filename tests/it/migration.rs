//! The whole walk: a route goes legacy → shadow → canary → new and back with
//! `strangler flip`, evidence first, while clients keep running without a single failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::support::*;

/// Both sides answer the same JSON for the same path, so shadow evidence is all "match".
async fn thoughts_upstream() -> Upstream {
    upstream_with(|request: Request<Incoming>| async move {
        let body = format!(
            "{{\"path\": \"{}\", \"text\": \"same everywhere\"}}",
            request.uri().path()
        );
        Response::builder()
            .header("content-type", "application/json")
            .body(full(body))
            .unwrap()
    })
    .await
}

async fn flip(config: &std::path::Path, admin: std::net::SocketAddr, args: &[&str]) -> (bool, String) {
    let admin = format!("http://{admin}");
    let config = config.to_str().unwrap();
    let mut all = vec!["flip", "--config", config, "--admin", admin.as_str()];
    all.extend_from_slice(args);
    let output = strangler(&all).await;
    let text = stdout(&output) + &stderr(&output);
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_to_shadow_to_canary_to_new_and_back_without_a_failure() {
    let legacy = thoughts_upstream().await;
    let new = thoughts_upstream().await;
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &new.url())],
        "# the route being migrated\n[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\n\
         stage = \"legacy\"   # where it stands\nnew = \"thoughts\"\n",
    ))
    .await;

    // Clients run through the whole walk; every answer must be a 200 with the same body.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for worker in 0..3 {
        let (stop, failures, answered) = (stop.clone(), failures.clone(), answered.clone());
        let url = proxy.url(&format!("/api/thoughts/{worker}"));
        clients.push(tokio::spawn(async move {
            let client = client();
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let request = Request::get(&url).body(full("")).unwrap();
                let answer = tokio::time::timeout(Duration::from_secs(10), send(&client, request)).await;
                match answer {
                    Ok(answer) if answer.status == 200 && answer.body.contains("same everywhere") => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let config = proxy.config.clone();
    let wait_for_file = |proxy: &TestProxy| {
        let text = std::fs::read_to_string(&proxy.config).unwrap();
        strangler::config::version_of(&text)
    };

    // 1. Canary straight from legacy is refused: there is no evidence yet.
    let (ok, text) = flip(
        &config,
        proxy.admin,
        &["thoughts-api", "canary", "--percent", "10", "--min-requests", "50"],
    )
    .await;
    assert!(!ok, "a forward flip without evidence must be refused:\n{text}");

    // 2. Shadow needs no evidence; it collects it.
    let (ok, text) = flip(&config, proxy.admin, &["thoughts-api", "shadow"]).await;
    assert!(ok, "{text}");
    proxy.wait_for_version(&wait_for_file(&proxy)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut backoff = Backoff::default();
    loop {
        let parity = get(&proxy.admin_url("/admin/parity")).await.json();
        if parity["routes"]["thoughts-api"]["match"].as_u64().unwrap_or(0) >= 50 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no shadow evidence: {parity}");
        backoff.pause().await;
    }

    // 3. Now the evidence allows a canary, then new.
    let (ok, text) = flip(
        &config,
        proxy.admin,
        &["thoughts-api", "canary", "--percent", "25", "--min-requests", "50"],
    )
    .await;
    assert!(ok, "{text}");
    proxy.wait_for_version(&wait_for_file(&proxy)).await;
    wait_metric(
        &proxy,
        "strangler_canary_requests_total{route=\"thoughts-api\",side=\"new\"}",
        |v| v.unwrap_or(0.0) >= 5.0,
    )
    .await;
    let (ok, text) = flip(&config, proxy.admin, &["thoughts-api", "new", "--min-requests", "50"]).await;
    assert!(ok, "{text}");
    proxy.wait_for_version(&wait_for_file(&proxy)).await;
    let before = new.seen().len();
    wait_metric(
        &proxy,
        "strangler_requests_total{method=\"GET\",route=\"thoughts-api\",status=\"200\",upstream=\"thoughts\"}",
        |v| v.unwrap_or(0.0) >= (before + 20) as f64,
    )
    .await;

    // 4. Rollback is never blocked.
    let (ok, text) = flip(&config, proxy.admin, &["thoughts-api", "legacy"]).await;
    assert!(ok, "{text}");
    proxy.wait_for_version(&wait_for_file(&proxy)).await;

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "clients saw failures during the walk"
    );
    assert!(answered.load(Ordering::Relaxed) > 100);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("# the route being migrated"),
        "comments survive every flip:\n{text}"
    );
    assert!(text.contains("stage = \"legacy\""), "{text}");
    proxy.stop().await;
}

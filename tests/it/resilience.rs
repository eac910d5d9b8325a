//! Health checks, outlier ejection, half-open recovery, the retry budget and readiness, over
//! real sockets. Each test says what it proves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::support::*;

/// An upstream that answers 200 `{"upstream": name}` while `broken` is false, and
/// `status` otherwise; `/healthz` follows the same switch.
async fn switchable(name: &'static str, broken: Arc<AtomicBool>, status: StatusCode) -> Upstream {
    upstream_with(move |_request: Request<Incoming>| {
        let broken = broken.load(Ordering::SeqCst);
        async move {
            let status = if broken { status } else { StatusCode::OK };
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(full(serde_json::json!({ "upstream": name }).to_string()))
                .unwrap()
        }
    })
    .await
}

fn new_route(new_extra: &str, route_extra: &str, legacy: &str, new: &str) -> String {
    routes_toml_with(
        "",
        &[("legacy", legacy, ""), ("thoughts", new, new_extra)],
        &format!(
            "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n{route_extra}\n"
        ),
    )
}

/// Proves: N failures in a row eject the upstream; then requests fail fast with a 503 that
/// names the route and upstream, and the upstream sees none of them.
#[tokio::test]
async fn consecutive_5xx_eject_the_upstream_and_requests_fail_fast_with_503() {
    let legacy = echo_upstream("legacy").await;
    let broken = Arc::new(AtomicBool::new(true));
    let new = switchable("thoughts", broken, StatusCode::INTERNAL_SERVER_ERROR).await;
    let outlier = "[upstreams.thoughts.outlier]\nconsecutive_failures = 3\nbase_ejection = \"1h\"\n";
    let proxy = TestProxy::start(&new_route(outlier, "", &legacy.url(), &new.url())).await;

    for _ in 0..3 {
        assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 500);
    }
    let started = Instant::now();
    let answer = get(&proxy.url("/api/thoughts/1")).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(answer.body.contains("`thoughts`"), "{}", answer.body);
    assert!(answer.body.contains("`thoughts-api`"), "{}", answer.body);
    assert!(answer.body.contains("ejected"), "{}", answer.body);
    assert!(started.elapsed() < Duration::from_secs(1), "fail fast");
    assert_eq!(new.seen().len(), 3, "the ejected upstream must see nothing more");

    assert_eq!(
        metric(&proxy, "strangler_upstream_ejected{upstream=\"thoughts\"}").await,
        Some(1.0)
    );
    assert_eq!(
        metric(&proxy, "strangler_upstream_ejected{upstream=\"legacy\"}").await,
        Some(0.0)
    );
    assert_eq!(
        metric(
            &proxy,
            "strangler_rejected_requests_total{reason=\"upstream_unavailable\"}"
        )
        .await,
        Some(1.0)
    );
    let json = admin_json(&proxy, "/admin/upstreams").await;
    let thoughts = upstream_entry(&json, "thoughts");
    assert_eq!(thoughts["ejected"], true, "{json}");
    assert!(thoughts["ejected_until"].is_string(), "{json}");
    assert_eq!(thoughts["health"]["checked"], false, "{json}");
    assert_eq!(upstream_entry(&json, "legacy")["ejected"], false, "{json}");
    proxy.stop().await;
}

/// Proves: with `fallback = true`, an ejected new upstream sends every request straight to
/// legacy — any method, and a streamed (chunked) body too, since nothing is buffered.
#[tokio::test]
async fn with_fallback_an_ejected_new_upstream_sends_everything_to_legacy() {
    let legacy = echo_upstream("legacy").await;
    let new = switchable(
        "thoughts",
        Arc::new(AtomicBool::new(true)),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    let outlier = "[upstreams.thoughts.outlier]\nconsecutive_failures = 2\nbase_ejection = \"1h\"\n";
    let proxy = TestProxy::start(&new_route(outlier, "fallback = true", &legacy.url(), &new.url())).await;

    // Two 503s (each replayed to legacy) eject the new upstream.
    for _ in 0..2 {
        let answer = get(&proxy.url("/api/thoughts/1")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(new.seen().len(), 2);
    let client = client();
    for _ in 0..5 {
        let answer = send(
            &client,
            Request::post(proxy.url("/api/thoughts/"))
                .body(generated_body(300_000))
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["upstream"], "legacy");
        assert_eq!(answer.json()["body_len"], 300_000);
    }
    assert_eq!(new.seen().len(), 2, "nothing more reached the ejected upstream");
    assert_eq!(
        metric(
            &proxy,
            "strangler_fallbacks_total{reason=\"unavailable\",route=\"thoughts-api\"}"
        )
        .await,
        Some(5.0)
    );
    proxy.stop().await;
}

/// Proves: when the ejection runs out, one request probes (half-open); a healthy answer
/// brings the upstream back, with the gauge back to 0.
#[tokio::test]
async fn a_half_open_probe_brings_a_recovered_upstream_back() {
    let legacy = echo_upstream("legacy").await;
    let broken = Arc::new(AtomicBool::new(true));
    let new = switchable("thoughts", broken.clone(), StatusCode::BAD_GATEWAY).await;
    let outlier = "[upstreams.thoughts.outlier]\nconsecutive_failures = 2\nbase_ejection = \"300ms\"\n";
    let proxy = TestProxy::start(&new_route(outlier, "", &legacy.url(), &new.url())).await;

    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 502);
    // Taken before the failure that ejects: the ejection starts after this instant, so
    // the time until the upstream is back, measured from here, is at least the ejection
    // however slowly the machine runs.
    let before_ejection = Instant::now();
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 502);
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 503);
    broken.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    let back = loop {
        let answer = get(&proxy.url("/api/thoughts/1")).await;
        if answer.status == 200 {
            break before_ejection.elapsed();
        }
        assert_eq!(
            answer.status, 503,
            "only fail-fast answers while ejected: {}",
            answer.body
        );
        assert!(Instant::now() < deadline, "not back within 5 s");
        backoff.pause().await;
    };
    println!(
        "figure: ejected upstream recovers (base_ejection 300ms): back in service {} ms after it recovered (one half-open probe)",
        back.as_millis()
    );
    assert!(
        back >= Duration::from_millis(300),
        "came back before the 300 ms ejection ran out: {back:?}"
    );
    assert_eq!(
        metric(&proxy, "strangler_upstream_ejected{upstream=\"thoughts\"}").await,
        Some(0.0)
    );
    assert_eq!(
        upstream_entry(&admin_json(&proxy, "/admin/upstreams").await, "thoughts")["ejected"],
        false
    );
    proxy.stop().await;
}

/// Proves: an active health check that fails takes the upstream out of service (503, no
/// request reaches it), is visible on the admin API and in the gauge, and brings it back
/// after `healthy_threshold` passes.
#[tokio::test]
async fn a_failing_health_check_takes_the_upstream_out_and_back_in() {
    let legacy = echo_upstream("legacy").await;
    let broken = Arc::new(AtomicBool::new(false));
    let new = switchable("thoughts", broken.clone(), StatusCode::INTERNAL_SERVER_ERROR).await;
    let health = "[upstreams.thoughts.health]\npath = \"/healthz\"\ninterval = \"50ms\"\ntimeout = \"500ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 2\n";
    let proxy = TestProxy::start(&new_route(health, "", &legacy.url(), &new.url())).await;

    let healthy = "strangler_upstream_healthy{upstream=\"thoughts\"}";
    assert_eq!(wait_metric(&proxy, healthy, |v| v == Some(1.0)).await, Some(1.0));
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 200);

    broken.store(true, Ordering::SeqCst);
    assert_eq!(wait_metric(&proxy, healthy, |v| v == Some(0.0)).await, Some(0.0));
    let traffic_before = new.seen().iter().filter(|s| s.uri.path() != "/healthz").count();
    let answer = get(&proxy.url("/api/thoughts/1")).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(answer.body.contains("health check"), "{}", answer.body);
    let traffic_after = new.seen().iter().filter(|s| s.uri.path() != "/healthz").count();
    assert_eq!(traffic_before, traffic_after, "an unhealthy upstream gets no traffic");
    let json = admin_json(&proxy, "/admin/upstreams").await;
    let thoughts = upstream_entry(&json, "thoughts");
    assert_eq!(thoughts["health"]["checked"], true, "{json}");
    assert_eq!(thoughts["health"]["healthy"], false, "{json}");
    assert!(
        thoughts["health"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{json}"
    );
    assert!(thoughts["health"]["last_check"].is_string(), "{json}");
    let checks = new.seen();
    let check = checks.iter().find(|s| s.uri.path() == "/healthz").unwrap();
    assert_eq!(check.method, http::Method::GET);
    assert_eq!(check.headers["user-agent"], "strangler-health-check");

    broken.store(false, Ordering::SeqCst);
    assert_eq!(wait_metric(&proxy, healthy, |v| v == Some(1.0)).await, Some(1.0));
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 200);
    proxy.stop().await;
}

/// Proves: health belongs to the address it measured. Pointing a healthy upstream at an
/// address where nothing listens does not carry its verdict over: the gauge loses the old
/// verdict with the reload and says unhealthy once the new address fails its checks, and
/// pointing it back starts from unknown again.
#[tokio::test]
async fn a_changed_address_does_not_inherit_the_old_health() {
    let legacy = echo_upstream("legacy").await;
    let new = echo_upstream("thoughts").await;
    let health = "[upstreams.thoughts.health]\npath = \"/healthz\"\ninterval = \"50ms\"\ntimeout = \"500ms\"\nhealthy_threshold = 1\nunhealthy_threshold = 2\n";
    let proxy = TestProxy::start(&new_route(health, "", &legacy.url(), &new.url())).await;
    let healthy = "strangler_upstream_healthy{upstream=\"thoughts\"}";
    assert_eq!(wait_metric(&proxy, healthy, |v| v == Some(1.0)).await, Some(1.0));

    let moved = new_route(health, "", &legacy.url(), &dead_url());
    proxy.write_config(&moved);
    proxy
        .wait_for(|s| s.version == strangler::config::version_of(&moved))
        .await;
    // Read right after the swap: the old address's verdict is gone (no series until the
    // new address's first verdict), never still 1.
    assert_ne!(
        metric(&proxy, healthy).await,
        Some(1.0),
        "the old address's verdict carried over"
    );
    assert_eq!(wait_metric(&proxy, healthy, |v| v == Some(0.0)).await, Some(0.0));
    let json = admin_json(&proxy, "/admin/upstreams").await;
    assert_eq!(upstream_entry(&json, "thoughts")["health"]["healthy"], false, "{json}");

    let back = new_route(health, "", &legacy.url(), &new.url());
    proxy.write_config(&back);
    assert_eq!(wait_metric(&proxy, healthy, |v| v == Some(1.0)).await, Some(1.0));
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 200);
    proxy.stop().await;
}

/// Proves: /readyz fails while the default upstream fails its health check, and the setting
/// `ready_requires_healthy_default = false` turns that off.
#[tokio::test]
async fn readyz_follows_the_default_upstreams_health_check() {
    let broken = Arc::new(AtomicBool::new(true));
    let legacy = switchable("legacy", broken.clone(), StatusCode::SERVICE_UNAVAILABLE).await;
    let health = "[upstreams.legacy.health]\npath = \"/healthz\"\ninterval = \"50ms\"\nhealthy_threshold = 1\nunhealthy_threshold = 1\n";
    let text = routes_toml_with("", &[("legacy", &legacy.url(), health)], "");
    let proxy = TestProxy::start(&text).await;
    let healthy = "strangler_upstream_healthy{upstream=\"legacy\"}";
    assert_eq!(wait_metric(&proxy, healthy, |v| v == Some(0.0)).await, Some(0.0));
    assert_eq!(get(&proxy.admin_url("/readyz")).await.status, 503);
    assert_eq!(
        get(&proxy.admin_url("/healthz")).await.status,
        200,
        "liveness is not readiness"
    );
    broken.store(false, Ordering::SeqCst);
    assert_eq!(wait_metric(&proxy, healthy, |v| v == Some(1.0)).await, Some(1.0));
    assert_eq!(get(&proxy.admin_url("/readyz")).await.status, 200);

    // Turned off: ready whatever the check says.
    broken.store(true, Ordering::SeqCst);
    let relaxed = routes_toml_with(
        "ready_requires_healthy_default = false",
        &[("legacy", &legacy.url(), health)],
        "",
    );
    proxy.write_config(&relaxed);
    proxy.wait_for_version(&strangler::config::version_of(&relaxed)).await;
    assert_eq!(wait_metric(&proxy, healthy, |v| v == Some(0.0)).await, Some(0.0));
    assert_eq!(get(&proxy.admin_url("/readyz")).await.status, 200);
    proxy.stop().await;
}

/// Proves: refused connects are retried, but never beyond the budget (20 % of the traffic
/// plus a burst of 10), so retries cannot multiply an outage.
#[tokio::test]
async fn retries_of_refused_connects_stay_within_the_budget() {
    let dead = dead_url();
    let outlier = "[upstreams.legacy.outlier]\nenabled = false\n";
    let text = routes_toml_with("", &[("legacy", &dead, outlier)], "");
    let proxy = TestProxy::start(&text).await;
    let client = client();
    let requests = 100;
    for _ in 0..requests {
        let answer = send(&client, Request::get(proxy.url("/x")).body(full("")).unwrap()).await;
        assert_eq!(answer.status, 502, "{}", answer.body);
    }
    let retries = metric(&proxy, "strangler_retries_total{upstream=\"legacy\"}")
        .await
        .unwrap_or(0.0);
    println!(
        "figure: retry budget, {requests} requests to a dead upstream: {retries} retries (budget 20 % + a burst of 10)"
    );
    assert!(retries >= 10.0, "the burst allows retries: {retries}");
    assert!(
        retries <= 10.0 + 0.2 * f64::from(requests) + 1.0,
        "over budget: {retries}"
    );
    assert_eq!(
        metric(
            &proxy,
            "strangler_upstream_errors_total{kind=\"connect\",upstream=\"legacy\"}"
        )
        .await,
        Some(f64::from(requests)),
        "one error per request, whatever the retries"
    );
    proxy.stop().await;
}

/// Proves: outlier and health settings are validated with file:line:col.
#[test]
fn bad_resilience_settings_are_rejected_with_their_position() {
    let text = routes_toml_with(
        "",
        &[(
            "legacy",
            "http://127.0.0.1:1",
            "retry_budget = 2.0\n[upstreams.legacy.health]\npath = \"healthz\"\nunhealthy_threshold = 0\n[upstreams.legacy.outlier]\nbase_ejection = \"1m\"\nmax_ejection = \"10s\"\n",
        )],
        "",
    );
    let errors = strangler::table::Table::parse("routes.toml", &text)
        .expect_err("must be rejected")
        .to_string();
    for (needle, message) in [
        ("2.0", "retry_budget"),
        ("\"healthz\"", "health.path"),
        ("= 0", "unhealthy_threshold"),
        ("\"10s\"", "max_ejection"),
    ] {
        let (line, col) = position_of(&text, needle);
        let col = if needle.starts_with('=') { col + 2 } else { col };
        assert!(
            errors.contains(&format!("routes.toml:{line}:{col}:")) && errors.contains(message),
            "expected {message} at {line}:{col} in:\n{errors}"
        );
    }
}

/// An upstream whose answers wait until `gate` opens; counts the connections it accepted.
async fn gated_upstream(gate: tokio::sync::watch::Receiver<bool>) -> Upstream {
    upstream_with(move |_request: Request<Incoming>| {
        let mut gate = gate.clone();
        async move {
            let _ = gate.wait_for(|open| *open).await;
            Response::new(full("done\n"))
        }
    })
    .await
}

/// Proves: `max_connections` on an upstream bounds the connections the proxy opens to it,
/// over all workers; the requests beyond it wait for a free connection and then succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_max_connections_bounds_the_connections_opened() {
    let (gate, gate_rx) = tokio::sync::watch::channel(false);
    let legacy = gated_upstream(gate_rx).await;
    let accepted = legacy.connections.clone();
    let text = routes_toml_with(
        "",
        &[(
            "legacy",
            &legacy.url(),
            "max_connections = 3\nconnect_timeout = \"10s\"\n",
        )],
        "",
    );
    let proxy = TestProxy::start(&text).await;
    let requests: Vec<_> = (0..10)
        .map(|i| {
            let url = proxy.url(&format!("/r{i}"));
            tokio::spawn(async move { get(&url).await.status })
        })
        .collect();
    // All ten are inside the proxy; three reached the upstream, seven wait for a connection.
    assert_eq!(
        wait_metric(&proxy, "strangler_inflight_requests", |v| v == Some(10.0)).await,
        Some(10.0)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    while legacy.seen().len() < 3 {
        assert!(Instant::now() < deadline, "three requests should reach the upstream");
        backoff.pause().await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "max_connections = 3");
    assert_eq!(legacy.seen().len(), 3);
    gate.send_replace(true);
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    let opened = accepted.load(Ordering::SeqCst);
    println!("figure: upstream max_connections = 3: 10 concurrent requests, {opened} connections opened, 10 × 200");
    assert!(opened <= 3, "{opened} connections for max_connections = 3");
    proxy.stop().await;
}

/// Proves: a request that waits longer than `connect_timeout` for a connection under the
/// upstream's `max_connections` gets a 503 that says so, without being sent.
#[tokio::test]
async fn a_saturated_upstream_answers_503_after_connect_timeout() {
    let (gate, gate_rx) = tokio::sync::watch::channel(false);
    let legacy = gated_upstream(gate_rx).await;
    let text = routes_toml_with(
        "",
        &[(
            "legacy",
            &legacy.url(),
            "max_connections = 1\nconnect_timeout = \"200ms\"\n",
        )],
        "",
    );
    let proxy = TestProxy::start(&text).await;
    let first = tokio::spawn({
        let url = proxy.url("/first");
        async move { get(&url).await.status }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    while legacy.seen().is_empty() {
        assert!(Instant::now() < deadline, "the first request should reach the upstream");
        backoff.pause().await;
    }
    let second = get(&proxy.url("/second")).await;
    assert_eq!(second.status, 503, "{}", second.body);
    assert!(second.body.contains("max_connections"), "{}", second.body);
    assert_eq!(legacy.seen().len(), 1, "the second request was not sent");
    assert_eq!(
        metric(
            &proxy,
            "strangler_rejected_requests_total{reason=\"upstream_saturated\"}"
        )
        .await,
        Some(1.0)
    );
    gate.send_replace(true);
    assert_eq!(first.await.unwrap(), 200);
    proxy.stop().await;
}

/// Proves: at `[proxy] max_connections` the proxy stops accepting (the connection waits in
/// the kernel's queue, unanswered), keeps serving the open ones and its admin API, and
/// accepts again as soon as one closes.
#[tokio::test]
async fn max_connections_pauses_accepting_until_a_connection_closes() {
    let legacy = echo_upstream("legacy").await;
    // Two workers: a worker waiting for room under the limit still takes the connections
    // another worker hands over to it.
    let proxy = TestProxy::start(&routes_toml_with(
        "max_connections = 2\nworkers = 2",
        &[("legacy", &legacy.url(), "")],
        "",
    ))
    .await;
    let request = b"GET /x HTTP/1.1\r\nHost: app.example\r\n\r\n";
    let mut first = RawConn::connect(proxy.addr).await;
    first.send(request).await;
    assert_eq!(first.read_response().await.status, 200);
    let mut second = RawConn::connect(proxy.addr).await;
    second.send(request).await;
    assert_eq!(second.read_response().await.status, 200);

    // The third connects (the kernel queues it) but is not served while two are open.
    let mut third = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut third, request).await.unwrap();
    let mut buffer = [0u8; 64];
    let early = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::io::AsyncReadExt::read(&mut third, &mut buffer),
    )
    .await;
    assert!(early.is_err(), "the third connection was served beyond max_connections");
    // The open ones and the admin API still answer.
    second.send(request).await;
    assert_eq!(second.read_response().await.status, 200);
    assert_eq!(get(&proxy.admin_url("/healthz")).await.status, 200);

    drop(first);
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut third, &mut buffer),
    )
    .await
    .expect("the third connection was not served after one closed")
    .unwrap();
    assert!(
        buffer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buffer[..n])
    );
    proxy.stop().await;
}

/// Proves: after a burst, at most `pool_max_idle` connections per worker stay open to the
/// upstream; the others are closed as they are given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_max_idle_closes_the_connections_a_burst_leaves_behind() {
    use std::sync::atomic::AtomicUsize;
    let open = Arc::new(AtomicUsize::new(0));
    let (gate, gate_rx) = tokio::sync::watch::channel(false);
    let listener = deep_listener();
    let addr = listener.local_addr().unwrap();
    let counter = open.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let (counter, gate) = (counter.clone(), gate_rx.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request: Request<Incoming>| {
                    let mut gate = gate.clone();
                    async move {
                        let _ = gate.wait_for(|open| *open).await;
                        Ok::<_, std::convert::Infallible>(Response::new(full("done\n")))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let text = routes_toml_with(
        "workers = 1",
        &[("legacy", &format!("http://{addr}"), "pool_max_idle = 1\n")],
        "",
    );
    let proxy = TestProxy::start(&text).await;
    let requests: Vec<_> = (0..8)
        .map(|i| {
            let url = proxy.url(&format!("/burst/{i}"));
            tokio::spawn(async move { get(&url).await.status })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    while open.load(Ordering::SeqCst) < 8 {
        assert!(
            Instant::now() < deadline,
            "the burst should open 8 upstream connections"
        );
        backoff.pause().await;
    }
    gate.send_replace(true);
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    while open.load(Ordering::SeqCst) > 1 {
        assert!(
            Instant::now() < deadline,
            "{} upstream connections still open with pool_max_idle = 1",
            open.load(Ordering::SeqCst)
        );
        backoff.pause().await;
    }
    assert_eq!(open.load(Ordering::SeqCst), 1, "one idle connection is kept");
    proxy.stop().await;
}

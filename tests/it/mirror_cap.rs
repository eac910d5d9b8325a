//! The cap on a shadowed route's mirrors in flight (`shadow.max_inflight`) holds across
//! reloads: mirrors still running on the previous table count against the new one's cap.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::sync::{Semaphore, mpsc};

use crate::support::*;

/// A new upstream that holds every mirror until the test releases it, and keeps the most
/// it ever had at once.
struct HeldUpstream {
    upstream: Upstream,
    /// Mirrors that reached it (one message each).
    arrived: mpsc::UnboundedReceiver<()>,
    /// One permit releases one held mirror.
    release: Arc<Semaphore>,
    /// The most mirrors it held at once.
    most: Arc<AtomicUsize>,
}

async fn held_upstream() -> HeldUpstream {
    let (arrivals, arrived) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let upstream = {
        let (release, now, most) = (release.clone(), now.clone(), most.clone());
        upstream_with(move |_request: Request<Incoming>| {
            let (arrivals, release, now, most) = (arrivals.clone(), release.clone(), now.clone(), most.clone());
            async move {
                most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let _ = arrivals.send(());
                release.acquire().await.unwrap().forget();
                now.fetch_sub(1, Ordering::SeqCst);
                Response::new(full("{\"id\": 1}"))
            }
        })
        .await
    };
    HeldUpstream {
        upstream,
        arrived,
        release,
        most,
    }
}

/// The table: one shadowed route with `shadow` settings; `tag` (a comment) makes tables
/// that differ in nothing else distinct versions.
fn routes(legacy: &Upstream, new: &Upstream, tag: &str, shadow: &str) -> String {
    let table = routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &new.url())],
        &format!(
            "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n\
             shadow = {{ {shadow} }}\n"
        ),
    );
    format!("# {tag}\n{table}")
}

/// Mirrors dropped for `thoughts-api` so far. A drop is counted before the client gets
/// its answer, so after a response this is exact.
fn dropped(proxy: &TestProxy) -> u64 {
    let evidence = proxy.state.ledger.evidence();
    evidence
        .routes
        .get("thoughts-api")
        .map_or(0, |route| route.total.dropped)
}

/// Sends a request that is mirrored, and waits until its mirror reached the new upstream.
async fn mirrored(proxy: &TestProxy, new: &mut HeldUpstream) {
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 200);
    new.arrived.recv().await.unwrap();
}

/// Sends `n` requests that find the cap full: each is dropped, none reaches the new upstream.
async fn all_dropped(proxy: &TestProxy, n: u64, when: &str) {
    let before = dropped(proxy);
    for _ in 0..n {
        assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 200);
    }
    assert_eq!(
        dropped(proxy) - before,
        n,
        "{when}: mirrors past max_inflight were not dropped"
    );
}

/// Waits (backing off, up to 10 s) until the route has `n` mirrors in flight.
async fn in_flight_becomes(proxy: &TestProxy, n: usize) {
    let mut pause = std::time::Duration::from_millis(1);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = proxy.state.snapshot().routes[0].mirrors_in_flight.get();
        if now == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{now} mirrors in flight, not {n}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

async fn reload(proxy: &TestProxy, text: &str) {
    proxy.write_config(text);
    proxy.wait_for_version(&strangler::config::version_of(text)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_cap_holds_across_reloads() {
    let legacy = echo_upstream("legacy").await;
    let mut new = held_upstream().await;
    let held = "max_inflight = 2, timeout = \"60s\"";
    let proxy = TestProxy::start(&routes(&legacy, &new.upstream, "v1", held)).await;

    // Two mirrors in flight, held by the new upstream: the cap is full.
    mirrored(&proxy, &mut new).await;
    mirrored(&proxy, &mut new).await;
    all_dropped(&proxy, 3, "before any reload").await;

    // A reload that does not touch the route, then one that does (its compare rules): the
    // two mirrors still in flight count against the new tables' cap.
    reload(&proxy, &routes(&legacy, &new.upstream, "v2", held)).await;
    all_dropped(&proxy, 3, "after a reload that left the route alone").await;
    let touched = "max_inflight = 2, timeout = \"61s\", sample = 1.0";
    reload(&proxy, &routes(&legacy, &new.upstream, "v3", touched)).await;
    all_dropped(&proxy, 3, "after a reload that changed the route").await;

    // A lower cap counts the mirrors in flight too: with one released, one is still in
    // flight, and a cap of one is full.
    reload(
        &proxy,
        &routes(&legacy, &new.upstream, "v4", "max_inflight = 1, timeout = \"60s\""),
    )
    .await;
    all_dropped(&proxy, 2, "with two in flight over a cap lowered to one").await;
    new.release.add_permits(1);
    in_flight_becomes(&proxy, 1).await;
    all_dropped(&proxy, 2, "with one in flight under a cap of one").await;

    // A higher cap lets more through, up to it.
    reload(
        &proxy,
        &routes(&legacy, &new.upstream, "v5", "max_inflight = 3, timeout = \"60s\""),
    )
    .await;
    mirrored(&proxy, &mut new).await;
    mirrored(&proxy, &mut new).await;
    all_dropped(&proxy, 2, "with three in flight under a cap of three").await;

    assert!(
        new.most.load(Ordering::SeqCst) <= 3,
        "the new upstream held {} mirrors at once",
        new.most.load(Ordering::SeqCst)
    );
    assert_eq!(new.most.load(Ordering::SeqCst), 3);
    new.release.add_permits(16);
    proxy.stop().await;
}

//! Fleet-wide evidence end to end (issue 17): two strangler replicas with the same shadow
//! table and real upstreams, and the same counts read two ways: `flip --admin A --admin B`
//! (and `--admin-dns`) from the replicas themselves, and `flip --prometheus` from a real
//! Prometheus scraping both. Then the table's `new` upstream moves, and the evidence, now
//! of another upstream, is refused naming what it measured.

use std::net::ToSocketAddrs;
use std::path::Path;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::support::prometheus::Prometheus;
use crate::support::*;

/// Requests sent through each replica.
const PER_REPLICA: u64 = 60;

/// An upstream answering the same JSON to everything: legacy and new agree.
async fn same_answer() -> Upstream {
    upstream_with(|_request: Request<Incoming>| async {
        Response::builder()
            .header("content-type", "application/json")
            .body(full("{\"id\": 1, \"text\": \"same\"}"))
            .unwrap()
    })
    .await
}

fn shadow_table(legacy: &Upstream, new_url: &str) -> String {
    routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", new_url)],
        "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n",
    )
}

/// Two replicas of the same table with `PER_REPLICA` shadowed requests each, compared.
async fn two_replicas_with_evidence(text: &str) -> (TestProxy, TestProxy) {
    let a = TestProxy::start(text).await;
    let b = TestProxy::start(text).await;
    assert_eq!(a.version(), b.version());
    for proxy in [&a, &b] {
        for i in 0..PER_REPLICA {
            assert_eq!(get(&proxy.url(&format!("/api/thoughts/{i}"))).await.status, 200);
        }
        let parity = parity_when(proxy, "thoughts-api", PER_REPLICA).await;
        assert_eq!(parity["routes"]["thoughts-api"]["match"], PER_REPLICA, "{parity}");
    }
    (a, b)
}

async fn flip_dry_run(config: &Path, source: &[&str]) -> std::process::Output {
    let mut args = vec!["flip", "-c", config.to_str().unwrap(), "--dry-run"];
    args.extend_from_slice(source);
    args.extend_from_slice(&["thoughts-api", "new"]);
    strangler(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flip_sums_the_evidence_of_two_replicas_read_from_their_admin_apis() {
    let legacy = same_answer().await;
    let new = same_answer().await;
    let text = shadow_table(&legacy, &new.url());
    let (a, b) = two_replicas_with_evidence(&text).await;
    let (a_url, b_url) = (a.admin_url(""), b.admin_url(""));
    let total = 2 * PER_REPLICA;

    let output = flip_dry_run(&a.config, &["--admin", &a_url, "--admin", &b_url]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        stdout(&output).contains(&format!(
            "parity evidence from GET {a_url}/admin/parity, GET {b_url}/admin/parity: {total} comparisons (>= 100)"
        )),
        "{}",
        both(&output)
    );

    // --admin-dns localhost:PORT: every address localhost has is a replica. The proxy
    // listens on 127.0.0.1 only; where localhost is ::1 too, that address does not answer
    // and a step forward is refused, naming it.
    let dns = format!("localhost:{}", b.admin.port());
    let addresses: Vec<std::net::SocketAddr> = dns.to_socket_addrs().unwrap().collect();
    let output = flip_dry_run(&a.config, &["--admin", &a_url, "--admin-dns", &dns]).await;
    if addresses.iter().all(|addr| addr.ip().is_ipv4()) {
        assert_eq!(output.status.code(), Some(0), "{}", both(&output));
        assert!(
            stdout(&output).contains(&format!("{total} comparisons")),
            "{}",
            both(&output)
        );
    } else {
        assert_eq!(output.status.code(), Some(1), "{}", both(&output));
        assert!(
            stderr(&output).contains(&format!("no parity evidence from http://[::1]:{}", b.admin.port())),
            "{}",
            both(&output)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flip_decides_from_a_real_prometheus_scraping_two_replicas() {
    let legacy = same_answer().await;
    let new = same_answer().await;
    let text = shadow_table(&legacy, &new.url());
    let (a, b) = two_replicas_with_evidence(&text).await;
    // A third replica runs another version of the table (a comment differs), with the same
    // upstreams and rules: its evidence has the same period label, but it does not run the
    // file being edited, so it is not counted.
    let other_version = text.replace("[[routes]]", "# another copy\n[[routes]]");
    let c = TestProxy::start(&other_version).await;
    assert_ne!(c.version(), a.version());
    for i in 0..PER_REPLICA {
        assert_eq!(get(&c.url(&format!("/api/thoughts/{i}"))).await.status, 200);
    }
    parity_when(&c, "thoughts-api", PER_REPLICA).await;
    // `again` scrapes replica a a second time: one process, counted once.
    let all = [a.admin, b.admin, c.admin];
    let Some(prometheus) = Prometheus::start_jobs(&[("strangler", &all), ("again", &[a.admin])]).await else {
        return;
    };
    let total = 2 * PER_REPLICA;

    // Every scrape in: 4 series (a twice, b, c) under the period label they share.
    let scraped = 4 * PER_REPLICA;
    let counts = "sum by (period) (strangler_shadow_comparisons_total{route=\"thoughts-api\",result=\"match\"})";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut backoff = Backoff::default();
    loop {
        let series = prometheus.query(counts).await;
        let infos = prometheus
            .query("strangler_parity_period_info{route=\"thoughts-api\"}")
            .await;
        let summed = series
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok());
        if series.len() == 1 && summed == Some(scraped as f64) && infos.len() == 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus did not see every scrape's counts under one period: {series:?}; info: {infos:?}"
        );
        backoff.pause().await;
    }

    let url = prometheus.url("");
    let output = flip_dry_run(&a.config, &["--prometheus", &url]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        stdout(&output).contains(&format!(
            "parity evidence from Prometheus at {url}: {total} comparisons (>= 100), match rate 1.0000"
        )),
        "{}",
        both(&output)
    );
    assert!(
        stdout(&output).contains(&format!(
            "running: 2 instance(s) Prometheus scrapes run version {}",
            a.version()
        )),
        "{}",
        both(&output)
    );
    assert!(
        stderr(&output).contains(&format!(
            "WARNING: not counted: {} runs {}, not version",
            c.admin,
            c.version()
        )),
        "{}",
        both(&output)
    );

    // The edited table points `new` elsewhere: no instance runs it (the counts, gathered
    // against the old upstream, say nothing about this one), refused naming what runs.
    let elsewhere = dead_url();
    let moved = a.dir.path().join("moved.toml");
    let moved_text = shadow_table(&legacy, &elsewhere);
    std::fs::write(&moved, &moved_text).unwrap();
    let output = flip_dry_run(&moved, &["--prometheus", &url]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let said = stderr(&output);
    assert!(
        said.contains(&format!(
            "dry run: would be refused: no parity evidence: no instance Prometheus at {url} scrapes runs version {}, \
             that of the file being edited: ",
            strangler::config::version_of(&moved_text)
        )),
        "{said}"
    );
    assert!(said.contains(&format!("{} runs {}", a.admin, a.version())), "{said}");
    drop((b, c));
}

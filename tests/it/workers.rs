//! Client connections spread over the proxy workers.

use crate::support::*;

/// Counts of open client connections per worker, as the admin endpoint reports them.
async fn open_per_worker(proxy: &TestProxy) -> (Option<f64>, Option<f64>) {
    (
        metric(proxy, r#"strangler_client_connections{worker="0"}"#).await,
        metric(proxy, r#"strangler_client_connections{worker="1"}"#).await,
    )
}

/// However the kernel hands out the connections of the shared listening socket, the
/// workers end up serving an even share; each worker's gauge counts its own, and closed
/// connections leave the count.
#[tokio::test(flavor = "multi_thread")]
async fn client_connections_are_spread_evenly_over_the_workers() {
    let upstream = echo_upstream("legacy").await;
    let routes = routes_toml_with("workers = 2", &[("legacy", &upstream.url(), "")], "");
    let proxy = TestProxy::start(&routes).await;

    let mut open = Vec::new();
    for i in 0..10 {
        let mut conn = RawConn::connect(proxy.addr).await;
        // Answered, so accepted and placed on a worker; kept alive, so it stays there.
        conn.send(format!("GET /conn/{i} HTTP/1.1\r\nHost: app.example\r\n\r\n").as_bytes())
            .await;
        let answer = conn.read_response().await;
        assert_eq!(answer.status, 200, "connection {i}: {}", answer.body_text());
        assert!(
            answer.body_text().contains(&format!("/conn/{i}")),
            "{}",
            answer.body_text()
        );
        open.push(conn);
    }
    assert_eq!(open_per_worker(&proxy).await, (Some(5.0), Some(5.0)));

    // Every connection still works where it was placed.
    for (i, conn) in open.iter_mut().enumerate() {
        conn.send(format!("GET /again/{i} HTTP/1.1\r\nHost: app.example\r\n\r\n").as_bytes())
            .await;
        assert_eq!(conn.read_response().await.status, 200, "connection {i}, second request");
    }

    // A burst, as when a client pool starts: the connections are opened together, and
    // the workers accept them as fast as they can.
    let connecting: Vec<_> = (0..20).map(|_| tokio::spawn(RawConn::connect(proxy.addr))).collect();
    for (i, connecting) in connecting.into_iter().enumerate() {
        let mut conn = connecting.await.unwrap();
        conn.send(format!("GET /burst/{i} HTTP/1.1\r\nHost: app.example\r\n\r\n").as_bytes())
            .await;
        assert_eq!(conn.read_response().await.status, 200, "burst connection {i}");
        open.push(conn);
    }
    let (Some(first), Some(second)) = open_per_worker(&proxy).await else {
        panic!("no connection counts after the burst");
    };
    assert_eq!(first + second, 30.0);
    // Two workers placing at the same moment can both see the same counts.
    assert!((first - second).abs() <= 2.0, "{first} and {second} connections");

    drop(open);
    let zero = |v: Option<f64>| v == Some(0.0);
    assert_eq!(
        wait_metric(&proxy, r#"strangler_client_connections{worker="0"}"#, zero).await,
        Some(0.0)
    );
    assert_eq!(
        wait_metric(&proxy, r#"strangler_client_connections{worker="1"}"#, zero).await,
        Some(0.0)
    );
    proxy.stop().await;
}

/// The CPUs this test process may run on, from the kernel's own account.
fn allowed_cpus() -> Vec<i64> {
    cpus_allowed_in(&std::fs::read_to_string("/proc/self/status").unwrap())
}

/// The CPUs a /proc `status` text allows (its `Cpus_allowed_list`: `0-3,6` → `[0, 1, 2, 3, 6]`).
fn cpus_allowed_in(status: &str) -> Vec<i64> {
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<i64>().unwrap()..=last.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

/// The CPU each worker reports being pinned to, in worker order (`None`: no series).
async fn pinned_cpus(proxy: &TestProxy, workers: usize) -> Vec<Option<i64>> {
    let mut cpus = Vec::new();
    for worker in 0..workers {
        let series = format!(r#"strangler_worker_cpu{{worker="{worker}"}}"#);
        cpus.push(metric(proxy, &series).await.map(|v| v as i64));
    }
    cpus
}

/// Workers reachable and serving: every one of `n` fresh connections is answered.
async fn serves(proxy: &TestProxy, n: usize) {
    for i in 0..n {
        let mut conn = RawConn::connect(proxy.addr).await;
        conn.send(format!("GET /pinned/{i} HTTP/1.1\r\nHost: app.example\r\n\r\n").as_bytes())
            .await;
        assert_eq!(conn.read_response().await.status, 200, "connection {i}");
    }
}

/// With as many workers as the CPUs the process may use, `auto` (the default) pins one
/// worker to each of those CPUs, and each reports its CPU once it runs there.
#[tokio::test(flavor = "multi_thread")]
async fn auto_pins_one_worker_per_cpu_when_the_counts_match() {
    let cpus = allowed_cpus();
    let upstream = echo_upstream("legacy").await;
    let routes = routes_toml_with(
        &format!("workers = {}", cpus.len()),
        &[("legacy", &upstream.url(), "")],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    serves(&proxy, 2 * cpus.len()).await;
    let pinned = pinned_cpus(&proxy, cpus.len()).await;
    let expected: Vec<Option<i64>> = cpus.iter().map(|&cpu| Some(cpu)).collect();
    assert_eq!(pinned, expected, "allowed CPUs {cpus:?}");
    proxy.stop().await;
}

/// More workers than CPUs (and `off` in any case): the kernel places the workers, and no
/// worker reports a CPU.
#[tokio::test(flavor = "multi_thread")]
async fn workers_stay_unpinned_when_off_or_the_counts_differ() {
    let cpus = allowed_cpus();
    let upstream = echo_upstream("legacy").await;
    for (extra, workers) in [
        (format!("workers = {}", cpus.len() + 1), cpus.len() + 1),
        (
            format!("workers = {}\nworker_cpu_affinity = \"off\"", cpus.len()),
            cpus.len(),
        ),
    ] {
        let routes = routes_toml_with(&extra, &[("legacy", &upstream.url(), "")], "");
        let proxy = TestProxy::start(&routes).await;
        serves(&proxy, 2 * workers).await;
        assert_eq!(pinned_cpus(&proxy, workers).await, vec![None; workers], "{extra}");
        proxy.stop().await;
    }
}

/// Threads of this process whose name starts with `prefix` (as /proc shows it, cut to 15
/// bytes), each with the CPUs it may run on.
fn threads_named(prefix: &str) -> Vec<(String, Vec<i64>)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(task.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        if !comm.starts_with(prefix) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(task.join("status")) else {
            continue;
        };
        found.push((comm.trim().to_owned(), cpus_allowed_in(&status)));
    }
    found
}

/// Threads a pinned worker's runtime starts for blocking work (here: resolving an upstream
/// named by host name) may run on every CPU, not only on their worker's.
#[tokio::test(flavor = "multi_thread")]
async fn blocking_threads_of_pinned_workers_are_not_pinned() {
    let cpus = allowed_cpus();
    let upstream = echo_upstream("legacy").await;
    let by_name = upstream.url().replace("127.0.0.1", "localhost");
    let routes = routes_toml_with(&format!("workers = {}", cpus.len()), &[("legacy", &by_name, "")], "");
    let proxy = TestProxy::start(&routes).await;
    // Fresh client connections land on every worker, and each worker's first upstream
    // connection resolves `localhost` on its runtime's blocking threads.
    serves(&proxy, 2 * cpus.len()).await;
    assert!(pinned_cpus(&proxy, cpus.len()).await.iter().all(Option::is_some));
    let blocking = threads_named("strangler-block");
    assert!(!blocking.is_empty(), "no blocking thread was started");
    for (name, allowed) in blocking {
        assert_eq!(allowed, cpus, "{name}");
    }
    proxy.stop().await;
}

//! The reliability suite: what happens to clients when upstreams die, hang or break off,
//! and under many connections with reloads. Each test says what it proves and prints its
//! figure as a `figure:` line (`bench/reliability.sh` collects them).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::support::binary::{BinaryProxy, ServeOptions, Stderr};
use crate::support::*;

/// An upstream that can be killed outright (listener and every open connection closed at
/// once, like a crashed process) and started again on the same address.
struct Killable {
    addr: SocketAddr,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Killable {
    async fn start(addr: SocketAddr, name: &'static str) -> Killable {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let registry = tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let connection = tokio::spawn(async move {
                    let service = service_fn(move |_request: Request<Incoming>| async move {
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(full(serde_json::json!({ "upstream": name }).to_string()))
                                .unwrap(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                registry.lock().unwrap().push(connection.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Killable { addr, tasks }
    }

    fn kill(self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// What the clients saw during a kill-and-return run.
#[derive(Debug, Default)]
struct Tally {
    total: usize,
    by_status: std::collections::BTreeMap<u16, usize>,
    hung: usize,
    from_new: usize,
}

/// Runs `clients` concurrent keep-alive clients against `url` until `stop` is set (each
/// request bounded by 5 s: a longer one counts as hung), publishing progress on `progress`.
fn start_load(
    url: String,
    clients: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    progress: watch::Sender<(usize, usize)>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let progress = Arc::new(progress);
    (0..clients)
        .map(|_| {
            let (url, stop, tally, progress) = (url.clone(), stop.clone(), tally.clone(), progress.clone());
            tokio::spawn(async move {
                let client = client();
                // Bounded: at most 20 000 requests per client whatever happens.
                for _ in 0..20_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let request = Request::get(&url).body(full("")).unwrap();
                    let answer = tokio::time::timeout(Duration::from_secs(5), async {
                        let response = client.request(request).await.ok()?;
                        let status = response.status().as_u16();
                        let body = response.into_body().collect().await.ok()?.to_bytes();
                        Some((status, body))
                    })
                    .await;
                    let mut tally = tally.lock().unwrap();
                    tally.total += 1;
                    match answer {
                        Err(_) => tally.hung += 1,
                        Ok(None) => *tally.by_status.entry(0).or_default() += 1,
                        Ok(Some((status, body))) => {
                            *tally.by_status.entry(status).or_default() += 1;
                            if status == 200 && body.windows(8).any(|w| w == b"thoughts") {
                                tally.from_new += 1;
                            }
                        }
                    }
                    let snapshot = (tally.total, tally.from_new);
                    drop(tally);
                    progress.send_replace(snapshot);
                }
            })
        })
        .collect()
}

/// How soon a returned upstream must get traffic again: its ejection lasts at most
/// `max_ejection` (1 s), then the next request probes it. Twice that leaves a whole
/// ejection of headroom for a loaded machine; an upstream never probed again, or kept out
/// past `max_ejection`, still fails it.
const RECOVERY_WITHIN: Duration = Duration::from_secs(2);

/// Kills the new upstream under load, brings it back on the same port, and returns what
/// the clients saw and how long the upstream took to get traffic again once it was back.
async fn kill_and_return(fallback: bool) -> (Tally, Duration) {
    let legacy = echo_upstream("legacy").await;
    let new = Killable::start("127.0.0.1:0".parse().unwrap(), "thoughts").await;
    let addr = new.addr;
    let text = routes_toml_with(
        "",
        &[
            ("legacy", &legacy.url(), ""),
            (
                "thoughts",
                &format!("http://{addr}"),
                "[upstreams.thoughts.outlier]\nconsecutive_failures = 3\nbase_ejection = \"250ms\"\nmax_ejection = \"1s\"\n",
            ),
        ],
        &format!(
            "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\nfallback = {fallback}\n"
        ),
    );
    let proxy = TestProxy::start(&text).await;
    let stop = Arc::new(AtomicBool::new(false));
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let (progress, mut seen) = watch::channel((0usize, 0usize));
    let load = start_load(proxy.url("/api/thoughts/1"), 8, stop.clone(), tally.clone(), progress);

    let wait_until = |seen: &mut watch::Receiver<(usize, usize)>,
                      what: &'static str,
                      accept: Box<dyn Fn((usize, usize)) -> bool + Send>| {
        let mut seen = seen.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(20), seen.wait_for(|p| accept(*p)))
                .await
                .unwrap_or_else(|_| panic!("load never reached: {what}"))
                .map(|p| *p)
                .unwrap()
        }
    };
    wait_until(&mut seen, "300 requests before the kill", Box::new(|(n, _)| n >= 300)).await;
    new.kill();
    let (at_kill, _) = *seen.borrow();
    wait_until(
        &mut seen,
        "600 requests while dead",
        Box::new(move |(n, _)| n >= at_kill + 600),
    )
    .await;
    let new = Killable::start(addr, "thoughts").await;
    let back_at = Instant::now();
    let (_, new_before) = *seen.borrow();
    wait_until(
        &mut seen,
        "the new upstream serving again",
        Box::new(move |(_, from_new)| from_new > new_before),
    )
    .await;
    let recovery = back_at.elapsed();
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    new.kill();
    proxy.stop().await;
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    (tally, recovery)
}

/// Proves: with `fallback = true`, killing the new upstream under load costs GET clients
/// nothing (every answer 200, from legacy meanwhile), and traffic returns to the new
/// upstream within the ejection back-off once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_new_upstream_with_fallback_costs_gets_nothing() {
    let (tally, recovery) = kill_and_return(true).await;
    println!(
        "figure: kill new upstream under load, fallback on: {} GETs, non-200: {}, hung: {}; back in service {} ms after it returned (max_ejection 1 s)",
        tally.total,
        tally.total - tally.by_status.get(&200).copied().unwrap_or(0),
        tally.hung,
        recovery.as_millis()
    );
    assert_eq!(tally.hung, 0, "{tally:?}");
    assert_eq!(
        tally.by_status.keys().copied().collect::<Vec<_>>(),
        vec![200],
        "{tally:?}"
    );
    assert!(recovery <= RECOVERY_WITHIN, "recovery took {recovery:?}");
}

/// Proves: without fallback, clients of a killed upstream get only 502/503 answers (fast
/// 503s while it is ejected), never a hang, and traffic returns within the back-off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_new_upstream_without_fallback_gives_only_502_503() {
    let (tally, recovery) = kill_and_return(false).await;
    println!(
        "figure: kill new upstream under load, no fallback: {} requests, statuses {:?}, hung: {}; back in service {} ms after it returned",
        tally.total,
        tally.by_status,
        tally.hung,
        recovery.as_millis()
    );
    assert_eq!(tally.hung, 0, "{tally:?}");
    assert!(
        tally.by_status.keys().all(|s| matches!(s, 200 | 502 | 503)),
        "{tally:?}"
    );
    assert!(
        tally.by_status.get(&503).copied().unwrap_or(0) > 0,
        "ejection should fail fast: {tally:?}"
    );
    assert!(recovery <= RECOVERY_WITHIN, "recovery took {recovery:?}");
}

/// Proves: an upstream slower than `request_timeout` gets the client a 504 from the
/// proxy's timer (after the timeout, well before the upstream would answer), and leaves
/// nothing behind: the proxy's file descriptors and threads return to where they were, and
/// every upstream connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_gets_504_in_time_and_leaks_nothing() {
    /// How long the upstream takes to answer: four request timeouts, so that a 504 can
    /// only be the proxy's timer however loaded the machine is.
    const UPSTREAM_DELAY: Duration = Duration::from_secs(4);
    const REQUESTS: usize = 10;
    let open = Arc::new(AtomicUsize::new(0));
    let counter = open.clone();
    let listener = deep_listener();
    let slow_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(|request: Request<Incoming>| async move {
                    if request.uri().path() != "/fast" {
                        // Slower than the proxy's request_timeout: this is the behaviour
                        // under test, not synchronisation.
                        tokio::time::sleep(UPSTREAM_DELAY).await;
                    }
                    Ok::<_, std::convert::Infallible>(Response::new(full("late\n")))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let timeout = Duration::from_secs(1);
    let text = routes_toml_with(
        "",
        &[(
            "legacy",
            &format!("http://{slow_addr}"),
            "request_timeout = \"1s\"\npool_idle_timeout = \"200ms\"\n[upstreams.legacy.outlier]\nenabled = false\n",
        )],
        "",
    );
    let proxy = BinaryProxy::start(&text).await;
    let warm = get(&format!("http://{}/fast", proxy.addr)).await;
    assert_eq!(warm.status, 200);
    // Baseline after the idle connection from the warm-up expired.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    while open.load(Ordering::SeqCst) > 0 {
        assert!(Instant::now() < deadline, "the idle pooled connection was never closed");
        backoff.pause().await;
    }
    let fds_before = proxy.open_fds();
    let threads_before = proxy.threads();

    let requests = (0..REQUESTS).map(|_| {
        let url = format!("http://{}/slow", proxy.addr);
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = get(&url).await;
            (answer, started.elapsed())
        })
    });
    let mut worst = Duration::ZERO;
    for request in requests.collect::<Vec<_>>() {
        let (answer, took) = request.await.unwrap();
        assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT, "{}", answer.body);
        assert!(answer.body.contains("`legacy`"), "{}", answer.body);
        // Not before the timeout: the timer, not an early failure.
        assert!(took >= timeout, "504 after {took:?}, before the {timeout:?} timeout");
        worst = worst.max(took);
    }
    // Nothing left behind once the slow answers have come and gone (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut backoff = Backoff::default();
    loop {
        let (fds, upstream_open, threads) = (proxy.open_fds(), open.load(Ordering::SeqCst), proxy.threads());
        let settled = fds <= fds_before && upstream_open == 0 && threads <= threads_before;
        if settled || Instant::now() >= deadline {
            println!(
                "figure: slow upstream: 10 × 504, worst {} ms for a {} ms timeout; proxy fds {fds_before} → {fds}, threads {threads_before} → {}, upstream connections left open {upstream_open}",
                worst.as_millis(),
                timeout.as_millis(),
                threads
            );
            assert!(fds <= fds_before, "leaked file descriptors: {fds_before} → {fds}");
            assert_eq!(upstream_open, 0, "upstream connections left open");
            // A thread the runtime starts meanwhile and parks (its blocking pool keeps an
            // idle thread 10 s) is not a leak; one per timed-out request would be.
            assert!(
                threads < threads_before + REQUESTS as u64,
                "threads leaked: {threads_before} → {threads} after {REQUESTS} timeouts"
            );
            break;
        }
        backoff.pause().await;
    }
    // Well before the upstream's answer (4 timeouts): the proxy cut the exchange at its
    // timeout, with a full timeout of headroom for a loaded machine.
    assert!(
        worst < timeout * 2,
        "504 took {worst:?} for a {timeout:?} timeout (the upstream answers after {UPSTREAM_DELAY:?})"
    );
    proxy.kill().await;
}

/// A raw upstream that sends `head` and `partial` body bytes, then breaks the connection
/// (`reset`: RST via SO_LINGER 0; else a plain close).
async fn breaking_upstream(head: &'static str, partial: usize, reset: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if read_request_head(&mut stream).await.is_none() {
                    return;
                }
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&vec![b'x'; partial]).await;
                let _ = stream.flush().await;
                if reset {
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                }
                drop(stream);
            });
        }
    });
    addr
}

/// Proves: when the upstream breaks off in the middle of a body — reset or closed, with a
/// Content-Length or chunked — the client sees an aborted response, never a complete one.
#[tokio::test]
async fn an_upstream_breaking_off_mid_body_is_never_passed_on_as_complete() {
    let cases: [(&str, &'static str, usize, bool); 4] = [
        (
            "content-length + reset",
            "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n",
            100_000,
            true,
        ),
        (
            "content-length + close",
            "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n",
            100_000,
            false,
        ),
        (
            "chunked + reset",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n",
            100_000,
            true,
        ),
        (
            "chunked + close",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n",
            100_000,
            false,
        ),
    ];
    let mut aborted = 0;
    for (name, head, partial, reset) in cases {
        let addr = breaking_upstream(head, partial, reset).await;
        let proxy = TestProxy::start(&routes_toml(&[("legacy", &format!("http://{addr}"))], "")).await;
        let response = client()
            .request(Request::get(proxy.url("/big")).body(full("")).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let read = tokio::time::timeout(Duration::from_secs(10), count_body_bytes(response.into_body()))
            .await
            .unwrap_or_else(|_| panic!("{name}: the client hung instead of seeing the abort"));
        assert!(
            read.is_err(),
            "{name}: the client got a complete-looking body of {read:?} bytes"
        );
        aborted += 1;
        proxy.stop().await;
    }
    println!(
        "figure: upstream breaking off mid-body: {aborted}/4 cases aborted at the client, 0 passed on as complete"
    );
}

/// Proves: 2 000 concurrent keep-alive clients, with 50 reloads during the run, get no
/// error at all, and the proxy's memory stays bounded (peak RSS printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_keep_alive_clients_and_fifty_reloads_without_an_error() {
    const CLIENTS: usize = 2_000;
    const REQUESTS_EACH: usize = 5;
    const RELOADS: usize = 50;
    // Each client connection is a descriptor here and one in the proxy (a child, which
    // inherits the limit), plus the proxy's upstream connections.
    let wanted = (2 * CLIENTS + 256) as u64;
    let limit = rlimit::increase_nofile_limit(u64::from(u32::MAX))
        .unwrap_or_else(|e| panic!("cannot raise the open-file limit: {e}"));
    assert!(
        limit >= wanted,
        "the open-file limit is {limit}, below the {wanted} this test needs; raise the hard limit (ulimit -Hn)"
    );
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let table = |stage: &str| {
        routes_toml(
            &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
            &format!(
                "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"{stage}\"\nnew = \"thoughts\"\n"
            ),
        )
    };
    let mut proxy = BinaryProxy::start(&table("legacy")).await;
    let addr = proxy.addr;

    // Every client connects first, then all send together.
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let errors = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let (barrier, errors, done) = (barrier.clone(), errors.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let connected = async {
                let stream = TcpStream::connect(addr).await.ok()?;
                let (sender, connection) = hyper::client::conn::http1::handshake::<_, BoxBody>(TokioIo::new(stream))
                    .await
                    .ok()?;
                tokio::spawn(connection);
                Some(sender)
            }
            .await;
            barrier.wait().await;
            let Some(mut sender) = connected else {
                errors.fetch_add(REQUESTS_EACH, Ordering::SeqCst);
                return;
            };
            for i in 0..REQUESTS_EACH {
                let ok = tokio::time::timeout(Duration::from_secs(30), async {
                    sender.ready().await.ok()?;
                    let request = Request::get(format!("/api/thoughts/{i}"))
                        .header("host", "app.example")
                        .body(full(""))
                        .unwrap();
                    let response = sender.send_request(request).await.ok()?;
                    let status = response.status();
                    response.into_body().collect().await.ok()?;
                    (status == 200).then_some(())
                })
                .await;
                if !matches!(ok, Ok(Some(()))) {
                    errors.fetch_add(1, Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    barrier.wait().await;
    let connected_in = started.elapsed();

    // 50 reloads while the clients run, each confirmed in force before the next.
    for i in 0..RELOADS {
        let text = format!("{}\n# reload {i}\n", table(if i % 2 == 0 { "new" } else { "legacy" }));
        proxy.write_config(&text);
        let version = strangler::config::version_of(&text);
        proxy.wait_for_version(&version, Duration::from_secs(5)).await;
    }
    for client in clients {
        client.await.unwrap();
    }
    let took = started.elapsed();
    let peak_mib = proxy.vm_hwm_kib() as f64 / 1024.0;
    let errors = errors.load(Ordering::SeqCst);
    let requests = done.load(Ordering::SeqCst);
    if errors > 0 {
        // Say which answers they were.
        let metrics = get(&format!("http://{}/metrics", proxy.admin)).await.body;
        for line in metrics
            .lines()
            .filter(|l| l.starts_with("strangler_requests_total") || l.starts_with("strangler_upstream_errors_total"))
        {
            println!("{line}");
        }
    }
    println!(
        "figure: {CLIENTS} concurrent keep-alive clients and {RELOADS} reloads: {requests} requests (clients connected in {} ms), {errors} errors in {} ms; proxy peak RSS {peak_mib:.1} MiB",
        connected_in.as_millis(),
        took.as_millis()
    );
    assert_eq!(requests, CLIENTS * REQUESTS_EACH);
    assert_eq!(errors, 0);
    assert!(peak_mib < 256.0, "peak RSS {peak_mib:.1} MiB");
    proxy.kill().await;
}

/// Proves: an upstream answer with both Content-Length and Transfer-Encoding (ambiguous
/// framing, RFC 9112 §6.1) is never passed on: the client gets a 502 naming the upstream,
/// and it is logged and counted as `kind="protocol"`. Today's main passed on a complete
/// `H` (the Content-Length) with 200.
#[tokio::test]
async fn an_upstream_answer_with_content_length_and_chunked_is_a_502() {
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHELLO\r\n0\r\n\r\n";
    let addr = breaking_upstream(head, 0, false).await;
    let options = ServeOptions {
        stderr: Stderr::Lines,
        ..ServeOptions::default()
    };
    let mut proxy = BinaryProxy::start_with(&routes_toml(&[("legacy", &format!("http://{addr}"))], ""), options).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        raw_response(proxy.addr, &get_request("/framed")),
    )
    .await
    .expect("no answer within 5 s");
    assert_eq!(answer.status, 502, "{}", answer.body_text());
    assert!(answer.body_text().contains("`legacy`"), "{}", answer.body_text());
    let line = proxy
        .stderr_until(Duration::from_secs(5), |l| {
            l.contains("legacy") && l.contains("protocol")
        })
        .await;
    assert!(line.contains("Transfer-Encoding"), "{line}");
    assert_eq!(
        metric(
            &proxy,
            "strangler_upstream_errors_total{kind=\"protocol\",upstream=\"legacy\"}"
        )
        .await,
        Some(1.0)
    );
    println!(
        "figure: upstream answer with Content-Length and chunked (`Content-Length 1`, chunked `HELLO`): 502, 0 bytes of it passed on (was: 200 with a complete `H`)"
    );
    proxy.kill().await;
}

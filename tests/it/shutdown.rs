//! Stopping: SIGTERM and SIGINT (Ctrl-C) stop accepting, let requests in flight finish
//! for up to `drain_timeout`, then cut what is left and exit 0; `/readyz` says 503 while
//! draining. The signal tests run the binary; the others a proxy in the test's runtime.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};

use crate::support::binary::{BinaryProxy, ServeOptions, Stderr};
use crate::support::*;

/// The binary at `info`, its log read line by line, on `table`.
async fn serve(table: &str) -> BinaryProxy {
    BinaryProxy::start_with(
        table,
        ServeOptions {
            rust_log: "info",
            stderr: Stderr::Lines,
            ..ServeOptions::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let arrived = Arc::new(Notify::new());
    let (release, released) = oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let legacy = {
        let arrived = arrived.clone();
        upstream_with(move |_request: Request<Incoming>| {
            let arrived = arrived.clone();
            let released = released.lock().unwrap().take();
            async move {
                arrived.notify_one();
                if let Some(released) = released {
                    let _ = released.await;
                }
                Response::new(full("finished"))
            }
        })
        .await
    };
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;
    let addr = proxy.addr;

    let url = proxy.url("/slow");
    let in_flight = tokio::spawn(async move { get(&url).await });
    tokio::time::timeout(Duration::from_secs(5), arrived.notified())
        .await
        .expect("the request never reached the upstream");

    let state = proxy.state.clone();
    let mut stopping = tokio::spawn(proxy.stop());
    // The listener closes once the proxy has stopped accepting; the request is still open.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut backoff = Backoff::default();
        while TcpStream::connect(addr).await.is_ok() {
            backoff.pause().await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the proxy kept accepting connections after stop()");
    // Not a synchronisation: a bounded window in which stop() must NOT return, because a
    // request is still in flight (a proxy that does not drain returns at once).
    let early = tokio::time::timeout(Duration::from_millis(200), &mut stopping).await;
    assert!(early.is_err(), "stop() returned while a request was in flight");
    assert!(
        !in_flight.is_finished(),
        "the in-flight request ended before the upstream answered"
    );

    release.send(()).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the in-flight request did not finish")
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "finished");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("stop() did not return after the last request finished")
        .unwrap();
    assert_eq!(
        state.metrics.inflight.get(),
        0,
        "stop() returned before the in-flight response was finished"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a new connection was accepted after stop()"
    );
}

/// Proves: `/readyz` answers 503 from the moment the proxy starts draining (here on an
/// admin connection opened before; a new one is refused, as the admin listener stops
/// accepting too), while a request in flight still gets its answer.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_while_draining() {
    let held = HeldUpstream::start("finished").await;
    let mut held = held;
    let mut proxy = TestProxy::start(&routes_toml(&[("legacy", &held.upstream.url())], "")).await;
    // `localhost`: the admin API answers 421 to a Host it does not know (admin_browser.rs).
    let readyz = b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut admin = RawConn::connect(proxy.admin).await;
    admin.send(readyz).await;
    let ready = admin.read_response().await;
    assert_eq!(ready.status, 200, "{}", ready.body_text());

    let url = proxy.url("/slow");
    let in_flight = tokio::spawn(async move { get(&url).await });
    held.arrived().await;
    proxy.begin_stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    let draining = loop {
        admin.send(readyz).await;
        let answer = admin.read_response().await;
        if answer.status != 200 || Instant::now() >= deadline {
            break answer;
        }
        backoff.pause().await;
    };
    assert_eq!(draining.status, 503, "{}", draining.body_text());
    assert_eq!(draining.body_text(), "not ready\n");
    assert!(
        !in_flight.is_finished(),
        "the request in flight ended before its answer"
    );

    held.release();
    let answer = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the in-flight request did not finish")
        .unwrap();
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "finished"));
    tokio::time::timeout(Duration::from_secs(5), proxy.stop())
        .await
        .expect("the proxy did not stop after its last request");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_zero() {
    let legacy = echo_upstream("legacy").await;
    let mut served = serve(&routes_toml(&[("legacy", &legacy.url())], "")).await;
    assert_eq!(get(&format!("http://{}/x", served.addr)).await.status, 200);
    served.signal("TERM");
    let status = served.exit_within(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    served
        .stderr_until(Duration::from_secs(5), |l| l.contains("stopped"))
        .await;
}

/// Sends `signal` to the binary while a request is in flight, and checks that the request
/// still gets its answer and the process then exits 0 promptly.
async fn a_signal_lets_a_request_in_flight_finish(signal: &str) {
    let mut held = HeldUpstream::start("slow but sure").await;
    let table = routes_toml_with("drain_timeout = \"3s\"", &[("legacy", &held.upstream.url(), "")], "");
    let mut served = serve(&table).await;

    let url = format!("http://{}/slow/report", served.addr);
    let in_flight = tokio::spawn(async move { get(&url).await });
    held.arrived().await;

    served.signal(signal);
    served
        .stderr_until(Duration::from_secs(5), |l| l.contains(&format!("SIG{signal} received")))
        .await;
    served
        .stderr_until(Duration::from_secs(5), |l| l.contains("shutting down"))
        .await;
    assert!(served.try_wait().is_none(), "exited with a request in flight");
    let started = Instant::now();
    held.release();

    let answer = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the in-flight request did not complete")
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "slow but sure");
    let status = served.exit_within(Duration::from_secs(3)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    // Well before the 3 s drain timeout: the process left when its last request finished.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "drain took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_request_in_flight_finish() {
    a_signal_lets_a_request_in_flight_finish("TERM").await;
}

/// Proves: SIGINT (Ctrl-C) is a graceful stop like SIGTERM, not an abort.
#[tokio::test(flavor = "multi_thread")]
async fn sigint_lets_a_request_in_flight_finish_like_sigterm() {
    a_signal_lets_a_request_in_flight_finish("INT").await;
}

/// Proves: a request still in flight when `drain_timeout` runs out is cut (its connection
/// closes without an answer), and the process exits 0 then, not before and not much after.
#[tokio::test(flavor = "multi_thread")]
async fn drain_timeout_cuts_what_is_still_in_flight_and_exits_zero() {
    const DRAIN: Duration = Duration::from_millis(500);
    // Never released: only the drain timeout can end this request.
    let mut held = HeldUpstream::start("never sent").await;
    let table = routes_toml_with("drain_timeout = \"500ms\"", &[("legacy", &held.upstream.url(), "")], "");
    let mut served = serve(&table).await;
    let mut conn = RawConn::connect(served.addr).await;
    conn.send(&get_request("/held")).await;
    held.arrived().await;

    let signalled = Instant::now();
    served.signal("TERM");
    let status = served.exit_within(DRAIN + Duration::from_secs(5)).await;
    let took = signalled.elapsed();
    println!("figure: drain_timeout {DRAIN:?} with a request held upstream: exited {took:?} after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(took >= DRAIN, "exited {took:?} after SIGTERM, before the drain timeout");
    let sent = conn
        .closed_within(Duration::from_secs(5))
        .await
        .expect("the cut request's connection stayed open");
    assert!(
        sent.is_empty(),
        "the cut request got an answer: {:?}",
        String::from_utf8_lossy(&sent)
    );
    served
        .stderr_until(Duration::from_secs(1), |l| l.contains("drain timeout passed"))
        .await;
}

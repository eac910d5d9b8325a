//! Bodies that stop moving (issue 18, finding 2, and stalled request bodies): an upstream
//! whose response body stalls is cut after its `read_timeout`; a client whose request body
//! stalls gets 408 after `client_body_timeout`, for the client's fault, never the upstream's
//! (streamed, and buffered for a fallback or a mirror alike). And two framing leftovers:
//! request trailers lose hop-by-hop and proxy-only fields on their way to an HTTP/2
//! upstream; a response `Content-Length` goes on as the plain number. Each test fails on
//! the main branch before these changes; each prints its figure as a `figure:` line.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::tls::{UpstreamOptions, test_upstream};
use crate::support::*;

/// An HTTP/1.1 upstream that answers every request with `answer` and then keeps the
/// connection open, sending nothing more; the returned receiver hears when the proxy
/// closes one of those connections (how long after the answer).
async fn stalling_upstream(answer: &'static [u8]) -> (std::net::SocketAddr, tokio::sync::mpsc::Receiver<Duration>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, closes) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let closed = closed.clone();
            tokio::spawn(async move {
                if read_request_head(&mut stream).await.is_none() {
                    return;
                }
                stream.write_all(answer).await.unwrap();
                let answered = Instant::now();
                // Nothing more is sent; wait for the proxy to close its end.
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                }
                let _ = closed.send(answered.elapsed()).await;
            });
        }
    });
    (addr, closes)
}

/// Proves: an upstream that sends `Content-Length: 1000`, 7 bytes and then nothing is cut
/// off after its `read_timeout`: the client's connection closes (with the 7 bytes, never a
/// made-up rest), the upstream connection is closed too, the stall is counted as
/// `kind="read_timeout"`, and nothing stays in flight. Main held all of it for as long as
/// anyone watched (75 s in the attack).
#[tokio::test]
async fn a_response_body_that_stalls_is_cut_after_read_timeout() {
    let (addr, mut upstream_closes) =
        stalling_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial").await;
    let routes = routes_toml_with(
        "",
        &[("legacy", &format!("http://{addr}"), "read_timeout = \"1s\"")],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    let mut client = RawConn::connect(proxy.addr).await;
    client.send(&get_request("/stalls")).await;
    let (status, headers) = client.read_head().await;
    assert_eq!(status, 200);
    assert!(
        headers.contains(&("content-length".to_owned(), "1000".to_owned())),
        "{headers:?}"
    );
    let started = Instant::now();
    assert_eq!(client.read_exact_bytes(7).await, b"partial");
    let rest = client
        .closed_within(Duration::from_secs(10))
        .await
        .expect("the client connection was still open 10 s into a 1 s read_timeout");
    let took = started.elapsed();
    assert!(rest.is_empty(), "bytes after the stall: {rest:?}");
    assert!(
        took >= Duration::from_millis(900),
        "cut after {took:?}, before the read_timeout"
    );
    let upstream_closed = tokio::time::timeout(Duration::from_secs(5), upstream_closes.recv())
        .await
        .expect("the upstream connection stayed open")
        .unwrap();
    let errors = "strangler_upstream_errors_total{kind=\"read_timeout\",upstream=\"legacy\"}";
    assert_eq!(wait_metric(&proxy, errors, |v| v == Some(1.0)).await, Some(1.0));
    let inflight = wait_metric(&proxy, "strangler_inflight_requests", |v| v == Some(0.0)).await;
    assert_eq!(inflight, Some(0.0));
    println!(
        "figure: upstream body stalled after 7 of 1000 bytes, read_timeout 1 s: client connection closed after {} ms, upstream connection after {} ms, 0 in flight (was: held for as long as watched, 75 s)",
        took.as_millis(),
        upstream_closed.as_millis()
    );
}

/// `POST` head with a `Content-Length` of 100 and 10 bytes of the body: the client stalls.
fn stalled_post(path: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: app.example\r\nContent-Length: 100\r\n\r\n0123456789").into_bytes()
}

/// Sends a stalled `POST` to `path`; returns the answer and how long it took.
async fn stalled_answer(proxy: &TestProxy, path: &str) -> (RawResponse, Duration) {
    let mut client = RawConn::connect(proxy.addr).await;
    client.send(&stalled_post(path)).await;
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), client.read_response())
        .await
        .expect("no answer to a stalled body within 10 s");
    (answer, started.elapsed())
}

/// What a stalled body must not do to the upstream: an error counted, an ejection.
async fn assert_upstream_not_blamed(proxy: &TestProxy, upstream: &str) {
    let text = metrics_text(proxy).await;
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("strangler_upstream_errors_total") && l.contains(&format!("\"{upstream}\"")))
        .collect();
    assert!(errors.is_empty(), "upstream errors counted: {errors:?}");
    let ejected = sample(&text, &format!("strangler_upstream_ejected{{upstream=\"{upstream}\"}}"));
    assert_ne!(ejected, Some(1.0), "{upstream} ejected");
    assert!(
        get(&proxy.url("/after")).await.status.is_success(),
        "the upstream is out of service"
    );
}

const EJECT_AT_ONCE: &str = "[upstreams.legacy.outlier]\nconsecutive_failures = 1\nbase_ejection = \"1h\"\n";

/// Proves: a client that sends a head and part of its body, then nothing, gets 408 after
/// `client_body_timeout`; the upstream is not blamed (no upstream error, no outlier
/// failure: it is not ejected although one failure would eject it), and the stall is counted
/// as the client's. Main answered 504 after the upstream's `request_timeout`, counted a
/// `timeout` against the upstream and ejected it.
#[tokio::test]
async fn a_stalled_request_body_is_408_and_not_the_upstreams_fault() {
    let legacy = echo_upstream("legacy").await;
    let routes = routes_toml_with(
        "client_body_timeout = \"1s\"",
        &[(
            "legacy",
            &legacy.url(),
            &format!("request_timeout = \"3s\"\n{EJECT_AT_ONCE}"),
        )],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    let (answer, took) = stalled_answer(&proxy, "/upload").await;
    assert_eq!(answer.status, 408, "{}", answer.body_text());
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    let counted = "strangler_client_errors_total{kind=\"body_timeout\"}";
    assert_eq!(wait_metric(&proxy, counted, |v| v == Some(1.0)).await, Some(1.0));
    assert_upstream_not_blamed(&proxy, "legacy").await;
    println!(
        "figure: request body stalled after 10 of 100 bytes, client_body_timeout 1 s: 408 after {} ms, 0 upstream errors, upstream not ejected with consecutive_failures = 1 (was: 504 after request_timeout, a `timeout` against the upstream, ejected)",
        took.as_millis()
    );
}

/// Proves: when the upstream's `request_timeout` runs out first, while the body is still
/// awaited from the client, the answer is the client's 408 too, and the upstream (which
/// never got the whole request) is not blamed. Main: 504, a `timeout`, an ejection.
#[tokio::test]
async fn request_timeout_during_a_stalled_body_is_still_the_clients_fault() {
    let legacy = echo_upstream("legacy").await;
    let routes = routes_toml_with(
        "client_body_timeout = \"1m\"",
        &[(
            "legacy",
            &legacy.url(),
            &format!("request_timeout = \"1s\"\n{EJECT_AT_ONCE}"),
        )],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    let (answer, took) = stalled_answer(&proxy, "/upload").await;
    assert_eq!(answer.status, 408, "{}", answer.body_text());
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    assert_upstream_not_blamed(&proxy, "legacy").await;
    println!(
        "figure: request body stalls with request_timeout 1 s < client_body_timeout: 408 after {} ms, upstream not blamed (was: 504, ejected)",
        took.as_millis()
    );
}

/// Proves: a body buffered for a fallback's replay or a shadow mirror is read under
/// `client_body_timeout` too: a stall gets 408 instead of holding the request forever (main
/// had no deadline there at all: no answer within 10 s).
#[tokio::test]
async fn a_body_buffered_for_a_fallback_or_a_mirror_has_a_read_deadline() {
    let legacy = echo_upstream("legacy").await;
    let new = echo_upstream("new").await;
    let routes = routes_toml_with(
        "client_body_timeout = \"1s\"",
        &[("legacy", &legacy.url(), ""), ("new", &new.url(), "")],
        "[[routes]]\nname = \"falling-back\"\npath = \"/fallback/\"\nstage = \"new\"\nnew = \"new\"\nfallback = true\n\n\
         [[routes]]\nname = \"shadowed\"\npath = \"/shadow/\"\nstage = \"shadow\"\nnew = \"new\"\n\
         shadow = { unsafe_methods = true }\n",
    );
    let proxy = TestProxy::start(&routes).await;
    for path in ["/fallback/x", "/shadow/x"] {
        let (answer, took) = stalled_answer(&proxy, path).await;
        assert_eq!(answer.status, 408, "{path}: {}", answer.body_text());
        println!(
            "figure: request body buffered for {} stalls, client_body_timeout 1 s: 408 after {} ms (was: no deadline)",
            if path.starts_with("/fallback") {
                "a fallback"
            } else {
                "a shadow mirror"
            },
            took.as_millis()
        );
    }
    let counted = "strangler_client_errors_total{kind=\"body_timeout\"}";
    assert_eq!(wait_metric(&proxy, counted, |v| v == Some(2.0)).await, Some(2.0));
}

/// Proves: request trailers reach an HTTP/2 upstream without hop-by-hop fields and fields
/// only the proxy may assert (`X-Strangler-*`, `X-Forwarded-Host`); others pass. Main
/// forwarded them all.
#[tokio::test]
async fn request_trailers_lose_hop_by_hop_and_proxy_only_fields() {
    let trailers: Arc<Mutex<Option<HeaderMap>>> = Arc::default();
    let seen = trailers.clone();
    let options = UpstreamOptions {
        h2_only: true,
        ..UpstreamOptions::plain()
    };
    let upstream = test_upstream(options, move |request: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            let collected = request.into_body().collect().await.unwrap();
            *seen.lock().unwrap() = collected.trailers().cloned();
            Response::new(full("ok"))
        }
    })
    .await;
    let routes = routes_toml_with(
        "",
        &[("legacy", &format!("http://{}", upstream.addr), "http2 = true")],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    let request = "POST /t HTTP/1.1\r\nHost: app.example\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\
                   Connection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: abc\r\nX-Strangler-Shadow: 1\r\n\
                   X-Forwarded-Host: evil.example\r\nKeep-Alive: timeout=5\r\n\r\n";
    let answer = raw_response(proxy.addr, request.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.body_text());
    let trailers = trailers
        .lock()
        .unwrap()
        .clone()
        .expect("no trailers reached the upstream");
    assert_eq!(trailers.get("x-checksum").map(|v| v.as_bytes()), Some(&b"abc"[..]));
    for gone in ["x-strangler-shadow", "x-forwarded-host", "keep-alive"] {
        assert!(
            !trailers.contains_key(gone),
            "{gone} forwarded in trailers: {trailers:?}"
        );
    }
}

/// Proves: an upstream `Content-Length` spelled `005`, `5, 5` or twice goes to the client as
/// `5` (HTTP/2 clients refuse anything else); lengths that differ get 502. Main passed the
/// spelling on as written.
#[tokio::test]
async fn a_response_content_length_goes_on_as_the_plain_number() {
    for (spelled, expected) in [
        ("Content-Length: 005\r\n", Some("5")),
        ("Content-Length: 5, 5\r\n", Some("5")),
        ("Content-Length: 5\r\nContent-Length: 5\r\n", Some("5")),
        ("Content-Length: 5, 6\r\n", None),
    ] {
        let answer: &'static [u8] = format!("HTTP/1.1 200 OK\r\n{spelled}\r\nhello").into_bytes().leak();
        let (addr, _closes) = stalling_upstream(answer).await;
        let proxy = TestProxy::start(&routes_toml(&[("legacy", &format!("http://{addr}"))], "")).await;
        let response = raw_response(proxy.addr, &get_request("/length")).await;
        let lengths: Vec<&str> = response
            .headers
            .iter()
            .filter(|(name, _)| name == "content-length")
            .map(|(_, value)| value.as_str())
            .collect();
        match expected {
            Some(length) => {
                assert_eq!(response.status, 200, "{spelled:?}");
                assert_eq!(lengths, [length], "{spelled:?}");
                assert_eq!(response.body_text(), "hello");
            }
            None => assert_eq!(response.status, 502, "{spelled:?}"),
        }
    }
    println!(
        "figure: upstream Content-Length `005` / `5, 5` / twice / `5, 6`: passed on as `5` / `5` / `5` / 502 (was: passed on as written)"
    );
}

/// Proves: a client that asks for a large answer and never reads it is cut off after
/// `send_timeout` (counted as the client's `send_timeout`, nothing left in flight), rather
/// than holding the exchange, its upstream connection and its buffers for ever as on main.
#[tokio::test]
async fn a_client_that_never_reads_is_cut_after_send_timeout() {
    const TOTAL: u64 = 256 * 1024 * 1024;
    let legacy = upstream_with(|_request: Request<Incoming>| async { Response::new(generated_body(TOTAL)) }).await;
    let routes = routes_toml_with("send_timeout = \"1s\"", &[("legacy", &legacy.url(), "")], "");
    let proxy = TestProxy::start(&routes).await;
    let mut client = RawConn::connect(proxy.addr).await;
    client.send(&get_request("/large")).await;
    let started = Instant::now();
    // The client reads nothing: the kernel's buffers fill, then the proxy's writes block.
    let counted = "strangler_client_errors_total{kind=\"send_timeout\"}";
    let expired = wait_metric_within(&proxy, counted, Duration::from_secs(20), |v| v == Some(1.0)).await;
    assert_eq!(expired, Some(1.0), "the unread answer was not ended");
    let took = started.elapsed();
    let inflight = wait_metric(&proxy, "strangler_inflight_requests", |v| v == Some(0.0)).await;
    assert_eq!(inflight, Some(0.0));
    // What the kernel buffered still arrives, then the connection is closed.
    let received = client
        .closed_within(Duration::from_secs(10))
        .await
        .expect("the connection stayed open after the send_timeout");
    assert!((received.len() as u64) < TOTAL, "the whole answer arrived");
    println!(
        "figure: client never read a 256 MiB answer, send_timeout 1 s: ended after {} ms ({} KiB had been buffered by the kernels), 0 in flight (was: never ended)",
        took.as_millis(),
        received.len() / 1024
    );
}

/// A body that sends `first`, then nothing, for ever.
struct StallsAfter(Option<bytes::Bytes>);

impl hyper::body::Body for StallsAfter {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        match self.0.take() {
            Some(first) => std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(first)))),
            None => std::task::Poll::Pending,
        }
    }
}

/// Proves: over HTTP/2 a stalled response body resets its own stream after `read_timeout`;
/// the connection and its other streams carry on.
#[tokio::test]
async fn over_http2_a_stalled_body_resets_its_stream_only() {
    let legacy = upstream_with(|request: Request<Incoming>| async move {
        if request.uri().path() == "/stalls" {
            let body = StallsAfter(Some(bytes::Bytes::from_static(b"partial")));
            Response::builder()
                .header("content-length", "1000")
                .body(BodyExt::boxed(body.map_err(|never| match never {})))
                .unwrap()
        } else {
            Response::new(full("ok"))
        }
    })
    .await;
    let routes = routes_toml_with("", &[("legacy", &legacy.url(), "read_timeout = \"1s\"")], "");
    let proxy = TestProxy::start(&routes).await;
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut client, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let get = |path: &str| {
        Request::get(format!("http://app.example{path}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let response = client.send_request(get("/stalls")).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"partial");
    let started = Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the stalled stream was still open 10 s into a 1 s read_timeout");
    assert!(
        matches!(next, Some(Err(_))),
        "the stream ended without an error: {next:?}"
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900));
    let other = client.send_request(get("/ok")).await.unwrap();
    assert_eq!(other.status(), 200, "the connection did not carry on");
    assert_eq!(&other.into_body().collect().await.unwrap().to_bytes()[..], b"ok");
    println!(
        "figure: HTTP/2 client, upstream body stalls (read_timeout 1 s): that stream reset after {} ms; the next request on the same connection 200",
        took.as_millis()
    );
}

/// Proves: the same 408 when the upstream speaks HTTP/2 (the body is piped by a task of
/// hyper's own there, and its failure resets the stream rather than failing the exchange).
#[tokio::test]
async fn a_stalled_request_body_to_an_http2_upstream_is_408_too() {
    let options = UpstreamOptions {
        h2_only: true,
        ..UpstreamOptions::plain()
    };
    let upstream = test_upstream(options, |request: Request<Incoming>| async move {
        let _ = request.into_body().collect().await;
        Response::new(full("ok"))
    })
    .await;
    let routes = routes_toml_with(
        "client_body_timeout = \"1s\"",
        &[(
            "legacy",
            &format!("http://{}", upstream.addr),
            &format!("http2 = true\nrequest_timeout = \"5s\"\n{EJECT_AT_ONCE}"),
        )],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    let (answer, took) = stalled_answer(&proxy, "/upload").await;
    assert_eq!(answer.status, 408, "{}", answer.body_text());
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_upstream_not_blamed(&proxy, "legacy").await;
    println!(
        "figure: request body stalls, to an HTTP/2 upstream (http2 = true), client_body_timeout 1 s: 408 after {} ms, upstream not blamed",
        took.as_millis()
    );
}

/// An HTTP/1.1 upstream that answers every request with a 64 MiB body, written as fast as
/// the proxy takes it; the receiver hears when the proxy closes one of its connections.
async fn big_answer_upstream() -> (std::net::SocketAddr, tokio::sync::mpsc::Receiver<()>) {
    const TOTAL: usize = 64 * 1024 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, closes) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let closed = closed.clone();
            tokio::spawn(async move {
                if read_request_head(&mut stream).await.is_none() {
                    return;
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {TOTAL}\r\n\r\n");
                let mut open = stream.write_all(head.as_bytes()).await.is_ok();
                let chunk = vec![b'x'; 64 * 1024];
                let mut written = 0;
                while open && written < TOTAL {
                    open = stream.write_all(&chunk).await.is_ok();
                    written += chunk.len();
                }
                // All written (or the proxy is gone): wait for the proxy to close its end.
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                }
                let _ = closed.send(()).await;
            });
        }
    });
    (addr, closes)
}

/// An HTTP/2 client (hyper's) whose streams get no window at all (initial window 0, no
/// WINDOW_UPDATE; it still answers PINGs), connected to `proxy`.
async fn windowless_h2_client(
    proxy: &TestProxy,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (client, connection) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .initial_stream_window_size(0)
        .handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

fn h2_get(path: &str) -> Request<http_body_util::Empty<bytes::Bytes>> {
    Request::get(format!("http://app.example{path}"))
        .body(http_body_util::Empty::new())
        .unwrap()
}

/// Proves: an HTTP/2 client that never grants its stream any window (the socket never
/// blocks, PINGs are answered) has the stream reset after `send_timeout`: the upstream
/// connection is closed, nothing stays in flight, the client's `send_timeout` is counted.
/// Main held the stream, its slot and the upstream connection for ever.
#[tokio::test]
async fn an_http2_stream_the_client_grants_no_window_is_reset_after_send_timeout() {
    let (addr, mut upstream_closes) = big_answer_upstream().await;
    let routes = routes_toml_with(
        "send_timeout = \"1s\"",
        &[("legacy", &format!("http://{addr}"), "")],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    let mut client = windowless_h2_client(&proxy).await;
    let response = client.send_request(h2_get("/big")).await.unwrap();
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    let mut body = response.into_body();
    let next = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the windowless stream was still open 10 s into a 1 s send_timeout");
    assert!(matches!(next, Some(Err(_))), "the stream was not reset: {next:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "reset only after {took:?}");
    tokio::time::timeout(Duration::from_secs(10), upstream_closes.recv())
        .await
        .expect("the upstream connection was not closed");
    let counted = "strangler_client_errors_total{kind=\"send_timeout\"}";
    assert_eq!(wait_metric(&proxy, counted, |v| v == Some(1.0)).await, Some(1.0));
    let inflight = wait_metric(&proxy, "strangler_inflight_requests", |v| v == Some(0.0)).await;
    assert_eq!(inflight, Some(0.0));
    println!(
        "figure: HTTP/2 client granting no window to a 64 MiB answer, send_timeout 1 s: stream reset after {} ms, upstream connection closed, 0 in flight (was: held for as long as watched, 75 s)",
        took.as_millis()
    );
}

/// Proves: a stream waiting on its upstream is not the client's fault: a head that comes
/// after 2 s and a body that comes 2 s after its head both arrive whole, with
/// `send_timeout` 1 s, and no `send_timeout` is counted.
#[tokio::test]
async fn an_http2_stream_waiting_on_a_slow_upstream_is_not_cut_by_send_timeout() {
    let legacy = upstream_with(|request: Request<Incoming>| async move {
        if request.uri().path() == "/slow-head" {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Response::new(full("slow head"));
        }
        let (mut sender, body) = http_body_util::channel::Channel::<bytes::Bytes, std::convert::Infallible>::new(1);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = sender.send_data(bytes::Bytes::from_static(b"slow body")).await;
        });
        Response::new(BodyExt::boxed(body.map_err(|never| match never {})))
    })
    .await;
    let routes = routes_toml_with(
        "send_timeout = \"1s\"",
        &[(
            "legacy",
            &legacy.url(),
            "request_timeout = \"5s\"\nread_timeout = \"5s\"",
        )],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut client, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for (path, expected) in [("/slow-head", "slow head"), ("/slow-body", "slow body")] {
        let response = client.send_request(h2_get(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.into_body().collect().await;
        let body = body.unwrap_or_else(|error| panic!("{path} was cut: {error}"));
        assert_eq!(&body.to_bytes()[..], expected.as_bytes());
    }
    let counted = "strangler_client_errors_total{kind=\"send_timeout\"}";
    assert_eq!(metric(&proxy, counted).await, Some(0.0));
}

//! Hostile requests: path tricks, CONNECT, slowloris, huge heads, and timeouts that must
//! not cut honest slow traffic. Each gets the right status, and what is refused never
//! reaches an upstream. Malformed framing, smuggling and absolute-form targets are in
//! `hostile.rs`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;

use crate::support::*;

#[tokio::test]
async fn path_attacks_are_refused_with_400() {
    let s = ThoughtsSetup::start("").await;
    for target in [
        "/api/thoughts/..%2f..%2fadmin",
        "/%2e%2e/etc/passwd",
        "/..",
        "/a/../../b",
        "/a%00b",
        "/a%zz",
        "/a%5Cb",
        "/api/thoughts/..;/admin",
    ] {
        let answer = raw(s.proxy.addr, &get_request(target)).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{target}: {answer:?}");
        assert!(
            answer.to_ascii_lowercase().contains("\r\nx-request-id: "),
            "{target}: no x-request-id in {answer:?}"
        );
    }
    s.assert_no_upstream_contacted("a path attack");
    assert_eq!(
        metric(&s.proxy, "strangler_rejected_requests_total{reason=\"bad_path\"}").await,
        Some(8.0)
    );
    s.proxy.stop().await;
}

#[tokio::test]
async fn repeated_slashes_are_collapsed_and_routed() {
    let s = ThoughtsSetup::start("").await;
    let response = raw_response(s.proxy.addr, &get_request("//api//thoughts")).await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.json()["upstream"], "thoughts");
    let seen = s.thoughts.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri.path(), "/api/thoughts");
    assert!(s.legacy.seen().is_empty());
    s.proxy.stop().await;
}

#[tokio::test]
async fn encoded_dot_segments_are_resolved_before_routing() {
    let s = ThoughtsSetup::start("").await;
    let response = raw_response(s.proxy.addr, &get_request("/api/x/%2e%2e/thoughts/1")).await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.json()["upstream"], "thoughts");
    assert_eq!(response.json()["path"], "/api/thoughts/1");
    let seen = s.thoughts.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri.path(), "/api/thoughts/1");
    assert!(
        s.legacy.seen().is_empty(),
        "routed on the raw path instead of the normalised one"
    );
    s.proxy.stop().await;
}

#[tokio::test]
async fn connect_is_refused_with_405() {
    let s = ThoughtsSetup::start("").await;
    let response = raw_response(
        s.proxy.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 405, "{}", response.body_text());
    let allow = response.header("allow").unwrap_or_default();
    assert!(allow.contains("GET") && !allow.contains("CONNECT"), "Allow: {allow:?}");
    s.assert_no_upstream_contacted("CONNECT");
    assert_eq!(
        metric(&s.proxy, "strangler_rejected_requests_total{reason=\"connect_method\"}").await,
        Some(1.0)
    );
    s.proxy.stop().await;
}

#[tokio::test]
async fn slowloris_connection_is_closed_after_the_header_timeout() {
    let s = ThoughtsSetup::start("client_header_timeout = \"300ms\"").await;
    let mut conn = RawConn::connect(s.proxy.addr).await;
    conn.send(b"GET /api/thou").await;
    let started = Instant::now();
    let closed = conn.closed_within(Duration::from_secs(3)).await;
    let sent = closed.unwrap_or_else(|| panic!("connection still open {:?} after a stalled head", started.elapsed()));
    let text = String::from_utf8_lossy(&sent);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer to a stalled head: {text:?}"
    );
    s.assert_no_upstream_contacted("a stalled head");

    // A prompt client on a new connection is still served.
    let response = raw_response(s.proxy.addr, &get_request("/api/thoughts/1")).await;
    assert_eq!(response.status, 200);
    s.proxy.stop().await;
}

fn request_with_header_of(bytes: usize) -> Vec<u8> {
    let mut request = b"GET /api/thoughts/1 HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', bytes));
    request.extend_from_slice(b"\r\n\r\n");
    request
}

#[tokio::test]
async fn oversized_header_gets_431_with_the_default_limit() {
    let s = ThoughtsSetup::start("").await;
    let response = raw_response(s.proxy.addr, &request_with_header_of(100 * 1024)).await;
    assert_eq!(response.status, 431, "{}", response.body_text());
    s.assert_no_upstream_contacted("an oversized head");
    s.proxy.stop().await;
}

#[tokio::test]
async fn oversized_header_gets_431_with_a_configured_limit() {
    let s = ThoughtsSetup::start("max_header_bytes = 16384").await;
    let response = raw_response(s.proxy.addr, &request_with_header_of(20 * 1024)).await;
    assert_eq!(response.status, 431, "{}", response.body_text());
    s.assert_no_upstream_contacted("an oversized head");

    // Below the limit is fine.
    let response = raw_response(s.proxy.addr, &request_with_header_of(4 * 1024)).await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(s.thoughts.seen().len(), 1);
    s.proxy.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = ThoughtsSetup::start("client_header_timeout = \"300ms\"\nclient_idle_timeout = \"1s\"").await;
    let mut conn = RawConn::connect(s.proxy.addr).await;
    conn.send(&get_request_keep_alive("/api/thoughts/1")).await;
    assert_eq!(conn.read_response().await.status, 200);
    // Nothing more is sent: waiting for the next request is bounded by
    // client_idle_timeout (issue 18: no longer by client_header_timeout), so the idle
    // keep-alive connection is closed.
    let started = Instant::now();
    let closed = conn.closed_within(Duration::from_secs(3)).await;
    assert!(
        closed.is_some(),
        "idle connection still open after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    s.proxy.stop().await;
}

// The header timeout bounds the wait for a request head, never the wait for an answer:
// whatever the upstream takes, or a tunnel stays quiet, is not the client's idleness.

fn routes_with_header_timeout(upstream: &str) -> String {
    routes_toml_with(
        "client_header_timeout = \"300ms\"\nclient_idle_timeout = \"1s\"",
        &[("legacy", upstream, "")],
        "",
    )
}

#[tokio::test]
async fn an_answer_slower_than_the_header_timeout_arrives_and_the_connection_stays_usable() {
    let slow = upstream_with(|_request| async {
        // More than twice the header timeout: the connection's timer fires while waiting.
        tokio::time::sleep(Duration::from_millis(700)).await;
        Response::new(full("slow but sure"))
    })
    .await;
    let proxy = TestProxy::start(&routes_with_header_timeout(&slow.url())).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    for _ in 0..2 {
        conn.send(&get_request_keep_alive("/slow")).await;
        let response = conn.read_response().await;
        assert_eq!(response.status, 200, "{}", response.body_text());
        assert_eq!(response.body_text(), "slow but sure");
    }
    // Answered: now the idle wait counts, and ends the connection.
    let started = Instant::now();
    assert!(conn.closed_within(Duration::from_secs(3)).await.is_some());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed after {:?}",
        started.elapsed()
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_response_body_pausing_longer_than_the_header_timeout_arrives_whole() {
    let pausing = upstream_with(|_request| async {
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(1);
        tokio::spawn(async move {
            let _ = sender.send_data(Bytes::from_static(b"first ")).await;
            tokio::time::sleep(Duration::from_millis(700)).await;
            let _ = sender.send_data(Bytes::from_static(b"and last")).await;
        });
        Response::new(body.map_err(|never| match never {}).boxed())
    })
    .await;
    let proxy = TestProxy::start(&routes_with_header_timeout(&pausing.url())).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(&get_request_keep_alive("/events")).await;
    let response = conn.read_response().await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body_text(), "first and last");
    proxy.stop().await;
}

#[tokio::test]
async fn a_quiet_tunnel_outlives_the_header_timeout() {
    let echo = upgrade_echo_upstream().await;
    let proxy = TestProxy::start(&routes_with_header_timeout(&echo.url())).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(b"GET /ws/ HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await;
    assert_eq!(conn.read_head().await.0, 101);
    conn.send(b"ping").await;
    assert_eq!(conn.read_exact_bytes(4).await, b"ping");
    // Quiet for three header timeouts.
    let closed = conn.closed_within(Duration::from_millis(900)).await;
    assert!(closed.is_none(), "the tunnel was closed: {closed:?}");
    conn.send(b"still here").await;
    assert_eq!(conn.read_exact_bytes(10).await, b"still here");
    drop(conn);
    proxy.stop().await;
}

fn get_request_keep_alive(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: app.example\r\n\r\n").into_bytes()
}

//! Client connection timeouts (issue 18, finding 1): HTTP/2 connections that send only the
//! preface and SETTINGS, or leave a header block open, are closed after
//! `client_header_timeout` and no longer lock the site out at `max_connections`; idle
//! connections of both protocols are closed after `client_idle_timeout`, while a partial
//! HTTP/1.1 head still gets `client_header_timeout`; HTTP/2 streams beyond
//! `http2_max_concurrent_streams` are refused. Hostile clients are raw TCP with
//! hand-written frames; a closed connection (EOF) is the signal, never a sleep.

use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::support::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const REFUSED_STREAM: u32 = 0x7;

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// The preface and an empty SETTINGS frame: 33 bytes, all the attacker sent.
fn preface_and_settings() -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(SETTINGS, 0, 0, &[]));
    bytes
}

/// The HPACK header block of `GET {path}` to `app.example` over http (static table
/// entries and literals without indexing, no Huffman).
fn get_block(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    for (name_index, value) in [(4u8, path), (1, "app.example")] {
        block.push(name_index); // literal without indexing, indexed name (:path, :authority)
        block.push(u8::try_from(value.len()).unwrap());
        block.extend(value.as_bytes());
    }
    block
}

/// A complete `GET {path}` on `stream`.
fn get_frame(stream: u32, path: &str) -> Vec<u8> {
    frame(HEADERS, END_HEADERS | END_STREAM, stream, &get_block(path))
}

/// A frame read off a raw HTTP/2 connection.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// Reads the next frame; `None` at EOF (or a reset), panics if none comes within 10 s.
async fn read_frame(stream: &mut TcpStream) -> Option<Frame> {
    let mut header = [0u8; 9];
    match tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut header)).await {
        Err(_) => panic!("no frame and no EOF within 10 s"),
        Ok(Err(_)) => return None,
        Ok(Ok(_)) => {}
    }
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        kind: header[3],
        flags: header[4],
        stream: u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff,
        payload,
    })
}

/// Reads frames until the server closes the connection (within `limit`, else panics);
/// returns the frames and how long the close took.
async fn frames_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<Frame>, Duration) {
    let started = Instant::now();
    let mut frames = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        while let Some(frame) = read_frame(stream).await {
            frames.push(frame);
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "connection still open after {limit:?}; frames so far: {frames:?}"
    );
    (frames, started.elapsed())
}

/// Reads frames until the responses on `streams` have all ended (a HEADERS or DATA frame
/// with END_STREAM on each); panics if one is reset or the connection closes first.
async fn read_responses(conn: &mut TcpStream, streams: &[u32]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut open: Vec<u32> = streams.to_vec();
    while !open.is_empty() {
        let frame = read_frame(conn)
            .await
            .unwrap_or_else(|| panic!("connection closed before the responses on {open:?} ended"));
        assert!(
            !(open.contains(&frame.stream) && frame.kind == RST_STREAM),
            "stream {} was reset",
            frame.stream
        );
        if frame.flags & END_STREAM != 0 && matches!(frame.kind, HEADERS | DATA) {
            open.retain(|s| *s != frame.stream);
        }
        frames.push(frame);
    }
    frames
}

async fn ok_upstream() -> Upstream {
    upstream_with(|_request: Request<Incoming>| async move { Response::new(full("ok")) }).await
}

fn proxy_routes(upstream: &Upstream, proxy_extra: &str) -> String {
    routes_toml_with(proxy_extra, &[("legacy", &upstream.url(), "")], "")
}

/// The lock-out: at `max_connections = 100`, 100 connections that sent only the preface and an empty SETTINGS frame held every slot for
/// ever, so a new client waited for as long as they stayed. Now each is sent GOAWAY at the
/// header timeout and closed (at most `CLOSING_GRACE`, 1 s, later), and the new client is
/// served.
#[tokio::test(flavor = "multi_thread")]
async fn connections_that_send_only_the_preface_are_closed_and_no_longer_lock_the_site_out() {
    const HOSTILE: usize = 100;
    let legacy = ok_upstream().await;
    let header_timeout = Duration::from_secs(1);
    let proxy = TestProxy::start(&proxy_routes(
        &legacy,
        &format!("client_header_timeout = \"1s\"\nmax_connections = {HOSTILE}"),
    ))
    .await;
    let mut hostile = Vec::new();
    for _ in 0..HOSTILE {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(&preface_and_settings()).await.unwrap();
        hostile.push(stream);
    }
    let started = Instant::now();
    let closes: Vec<_> = hostile
        .into_iter()
        .map(|mut stream| tokio::spawn(async move { frames_until_closed(&mut stream, Duration::from_secs(10)).await }))
        .collect();
    let served = tokio::time::timeout(Duration::from_secs(10), get(&proxy.url("/after"))).await;
    let waited = started.elapsed();
    let answer = served.expect("a new client was not served within 10 s: locked out");
    assert_eq!(answer.status, 200);
    assert!(
        waited < header_timeout + Duration::from_secs(3),
        "a new client waited {waited:?}"
    );
    let mut closed = Vec::new();
    for close in closes {
        let (frames, took) = close.await.unwrap();
        closed.push(took);
        assert!(took < header_timeout + Duration::from_secs(3), "closed after {took:?}");
        assert!(
            frames.iter().any(|f| f.kind == GOAWAY),
            "closed without GOAWAY: {frames:?}"
        );
    }
    let slowest = closed.iter().max().copied().unwrap_or_default();
    println!(
        "figure: {HOSTILE} HTTP/2 connections sending only the preface + SETTINGS at max_connections = {HOSTILE}, client_header_timeout = 1s: all sent GOAWAY and closed within {slowest:.1?}; a new client served after {waited:.1?} (was: never)"
    );
    assert_eq!(legacy.seen().len(), 1);
    proxy.stop().await;
}

/// An HTTP/2 slowloris: after a complete request, a HEADERS frame without END_HEADERS and
/// then nothing. The connection is closed after the header timeout (1 s), long before the
/// idle timeout (60 s) would close it.
#[tokio::test]
async fn a_header_block_left_open_is_closed_after_the_header_timeout() {
    let legacy = ok_upstream().await;
    let proxy = TestProxy::start(&proxy_routes(
        &legacy,
        "client_header_timeout = \"1s\"\nclient_idle_timeout = \"60s\"",
    ))
    .await;
    let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
    let mut opening = preface_and_settings();
    opening.extend(get_frame(1, "/first"));
    conn.write_all(&opening).await.unwrap();
    let answer = read_responses(&mut conn, &[1]).await;
    assert!(answer.iter().any(|f| f.kind == HEADERS && f.stream == 1));
    // The start of a header block on stream 3: END_STREAM, no END_HEADERS.
    let block = get_block("/never");
    conn.write_all(&frame(HEADERS, END_STREAM, 3, &block[..4]))
        .await
        .unwrap();
    let (_, took) = frames_until_closed(&mut conn, Duration::from_secs(10)).await;
    assert!(
        took < Duration::from_secs(4),
        "an open header block was closed after {took:?}"
    );
    assert_eq!(legacy.seen().len(), 1, "the partial request reached the upstream");
    println!(
        "figure: HTTP/2 HEADERS without END_HEADERS (client_header_timeout = 1s, client_idle_timeout = 60s): closed after {took:.1?} (was: never)"
    );
    proxy.stop().await;
}

/// A well-behaved HTTP/2 client (hyper's) whose connection has been idle for
/// `client_idle_timeout` (1 s) after its last answer is sent GOAWAY and closed; a request
/// that takes longer than that to answer is not idleness.
#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let legacy = upstream_with(|request: Request<Incoming>| async move {
        if request.uri().path() == "/slow" {
            // A slow upstream, not synchronisation: the answer takes longer than the idle timeout.
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
        Response::new(full("ok"))
    })
    .await;
    let proxy = TestProxy::start(&proxy_routes(
        &legacy,
        "client_header_timeout = \"10s\"\nclient_idle_timeout = \"1s\"",
    ))
    .await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    for path in ["/slow", "/fast"] {
        let request = Request::get(format!("http://app.example{path}"))
            .body(full(""))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        http_body_util::BodyExt::collect(response.into_body()).await.unwrap();
    }
    let answered = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
    let idle = answered.elapsed();
    assert!(ended.is_ok(), "idle HTTP/2 connection still open after 10 s");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&idle),
        "closed after {idle:?} idle, client_idle_timeout is 1s"
    );
    assert_eq!(legacy.seen().len(), 2);
    println!(
        "figure: idle HTTP/2 connection (client_idle_timeout = 1s): GOAWAY and closed {idle:.1?} after its last answer; a 2.5 s answer was not cut (was: never closed)"
    );
    proxy.stop().await;
}

/// HTTP/1.1: between requests a keep-alive connection gets `client_idle_timeout` (3 s),
/// not `client_header_timeout` (1 s) as before; a head that has begun to arrive still
/// gets only the header timeout.
#[tokio::test]
async fn http1_keep_alive_gets_the_idle_timeout_and_a_partial_head_the_header_timeout() {
    let legacy = ok_upstream().await;
    let proxy = TestProxy::start(&proxy_routes(
        &legacy,
        "client_header_timeout = \"1s\"\nclient_idle_timeout = \"3s\"",
    ))
    .await;
    let request = b"GET /a HTTP/1.1\r\nHost: app.example\r\n\r\n";

    let mut idle = RawConn::connect(proxy.addr).await;
    idle.send(request).await;
    assert_eq!(idle.read_response().await.status, 200);
    let answered = Instant::now();
    assert!(idle.closed_within(Duration::from_secs(10)).await.is_some());
    let waited = answered.elapsed();
    assert!(
        (Duration::from_millis(2700)..Duration::from_secs(6)).contains(&waited),
        "idle keep-alive closed after {waited:?}; client_idle_timeout is 3s"
    );

    let idle_close = waited;
    let mut partial = RawConn::connect(proxy.addr).await;
    partial.send(request).await;
    assert_eq!(partial.read_response().await.status, 200);
    partial.send(b"GET /b HTTP/1.1\r\nHo").await;
    let begun = Instant::now();
    assert!(partial.closed_within(Duration::from_secs(10)).await.is_some());
    let waited = begun.elapsed();
    assert!(
        waited < Duration::from_millis(2500),
        "a partial head was allowed {waited:?}; client_header_timeout is 1s"
    );
    assert_eq!(legacy.seen().len(), 2);
    println!(
        "figure: HTTP/1.1 keep-alive (client_header_timeout = 1s, client_idle_timeout = 3s): idle closed after {idle_close:.1?}, a partial head after {waited:.1?} (was: idle closed after 1 s, the header timeout)"
    );
    proxy.stop().await;
}

/// With `http2_max_concurrent_streams = 2`, a third stream opened while two are being
/// answered is refused with RST_STREAM(REFUSED_STREAM) (RFC 9113 §5.1.2) and never reaches
/// the upstream; the two are answered.
#[tokio::test]
async fn streams_beyond_the_limit_are_refused() {
    let (release, released) = watch::channel(false);
    let legacy = upstream_with(move |_request: Request<Incoming>| {
        let mut released = released.clone();
        async move {
            let _ = released.wait_for(|go| *go).await;
            Response::new(full("ok"))
        }
    })
    .await;
    let proxy = TestProxy::start(&proxy_routes(&legacy, "http2_max_concurrent_streams = 2")).await;
    let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
    let mut bytes = preface_and_settings();
    for stream in [1, 3, 5] {
        bytes.extend(get_frame(stream, &format!("/s{stream}")));
    }
    conn.write_all(&bytes).await.unwrap();
    let refused = loop {
        let read = read_frame(&mut conn).await.expect("closed before refusing stream 5");
        if read.kind == SETTINGS && read.flags & 0x1 == 0 {
            conn.write_all(&frame(SETTINGS, 0x1, 0, &[])).await.unwrap();
        }
        if read.kind == RST_STREAM {
            break read;
        }
    };
    assert_eq!(refused.stream, 5, "{refused:?}");
    assert_eq!(
        u32::from_be_bytes(refused.payload[..4].try_into().unwrap()),
        REFUSED_STREAM
    );
    release.send_replace(true);
    read_responses(&mut conn, &[1, 3]).await;
    let mut paths: Vec<String> = legacy.seen().iter().map(|s| s.uri.path().to_owned()).collect();
    paths.sort();
    assert_eq!(paths, ["/s1", "/s3"]);
    println!(
        "figure: http2_max_concurrent_streams = 2, 3 streams opened: the third got RST_STREAM(REFUSED_STREAM), 2 reached the upstream"
    );
    proxy.stop().await;
}

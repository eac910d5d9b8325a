//! Protocol upgrades (issue 18, findings 3 and 5): only the protocols a route allows are
//! forwarded (`upgrades`, `websocket` by default), `h2c` never; a 101 opens a tunnel only
//! when it switches to the protocol the client asked for; and the framing check stays on
//! until a real 101, so the inputs that used to switch it off are each followed by a
//! request with both Content-Length and Transfer-Encoding that must get 400 and never
//! reach an upstream.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// The smuggling shape of finding 3: both lengths, a path that must never be reached.
const SMUGGLED: &str = "DELETE /admin/users/1 HTTP/1.1\r\nHost: app.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

/// An upstream that switches every request with an `Upgrade` header to a tunnel that
/// echoes bytes back, answering with `Upgrade: switch_to` (or the protocol asked for, when
/// `None`); requests without `Upgrade` get a plain 200. A WebSocket key is answered with
/// an accept header derived from it.
async fn switching_upstream(switch_to: Option<&'static str>) -> Upstream {
    upstream_with(move |mut request: Request<Incoming>| async move {
        let Some(asked) = request.headers().get("upgrade").cloned() else {
            return Response::builder().body(full("plain")).unwrap();
        };
        let accept = request
            .headers()
            .get("sec-websocket-key")
            .map(|key| format!("accepted-{}", key.to_str().unwrap()));
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", switch_to.map_or(asked, http::HeaderValue::from_static));
        if let Some(accept) = accept {
            response = response.header("sec-websocket-accept", accept);
        }
        response.body(full("")).unwrap()
    })
    .await
}

/// A routes.toml with `upstream` as legacy and a `/ws/` route with `route_extra` lines.
fn ws_routes(upstream: &Upstream, route_extra: &str) -> String {
    routes_toml(
        &[("legacy", &upstream.url())],
        &format!("[[routes]]\nname = \"ws\"\npath = \"/ws/\"\n{route_extra}\n"),
    )
}

/// What the upstream saw, as `METHOD target` lines.
fn requests_seen(upstream: &Upstream) -> Vec<String> {
    upstream
        .seen()
        .iter()
        .map(|r| format!("{} {}", r.method, r.uri))
        .collect()
}

/// Sends `first` then [`SMUGGLED`] on one connection and returns both answers; the second
/// must be the 400 for ambiguous framing.
async fn assert_smuggled_is_refused(conn: &mut RawConn, what: &str) {
    let response = conn.read_response().await;
    assert_eq!(response.status, 400, "{what}: {}", response.body_text());
    assert!(
        response
            .body_text()
            .contains("both Content-Length and Transfer-Encoding"),
        "{what}: {}",
        response.body_text()
    );
    let rest = conn.closed_within(Duration::from_secs(5)).await;
    assert!(rest.is_some(), "{what}: the connection stayed open after the 400");
}

/// Proves: a WebSocket handshake through the proxy (default `upgrades`) gets the
/// upstream's 101 with its headers, and the tunnel carries bytes both ways, unchecked
/// (bytes that look like a smuggled request are the tunnel's, echoed unchanged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_still_tunnels_end_to_end() {
    let upstream = switching_upstream(None).await;
    let proxy = TestProxy::start(&ws_routes(&upstream, "")).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(
        b"GET /ws/chat HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    let (status, headers) = conn.read_head().await;
    assert_eq!(status, 101, "{headers:?}");
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("upgrade"), Some("WebSocket"));
    assert_eq!(
        header("sec-websocket-accept"),
        Some("accepted-dGhlIHNhbXBsZSBub25jZQ==")
    );
    conn.send(b"ping").await;
    assert_eq!(conn.read_exact_bytes(4).await, b"ping");
    conn.send(SMUGGLED.as_bytes()).await;
    assert_eq!(conn.read_exact_bytes(SMUGGLED.len()).await, SMUGGLED.as_bytes());
    let seen = upstream.seen();
    assert_eq!(requests_seen(&upstream), ["GET /ws/chat"]);
    assert_eq!(seen[0].headers["upgrade"], "WebSocket");
    assert_eq!(seen[0].headers["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
    drop(conn);
    proxy.stop().await;
}

/// Proves (finding 3, fails on the old main: the upstream switched and the DELETE reached
/// it byte for byte): `Upgrade: h2c` is never forwarded, nor `HTTP2-Settings`; the request
/// goes on as a plain one, and the bytes after it are parsed as HTTP, so the smuggled
/// request with both lengths gets 400 and never reaches the upstream.
#[tokio::test]
async fn h2c_is_never_forwarded_and_what_follows_is_checked_as_http() {
    let upstream = switching_upstream(None).await;
    // Even a route that allows every other protocol.
    let proxy = TestProxy::start(&ws_routes(&upstream, "upgrades = [\"websocket\", \"echo\"]")).await;
    for target in ["/ws/x", "/elsewhere"] {
        let mut conn = RawConn::connect(proxy.addr).await;
        conn.send(
            format!(
                "GET {target} HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                 Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n{SMUGGLED}"
            )
            .as_bytes(),
        )
        .await;
        let first = conn.read_response().await;
        assert_eq!(first.status, 200, "{target}: {}", first.body_text());
        assert_eq!(first.body_text(), "plain");
        assert_smuggled_is_refused(&mut conn, target).await;
    }
    assert_eq!(requests_seen(&upstream), ["GET /ws/x", "GET /elsewhere"]);
    for seen in upstream.seen() {
        for hop in ["upgrade", "http2-settings", "connection"] {
            assert!(
                !seen.headers.contains_key(hop),
                "{hop} reached the upstream: {:?}",
                seen.headers
            );
        }
    }
    println!(
        "figure: an `Upgrade h2c` request + a smuggled Content-Length + chunked request, upstream ready to switch: 2/2 (routed and unrouted) answered as plain requests, 0 Upgrade/HTTP2-Settings upstream, 0 smuggled requests upstream (was: 101, and the smuggled request reached the upstream byte for byte)"
    );
    proxy.stop().await;
}

/// Proves: a route with `upgrades = []` forwards no upgrade: the request goes on as a
/// plain one and the connection stays HTTP (the next request is answered, checked).
#[tokio::test]
async fn a_route_without_upgrades_opens_no_tunnel() {
    let upstream = switching_upstream(None).await;
    let proxy = TestProxy::start(&ws_routes(&upstream, "upgrades = []")).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(
        format!(
            "GET /ws/x HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n{SMUGGLED}"
        )
        .as_bytes(),
    )
    .await;
    let first = conn.read_response().await;
    assert_eq!(first.status, 200, "{}", first.body_text());
    assert!(!first.has_header("upgrade"));
    assert_smuggled_is_refused(&mut conn, "upgrades = []").await;
    assert_eq!(requests_seen(&upstream), ["GET /ws/x"]);
    assert!(!upstream.seen()[0].headers.contains_key("upgrade"));
    println!(
        "figure: route with `upgrades = []`: a WebSocket handshake answered as a plain request, no tunnel, the request behind it checked (400)"
    );
    proxy.stop().await;
}

/// Proves: a 101 that switches to another protocol than the client asked for is a 502
/// naming the upstream (`kind="protocol"`), no tunnel is opened, and the client's
/// connection stays HTTP.
#[tokio::test]
async fn a_101_to_another_protocol_is_a_502() {
    let upstream = switching_upstream(Some("h2c")).await;
    let proxy = TestProxy::start(&ws_routes(&upstream, "")).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(
        format!(
            "GET /ws/x HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n{SMUGGLED}"
        )
        .as_bytes(),
    )
    .await;
    let first = conn.read_response().await;
    assert_eq!(first.status, 502, "{}", first.body_text());
    assert!(first.body_text().contains("`legacy`"), "{}", first.body_text());
    assert_smuggled_is_refused(&mut conn, "a 101 to h2c").await;
    assert_eq!(requests_seen(&upstream), ["GET /ws/x"]);
    assert_eq!(
        metric(
            &proxy,
            "strangler_upstream_errors_total{kind=\"protocol\",upstream=\"legacy\"}"
        )
        .await,
        Some(1.0)
    );
    println!(
        "figure: 101 to another protocol than the one asked for: 502 `kind=\"protocol\"`, no tunnel, the request behind it checked (400)"
    );
    proxy.stop().await;
}

/// Proves (finding 5, each fails on the old main: the check switched off and the request
/// with both lengths got 200 from the upstream): an `Upgrade` header without an upgrade,
/// a chunk-size line longer than 4096 bytes, a trailer line longer than 4096 bytes, a
/// chunk size with more than 16 digits (leading zeros) and a bare LF in a trailer line
/// (the last two fail on main at 17fb4c6) no longer switch the framing check off; the
/// request with both lengths behind each never reaches the upstream.
#[tokio::test]
async fn inputs_that_switched_the_framing_check_off_no_longer_do() {
    let upstream = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &upstream.url())], "")).await;

    // An Upgrade header without `Connection: upgrade`: answered as a plain request, and
    // the next one is checked.
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(format!("GET /plain HTTP/1.1\r\nHost: app.example\r\nUpgrade: foo\r\n\r\n{SMUGGLED}").as_bytes())
        .await;
    assert_eq!(conn.read_response().await.status, 200);
    assert_smuggled_is_refused(&mut conn, "Upgrade without an upgrade").await;

    // A chunk size with 17 digits (leading zeros): hyper reads it as 5 and so does the
    // check now (it gave up on it), so the next request is checked.
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(
        format!(
            "POST /zeros HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n{SMUGGLED}"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(conn.read_response().await.status, 200);
    assert_smuggled_is_refused(&mut conn, "chunk size with leading zeros").await;

    // Over-long lines in a chunked body: the body is unreadable (400) and the connection
    // closes, so what follows is never parsed.
    let long = "x".repeat(5000);
    for (what, body) in [
        ("chunk-size line", format!("3;ext={long}\r\nabc\r\n0\r\n\r\n")),
        ("trailer line", format!("3\r\nabc\r\n0\r\nX-Trailer: {long}\r\n\r\n")),
        // A bare LF in a trailer line: hyper reads on in the trailers, the check took what
        // followed for a head whose Content-Length hid the request with both lengths.
        (
            "bare LF in a trailer line",
            format!(
                "3\r\nabc\r\n0\r\nX: a\n\r\nFoo: bar\r\nContent-Length: {}\r\n\r\n",
                SMUGGLED.len()
            ),
        ),
    ] {
        let mut conn = RawConn::connect(proxy.addr).await;
        conn.send(
            format!("POST /long HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n{body}{SMUGGLED}")
                .as_bytes(),
        )
        .await;
        let response = conn.read_response().await;
        assert_eq!(response.status, 400, "{what}: {}", response.body_text());
        let rest = conn.closed_within(Duration::from_secs(5)).await;
        let rest = rest.unwrap_or_else(|| panic!("{what}: the connection stayed open"));
        assert!(
            rest.is_empty(),
            "{what}: a second answer: {}",
            String::from_utf8_lossy(&rest)
        );
    }
    let seen = requests_seen(&upstream);
    assert!(!seen.iter().any(|r| r.starts_with("DELETE")), "smuggled: {seen:?}");
    assert_eq!(
        seen.iter().filter(|r| r.as_str() == "GET /plain").count(),
        1,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|r| r.as_str() == "POST /zeros").count(),
        1,
        "{seen:?}"
    );
    println!(
        "figure: inputs that switched the framing check off (`Upgrade` without an upgrade, chunk-size line > 4 096 B, trailer line > 4 096 B, a 17-digit zero-padded chunk size, a bare LF in a trailer line), each followed by Content-Length + chunked: all refused with 400, 0 smuggled requests upstream (was: each reached the upstream)"
    );
    proxy.stop().await;
}

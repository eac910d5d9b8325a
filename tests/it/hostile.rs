//! The hostile-request corpus: malformed, smuggling-shaped and path-confusing requests,
//! written byte for byte on raw sockets. Each gets the expected 4xx from the proxy (or from
//! hyper's parser in front of it) and none reaches an upstream; absolute-form targets that
//! name foreign hosts reach only the configured upstreams, routed by their path.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::support::*;

/// One hostile request and the status it must get.
struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    status: u16,
}

fn case(what: &'static str, bytes: impl AsRef<[u8]>, status: u16) -> Case {
    Case {
        what,
        bytes: bytes.as_ref().to_vec(),
        status,
    }
}

async fn get_text(url: &str) -> String {
    crate::support::get(url).await.body
}

/// A POST to a routed path with the given header lines (each ending in CRLF) and body.
fn post_request(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\n{headers}Connection: close\r\n\r\n{body}")
        .into_bytes()
}

fn corpus() -> Vec<Case> {
    let mut cases = vec![
        // Framing: smuggling shapes hyper's parser refuses itself.
        case(
            "two differing Content-Lengths",
            post_request("Content-Length: 3\r\nContent-Length: 11\r\n", "abchello world"),
            400,
        ),
        case("a Content-Length list", post_request("Content-Length: 3, 3\r\n", "abc"), 400),
        case("a signed Content-Length", post_request("Content-Length: +3\r\n", "abc"), 400),
        case("a negative Content-Length", post_request("Content-Length: -1\r\n", ""), 400),
        case(
            "an overflowing Content-Length",
            post_request("Content-Length: 99999999999999999999999\r\n", ""),
            400,
        ),
        case(
            "Transfer-Encoding whose last coding is not chunked",
            post_request("Transfer-Encoding: chunked, identity\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "Transfer-Encoding: xchunked",
            post_request("Transfer-Encoding: xchunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "Transfer-Encoding in HTTP/1.0",
            b"POST /api/thoughts/ HTTP/1.0\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            400,
        ),
        case(
            "obs-fold (a header continued on the next line)",
            b"GET /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nX-Folded: a\r\n b\r\nConnection: close\r\n\r\n",
            400,
        ),
        case(
            "obs-fold of Transfer-Encoding",
            post_request("Transfer-Encoding:\r\n chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "a bare CR in a header value",
            b"GET /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nX-A: a\rTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        case(
            "a NUL in a header value",
            b"GET /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nX-A: a\0b\r\nConnection: close\r\n\r\n",
            400,
        ),
        case(
            "a DEL in a header value",
            b"GET /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nX-A: a\x7fb\r\nConnection: close\r\n\r\n",
            400,
        ),
        case(
            "whitespace before a header's colon",
            post_request("Content-Length : 3\r\n", "abc"),
            400,
        ),
        case(
            "a header line without a colon",
            b"GET /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding chunked\r\nConnection: close\r\n\r\n",
            400,
        ),
        // Framing: shapes hyper accepts and strangler's guard refuses.
        case(
            "Content-Length then Transfer-Encoding (CL.TE)",
            post_request("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "Transfer-Encoding then Content-Length (TE.CL)",
            post_request("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "Content-Length: 0 with Transfer-Encoding: CHUNKED",
            post_request("Content-length: 0\r\nTransfer-Encoding: CHUNKED\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "Content-Length with Transfer-Encoding: gzip, chunked",
            post_request("Content-Length: 4\r\nTransfer-Encoding: gzip, chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "Transfer-Encoding: gzip, chunked",
            post_request("Transfer-Encoding: gzip, chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        case(
            "Transfer-Encoding on two lines",
            post_request(
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                "3\r\nabc\r\n0\r\n\r\n",
            ),
            400,
        ),
        case(
            "no Host header",
            b"GET /api/thoughts/ HTTP/1.1\r\nConnection: close\r\n\r\n",
            400,
        ),
        case(
            "two Host headers",
            b"GET /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            400,
        ),
        case(
            "a Host with user info",
            b"GET /api/thoughts/ HTTP/1.1\r\nHost: user@evil.example\r\nConnection: close\r\n\r\n",
            400,
        ),
        case(
            "a Host with a path",
            b"GET /api/thoughts/ HTTP/1.1\r\nHost: evil.example/x\r\nConnection: close\r\n\r\n",
            400,
        ),
        // Methods and request lines.
        case(
            "a lower-case method",
            b"get /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
            400,
        ),
        case(
            "a method with a non-token character",
            b"G@T /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\n\r\n",
            400,
        ),
        case(
            "a method with a control character",
            b"GE\x01T /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\n\r\n",
            400,
        ),
        case(
            "a method of 33 characters",
            format!("{} /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n", "A".repeat(33)),
            400,
        ),
        case(
            "two spaces in the request line",
            b"GET  /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\n\r\n",
            400,
        ),
        case(
            "a space in the target",
            b"GET /api/thoughts/ x HTTP/1.1\r\nHost: app.example\r\n\r\n",
            400,
        ),
        case(
            "a raw non-ASCII byte in the target",
            b"GET /api/thoughts/\xff HTTP/1.1\r\nHost: app.example\r\n\r\n",
            400,
        ),
        case(
            "an absolute-form target of another scheme",
            get_request("ftp://app.example/api/thoughts/"),
            400,
        ),
        case("an asterisk-form target on GET", get_request("*"), 400),
        case("CONNECT", b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", 405),
        case(
            "CONNECT to a loopback port",
            b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
            405,
        ),
        // Path confusion.
        case("`..` above the root", get_request("/.."), 400),
        case("`..` climbing out of a route", get_request("/api/thoughts/../../../etc/passwd"), 400),
        case("encoded dots `%2e%2e`", get_request("/%2e%2e/etc/passwd"), 400),
        case("mixed encoded dots `.%2E`", get_request("/api/.%2E/.%2e/x"), 400),
        case("an encoded slash `%2f`", get_request("/api/thoughts/..%2f..%2fadmin"), 400),
        case("an upper-case encoded slash `%2F`", get_request("/api/thoughts%2F1"), 400),
        case("an encoded NUL `%00`", get_request("/api/thoughts/1%00.json"), 400),
        case("an encoded backslash `%5c`", get_request("/api/thoughts/..%5c..%5cadmin"), 400),
        case("a raw backslash", get_request("/api/thoughts/..\\admin"), 400),
        case("`..;` (servlet path parameters)", get_request("/api/thoughts/..;/admin"), 400),
        case("a malformed escape", get_request("/api/thoughts/%zz"), 400),
        // Sizes.
        case(
            "a 100 KiB header",
            format!(
                "GET /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nX-Big: {}\r\n\r\n",
                "a".repeat(100 * 1024)
            ),
            431,
        ),
        case(
            "200 headers",
            format!(
                "GET /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\n{}\r\n",
                (0..200).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
            ),
            431,
        ),
        case(
            "a 100 KiB target",
            get_request(&format!("/api/thoughts/{}", "a".repeat(100 * 1024))),
            431,
        ),
    ];
    for (what, target) in [
        ("an absolute-form `..` climb", "http://app.example/../etc/passwd"),
        ("an absolute-form `%2f`", "http://app.example/api/thoughts/..%2fadmin"),
    ] {
        cases.push(case(what, get_request(target), 400));
    }
    cases
}

/// Proves that every request of the corpus gets its expected 4xx status, each on a fresh
/// connection, and that none of them reaches an upstream (no request seen, no connection
/// accepted).
#[tokio::test]
async fn hostile_requests_are_refused_and_never_reach_an_upstream() {
    let s = ThoughtsSetup::start("").await;
    let corpus = corpus();
    assert!(corpus.len() >= 30, "the corpus has only {} requests", corpus.len());
    let mut wrong = Vec::new();
    for case in &corpus {
        let response = raw_response(s.proxy.addr, &case.bytes).await;
        if response.status != case.status {
            wrong.push(format!(
                "{}: got {} (want {}): {}",
                case.what,
                response.status,
                case.status,
                response.body_text().trim_end()
            ));
        }
    }
    let (requests, connections) = s.upstream_traffic();
    println!(
        "figure: hostile requests: {}/{} refused with the expected status, {requests} reached an upstream ({connections} upstream connections)",
        corpus.len() - wrong.len(),
        corpus.len()
    );
    assert!(wrong.is_empty(), "unexpected answers:\n{}", wrong.join("\n"));
    assert_eq!((requests, connections), (0, 0), "hostile requests reached an upstream");

    // The proxy is still serving, and it does contact upstreams for a good request.
    let response = raw_response(s.proxy.addr, &get_request("/api/thoughts/1")).await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(s.upstream_traffic().0, 1);
    s.proxy.stop().await;
}

/// Proves that a Content-Length sent with `Transfer-Encoding: chunked` (CL.TE and TE.CL, in
/// both header orders, with a request smuggled behind the chunked body) gets 400, that no
/// upstream sees either request, and that the connection is closed after the 400, so the
/// smuggled request is never parsed. hyper would drop the Content-Length silently; the
/// proxy's framing check makes it visible (see the `guard` module).
#[tokio::test]
async fn content_length_with_chunked_is_refused_and_nothing_is_smuggled() {
    let s = ThoughtsSetup::start("").await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: app.example\r\n\r\n";
    let shapes = [
        ("CL then TE", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
        ("TE then CL", "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n"),
    ];
    for (order, headers) in shapes {
        let mut conn = RawConn::connect(s.proxy.addr).await;
        // A benign request first: the check follows the framing across requests.
        conn.send(b"GET /api/thoughts/1 HTTP/1.1\r\nHost: app.example\r\n\r\n")
            .await;
        assert_eq!(conn.read_response().await.status, 200, "{order}");
        conn.send(
            format!(
                "POST /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\n{headers}\r\n3\r\nabc\r\n0\r\n\r\n{smuggled}"
            )
            .as_bytes(),
        )
        .await;
        let response = conn.read_response().await;
        assert_eq!(response.status, 400, "{order}: {}", response.body_text());
        assert!(
            response
                .body_text()
                .contains("both Content-Length and Transfer-Encoding")
        );
        let rest = conn
            .closed_within(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{order}: the connection stayed open after an ambiguous request"));
        assert!(
            rest.is_empty(),
            "{order}: a second response: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
    let seen: Vec<String> = s
        .thoughts
        .seen()
        .iter()
        .chain(s.legacy.seen().iter())
        .map(|r| format!("{} {}", r.method, r.uri))
        .collect();
    println!(
        "figure: content-length with chunked: {}/{} header orders refused with 400, upstream saw {} of them and 0 smuggled requests",
        shapes.len(),
        shapes.len(),
        seen.iter().filter(|r| !r.starts_with("GET /api/thoughts/1")).count()
    );
    assert_eq!(
        seen,
        ["GET /api/thoughts/1", "GET /api/thoughts/1"],
        "only the benign requests"
    );
    s.proxy.stop().await;
}

/// Proves that absolute-form targets naming foreign hosts (another domain, an IP literal,
/// the address of a live server that is not an upstream, https, user info) are routed by
/// their path only: they reach the configured upstream of that path in origin form, and
/// the server they name is never contacted.
#[tokio::test]
async fn absolute_form_targets_reach_only_configured_upstreams_by_path() {
    let s = ThoughtsSetup::start("").await;
    let trap = echo_upstream("trap").await;
    let trap_authority = trap.addr.to_string();
    let targets = [
        (
            "http://evil.example/api/thoughts/1".to_owned(),
            "thoughts",
            "/api/thoughts/1",
        ),
        (
            format!("http://{trap_authority}/api/thoughts/2"),
            "thoughts",
            "/api/thoughts/2",
        ),
        (format!("http://{trap_authority}/admin"), "legacy", "/admin"),
        (
            "https://evil.example:8443/api/thoughts/3?x=1".to_owned(),
            "thoughts",
            "/api/thoughts/3",
        ),
        (
            "http://[::1]:1/api/thoughts/4".to_owned(),
            "thoughts",
            "/api/thoughts/4",
        ),
        ("http://user:pass@evil.example/page".to_owned(), "legacy", "/page"),
        (
            "http://evil.example/api/x/../thoughts/5".to_owned(),
            "thoughts",
            "/api/thoughts/5",
        ),
        ("http://evil.example".to_owned(), "legacy", "/"),
    ];
    let mut routed = 0;
    for (target, upstream, path) in &targets {
        let bytes = format!("GET {target} HTTP/1.1\r\nHost: {trap_authority}\r\nConnection: close\r\n\r\n");
        let response = raw_response(s.proxy.addr, bytes.as_bytes()).await;
        assert_eq!(response.status, 200, "{target}: {}", response.body_text());
        let answer = response.json();
        assert_eq!(answer["upstream"], *upstream, "{target}: {answer}");
        assert_eq!(answer["path"], *path, "{target}: {answer}");
        // The query goes with the path; the authority of the target goes nowhere.
        let query = target.split_once('?').map(|(_, query)| query);
        assert_eq!(answer["query"].as_str(), query, "{target}: {answer}");
        routed += 1;
    }
    for seen in s.thoughts.seen().iter().chain(s.legacy.seen().iter()) {
        assert!(
            seen.uri.authority().is_none(),
            "an upstream got an absolute target: {}",
            seen.uri
        );
    }
    let trap_seen = trap.connections();
    println!(
        "figure: absolute-form targets: {routed}/{} routed by path to configured upstreams, {trap_seen} connections to the hosts they named",
        targets.len()
    );
    assert_eq!(trap_seen, 0, "the named host was contacted");
    assert!(trap.seen().is_empty());
    s.proxy.stop().await;
}

/// Proves that a chunked body the client garbles is answered 400 (the client's fault, not
/// counted as an upstream error), not 502.
#[tokio::test]
async fn malformed_chunked_body_gets_400_not_502() {
    let s = ThoughtsSetup::start("").await;
    let response = raw_response(
        s.proxy.addr,
        &post_request("Transfer-Encoding: chunked\r\n", "zz\r\nabc\r\n0\r\n\r\n"),
    )
    .await;
    assert_eq!(response.status, 400, "{}", response.body_text());
    let metrics = get_text(&s.proxy.admin_url("/metrics")).await;
    assert!(
        !metrics.contains("strangler_upstream_errors_total{"),
        "counted as an upstream error:\n{metrics}"
    );
    s.proxy.stop().await;
}

// ---- Limits: a route's `max_body` (413) ----

/// An upstream behind a route with `max_body = 1024` that counts the request bodies it
/// received in full.
struct Limited {
    upstream: Upstream,
    complete_bodies: Arc<AtomicUsize>,
    proxy: TestProxy,
}

impl Limited {
    async fn start() -> Limited {
        Limited::start_with("").await
    }

    async fn start_with(proxy_extra: &str) -> Limited {
        let complete_bodies = Arc::new(AtomicUsize::new(0));
        let complete = complete_bodies.clone();
        let upstream = upstream_with(move |request: Request<Incoming>| {
            let complete = complete.clone();
            async move {
                match request.into_body().collect().await {
                    Ok(body) => {
                        complete.fetch_add(1, Ordering::SeqCst);
                        let json = serde_json::json!({"body_len": body.to_bytes().len()});
                        Response::new(full(json.to_string()))
                    }
                    Err(_) => Response::new(full("incomplete body")),
                }
            }
        })
        .await;
        let routes = "[[routes]]\nname = \"upload\"\npath = \"/upload/\"\nmax_body = 1024\n";
        let proxy = TestProxy::start(&routes_toml_with(
            proxy_extra,
            &[("legacy", &upstream.url(), "")],
            routes,
        ))
        .await;
        Limited {
            upstream,
            complete_bodies,
            proxy,
        }
    }

    fn requests_seen(&self) -> usize {
        self.upstream.seen().len()
    }
}

fn upload(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes =
        format!("POST /upload/file HTTP/1.1\r\nHost: app.example\r\n{headers}Connection: close\r\n\r\n").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Proves that a Content-Length over the route's `max_body` gets 413 from the header
/// alone (no upstream contacted, no 100 Continue asked of the client), and that a body of
/// exactly `max_body` bytes passes; other routes have no limit.
#[tokio::test]
async fn max_body_refuses_a_declared_length_over_the_limit_up_front() {
    let s = Limited::start().await;
    let response = raw_response(s.proxy.addr, &upload("Content-Length: 1025\r\n", &[b'x'; 1025])).await;
    assert_eq!(response.status, 413, "{}", response.body_text());
    assert!(
        response.body_text().contains("at most 1024 bytes"),
        "{}",
        response.body_text()
    );
    assert_eq!(response.header("connection"), Some("close"));

    // Expect: 100-continue: refused before the client sends the body.
    let mut conn = RawConn::connect(s.proxy.addr).await;
    conn.send(&upload("Content-Length: 1048576\r\nExpect: 100-continue\r\n", b""))
        .await;
    let (status, _) = conn.read_head().await;
    assert_eq!(status, 413, "a 100 Continue (or anything else) came before the 413");
    assert_eq!(s.upstream.connections(), 0, "the upstream was contacted");

    let response = raw_response(s.proxy.addr, &upload("Content-Length: 1024\r\n", &[b'x'; 1024])).await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.json()["body_len"], 1024);
    let other = raw_response(
        s.proxy.addr,
        &format!(
            "POST /elsewhere HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{}",
            "x".repeat(5000)
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(other.status, 200, "routes without max_body have no limit");
    let status_413 = wait_requests_total(s.proxy.admin, &[("route", "upload"), ("status", "413")], |v| v >= 2.0).await;
    assert_eq!(status_413, 2.0);
    println!("figure: max_body by Content-Length: 2/2 over-limit requests got 413 with 0 upstream connections");
    s.proxy.stop().await;
}

/// Proves that a chunked body over `max_body` gets 413: refused with nothing sent
/// upstream when its first read is already too large, and cut while streaming otherwise,
/// so that the upstream never receives a complete over-limit request.
#[tokio::test]
async fn max_body_counts_chunked_bodies_and_cuts_them() {
    let s = Limited::start().await;
    // One chunk of 2000 bytes: over the limit in the first read.
    let mut body = b"7d0\r\n".to_vec();
    body.extend_from_slice(&[b'x'; 2000]);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let response = raw_response(s.proxy.addr, &upload("Transfer-Encoding: chunked\r\n", &body)).await;
    assert_eq!(response.status, 413, "{}", response.body_text());
    assert_eq!(
        s.requests_seen(),
        0,
        "the upstream got the head of an over-limit first read"
    );

    // 600 bytes, a pause the proxy must wait through, then 600 more: the upstream has the
    // head and the first chunk when the limit is crossed; it never gets the whole body.
    let mut conn = RawConn::connect(s.proxy.addr).await;
    let mut first = upload("Transfer-Encoding: chunked\r\n", b"258\r\n");
    first.extend_from_slice(&[b'x'; 600]);
    first.extend_from_slice(b"\r\n");
    conn.send(&first).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    while s.requests_seen() == 0 && tokio::time::Instant::now() < deadline {
        backoff.pause().await;
    }
    assert_eq!(s.requests_seen(), 1, "the first chunk was not streamed upstream");
    let mut rest = b"258\r\n".to_vec();
    rest.extend_from_slice(&[b'x'; 600]);
    rest.extend_from_slice(b"\r\n0\r\n\r\n");
    conn.send(&rest).await;
    let response = conn.read_response().await;
    assert_eq!(response.status, 413, "{}", response.body_text());

    // Within the limit, chunked bodies pass.
    let mut body = b"3e8\r\n".to_vec();
    body.extend_from_slice(&[b'x'; 1000]);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let response = raw_response(s.proxy.addr, &upload("Transfer-Encoding: chunked\r\n", &body)).await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.json()["body_len"], 1000);
    let complete = s.complete_bodies.load(Ordering::SeqCst);
    println!(
        "figure: max_body for chunked bodies: 2/2 over-limit requests got 413; complete over-limit bodies upstream: {}",
        complete - 1
    );
    assert_eq!(complete, 1, "an over-limit body reached the upstream complete");
    let metrics = get_text(&s.proxy.admin_url("/metrics")).await;
    assert!(
        !metrics.contains("strangler_upstream_errors_total{"),
        "a cut body counted as an upstream error:\n{metrics}"
    );
    s.proxy.stop().await;
}

/// Proves that a bare LF cannot smuggle a header inside another one's value: it ends the
/// line for the proxy (RFC 9112 §2.2), the upstream gets the same two separate headers
/// (written with CRLF), and a `Transfer-Encoding` hidden that way is judged like any other
/// (here: 400 for `gzip, chunked`).
#[tokio::test]
async fn a_bare_lf_ends_a_header_line_and_hides_nothing() {
    let s = ThoughtsSetup::start("").await;
    let response = raw_response(
        s.proxy.addr,
        b"GET /api/thoughts/1 HTTP/1.1\r\nHost: app.example\r\nX-A: a\nX-Injected: 1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    let seen = s.thoughts.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["x-a"], "a");
    assert_eq!(seen[0].headers["x-injected"], "1");

    let response = raw_response(
        s.proxy.addr,
        b"POST /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nX-A: a\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 400, "{}", response.body_text());
    assert_eq!(
        s.upstream_traffic().0,
        1,
        "the hidden Transfer-Encoding reached an upstream"
    );
    s.proxy.stop().await;
}

/// Proves that a chunked body whose first bytes are slow (beyond `client_header_timeout`)
/// is not held up by the first-read check: the request goes upstream, streams, and is
/// answered normally when it stays within `max_body`.
#[tokio::test]
async fn max_body_does_not_stall_a_slow_chunked_body() {
    let s = Limited::start_with("client_header_timeout = \"200ms\"").await;
    let mut conn = RawConn::connect(s.proxy.addr).await;
    conn.send(&upload("Transfer-Encoding: chunked\r\n", b"")).await;
    // The head alone reaches the upstream once the proxy stops waiting for a first chunk.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    while s.requests_seen() == 0 && tokio::time::Instant::now() < deadline {
        backoff.pause().await;
    }
    assert_eq!(s.requests_seen(), 1, "the request waited for its first chunk");
    conn.send(b"5\r\nhello\r\n0\r\n\r\n").await;
    let response = conn.read_response().await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.json()["body_len"], 5);
    s.proxy.stop().await;
}

/// Repeated identical `Content-Length` values and leading zeros (issue 18, finding 7): hyper's
/// parser takes them as one length, which RFC 9112 §6.3 allows ("a recipient MAY … treat
/// [identical values] as a single valid Content-Length") and `1*DIGIT` makes `003` a valid
/// spelling of 3. strangler does the same and says so in README; what matters is that the
/// upstream gets exactly one length, the one the body has, and no second request hides in it.
#[tokio::test]
async fn identical_repeated_and_zero_padded_lengths_are_one_length_upstream() {
    let s = ThoughtsSetup::start("").await;
    for (what, headers) in [
        (
            "two identical Content-Lengths",
            "Content-Length: 3\r\nContent-Length: 3\r\n",
        ),
        ("a zero-padded Content-Length", "Content-Length: 003\r\n"),
    ] {
        let before = s.thoughts.seen().len();
        let response = raw_response(
            s.proxy.addr,
            &post_request(headers, "abcGET /smuggled HTTP/1.1\r\n\r\n"),
        )
        .await;
        assert_eq!(response.status, 200, "{what}: {}", response.body_text());
        assert_eq!(response.json()["body_len"], 3, "{what}: {}", response.body_text());
        let seen = s.thoughts.seen();
        assert_eq!(
            seen.len(),
            before + 1,
            "{what}: one request reached the upstream, no smuggled one"
        );
        let lengths: Vec<&http::HeaderValue> = seen[before].headers.get_all("content-length").iter().collect();
        assert_eq!(lengths, ["3"], "{what}: the upstream gets one normalised length");
    }
    s.proxy.stop().await;
}

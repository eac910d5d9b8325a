//! HTTP/2: downstream over TLS by ALPN and as h2c (prior knowledge) on a plain port that
//! keeps serving HTTP/1.1; upstream `http2 = true` to h2c and h2-over-TLS upstreams,
//! multiplexed on few connections and reopened when the upstream closes them; streaming
//! bodies and trailers; graceful shutdown of an HTTP/2 connection; and real clients
//! (`curl --http2`, `h2load`) when they are installed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpStream;

use crate::support::tls::*;
use crate::support::*;

/// An upstream answering `ok` and naming the protocol it was asked in.
async fn version_upstream(options: UpstreamOptions) -> TestUpstream {
    test_upstream(options, |request: Request<Incoming>| async move {
        Response::builder()
            .header("x-upstream-version", format!("{:?}", request.version()))
            .body(full("ok"))
            .unwrap()
    })
    .await
}

/// A TLS proxy (certificate for `app.example` and 127.0.0.1) in front of `legacy_url`.
async fn tls_proxy(ca: &Ca, legacy_url: &str, legacy_extra: &str) -> TestProxy {
    let leaf = ca.leaf(&["app.example", "127.0.0.1"]);
    let routes = routes_toml_with(&tls_section(&[]), &[("legacy", legacy_url, legacy_extra)], "");
    proxy_with_files(
        &[("default.pem", &leaf.cert_pem), ("default.key", &leaf.key_pem)],
        &routes,
    )
    .await
}

async fn h2c_get(addr: std::net::SocketAddr, path: &str) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let request = Request::get(format!("http://app.example:{}{path}", addr.port()))
        .body(full(""))
        .unwrap();
    send_over(stream, true, request).await
}

#[tokio::test(flavor = "multi_thread")]
async fn h2_over_tls_by_alpn_with_http1_on_the_same_port() {
    let ca = Ca::new("listener CA");
    let legacy = version_upstream(UpstreamOptions::plain()).await;
    let proxy = tls_proxy(&ca, &format!("http://{}", legacy.addr), "").await;

    let reply = https_get(
        proxy.addr,
        "app.example",
        client_config(&ca, ANY_TLS, &[b"h2", b"http/1.1"]),
        "/a",
    )
    .await;
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok");
    // The upstream is HTTP/1.1: the proxy spoke HTTP/1.1 to it.
    assert_eq!(reply.headers["x-upstream-version"], "HTTP/1.1");

    let reply = https_get(
        proxy.addr,
        "app.example",
        client_config(&ca, ANY_TLS, &[b"http/1.1"]),
        "/b",
    )
    .await;
    assert_eq!(reply.version, Version::HTTP_11);
    assert_eq!(reply.status, 200);

    // An HTTP/2 request has `:authority`, no `Host`: the upstream gets the same Host and
    // X-Forwarded-Host as from the HTTP/1.1 request.
    let seen = legacy.seen();
    assert_eq!(seen.len(), 2);
    let authority = format!("app.example:{}", proxy.addr.port());
    for request in &seen {
        assert_eq!(request.headers["host"], authority.as_str(), "{}", request.uri);
        assert_eq!(request.headers["x-forwarded-host"], authority.as_str());
        assert_eq!(request.headers["x-forwarded-proto"], "https");
        assert_eq!(
            request.uri.to_string(),
            if request.uri.path() == "/a" { "/a" } else { "/b" }
        );
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_prior_knowledge_and_http1_share_the_plain_port() {
    let legacy = version_upstream(UpstreamOptions::plain()).await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &format!("http://{}", legacy.addr))], "")).await;

    let reply = h2c_get(proxy.addr, "/h2c").await;
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok");

    let answer = get(&proxy.url("/http1")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "ok");

    // A request that starts like the preface (`P…`) is still HTTP/1.1, however it is split.
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(b"P").await;
    conn.send(b"OST /post HTTP/1.1\r\nHost: app.example\r\nContent-Length: 2\r\n\r\nhi")
        .await;
    let response = conn.read_response().await;
    assert_eq!(response.status, 200);

    let seen = legacy.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].headers["host"], format!("app.example:{}", proxy.addr.port()));
    assert_eq!(seen[0].headers["x-forwarded-proto"], "http");
    assert_eq!(seen[2].uri.path(), "/post");
    proxy.stop().await;
}

/// Proves: `max_header_bytes` caps an HTTP/2 request's header list too: a header list over
/// the cap gets 431 (from the HTTP/2 layer, before the proxy sees it) and reaches no
/// upstream, while a smaller one on the same connection is served.
#[tokio::test(flavor = "multi_thread")]
async fn max_header_bytes_caps_http2_header_lists() {
    const CAP: usize = 16 * 1024;
    let legacy = version_upstream(UpstreamOptions::plain()).await;
    let routes = routes_toml_with(
        &format!("max_header_bytes = {CAP}"),
        &[("legacy", &format!("http://{}", legacy.addr), "")],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = |path: &str, padding: usize| {
        Request::get(format!("http://app.example:{}{path}", proxy.addr.port()))
            .header("x-padding", "p".repeat(padding))
            .body(full(""))
            .unwrap()
    };

    let over = sender.send_request(request("/over", CAP + 1024)).await.unwrap();
    assert_eq!(over.status(), 431, "a header list over the cap");
    assert!(
        legacy.seen().is_empty(),
        "an oversized header list reached the upstream"
    );

    sender
        .ready()
        .await
        .expect("the connection did not survive the refusal");
    let under = sender.send_request(request("/under", CAP / 2)).await.unwrap();
    assert_eq!(under.status(), 200);
    assert_eq!(legacy.seen().len(), 1);
    assert_eq!(legacy.seen()[0].uri.path(), "/under");
    proxy.stop().await;
}

#[tokio::test]
async fn a_stalled_preface_is_closed_after_the_header_timeout() {
    let legacy = version_upstream(UpstreamOptions::plain()).await;
    let routes = routes_toml_with(
        "client_header_timeout = \"300ms\"",
        &[("legacy", &format!("http://{}", legacy.addr), "")],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    for stalled in [&b"PRI * HTTP/2.0\r\n"[..], b""] {
        let mut conn = RawConn::connect(proxy.addr).await;
        conn.send(stalled).await;
        let closed = conn.closed_within(Duration::from_secs(3)).await;
        assert!(closed.is_some(), "connection with {stalled:?} still open");
    }
    assert!(legacy.seen().is_empty());
    proxy.stop().await;
}

/// Sends `count` requests at once through `proxy` (HTTP/1.1 clients, so that they land on
/// every worker) and asserts each was answered by an HTTP/2 upstream.
async fn burst(proxy: &TestProxy, count: usize) {
    let client = client();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let client = client.clone();
        let url = proxy.url(&format!("/burst/{i}"));
        tasks.spawn(async move { send(&client, Request::get(url).body(full("")).unwrap()).await });
    }
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.headers["x-upstream-version"], "HTTP/2.0");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_upstream_h2c_multiplexes_many_requests_on_few_connections() {
    let upstream = version_upstream(UpstreamOptions {
        h2_only: true,
        ..UpstreamOptions::plain()
    })
    .await;
    let routes = routes_toml_with(
        "workers = 2",
        &[("legacy", &format!("http://{}", upstream.addr), "http2 = true")],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    burst(&proxy, 200).await;
    let seen = upstream.seen();
    assert_eq!(seen.len(), 200);
    assert!(seen.iter().all(|r| r.version == Version::HTTP_2));
    // HTTP/2 carries the authority as `:authority` (in the URI), not as a Host header.
    assert_eq!(
        seen[0].uri.authority().map(|a| a.as_str().to_owned()),
        Some(proxy.addr.to_string())
    );
    assert!(!seen[0].headers.contains_key("host"));
    assert!(
        (1..=2).contains(&upstream.connections()),
        "{} upstream connections for 2 workers",
        upstream.connections()
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_upstream_over_tls_multiplexes_many_requests_on_few_connections() {
    let upstream_ca = Ca::new("upstream CA");
    let upstream = version_upstream(UpstreamOptions {
        tls: Some(upstream_ca.leaf(&["127.0.0.1"])),
        h2_only: true,
        ..UpstreamOptions::plain()
    })
    .await;
    let routes = routes_toml_with(
        "workers = 2",
        &[(
            "legacy",
            &format!("https://{}", upstream.addr),
            "http2 = true\nca_file = \"ca.pem\"",
        )],
        "",
    );
    let proxy = proxy_with_files(&[("ca.pem", &upstream_ca.pem)], &routes).await;
    burst(&proxy, 200).await;
    let seen = upstream.seen();
    assert_eq!(seen.len(), 200);
    assert_eq!(seen[0].uri.scheme_str(), Some("https"));
    assert!(
        (1..=2).contains(&upstream.connections()),
        "{} upstream connections for 2 workers",
        upstream.connections()
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_upstream_connection_is_reopened_after_the_upstream_closes_it() {
    let upstream = version_upstream(UpstreamOptions {
        h2_only: true,
        requests_per_connection: Some(3),
        ..UpstreamOptions::plain()
    })
    .await;
    let routes = routes_toml_with(
        "workers = 1",
        &[("legacy", &format!("http://{}", upstream.addr), "http2 = true")],
        "",
    );
    let proxy = TestProxy::start(&routes).await;
    for i in 0..12 {
        let answer = get(&proxy.url(&format!("/one-by-one/{i}"))).await;
        assert_eq!(answer.status, 200, "request {i}: {}", answer.body);
    }
    assert_eq!(upstream.seen().len(), 12);
    assert!(upstream.connections() >= 4, "{} connections", upstream.connections());
    proxy.stop().await;
}

/// A streamed body: its sender, and the body to send or answer with.
fn channel_body() -> (http_body_util::channel::Sender<Bytes>, BoxBody) {
    let (sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
    (sender, body.map_err(|never| match never {}).boxed())
}

/// An upstream that reads the request body and its trailers, then answers with two chunks
/// (the second only once `release` is notified) and trailers that say what it received.
async fn streaming_upstream(options: UpstreamOptions, release: Arc<tokio::sync::Notify>) -> TestUpstream {
    test_upstream(options, move |request: Request<Incoming>| {
        let release = release.clone();
        async move {
            let collected = request.into_body().collect().await.unwrap();
            let checksum = collected
                .trailers()
                .and_then(|t| t.get("x-request-checksum"))
                .map_or_else(|| "none".to_owned(), |v| v.to_str().unwrap().to_owned());
            let received = collected.to_bytes().len();
            let (mut sender, body) = channel_body();
            tokio::spawn(async move {
                sender.send_data(Bytes::from("first;")).await.unwrap();
                release.notified().await;
                sender.send_data(Bytes::from("second")).await.unwrap();
                let mut trailers = HeaderMap::new();
                trailers.insert("x-received", HeaderValue::from(received));
                trailers.insert("x-request-checksum", HeaderValue::from_str(&checksum).unwrap());
                sender.send_trailers(trailers).await.unwrap();
            });
            Response::new(body)
        }
    })
    .await
}

/// An HTTP/2 client sends a streamed body with trailers through the proxy to an HTTP/2
/// upstream; the answer streams back (its first chunk arrives while the upstream still
/// holds the second) and its trailers arrive too.
#[tokio::test(flavor = "multi_thread")]
async fn streaming_bodies_and_trailers_cross_http2_both_ways() {
    let release = Arc::new(tokio::sync::Notify::new());
    let upstream = streaming_upstream(
        UpstreamOptions {
            h2_only: true,
            ..UpstreamOptions::plain()
        },
        release.clone(),
    )
    .await;
    let routes = routes_toml_with(
        "",
        &[("legacy", &format!("http://{}", upstream.addr), "http2 = true")],
        "",
    );
    let proxy = TestProxy::start(&routes).await;

    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut client, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let (mut request_body, body) = channel_body();
    let request = Request::post(format!("http://app.example:{}/stream", proxy.addr.port()))
        .header("te", "trailers")
        .body(body)
        .unwrap();
    let responding = tokio::spawn(async move { client.send_request(request).await.unwrap() });
    for chunk in ["abc", "defg", "hij"] {
        request_body.send_data(Bytes::from(chunk)).await.unwrap();
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("x-request-checksum", HeaderValue::from_static("c0ffee"));
    request_body.send_trailers(trailers).await.unwrap();
    drop(request_body);

    let response = tokio::time::timeout(Duration::from_secs(5), responding)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first chunk did not stream through")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first;");
    release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .unwrap()
        .unwrap();
    let trailers = rest.trailers().cloned().expect("no trailers reached the client");
    assert_eq!(rest.to_bytes(), "second");
    assert_eq!(trailers["x-received"], "10");
    assert_eq!(
        trailers["x-request-checksum"], "c0ffee",
        "request trailers reached the upstream"
    );
    // TE is hop-by-hop, yet an HTTP/2 upstream hears `te: trailers` again (gRPC needs it).
    assert_eq!(upstream.seen()[0].headers["te"], "trailers");
    proxy.stop().await;
}

/// An HTTP/2 request still running when shutdown starts completes; then the proxy stops.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_an_http2_stream_finish() {
    let release = Arc::new(tokio::sync::Notify::new());
    let upstream = streaming_upstream(UpstreamOptions::plain(), release.clone()).await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &format!("http://{}", upstream.addr))], "")).await;
    let state = proxy.state.clone();

    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut client, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("http://app.example:{}/slow", proxy.addr.port()))
        .body(full(""))
        .unwrap();
    let response = client.send_request(request).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "first;");

    let stopping = tokio::spawn(proxy.stop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while state.is_ready() {
        assert!(tokio::time::Instant::now() < deadline, "shutdown did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest.to_bytes(), "second");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the proxy did not stop once its HTTP/2 stream ended")
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Real clients
// ---------------------------------------------------------------------------------------

/// Runs a program (bounded to 60 s) and returns its stdout; panics on failure.
async fn run(program: &str, args: &[&str]) -> String {
    let output = output(tokio::process::Command::new(program).args(args)).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_speaks_http2_over_tls_and_h2c_and_http1_on_the_same_ports() {
    if !tool("curl", "curl") {
        return;
    }
    let ca = Ca::new("listener CA");
    let legacy = version_upstream(UpstreamOptions::plain()).await;
    let tls = tls_proxy(&ca, &format!("http://{}", legacy.addr), "").await;
    let plain = TestProxy::start(&routes_toml(&[("legacy", &format!("http://{}", legacy.addr))], "")).await;
    let ca_file = tls.dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let port = tls.addr.port().to_string();
    let resolve = format!("app.example:{port}:127.0.0.1");
    let https_url = format!("https://app.example:{port}/curl");
    let h2c_url = plain.url("/curl");
    let ca_path = ca_file.to_str().unwrap();

    let cases: [(&[&str], &str); 4] = [
        (
            &["--http2", "--cacert", ca_path, "--resolve", &resolve, &https_url],
            "2",
        ),
        (
            &["--http1.1", "--cacert", ca_path, "--resolve", &resolve, &https_url],
            "1.1",
        ),
        (&["--http2-prior-knowledge", &h2c_url], "2"),
        (&["--http1.1", &h2c_url], "1.1"),
    ];
    for (args, version) in cases {
        let mut all = vec![
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            "--write-out",
            " %{http_code} %{http_version}",
        ];
        all.extend_from_slice(args);
        let out = run("curl", &all).await;
        assert_eq!(out, format!("ok 200 {version}"), "curl {args:?}");
    }
    assert_eq!(legacy.seen().len(), 4);
    tls.stop().await;
    plain.stop().await;
}

/// h2load's summary line: `requests: N total, N started, N done, N succeeded, N failed, …`.
fn succeeded(report: &str) -> (u64, u64) {
    let line = report
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no requests line in\n{report}"));
    let count = |what: &str| {
        line.split(',')
            .find_map(|part| part.trim().trim_start_matches("requests:").trim().strip_suffix(what))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{what}` in {line}"))
    };
    (count("succeeded"), count("failed"))
}

#[tokio::test(flavor = "multi_thread")]
async fn h2load_over_tls_and_h2c_with_an_http2_upstream() {
    if !tool("h2load", "nghttp2-client") {
        return;
    }
    let ca = Ca::new("listener CA");
    let upstream = version_upstream(UpstreamOptions {
        h2_only: true,
        ..UpstreamOptions::plain()
    })
    .await;
    let url = format!("http://{}", upstream.addr);
    let tls = tls_proxy(&ca, &url, "http2 = true").await;
    let plain = TestProxy::start(&routes_toml_with("", &[("legacy", &url, "http2 = true")], "")).await;
    let requests = 2000;
    for (target, protocol) in [
        (format!("https://127.0.0.1:{}/load", tls.addr.port()), "h2"),
        (plain.url("/load"), "h2c"),
    ] {
        let report = run(
            "h2load",
            &["-n", &requests.to_string(), "-c", "4", "-m", "16", "-t", "1", &target],
        )
        .await;
        assert!(
            report.contains(&format!("Application protocol: {protocol}")),
            "{report}"
        );
        assert_eq!(succeeded(&report), (requests, 0), "{report}");
        assert!(report.contains(&format!("status codes: {requests} 2xx")), "{report}");
    }
    assert_eq!(upstream.seen().len(), 2 * requests as usize);
    // Two proxies, each with one HTTP/2 connection per worker (and this machine's cores).
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        upstream.connections() <= 2 * workers,
        "{} upstream connections",
        upstream.connections()
    );
    tls.stop().await;
    plain.stop().await;
}

/// Proves: an HTTP/2 `:authority` is checked like `Host` (RFC 9113 §8.3.1): user info in
/// it, or a `host` header naming another authority, is a 400 that reaches no upstream;
/// a `host` equal to `:authority` (case aside) is served. Today's main forwarded
/// `user@evil` as the Host and let a differing `host` header win.
#[tokio::test(flavor = "multi_thread")]
async fn http2_authority_is_checked_like_host() {
    let legacy = version_upstream(UpstreamOptions::plain()).await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &format!("http://{}", legacy.addr))], "")).await;
    let port = proxy.addr.port();
    let cases = [
        ("user info", format!("http://user@evil.example:{port}/x"), None, 400),
        (
            "host differs",
            format!("http://app.example:{port}/x"),
            Some("other.example".to_owned()),
            400,
        ),
        (
            "host without the port",
            format!("http://app.example:{port}/x"),
            Some("app.example".to_owned()),
            400,
        ),
        (
            "host equal but for case",
            format!("http://app.example:{port}/x"),
            Some(format!("APP.example:{port}")),
            200,
        ),
        ("authority only", format!("http://app.example:{port}/x"), None, 200),
    ];
    for (case, uri, host, status) in cases {
        let mut request = Request::get(uri.as_str());
        if let Some(host) = &host {
            request = request.header("host", host.as_str());
        }
        let stream = TcpStream::connect(proxy.addr).await.unwrap();
        let reply = send_over(stream, true, request.body(full("")).unwrap()).await;
        assert_eq!(reply.version, Version::HTTP_2, "{case}");
        assert_eq!(reply.status, status, "{case}: {:?}", reply.body);
    }
    let seen = legacy.seen();
    assert_eq!(seen.len(), 2, "only the good requests reach the upstream: {seen:?}");
    assert!(seen.iter().all(|s| !s.headers["host"].as_bytes().contains(&b'@')));
    proxy.stop().await;
}

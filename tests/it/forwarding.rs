//! What crosses the proxy and how: headers, request ids, pooling, routing, streaming,
//! `Expect`, chunked bodies, upgrades, upstream failures, graceful shutdown, metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::support::binary::BinaryProxy;
use crate::support::*;

const THOUGHTS_ROUTE: &str =
    "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n";

/// A proxy with `legacy` as default and the `thoughts-api` prefix route to `thoughts`.
async fn thoughts_proxy(legacy: &Upstream, thoughts: &Upstream) -> TestProxy {
    TestProxy::start(&routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
        THOUGHTS_ROUTE,
    ))
    .await
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_towards_the_upstream() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    let response = raw_response(
        proxy.addr,
        b"GET /api/thoughts/1 HTTP/1.1\r\n\
          Host: app.example\r\n\
          Connection: keep-alive, X-Custom-Hop\r\n\
          Keep-Alive: timeout=5\r\n\
          TE: trailers\r\n\
          Trailer: X-Checksum\r\n\
          Proxy-Authorization: Basic Zm9vOmJhcg==\r\n\
          Proxy-Connection: keep-alive\r\n\
          Upgrade: h2c\r\n\
          X-Custom-Hop: secret\r\n\
          Authorization: Bearer end-to-end\r\n\
          Cookie: session=abc\r\n\
          X-End-To-End: kept\r\n\
          \r\n",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.json()["upstream"], "thoughts");

    let seen = thoughts.seen();
    assert_eq!(seen.len(), 1);
    let headers = &seen[0].headers;
    for hop in [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
        "x-custom-hop",
    ] {
        assert!(
            !headers.contains_key(hop),
            "hop-by-hop `{hop}` reached the upstream: {:?}",
            header_map(headers)
        );
    }
    assert_eq!(headers["authorization"], "Bearer end-to-end");
    assert_eq!(headers["cookie"], "session=abc");
    assert_eq!(headers["x-end-to-end"], "kept");
    proxy.stop().await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_towards_the_client() {
    let legacy = upstream_with(|_request: Request<Incoming>| async {
        Response::builder()
            .header("connection", "x-hop")
            .header("x-hop", "1")
            .header("keep-alive", "timeout=5")
            .header("x-end-to-end", "kept")
            .header("set-cookie", "a=b")
            .body(full("hello"))
            .unwrap()
    })
    .await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;

    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(b"GET /page HTTP/1.1\r\nHost: app.example\r\n\r\n").await;
    let response = conn.read_response().await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body_text(), "hello");
    assert!(!response.has_header("x-hop"), "{:?}", response.headers);
    assert!(!response.has_header("keep-alive"), "{:?}", response.headers);
    assert!(
        response
            .headers
            .iter()
            .filter(|(k, _)| k == "connection")
            .all(|(_, v)| !v.to_ascii_lowercase().contains("x-hop")),
        "{:?}",
        response.headers
    );
    assert_eq!(response.header("x-end-to-end"), Some("kept"));
    assert_eq!(response.header("set-cookie"), Some("a=b"));
    assert_eq!(legacy.seen().len(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn forwarding_headers_and_via_are_set_and_host_is_kept() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    let request = Request::get(proxy.url("/api/thoughts/7"))
        .header("host", "app.example.com:8443")
        .header("x-forwarded-for", "203.0.113.7")
        .body(full(""))
        .unwrap();
    let answer = send(&client(), request).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers["via"], "1.1 strangler");

    let seen = thoughts.seen();
    assert_eq!(seen.len(), 1);
    let headers = &seen[0].headers;
    assert_eq!(headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(headers.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "app.example.com:8443");
    assert_eq!(headers["via"], "1.1 strangler");
    assert_eq!(headers["host"], "app.example.com:8443");
    proxy.stop().await;
}

#[tokio::test]
async fn request_id_is_kept_when_sent() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    let request = Request::get(proxy.url("/api/thoughts/1"))
        .header("x-request-id", "client-chosen-42")
        .body(full(""))
        .unwrap();
    let answer = send(&client(), request).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["x-request-id"], "client-chosen-42");
    let seen = thoughts.seen();
    assert_eq!(seen[0].headers["x-request-id"], "client-chosen-42");
    assert_eq!(seen[0].headers.get_all("x-request-id").iter().count(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn request_id_is_generated_and_the_same_both_ways() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    let first = get(&proxy.url("/api/thoughts/1")).await;
    let second = get(&proxy.url("/api/thoughts/2")).await;
    let ids: Vec<String> = [&first, &second]
        .iter()
        .map(|a| a.headers["x-request-id"].to_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        assert!(is_uuid(id), "not a UUID: {id:?}");
    }
    assert_ne!(ids[0], ids[1], "two requests got the same id");
    let seen = thoughts.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers["x-request-id"], ids[0].as_str());
    assert_eq!(seen[1].headers["x-request-id"], ids[1].as_str());
    proxy.stop().await;
}

#[tokio::test]
async fn request_id_is_on_a_502_too() {
    let gone = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &format!("http://{gone}"))], "")).await;

    let generated = get(&proxy.url("/anything")).await;
    assert_eq!(generated.status, 502);
    let id = generated.headers["x-request-id"].to_str().unwrap();
    assert!(is_uuid(id), "not a UUID: {id:?}");

    let request = Request::get(proxy.url("/anything"))
        .header("x-request-id", "trace-me-502")
        .body(full(""))
        .unwrap();
    let kept = send(&client(), request).await;
    assert_eq!(kept.status, 502);
    assert_eq!(kept.headers["x-request-id"], "trace-me-502");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_reuses_pooled_upstream_connections() {
    let legacy = upstream_with(|_request: Request<Incoming>| async { Response::new(full("ok")) }).await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;

    // One client connection, 50 requests in sequence.
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let requests = 50;
    let all = tokio::time::timeout(Duration::from_secs(10), async {
        for i in 0..requests {
            sender.ready().await.unwrap();
            let request = Request::get(format!("/item/{i}"))
                .header("host", "app.example")
                .body(full(""))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"ok");
        }
    })
    .await;
    assert!(all.is_ok(), "50 sequential requests took over 10 s");
    assert_eq!(legacy.seen().len(), requests);
    let opened = legacy.connections();
    assert!(
        opened <= 2,
        "{opened} upstream connections for {requests} sequential requests: not pooled"
    );
    assert!(!driver.is_finished(), "the client connection was closed by the proxy");
    drop(sender);
    proxy.stop().await;
}

#[tokio::test]
async fn routes_by_exact_template_prefix_and_method() {
    let legacy = echo_upstream("legacy").await;
    let exact = echo_upstream("exact").await;
    let template = echo_upstream("template").await;
    let thoughts = echo_upstream("thoughts").await;
    let orders = echo_upstream("orders").await;
    let routes = "[[routes]]\nname = \"health\"\nexact = \"/api/health\"\nstage = \"new\"\nnew = \"exact\"\n\n\
                  [[routes]]\nname = \"user-posts\"\npath = \"/api/users/{id}/posts\"\nstage = \"new\"\nnew = \"template\"\n\n\
                  [[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n\n\
                  [[routes]]\nname = \"orders-write\"\npath = \"/api/orders/\"\nmethods = [\"POST\"]\nstage = \"new\"\nnew = \"orders\"\n";
    let proxy = TestProxy::start(&routes_toml(
        &[
            ("legacy", &legacy.url()),
            ("exact", &exact.url()),
            ("template", &template.url()),
            ("thoughts", &thoughts.url()),
            ("orders", &orders.url()),
        ],
        routes,
    ))
    .await;

    let cases: [(&str, &str, &str); 10] = [
        ("GET", "/api/health", "exact"),
        ("GET", "/api/health/deep", "legacy"),
        ("GET", "/api/users/42/posts", "template"),
        ("GET", "/api/users/42/posts/7", "legacy"),
        ("GET", "/api/thoughts", "thoughts"),
        ("GET", "/api/thoughts/5/replies", "thoughts"),
        ("GET", "/api/thoughtsX", "legacy"),
        ("POST", "/api/orders/9", "orders"),
        ("GET", "/api/orders/9", "legacy"),
        ("PUT", "/api/orders", "legacy"),
    ];
    for (method, path, expected) in cases {
        let request = Request::builder()
            .method(method)
            .uri(proxy.url(path))
            .body(full(""))
            .unwrap();
        let answer = send(&client(), request).await;
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
        let json = answer.json();
        assert_eq!(json["upstream"], expected, "{method} {path}");
        assert_eq!(json["path"], path, "{method} {path}");
        assert_eq!(json["method"], method, "{method} {path}");
    }
    assert_eq!(exact.seen().len(), 1);
    assert_eq!(template.seen().len(), 1);
    assert_eq!(thoughts.seen().len(), 2);
    assert_eq!(orders.seen().len(), 1);
    assert_eq!(legacy.seen().len(), 5);
    proxy.stop().await;
}

#[tokio::test]
async fn query_string_is_passed_untouched() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    for query in [
        "a=b&c=%2F",
        "q=hello%20world&x=%41%2e&empty=&flag",
        "path=/a/../b&%2e%2e=%00",
    ] {
        let response = raw_response(
            proxy.addr,
            format!("GET /api/thoughts/5?{query} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!(response.status, 200, "?{query}: {}", response.body_text());
        assert_eq!(response.json()["path"], "/api/thoughts/5");
        assert_eq!(response.json()["query"], query);
    }
    let seen = thoughts.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].uri.query(), Some("a=b&c=%2F"));
    proxy.stop().await;
}

#[tokio::test]
async fn normalised_path_is_sent_upstream() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    let response = raw_response(
        proxy.addr,
        b"GET /api/./thoughts//5?x=%2e HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.json()["upstream"], "thoughts");
    let seen = thoughts.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri.path(), "/api/thoughts/5");
    assert_eq!(seen[0].uri.query(), Some("x=%2e"));
    assert!(legacy.seen().is_empty());
    proxy.stop().await;
}

// --- streaming through the real binary -------------------------------------------------

const BIG: u64 = 256 * 1024 * 1024;
const FLAT_MEMORY_KIB: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_256_mib_download_with_flat_memory() {
    let legacy = upstream_with(|_request: Request<Incoming>| async { Response::new(generated_body(BIG)) }).await;
    let proxy = BinaryProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;

    let transfer = tokio::time::timeout(Duration::from_secs(60), async {
        let response = client()
            .request(
                Request::get(format!("http://{}/download", proxy.addr))
                    .body(full(""))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        count_body_bytes(response.into_body()).await.unwrap()
    })
    .await
    .expect("the download did not finish within 60 s");
    assert_eq!(transfer, BIG, "download arrived incomplete");

    let peak = proxy.vm_hwm_kib();
    assert!(
        peak < FLAT_MEMORY_KIB,
        "proxy peak RSS {peak} KiB for a {BIG}-byte download: the body is being buffered"
    );
    proxy.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_256_mib_chunked_upload_with_flat_memory() {
    let legacy = upstream_with(|request: Request<Incoming>| async move {
        let chunked = request
            .headers()
            .get("transfer-encoding")
            .is_some_and(|te| te.as_bytes().eq_ignore_ascii_case(b"chunked"));
        let counted = count_body_bytes(request.into_body()).await;
        let json = match counted {
            Ok(n) => serde_json::json!({"bytes": n, "chunked": chunked}),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        Response::new(full(json.to_string()))
    })
    .await;
    let proxy = BinaryProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;

    let answer = tokio::time::timeout(Duration::from_secs(60), async {
        send(
            &client(),
            Request::post(format!("http://{}/upload", proxy.addr))
                .body(generated_body(BIG))
                .unwrap(),
        )
        .await
    })
    .await
    .expect("the upload did not finish within 60 s");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json()["bytes"],
        BIG,
        "upload arrived incomplete: {}",
        answer.body
    );
    assert_eq!(answer.json()["chunked"], true);

    let peak = proxy.vm_hwm_kib();
    assert!(
        peak < FLAT_MEMORY_KIB,
        "proxy peak RSS {peak} KiB for a {BIG}-byte upload: the body is being buffered"
    );
    proxy.kill().await;
}

// --- request bodies and upgrades from raw clients ---------------------------------------

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(
        b"POST /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nContent-Length: 11\r\n\
          Expect: 100-continue\r\nContent-Type: text/plain\r\n\r\n",
    )
    .await;
    let (status, _) = conn.read_head().await;
    assert_eq!(status, 100, "expected `HTTP/1.1 100 Continue` before sending the body");
    conn.send(b"hello world").await;
    let response = conn.read_response().await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.json()["body_len"], 11);
    assert_eq!(response.json()["upstream"], "thoughts");
    let seen = thoughts.seen();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].headers.contains_key("expect"), "Expect was forwarded");
    proxy.stop().await;
}

#[tokio::test]
async fn chunked_request_body_arrives_whole() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(
        b"POST /api/thoughts/ HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1\r\n \r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
    )
    .await;
    let response = conn.read_response().await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.json()["body_len"], 22);
    assert_eq!(response.json()["method"], "POST");
    assert_eq!(thoughts.seen().len(), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_tunnels_bytes_both_ways() {
    let echo = upgrade_echo_upstream().await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &echo.url())], "")).await;

    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(b"GET /ws/ HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await;
    let (status, headers) = conn.read_head().await;
    assert_eq!(status, 101, "{headers:?}");
    assert!(
        headers.iter().any(|(k, v)| k == "upgrade" && v == "websocket"),
        "{headers:?}"
    );
    conn.send(b"ping").await;
    assert_eq!(conn.read_exact_bytes(4).await, b"ping");
    conn.send(b"second message").await;
    assert_eq!(conn.read_exact_bytes(14).await, b"second message");

    let seen = echo.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["upgrade"], "websocket");
    assert!(
        seen[0].headers["connection"]
            .to_str()
            .unwrap()
            .eq_ignore_ascii_case("upgrade")
    );
    drop(conn);
    proxy.stop().await;
}

// --- upstream failures -------------------------------------------------------------------

#[tokio::test]
async fn connection_refused_is_a_502_naming_route_and_upstream() {
    let legacy = echo_upstream("legacy").await;
    let gone = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy.url()), ("gone", &format!("http://{gone}"))],
        "[[routes]]\nname = \"vanished\"\npath = \"/api/gone/\"\nstage = \"new\"\nnew = \"gone\"\n",
    ))
    .await;

    let answer = tokio::time::timeout(Duration::from_secs(5), get(&proxy.url("/api/gone/1")))
        .await
        .expect("no answer within 5 s");
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(
        answer.body.contains("`gone`"),
        "body does not name the upstream: {}",
        answer.body
    );
    assert!(
        answer.body.contains("`vanished`"),
        "body does not name the route: {}",
        answer.body
    );
    assert!(legacy.seen().is_empty());
    assert_eq!(
        metric(
            &proxy,
            "strangler_upstream_errors_total{kind=\"connect\",upstream=\"gone\"}"
        )
        .await,
        Some(1.0)
    );
    proxy.stop().await;
}

/// GETs `url`, which must be answered 504, no sooner than `timeout` (and within 5 s).
async fn gateway_timeout_after(url: &str, timeout: Duration) -> Answer {
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), get(url))
        .await
        .expect("no answer within 5 s: the request timeout was not applied");
    assert_eq!(answer.status, 504, "{}", answer.body);
    assert!(
        started.elapsed() >= timeout,
        "504 after {:?}, before the {timeout:?} timeout",
        started.elapsed()
    );
    answer
}

#[tokio::test]
async fn slow_upstream_is_a_504_after_its_request_timeout() {
    let legacy = echo_upstream("legacy").await;
    let slow = upstream_with(|_request: Request<Incoming>| async {
        std::future::pending::<()>().await;
        Response::new(full("never"))
    })
    .await;
    let proxy = TestProxy::start(&routes_toml_with(
        "",
        &[
            ("legacy", &legacy.url(), ""),
            ("slow", &slow.url(), "request_timeout = \"200ms\""),
        ],
        "[[routes]]\nname = \"sluggish\"\npath = \"/api/slow/\"\nstage = \"new\"\nnew = \"slow\"\n",
    ))
    .await;

    let answer = gateway_timeout_after(&proxy.url("/api/slow/1"), Duration::from_millis(200)).await;
    assert!(
        answer.body.contains("`slow`"),
        "body does not name the upstream: {}",
        answer.body
    );
    assert_eq!(slow.seen().len(), 1);
    assert_eq!(
        metric(
            &proxy,
            "strangler_upstream_errors_total{kind=\"timeout\",upstream=\"slow\"}"
        )
        .await,
        Some(1.0)
    );
    proxy.stop().await;
}

/// The request timeout on a pooled connection, whose timer is kept with the connection:
/// a timer that ran out while the connection streamed a body, or sat idle, bounds the next
/// exchange afresh; one that runs out first gets the 504.
#[tokio::test]
async fn request_timeout_on_a_reused_connection() {
    let upstream = upstream_with(|request: Request<Incoming>| async move {
        match request.uri().path() {
            "/api/x/stall" => std::future::pending().await,
            "/api/x/slow-body" => {
                let (mut sender, body) =
                    http_body_util::channel::Channel::<bytes::Bytes, std::convert::Infallible>::new(1);
                tokio::spawn(async move {
                    // The head is prompt; the body outlasts the request timeout.
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    let _ = sender.send_data(bytes::Bytes::from_static(b"late body")).await;
                });
                Response::new(body.map_err(|never| match never {}).boxed())
            }
            _ => Response::new(full("fast")),
        }
    })
    .await;
    let proxy = TestProxy::start(&routes_toml_with(
        "workers = 1",
        &[("legacy", &upstream.url(), "request_timeout = \"200ms\"")],
        "",
    ))
    .await;

    assert_eq!(get(&proxy.url("/api/x/fast")).await.status, 200);
    let slow = get(&proxy.url("/api/x/slow-body")).await;
    assert_eq!((slow.status.as_u16(), slow.body.as_str()), (200, "late body"));
    // Same connection, its timer long run out: a fresh 200 ms, not an instant 504.
    let again = get(&proxy.url("/api/x/fast")).await;
    assert_eq!((again.status.as_u16(), again.body.as_str()), (200, "fast"));
    assert_eq!(upstream.connections(), 1, "the connection was not reused");

    gateway_timeout_after(&proxy.url("/api/x/stall"), Duration::from_millis(200)).await;
    // The timed-out connection is not reused.
    assert_eq!(get(&proxy.url("/api/x/fast")).await.status, 200);
    assert_eq!(upstream.connections(), 2);
    proxy.stop().await;
}

#[tokio::test]
async fn upstream_closing_the_connection_is_a_502_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closer_addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let closer = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &format!("http://{closer_addr}"))], "")).await;

    let answer = tokio::time::timeout(Duration::from_secs(5), get(&proxy.url("/page")))
        .await
        .expect("no answer within 5 s");
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("`legacy`"), "{}", answer.body);
    assert!(answer.body.contains("`default`"), "{}", answer.body);
    assert!(accepted.load(Ordering::SeqCst) >= 1, "the proxy never connected");
    assert_eq!(
        metric(
            &proxy,
            "strangler_upstream_errors_total{kind=\"reset\",upstream=\"legacy\"}"
        )
        .await,
        Some(1.0)
    );
    closer.abort();
    proxy.stop().await;
}

// --- metrics ----------------------------------------------------------------------------

#[tokio::test]
async fn metrics_count_default_route_inflight_and_durations() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;
    let duration_count = "strangler_request_duration_seconds_count{route=\"thoughts-api\",upstream=\"thoughts\"}";
    let before = metric(&proxy, duration_count).await.unwrap_or(0.0);

    let unmatched = get(&proxy.url("/not/routed")).await;
    assert_eq!(unmatched.status, 200);
    assert_eq!(unmatched.json()["upstream"], "legacy");
    for i in 0..3 {
        let answer = get(&proxy.url(&format!("/api/thoughts/{i}"))).await;
        assert_eq!(answer.status, 200);
    }

    let default_series =
        "strangler_requests_total{method=\"GET\",route=\"default\",status=\"200\",upstream=\"legacy\"}";
    assert_eq!(wait_metric(&proxy, default_series, |v| v == Some(1.0)).await, Some(1.0));
    assert_eq!(
        wait_metric(&proxy, duration_count, |v| v == Some(before + 3.0)).await,
        Some(before + 3.0)
    );
    assert_eq!(
        wait_metric(&proxy, "strangler_inflight_requests", |v| v == Some(0.0)).await,
        Some(0.0),
        "inflight gauge did not return to 0"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_before_the_answer_is_counted_as_499() {
    let legacy = echo_upstream("legacy").await;
    let (reached, reached_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let slow = upstream_with(move |_request: Request<Incoming>| {
        let _ = reached.send(());
        async {
            std::future::pending::<()>().await;
            Response::new(full("never"))
        }
    })
    .await;
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy.url()), ("slow", &slow.url())],
        "[[routes]]\nname = \"sluggish\"\npath = \"/api/slow/\"\nstage = \"new\"\nnew = \"slow\"\n",
    ))
    .await;

    let mut reached_rx = reached_rx;
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(b"GET /api/slow/1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
    tokio::time::timeout(Duration::from_secs(5), reached_rx.recv())
        .await
        .expect("the request never reached the upstream");
    drop(conn);

    let series = "strangler_requests_total{method=\"GET\",route=\"sluggish\",status=\"499\",upstream=\"slow\"}";
    assert_eq!(wait_metric(&proxy, series, |v| v == Some(1.0)).await, Some(1.0));
    assert_eq!(
        wait_metric(&proxy, "strangler_inflight_requests", |v| v == Some(0.0)).await,
        Some(0.0)
    );
    proxy.stop().await;
}

#[tokio::test]
async fn headers_only_the_proxy_may_assert_are_not_taken_from_the_client() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    let response = raw_response(
        proxy.addr,
        b"GET /api/thoughts/1 HTTP/1.1\r\n\
          Host: app.example\r\n\
          X-Strangler-Shadow: 1\r\n\
          X-Strangler-Anything: forged\r\n\
          X-Forwarded-Host: evil.example\r\n\
          X-Forwarded-Proto: https\r\n\
          X-Forwarded-For: 203.0.113.7\r\n\
          Connection: close\r\n\
          \r\n",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    let seen = thoughts.seen();
    assert_eq!(seen.len(), 1);
    let headers = &seen[0].headers;
    assert!(!headers.contains_key("x-strangler-shadow"), "{headers:?}");
    assert!(!headers.contains_key("x-strangler-anything"), "{headers:?}");
    assert_eq!(
        headers.get_all("x-forwarded-host").iter().collect::<Vec<_>>(),
        ["app.example"]
    );
    assert_eq!(
        headers.get_all("x-forwarded-proto").iter().collect::<Vec<_>>(),
        ["http"]
    );
    // The chain a client (or a load balancer) started is kept, with our hop appended.
    assert_eq!(headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    proxy.stop().await;
}

/// A CGI or WSGI upstream reads `X_Forwarded_Host` as `X-Forwarded-Host` (both are
/// `HTTP_X_FORWARDED_HOST`): underscored names are dropped, as nginx does by default
/// (attacker pass: `X_Strangler_Shadow: 1` reached the upstream beside a primary request).
/// A client's `strangler` member of `tracestate` is the proxy's to set, not the client's.
#[tokio::test]
async fn underscored_headers_and_a_forged_shadow_tracestate_do_not_reach_the_upstream() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = thoughts_proxy(&legacy, &thoughts).await;

    let response = raw_response(
        proxy.addr,
        b"GET /api/thoughts/1 HTTP/1.1\r\n\
          Host: app.example\r\n\
          X_Strangler_Shadow: 1\r\n\
          X_Forwarded_Host: evil.example\r\n\
          X_Secret: forged\r\n\
          X-Kept: yes\r\n\
          traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\
          tracestate: strangler=shadow, congo=t61rcWkgMzE\r\n\
          Connection: close\r\n\
          \r\n",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    let seen = thoughts.seen();
    assert_eq!(seen.len(), 1);
    let headers = &seen[0].headers;
    let underscored: Vec<&str> = headers.keys().map(|k| k.as_str()).filter(|k| k.contains('_')).collect();
    assert!(underscored.is_empty(), "{headers:?}");
    assert_eq!(headers["x-kept"], "yes");
    assert_eq!(headers["x-forwarded-host"], "app.example");
    assert_eq!(headers["tracestate"], "congo=t61rcWkgMzE");
    proxy.stop().await;
}

/// An upstream that speaks HTTP/1.0 (python's http.server, old monoliths) does not make the
/// proxy speak HTTP/1.0 to its clients: a proxy sends its own version (RFC 9110 §6.2), so
/// HTTP/1.1 clients keep their connection alive (newcomer pass: curl reconnected for every
/// request behind an HTTP/1.0 monolith).
#[tokio::test]
async fn an_http10_upstream_answers_http11_clients_as_http11() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_request_head(&mut stream).await.is_none() {
                    return;
                }
                let _ = stream
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &format!("http://{addr}"))], "")).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    for _ in 0..2 {
        conn.send(b"GET /old HTTP/1.1\r\nHost: a\r\n\r\n").await;
        let response = conn.read_response().await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body_text(), "ok");
        assert_eq!(response.header("connection"), None, "{:?}", response.headers);
    }
    let answer = raw(proxy.addr, b"GET /old HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    proxy.stop().await;
}

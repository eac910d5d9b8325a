//! Socket-free tests of the service: [`Proxy::handle`] called with in-memory requests, its
//! upstreams served in memory (each connection one end of [`tokio::io::duplex`], a hyper
//! server on the other, see [`Dial::Memory`]). Everything runs on the test's one thread
//! with the clock paused: a timeout fires when nothing else can happen, and a request that
//! hangs fails its test instead of blocking it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::channel::{Channel, Sender};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, mpsc};

use super::{ClientBody, Proxy};
use crate::headers::VIA_VALUE;
use crate::metrics::Metrics;
use crate::migration::canary::{bucket, goes_to_new};
use crate::migration::shadow::RouteTally;
use crate::state::{Snapshot, State};
use crate::table::Table;
use crate::upstream::pool::Dial;

/// Upstreams, each served in memory by the fake of the same name (see [`answer`]); a route
/// per stage and feature.
const TABLE: &str = r#"
[proxy]
listen = "127.0.0.1:8000"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:1"
[upstreams.new]
url = "http://127.0.0.1:2"
[upstreams.twin]
url = "http://127.0.0.1:3"
[upstreams.broken]
url = "http://127.0.0.1:4"
[upstreams.refusing]
url = "http://127.0.0.1:5"
[upstreams.down]
url = "http://127.0.0.1:6"
outlier = { consecutive_failures = 1, base_ejection = "1h", max_ejection = "2h" }
[upstreams.slow]
url = "http://127.0.0.1:7"
request_timeout = "2s"
[upstreams.switching]
url = "http://127.0.0.1:8"

[[routes]]
name = "old"
path = "/old/"
new = "new"
[[routes]]
name = "moved"
path = "/moved/"
stage = "new"
new = "new"
[[routes]]
name = "split"
path = "/split/"
stage = "canary"
new = "new"
canary = { percent = 50, sticky = "header:x-user" }
[[routes]]
name = "fallback-5xx"
path = "/fallback/5xx/"
stage = "new"
new = "broken"
fallback = true
[[routes]]
name = "fallback-refused"
path = "/fallback/refused/"
stage = "new"
new = "refusing"
fallback = true
[[routes]]
name = "fallback-down"
path = "/fallback/down/"
stage = "new"
new = "down"
fallback = true
[[routes]]
name = "shadow-same"
path = "/shadow/same/"
stage = "shadow"
new = "twin"
[[routes]]
name = "shadow-diff"
path = "/shadow/diff/"
stage = "shadow"
new = "new"
[[routes]]
name = "limited"
path = "/limited/"
max_body = 10
[[routes]]
name = "slow"
path = "/slow/"
stage = "new"
new = "slow"
[[routes]]
name = "switching"
path = "/switching/"
stage = "new"
new = "switching"
"#;

/// How the fake upstream `name` answers; `None`: never.
fn answer(name: &str) -> Option<Response<Full<Bytes>>> {
    let response = Response::builder().header("x-served-by", name);
    let response = match name {
        // Hop-by-hop headers of its own, which the client must not get.
        "legacy" => response
            .header("connection", "x-upstream-hop")
            .header("x-upstream-hop", "1")
            .header("keep-alive", "timeout=5")
            .body(Full::from("legacy")),
        // The same answer as legacy's: a shadow comparison matches.
        "twin" => response.body(Full::from("legacy")),
        "broken" => response.status(StatusCode::BAD_GATEWAY).body(Full::from("broken")),
        "slow" => return None,
        // Switches protocols, asked or not.
        "switching" => response
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(Full::default()),
        other => response.body(Full::from(other.to_owned())),
    };
    Some(response.unwrap())
}

/// What an in-memory upstream saw of one request.
#[derive(Debug)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// The whole body, or why it could not be read (cut off by the proxy).
    body: Result<Bytes, String>,
}

/// An upstream served in memory.
struct Fake {
    name: String,
    /// Its connections are refused.
    refuses: bool,
    /// Connections asked for (refused ones included).
    connections: AtomicUsize,
    /// Every request it saw, once its body is read (or cut off).
    seen: mpsc::UnboundedSender<Seen>,
    /// Notified when a request head arrives.
    heads: Notify,
}

impl Fake {
    /// The dialer of this upstream's pools: a fresh in-memory connection served by a hyper
    /// server, or a refusal.
    fn dial(self: &Arc<Self>) -> Dial {
        let fake = self.clone();
        Dial::Memory(Arc::new(move || {
            fake.connections.fetch_add(1, Ordering::Relaxed);
            if fake.refuses {
                return Err(std::io::ErrorKind::ConnectionRefused.into());
            }
            let (proxy_end, upstream_end) = tokio::io::duplex(64 * 1024);
            let fake = fake.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| fake.clone().serve(request));
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(upstream_end), service)
                    .with_upgrades();
                let _ = connection.await;
            });
            Ok(proxy_end)
        }))
    }

    async fn serve(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        self.heads.notify_one();
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) => Err(e.to_string()),
        };
        let seen = Seen {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        };
        let response = answer(&self.name);
        let _ = self.seen.send(seen);
        match response {
            Some(response) => Ok(response),
            None => std::future::pending().await,
        }
    }
}

/// The service under test over the [`TABLE`], every upstream in memory; `down` is ejected.
struct Service {
    proxy: Arc<Proxy>,
    state: Arc<State>,
    fakes: HashMap<String, Arc<Fake>>,
    seen: HashMap<String, mpsc::UnboundedReceiver<Seen>>,
}

impl Service {
    fn new() -> Self {
        let metrics = Metrics::new().unwrap();
        let table = Table::parse("routes.toml", TABLE).unwrap();
        let mut snapshot = Snapshot::build(table, None, &metrics, 1).unwrap();
        let mut fakes = HashMap::new();
        let mut seen = HashMap::new();
        for upstream in &mut snapshot.upstreams {
            let upstream = Arc::get_mut(upstream).unwrap();
            let name = upstream.name.to_string();
            let (sender, receiver) = mpsc::unbounded_channel();
            let fake = Arc::new(Fake {
                name: name.clone(),
                refuses: name == "refusing",
                connections: AtomicUsize::new(0),
                seen: sender,
                heads: Notify::new(),
            });
            upstream.connect_with(fake.dial());
            fakes.insert(name.clone(), fake);
            seen.insert(name, receiver);
        }
        // Eject `down`: one failure does it.
        let down = snapshot.upstreams.iter().find(|u| &*u.name == "down").unwrap();
        let ticket = down.health.admit().unwrap();
        down.health.record(ticket, false);
        let state = Arc::new(State::new("routes.toml".into(), snapshot, metrics, 1));
        Self {
            proxy: Arc::new(Proxy::new(state.clone())),
            state,
            fakes,
            seen,
        }
    }

    /// Sends `request` through the proxy; the answer, its body read to the end.
    async fn send(&self, request: Request<impl ClientBody>) -> (http::response::Parts, String) {
        let response = self.proxy.clone().handle(request, client()).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts, String::from_utf8(body.to_vec()).unwrap())
    }

    /// The next request upstream `name` saw (failing if none comes).
    async fn next_seen(&mut self, name: &str) -> Seen {
        let receiver = self.seen.get_mut(name).unwrap();
        // The clock is paused: this waits until nothing else can happen, not 10 s.
        let next = tokio::time::timeout(Duration::from_secs(10), receiver.recv()).await;
        next.ok().flatten().unwrap_or_else(|| panic!("{name} saw no request"))
    }

    /// Connections upstream `name` was asked for (refused ones included).
    fn connections(&self, name: &str) -> usize {
        self.fakes[name].connections.load(Ordering::Relaxed)
    }

    /// The ledger's counts for `route` once a comparison is in: the mirror runs on this
    /// test's thread, so yielding lets it finish (no timer involved).
    async fn compared(&self, route: &str) -> RouteTally {
        for _ in 0..10_000 {
            if let Some(route) = self.state.ledger.evidence().routes.get(route)
                && route.total.matched + route.total.noise + route.total.mismatch + route.total.error > 0
            {
                return route.total;
            }
            tokio::task::yield_now().await;
        }
        panic!("no comparison for {route}: {:?}", self.state.ledger.evidence());
    }

    fn fallbacks(&self, route: &str, reason: &str) -> u64 {
        self.state.metrics.fallbacks.with_label_values(&[route, reason]).get()
    }
}

fn client() -> SocketAddr {
    "192.0.2.7:5000".parse().unwrap()
}

/// A request with a `Host`, `headers` and a whole `body` (its `Content-Length` set when it
/// has one).
fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &'static str) -> Request<Full<Bytes>> {
    let mut request = Request::builder()
        .method(method)
        .uri(target)
        .header("host", "app.example");
    if !body.is_empty() {
        request = request.header("content-length", body.len());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Full::from(body)).unwrap()
}

/// A chunked POST whose body starts with `frames`; the rest is for the caller to send
/// (dropping the sender ends the body).
fn chunked(target: &str, frames: &[&'static str]) -> (Sender<Bytes>, Request<Channel<Bytes>>) {
    let (mut sender, body) = Channel::new(frames.len() + 1);
    for frame in frames {
        let frame = Frame::data(Bytes::from_static(frame.as_bytes()));
        sender.try_send(frame).unwrap();
    }
    let request = Request::builder()
        .method("POST")
        .uri(target)
        .header("host", "app.example")
        .header("transfer-encoding", "chunked")
        .body(body)
        .unwrap();
    (sender, request)
}

/// A user of the `split` canary on each side: (legacy, new).
fn canary_users() -> (String, String) {
    let user = |to_new: bool| {
        (0..)
            .map(|n| format!("user-{n}"))
            .find(|user| goes_to_new(bucket("split", user.as_bytes()), 5000) == to_new)
            .unwrap()
    };
    (user(false), user(true))
}

#[tokio::test(start_paused = true)]
async fn each_stage_is_answered_by_its_upstream() {
    let mut service = Service::new();
    let (legacy_user, new_user) = canary_users();
    // Target, the canary user (`x-user`) if any, the upstream that answers.
    let cases = [
        ("/old/a", None, "legacy"),
        ("/moved/a", None, "new"),
        ("/nowhere", None, "legacy"),
        ("/split/a", Some(&legacy_user), "legacy"),
        ("/split/a", Some(&new_user), "new"),
        // Sticky: a user stays on its side, whatever the request.
        ("/split/b", Some(&legacy_user), "legacy"),
        ("/split/b", Some(&new_user), "new"),
    ];
    for (target, user, upstream) in cases {
        let headers: Vec<(&str, &str)> = user.map(|user| ("x-user", user.as_str())).into_iter().collect();
        let (parts, body) = service.send(request("GET", target, &headers, "")).await;
        assert_eq!(parts.status, StatusCode::OK, "{target}");
        assert_eq!(parts.headers["x-served-by"], upstream, "{target} {user:?}");
        assert_eq!(body, upstream);
        let seen = service.next_seen(upstream).await;
        assert_eq!(seen.uri, target);
    }
    let canary = &service.state.metrics.canary;
    assert_eq!(canary.with_label_values(&["split", "legacy"]).get(), 2);
    assert_eq!(canary.with_label_values(&["split", "new"]).get(), 2);
}

#[tokio::test(start_paused = true)]
async fn requests_and_answers_are_rewritten_for_the_other_side() {
    let mut service = Service::new();
    let headers = [
        ("x-request-id", "req-42"),
        ("connection", "x-client-hop"),
        ("x-client-hop", "1"),
        ("keep-alive", "300"),
        ("proxy-authorization", "Basic c2VjcmV0"),
        ("x-forwarded-for", "198.51.100.1"),
    ];
    let (parts, body) = service.send(request("GET", "/old/a?q=1", &headers, "")).await;
    assert_eq!((parts.status, body.as_str()), (StatusCode::OK, "legacy"));
    // The answer: the upstream's hop-by-hop headers gone; Via and the request id in.
    for gone in ["connection", "x-upstream-hop", "keep-alive"] {
        assert!(
            !parts.headers.contains_key(gone),
            "{gone} reached the client: {:?}",
            parts.headers
        );
    }
    assert_eq!(parts.headers["via"], VIA_VALUE);
    assert_eq!(parts.headers["x-request-id"], "req-42");

    let seen = service.next_seen("legacy").await;
    assert_eq!(
        (seen.method, seen.uri.to_string()),
        (Method::GET, "/old/a?q=1".to_owned())
    );
    for gone in ["connection", "x-client-hop", "keep-alive", "proxy-authorization"] {
        assert!(
            !seen.headers.contains_key(gone),
            "{gone} reached the upstream: {:?}",
            seen.headers
        );
    }
    assert_eq!(seen.headers["x-forwarded-for"], "198.51.100.1, 192.0.2.7");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "app.example");
    assert_eq!(seen.headers["host"], "app.example");
    assert_eq!(seen.headers["via"], VIA_VALUE);
    assert_eq!(seen.headers["x-request-id"], "req-42");

    // Without an id of the client's, one is made, and both sides get the same.
    let (parts, _) = service.send(request("GET", "/old/b", &[], "")).await;
    let seen = service.next_seen("legacy").await;
    let id = parts.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(seen.headers["x-request-id"], id);
}

/// One request to a route with a fallback, and how it goes.
struct FallbackCase {
    method: &'static str,
    target: &'static str,
    body: &'static str,
    /// The route, and its new upstream.
    route: &'static str,
    new: &'static str,
    /// The upstream whose answer the client gets, and its status.
    answered_by: &'static str,
    status: u16,
    /// The `reason` of the replay to legacy, if there is one.
    replayed: Option<&'static str>,
}

#[tokio::test(start_paused = true)]
async fn a_failed_new_upstream_is_replayed_to_legacy_when_it_may_be() {
    let case = |method, target, body, (route, new), (answered_by, status), replayed| FallbackCase {
        method,
        target,
        body,
        route,
        new,
        answered_by,
        status,
        replayed,
    };
    let failing = ("fallback-5xx", "broken");
    let refusing = ("fallback-refused", "refusing");
    let ejected = ("fallback-down", "down");
    let cases = [
        // A 5xx: replayed for idempotent methods, with the same body.
        case(
            "GET",
            "/fallback/5xx/a",
            "",
            failing,
            ("legacy", 200),
            Some("status_5xx"),
        ),
        case(
            "PUT",
            "/fallback/5xx/a",
            "put-body",
            failing,
            ("legacy", 200),
            Some("status_5xx"),
        ),
        // Not a POST: the new upstream may have acted on it.
        case("POST", "/fallback/5xx/a", "post-body", failing, ("broken", 502), None),
        // Refused: nothing was sent, so even a POST is replayed.
        case(
            "POST",
            "/fallback/refused/a",
            "post-body",
            refusing,
            ("legacy", 200),
            Some("connect"),
        ),
        // Ejected: straight to legacy, the new upstream not tried; a body of any size.
        case(
            "GET",
            "/fallback/down/a",
            "",
            ejected,
            ("legacy", 200),
            Some("unavailable"),
        ),
        case(
            "POST",
            "/fallback/down/a",
            "post-body",
            ejected,
            ("legacy", 200),
            Some("unavailable"),
        ),
    ];
    for FallbackCase {
        method,
        target,
        body: sent,
        route,
        new,
        answered_by,
        status,
        replayed,
    } in cases
    {
        let mut service = Service::new();
        let case = format!("{method} {target}");
        let (parts, body) = service.send(request(method, target, &[], sent)).await;
        assert_eq!(parts.status.as_u16(), status, "{case}: {body}");
        assert_eq!(parts.headers["x-served-by"], answered_by, "{case}");
        match new {
            "broken" => {
                let seen = service.next_seen(new).await;
                assert_eq!(seen.body.as_deref(), Ok(sent.as_bytes()), "{case}");
            }
            "refusing" => assert!(service.connections(new) > 0, "{case}: tried first"),
            _ => assert_eq!(service.connections(new), 0, "{case}: an ejected upstream is not tried"),
        }
        match replayed {
            Some(reason) => {
                let seen = service.next_seen("legacy").await;
                assert_eq!(
                    (seen.method.as_str(), &seen.uri),
                    (method, &Uri::from_static(target)),
                    "{case}"
                );
                assert_eq!(seen.body.as_deref(), Ok(sent.as_bytes()), "{case}: the same body");
                assert_eq!(service.fallbacks(route, reason), 1, "{case}");
            }
            None => {
                assert_eq!(service.connections("legacy"), 0, "{case}: not replayed");
                assert_eq!(service.fallbacks(route, "status_5xx"), 0, "{case}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_shadowed_request_is_answered_by_legacy_and_compared_with_the_new_answer() {
    // Route, its new upstream, and whether that one answers like legacy.
    let cases = [
        ("shadow-same", "/shadow/same/x?n=1", "twin", true),
        ("shadow-diff", "/shadow/diff/x?n=1", "new", false),
    ];
    for (route, target, new, same) in cases {
        let mut service = Service::new();
        let (parts, body) = service
            .send(request("GET", target, &[("x-request-id", "r-1")], ""))
            .await;
        assert_eq!((parts.status, body.as_str()), (StatusCode::OK, "legacy"), "{route}");
        assert_eq!(parts.headers["x-served-by"], "legacy");

        let answered = service.next_seen("legacy").await;
        assert!(!answered.headers.contains_key("x-strangler-shadow"));
        let mirrored = service.next_seen(new).await;
        assert_eq!(mirrored.uri, target, "{route}");
        assert_eq!(mirrored.headers["x-strangler-shadow"], "1", "{route}");
        assert_eq!(mirrored.headers["x-request-id"], "r-1", "{route}");

        let tally = service.compared(route).await;
        assert_eq!(
            (tally.matched, tally.mismatch, tally.error),
            (u64::from(same), u64::from(!same), 0)
        );
        let evidence = service.state.ledger.evidence();
        match evidence.mismatches.as_slice() {
            [] => assert!(same, "{route}: no mismatch kept"),
            [kept] => {
                assert!(!same, "{route}: {kept:?}");
                assert_eq!((kept.route.as_str(), kept.path.as_str()), (route, target));
            }
            more => panic!("{route}: {more:?}"),
        }
        let result = if same { "match" } else { "mismatch" };
        let comparisons = &service.state.metrics.shadow_comparisons;
        let period = &evidence.routes[route].current.period.id;
        assert_eq!(comparisons.with_label_values(&[route, result, period]).get(), 1);
        assert_eq!(evidence.routes[route].current.counts.matched, u64::from(same));
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_over_max_body_is_refused_with_413() {
    let mut service = Service::new();
    let expected = "413 Payload Too Large: route `limited` accepts request bodies of at most 10 bytes\n";

    // By its Content-Length: nothing is sent.
    let (parts, body) = service.send(request("POST", "/limited/", &[], "12345678901")).await;
    assert_eq!((parts.status, body.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, expected));
    assert_eq!(parts.headers["connection"], "close");
    assert_eq!(service.connections("legacy"), 0);

    // Streamed, its first frame already too large: nothing is sent either.
    let (_more, request) = chunked("/limited/", &["12345678901"]);
    let (parts, body) = service.send(request).await;
    assert_eq!((parts.status, body.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, expected));
    assert_eq!(service.connections("legacy"), 0);

    // Streamed, too large further on: the upstream gets a body cut off. The rest comes
    // once the head and the first frame have reached the upstream (the first head to
    // reach it: nothing did above).
    let (mut rest, request) = chunked("/limited/", &["1234"]);
    let feed = async {
        service.fakes["legacy"].heads.notified().await;
        rest.send_data(Bytes::from_static(b"5678901")).await.unwrap();
    };
    let ((parts, body), ()) = tokio::join!(service.send(request), feed);
    assert_eq!((parts.status, body.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, expected));
    let seen = service.next_seen("legacy").await;
    assert!(
        seen.body.is_err(),
        "a cut body reached the upstream whole: {:?}",
        seen.body
    );

    // Within the limit, streamed: all of it arrives.
    let (end, request) = chunked("/limited/", &["1234", "567890"]);
    drop(end);
    let (parts, body) = service.send(request).await;
    assert_eq!((parts.status, body.as_str()), (StatusCode::OK, "legacy"));
    let seen = service.next_seen("legacy").await;
    assert_eq!(seen.body.as_deref(), Ok(&b"1234567890"[..]));
}

#[tokio::test(start_paused = true)]
async fn an_upstream_that_does_not_answer_in_time_gets_504() {
    let mut service = Service::new();
    let started = tokio::time::Instant::now();
    let (parts, body) = service.send(request("GET", "/slow/a", &[], "")).await;
    assert_eq!(parts.status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(
        body.contains("upstream `slow`") && body.contains("route `slow`"),
        "{body}"
    );
    // Its request_timeout, on the paused clock.
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(service.next_seen("slow").await.uri, "/slow/a");
    let errors = &service.state.metrics.upstream_errors;
    assert_eq!(errors.with_label_values(&["slow", "timeout"]).get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_101_to_a_request_that_asked_for_no_upgrade_is_a_502() {
    let mut service = Service::new();
    let (parts, body) = service.send(request("GET", "/switching/a", &[], "")).await;
    assert_eq!(parts.status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("upstream `switching`"), "{body}");
    assert!(!parts.headers.contains_key("upgrade"));
    assert_eq!(service.next_seen("switching").await.uri, "/switching/a");
    let errors = &service.state.metrics.upstream_errors;
    assert_eq!(errors.with_label_values(&["switching", "other"]).get(), 1);
}

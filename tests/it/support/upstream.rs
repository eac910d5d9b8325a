//! Test upstreams on 127.0.0.1:0 (HTTP/1.1, answering through a handler, recording what
//! they saw and counting the connections they accepted), and addresses where nothing
//! listens. TLS and HTTP/2 upstreams are in [`super::tls`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::body::{BoxBody, full};

/// What an upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: http::Uri,
    pub headers: HeaderMap,
}

/// A test upstream on 127.0.0.1:0.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

impl Upstream {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A listener on 127.0.0.1:0 with a deep accept queue, so that a burst of thousands of
/// connects from the proxy is queued rather than dropped.
pub fn deep_listener() -> TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(4096).unwrap()
}

/// Starts an upstream whose responses come from `handler`.
pub async fn upstream_with<H, F>(handler: H) -> Upstream
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<BoxBody>> + Send + 'static,
{
    let listener = deep_listener();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let connections = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let (stop, mut stopped) = oneshot::channel::<()>();
    let record = seen.clone();
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            let record = record.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    record.lock().unwrap().push(Seen {
                        method: request.method().clone(),
                        uri: request.uri().clone(),
                        headers: request.headers().clone(),
                    });
                    let response = handler(request);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Upstream {
        addr,
        seen,
        connections,
        _stop: stop,
    }
}

/// An upstream that switches a request with `Upgrade: websocket` to a tunnel that echoes every
/// byte back (400 to anything else).
pub async fn upgrade_echo_upstream() -> Upstream {
    upstream_with(|mut request: Request<Incoming>| async move {
        let wants = request.headers().get("upgrade").is_some_and(|v| v == "websocket");
        if !wants {
            return Response::builder().status(400).body(full("no upgrade asked")).unwrap();
        }
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
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(full(""))
            .unwrap()
    })
    .await
}

/// An upstream that answers every request with JSON naming itself and echoing the
/// request: `{"upstream", "method", "path", "query", "body_len"}`.
pub async fn echo_upstream(name: &'static str) -> Upstream {
    upstream_with(move |request: Request<Incoming>| async move {
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().map(str::to_owned);
        let body = request
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let json = serde_json::json!({
            "upstream": name, "method": method, "path": path, "query": query, "body_len": body.len()
        });
        Response::builder()
            .header("content-type", "application/json")
            .body(full(json.to_string()))
            .unwrap()
    })
    .await
}

/// An address on 127.0.0.1 where nothing listens: a TCP socket bound to a port but never
/// listening (a connect is refused), kept open until the test process exits. A port bound
/// and released instead could be taken by another test's server meanwhile (seen under
/// load: a "dead" upstream answered 431).
pub fn closed_addr() -> SocketAddr {
    static HELD: std::sync::Mutex<Vec<socket2::Socket>> = std::sync::Mutex::new(Vec::new());
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    HELD.lock().unwrap().push(socket);
    addr
}

/// `http://` + [`closed_addr`].
pub fn dead_url() -> String {
    format!("http://{}", closed_addr())
}

/// An upstream that holds every request until [`HeldUpstream::release`], then answers
/// `answer`: for requests that must be in flight while the test does something else
/// (a reload, a shutdown).
pub struct HeldUpstream {
    pub upstream: Upstream,
    arrivals: tokio::sync::mpsc::UnboundedReceiver<String>,
    gate: tokio::sync::watch::Sender<bool>,
}

impl HeldUpstream {
    pub async fn start(answer: &'static str) -> HeldUpstream {
        let (arrived, arrivals) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (gate, opened) = tokio::sync::watch::channel(false);
        let upstream = upstream_with(move |request: Request<Incoming>| {
            let _ = arrived.send(request.uri().path().to_owned());
            let mut opened = opened.clone();
            async move {
                let _ = opened.wait_for(|open| *open).await;
                Response::new(full(answer))
            }
        })
        .await;
        HeldUpstream {
            upstream,
            arrivals,
            gate,
        }
    }

    /// Waits (up to 5 s) until the next request arrives; returns its path.
    pub async fn arrived(&mut self) -> String {
        tokio::time::timeout(std::time::Duration::from_secs(5), self.arrivals.recv())
            .await
            .expect("no request reached the held upstream within 5 s")
            .expect("the held upstream stopped")
    }

    /// Lets every held request, and every later one, have its answer.
    pub fn release(&self) {
        self.gate.send_replace(true);
    }
}

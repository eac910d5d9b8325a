//! Test harness: upstream servers, a running proxy, and HTTP clients.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

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
    _stop: oneshot::Sender<()>,
}

impl Upstream {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub fn full(body: impl Into<Bytes>) -> BoxBody {
    Full::new(body.into()).map_err(|never| match never {}).boxed()
}

/// Starts an upstream whose responses come from `handler`.
pub async fn upstream_with<H, F>(handler: H) -> Upstream
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<BoxBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let handler = Arc::new(handler);
    let (stop, mut stopped) = oneshot::channel::<()>();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
            };
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
        _stop: stop,
    }
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

/// A running proxy with its config in a temp dir.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub state: Arc<strangler::state::State>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestProxy {
    /// Writes `routes` (a full routes.toml) into a temp dir and starts the proxy on
    /// ephemeral ports (the file's listen addresses are not used).
    pub async fn start(routes: &str) -> TestProxy {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("routes.toml");
        std::fs::write(&config, routes).unwrap();
        Self::start_at(dir, config).await
    }

    pub async fn start_at(dir: tempfile::TempDir, config: PathBuf) -> TestProxy {
        let app = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || strangler::App::load(config))
                .await
                .unwrap()
                .unwrap()
        };
        let state = app.state().clone();
        let listeners = strangler::Listeners {
            proxy: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            admin: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let addr = listeners.proxy.local_addr().unwrap();
        let admin = listeners.admin.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(strangler::run(app, listeners, async move {
            let _ = stopped.await;
        }));
        TestProxy {
            addr,
            admin,
            dir,
            config,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Replaces routes.toml the way editors do: write a temp file, rename it over.
    pub fn write_config(&self, text: &str) {
        let tmp = self.dir.path().join(".routes.toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    /// The table version in force.
    pub fn version(&self) -> String {
        self.state.snapshot().config().version.clone()
    }

    /// Waits (up to 5 s) until a load attempt has the outcome `done` accepts.
    pub async fn wait_for(
        &self,
        done: impl FnMut(&strangler::state::LoadStatus) -> bool,
    ) -> strangler::state::LoadStatus {
        let mut status = self.state.subscribe();
        let seen = tokio::time::timeout(Duration::from_secs(5), status.wait_for(done))
            .await
            .expect("the expected reload did not happen within 5 s")
            .expect("state dropped");
        seen.clone()
    }

    /// Waits (up to 5 s) until the table with `version` is in force.
    pub async fn wait_for_version(&self, version: &str) {
        self.wait_for(|s| s.version == version).await;
    }

    /// Sends the shutdown signal and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A routes.toml with `legacy` as default upstream and the given extra upstreams and routes.
pub fn routes_toml(upstreams: &[(&str, &str)], routes: &str) -> String {
    let mut text = String::from(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndefault_upstream = \"legacy\"\n\n",
    );
    for (name, url) in upstreams {
        text.push_str(&format!("[upstreams.{name}]\nurl = \"{url}\"\n"));
    }
    text.push('\n');
    text.push_str(routes);
    text
}

/// A plain HTTP/1.1 client with keep-alive.
pub fn client() -> Client<HttpConnector, BoxBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response, fully read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub async fn send(client: &Client<HttpConnector, BoxBody>, request: Request<BoxBody>) -> Answer {
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(url: &str) -> Answer {
    send(&client(), Request::get(url).body(full("")).unwrap()).await
}

pub async fn post(url: &str, body: &str) -> Answer {
    send(&client(), Request::post(url).body(full(body.to_owned())).unwrap()).await
}

/// Sends raw bytes on a fresh connection and reads until the server closes it or 5 s pass.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a metric sample (`name{labels}` exactly as rendered) from the admin endpoint.
pub async fn metric(proxy: &TestProxy, series: &str) -> Option<f64> {
    let text = get(&proxy.admin_url("/metrics")).await.body;
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

#[allow(dead_code)]
pub fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect()
}

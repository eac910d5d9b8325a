//! Test harness: upstream servers, a running proxy, and HTTP clients.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A listener on 127.0.0.1:0 with a deep accept queue, so that a burst of thousands of
/// connects from the proxy is queued rather than dropped.
pub fn deep_listener() -> TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(4096).unwrap()
}

/// Starts an upstream whose responses come from `handler`; also counts the TCP
/// connections it accepted.
pub async fn upstream_counting<H, F>(handler: H) -> (Upstream, Arc<AtomicUsize>)
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
    (
        Upstream {
            addr,
            seen,
            _stop: stop,
        },
        connections,
    )
}

/// Starts an upstream whose responses come from `handler`.
pub async fn upstream_with<H, F>(handler: H) -> Upstream
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<BoxBody>> + Send + 'static,
{
    upstream_counting(handler).await.0
}

/// An upstream that switches a request with `Upgrade: echo` to a tunnel that echoes every
/// byte back (400 to anything else).
#[allow(dead_code)]
pub async fn upgrade_echo_upstream() -> Upstream {
    upstream_with(|mut request: Request<Incoming>| async move {
        let wants = request.headers().get("upgrade").is_some_and(|v| v == "echo");
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
            .header("upgrade", "echo")
            .body(full(""))
            .unwrap()
    })
    .await
}

/// An upstream that answers every request with JSON naming itself and echoing the
/// request: `{"upstream", "method", "path", "query", "body_len"}`.
pub async fn echo_upstream(name: &'static str) -> Upstream {
    echo_upstream_counting(name).await.0
}

/// Like [`echo_upstream`], and also counts the TCP connections it accepted.
pub async fn echo_upstream_counting(name: &'static str) -> (Upstream, Arc<AtomicUsize>) {
    upstream_counting(move |request: Request<Incoming>| async move {
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
    task: Option<tokio::task::JoinHandle<Result<(), strangler::StartError>>>,
}

impl TestProxy {
    /// Writes `routes` (a full routes.toml) into a temp dir and starts the proxy on
    /// ephemeral ports (the file's listen addresses are not used).
    pub async fn start(routes: &str) -> TestProxy {
        proxy_with_files(&[], routes).await
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
        let (ready, is_ready) = oneshot::channel::<()>();
        let task = tokio::spawn(strangler::run_with_ready(
            app,
            listeners,
            async move {
                let _ = stopped.await;
            },
            move || {
                let _ = ready.send(());
            },
        ));
        is_ready.await.expect("the proxy stopped before it was ready");
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
            task.await.unwrap().unwrap();
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

/// Like [`TestProxy::start`], with `files` (`(name, contents)`, e.g. certificates or a
/// token file) written next to routes.toml first.
pub async fn proxy_with_files(files: &[(&str, &str)], routes: &str) -> TestProxy {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    TestProxy::start_at(dir, config).await
}

/// A ConfigMap or Secret volume as the kubelet lays it out
/// (pkg/volume/util/atomic_writer.go): the payload in a timestamped directory, `..data`
/// pointing at it, and each key a symlink through `..data`.
#[cfg(unix)]
pub struct ConfigMapVolume {
    dir: PathBuf,
    current: String,
}

#[cfg(unix)]
impl ConfigMapVolume {
    /// Lays out `files` (`(key, contents)`) in `dir` (created if missing) under `timestamp`.
    pub fn create(dir: &std::path::Path, timestamp: &str, files: &[(&str, &str)]) -> ConfigMapVolume {
        use std::os::unix::fs::symlink;
        std::fs::create_dir_all(dir.join(timestamp)).unwrap();
        for (key, contents) in files {
            std::fs::write(dir.join(timestamp).join(key), contents).unwrap();
        }
        symlink(timestamp, dir.join("..data")).unwrap();
        for (key, _) in files {
            symlink(format!("..data/{key}"), dir.join(key)).unwrap();
        }
        ConfigMapVolume {
            dir: dir.to_path_buf(),
            current: timestamp.to_owned(),
        }
    }

    /// An update, step for step as the kubelet does it: write the new payload into a new
    /// timestamped directory, point `..data_tmp` at it, rename `..data_tmp` over `..data`
    /// (the atomic swap), then delete the old timestamped directory.
    pub fn update(&mut self, timestamp: &str, files: &[(&str, &str)]) {
        use std::os::unix::fs::symlink;
        std::fs::create_dir(self.dir.join(timestamp)).unwrap();
        for (key, contents) in files {
            std::fs::write(self.dir.join(timestamp).join(key), contents).unwrap();
        }
        symlink(timestamp, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.join(&self.current)).unwrap();
        self.current = timestamp.to_owned();
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

// ---------------------------------------------------------------------------------------
// Helpers for forwarding.rs and attacks.rs: raw HTTP/1.1 connections, counting upstreams,
// generated bodies, routes.toml with extra settings, metric polling.
// ---------------------------------------------------------------------------------------

/// How long a raw read may wait before the test fails.
pub const RAW_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A routes.toml like [`routes_toml`], with extra lines in `[proxy]` and in each upstream
/// (`(name, url, extra_lines)`).
#[allow(dead_code)]
pub fn routes_toml_with(proxy_extra: &str, upstreams: &[(&str, &str, &str)], routes: &str) -> String {
    let mut text = String::from(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndefault_upstream = \"legacy\"\n",
    );
    text.push_str(proxy_extra);
    text.push_str("\n\n");
    for (name, url, extra) in upstreams {
        text.push_str(&format!("[upstreams.{name}]\nurl = \"{url}\"\n{extra}\n"));
    }
    text.push('\n');
    text.push_str(routes);
    text
}

/// A response read off a raw connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[allow(dead_code)]
impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body_text()))
    }
}

/// A raw client connection with a read buffer, for requests a hyper client would not
/// send as written (odd paths, hop-by-hop headers, `Expect`, upgrades, stalls).
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

#[allow(dead_code)]
impl RawConn {
    pub async fn connect(addr: SocketAddr) -> RawConn {
        RawConn {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes into the buffer; false at EOF or on a read error.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(RAW_READ_TIMEOUT, self.stream.read(&mut chunk)).await {
            Err(_) => panic!("no bytes from the server within {RAW_READ_TIMEOUT:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Reads one response head (status line and headers); panics on EOF or timeout.
    pub async fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            assert!(
                self.fill().await,
                "connection closed before a response head; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        (status, headers)
    }

    /// Reads exactly `n` bytes (after whatever is buffered).
    pub async fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(
                self.fill().await,
                "connection closed after {} of {n} bytes",
                self.buf.len()
            );
        }
        self.buf.drain(..n).collect()
    }

    async fn read_line(&mut self) -> String {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                self.buf.drain(..at + 2);
                return line;
            }
            assert!(self.fill().await, "connection closed inside a chunked body");
        }
    }

    /// Reads one whole response: head, then a Content-Length, chunked or until-EOF body.
    pub async fn read_response(&mut self) -> RawResponse {
        let (status, headers) = self.read_head().await;
        let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let body = if status < 200 || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(len) = find("content-length") {
            self.read_exact_bytes(len.parse().unwrap()).await
        } else if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
            let mut body = Vec::new();
            loop {
                let size_line = self.read_line().await;
                let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).unwrap();
                if size == 0 {
                    // Trailers, then the blank line.
                    while !self.read_line().await.is_empty() {}
                    break;
                }
                body.extend(self.read_exact_bytes(size).await);
                assert_eq!(self.read_line().await, "", "chunk not followed by CRLF");
            }
            body
        } else {
            while self.fill().await {}
            std::mem::take(&mut self.buf)
        };
        RawResponse { status, headers, body }
    }

    /// Waits (up to `limit`) for the server to close the connection; returns what it sent
    /// before closing, or None if it was still open after `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> Option<Vec<u8>> {
        let mut chunk = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(std::mem::take(&mut self.buf)),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Sends `bytes` on a fresh connection and reads one response. Write errors are ignored:
/// a server may answer (431, 400) and close before it has read everything.
#[allow(dead_code)]
pub async fn raw_response(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut conn = RawConn::connect(addr).await;
    let _ = conn.stream.write_all(bytes).await;
    conn.read_response().await
}

/// `GET {target}` with a Host and `Connection: close`, as raw bytes.
pub fn get_request(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The route `/api/thoughts/` (stage new, to `thoughts`) of [`ThoughtsSetup`].
pub const THOUGHTS_ROUTE: &str =
    "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n";

/// Two echo upstreams that count their connections, `legacy` (the default) and `thoughts`
/// (behind [`THOUGHTS_ROUTE`]), and a proxy in front of them; for hostile requests.
pub struct ThoughtsSetup {
    pub legacy: Upstream,
    pub legacy_connections: Arc<AtomicUsize>,
    pub thoughts: Upstream,
    pub thoughts_connections: Arc<AtomicUsize>,
    pub proxy: TestProxy,
}

impl ThoughtsSetup {
    /// Starts the upstreams and the proxy, with `proxy_extra` lines in `[proxy]`.
    pub async fn start(proxy_extra: &str) -> ThoughtsSetup {
        let (legacy, legacy_connections) = echo_upstream_counting("legacy").await;
        let (thoughts, thoughts_connections) = echo_upstream_counting("thoughts").await;
        let proxy = TestProxy::start(&routes_toml_with(
            proxy_extra,
            &[("legacy", &legacy.url(), ""), ("thoughts", &thoughts.url(), "")],
            THOUGHTS_ROUTE,
        ))
        .await;
        ThoughtsSetup {
            legacy,
            legacy_connections,
            thoughts,
            thoughts_connections,
            proxy,
        }
    }

    /// Requests and connections the upstreams have seen.
    pub fn upstream_traffic(&self) -> (usize, usize) {
        (
            self.legacy.seen().len() + self.thoughts.seen().len(),
            self.legacy_connections.load(Ordering::SeqCst) + self.thoughts_connections.load(Ordering::SeqCst),
        )
    }

    pub fn assert_no_upstream_contacted(&self, what: &str) {
        assert!(
            self.legacy.seen().is_empty(),
            "{what} reached legacy: {:?}",
            self.legacy.seen()
        );
        assert!(
            self.thoughts.seen().is_empty(),
            "{what} reached thoughts: {:?}",
            self.thoughts.seen()
        );
    }
}

/// A body of `total` bytes made on the fly, 64 KiB at a time (never held in memory), with
/// no size hint, so it goes out chunked.
#[allow(dead_code)]
pub fn generated_body(total: u64) -> BoxBody {
    struct Generated {
        remaining: u64,
        chunk: Bytes,
    }
    impl hyper::body::Body for Generated {
        type Data = Bytes;
        type Error = Box<dyn std::error::Error + Send + Sync>;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            if self.remaining == 0 {
                return std::task::Poll::Ready(None);
            }
            let n = self.remaining.min(self.chunk.len() as u64);
            self.remaining -= n;
            let data = self.chunk.slice(..n as usize);
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
        }
    }
    let chunk: Bytes = (0..64 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
    BodyExt::boxed(Generated {
        remaining: total,
        chunk,
    })
}

/// Counts the data bytes of a body without keeping them.
#[allow(dead_code)]
pub async fn count_body_bytes<B>(mut body: B) -> Result<u64, B::Error>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            total += data.len() as u64;
        }
    }
    Ok(total)
}

/// Polls the metrics endpoint (up to 5 s) until `series` has a value `accept` likes;
/// returns the last value seen. For metrics recorded when a response body is dropped,
/// which can trail the client's last read by a moment.
pub async fn wait_metric(proxy: &TestProxy, series: &str, accept: impl Fn(Option<f64>) -> bool) -> Option<f64> {
    wait_metric_within(proxy, series, Duration::from_secs(5), accept).await
}

/// Like [`wait_metric`], with the caller's deadline (e.g. "reloaded within 3 s").
pub async fn wait_metric_within(
    proxy: &TestProxy,
    series: &str,
    limit: Duration,
    accept: impl Fn(Option<f64>) -> bool,
) -> Option<f64> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let value = metric(proxy, series).await;
        if accept(value) || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::task::yield_now().await;
    }
}

// ---- Helpers added for reload.rs, admin.rs and cli.rs ----

impl TestProxy {
    /// Like [`TestProxy::wait_for`], with the caller's deadline (e.g. "live within 2 s").
    pub async fn wait_for_within(
        &self,
        limit: Duration,
        done: impl FnMut(&strangler::state::LoadStatus) -> bool,
    ) -> strangler::state::LoadStatus {
        let mut status = self.state.subscribe();
        let seen = tokio::time::timeout(limit, status.wait_for(done))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the expected load outcome did not happen within {limit:?}; last status: {:?}",
                    self.state.subscribe().borrow()
                )
            })
            .expect("state dropped");
        seen.clone()
    }
}

/// A URL on 127.0.0.1 where nothing listens (a port bound, then released).
pub async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// One sample (`name{labels}` exactly as rendered) from a Prometheus text exposition.
pub fn sample(metrics_text: &str, series: &str) -> Option<f64> {
    metrics_text
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// `(line, column)` of the `FILE:LINE:COL: message` error that follows `file_suffix`
/// (e.g. `routes.toml`), if the error has that shape.
pub fn error_location(error: &str, file_suffix: &str) -> Option<(usize, usize)> {
    let (_, rest) = error.split_once(&format!("{file_suffix}:"))?;
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let column = parts.next()?.parse().ok()?;
    parts.next()?.strip_prefix(' ')?;
    Some((line, column))
}

/// 1-based line and column where `needle` first occurs in `text`.
pub fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    (line, column)
}

// ---- Helpers for mythoughts.rs and browser.rs: the MyThoughts demo behind the proxy ----

/// How long a changed routes file may take to be in force in the demo.
pub const DEMO_RELOAD_WITHIN: Duration = Duration::from_secs(5);

/// The whole MyThoughts demo (monolith, services, proxy) on ephemeral loopback ports, its
/// data (SQLite, JWT keys, the routes copy) in a fresh temp dir. Keep the dir alive as long
/// as the demo; call `demo.shutdown()` at the end.
pub async fn start_demo() -> (tempfile::TempDir, mythoughts_demo::Demo) {
    let dir = tempfile::tempdir().unwrap();
    let demo = mythoughts_demo::Demo::start(mythoughts_demo::Options {
        routes: mythoughts_demo::repository_routes(),
        data_dir: dir.path().join("data"),
        placement: mythoughts_demo::Placement::Ephemeral,
        fast_passwords: true,
    })
    .await
    .unwrap_or_else(|e| panic!("the demo did not start: {e}"));
    (dir, demo)
}

/// `text` (a routes.toml) with the `stage = ...` line of each named route replaced.
/// Comments and everything else are kept; each route must have exactly one uncommented
/// `stage` line after its `name` line.
pub fn with_stages(text: &str, stages: &[(&str, &str)]) -> String {
    let mut current: Option<String> = None;
    let mut replaced = vec![0usize; stages.len()];
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            current = None;
        }
        if let Some(rest) = trimmed.strip_prefix("name") {
            let value = rest
                .trim_start()
                .strip_prefix('=')
                .map(|v| v.trim().trim_matches('"').to_owned());
            current = value.or(current);
        }
        let target = current
            .as_deref()
            .and_then(|name| stages.iter().position(|(route, _)| *route == name));
        match target {
            Some(index) if trimmed.starts_with("stage") => {
                out.push_str(&format!("stage = \"{}\"\n", stages[index].1));
                replaced[index] += 1;
            }
            _ => out.push_str(line),
        }
    }
    for ((route, _), count) in stages.iter().zip(replaced) {
        assert_eq!(count, 1, "route `{route}` has {count} `stage` lines in the routes file");
    }
    out
}

/// Sets the stage of the named routes in the demo's routes file (write a temp file,
/// rename it over, as editors do) and waits until the proxy has that table in force.
/// Returns its version.
pub async fn set_stages(demo: &mythoughts_demo::Demo, stages: &[(&str, &str)]) -> String {
    let text = tokio::fs::read_to_string(&demo.routes).await.unwrap();
    let updated = with_stages(&text, stages);
    let version = strangler::config::version_of(&updated);
    let mut status = demo.proxy_state.subscribe();
    let tmp = demo.routes.with_file_name(".routes.toml.tmp");
    tokio::fs::write(&tmp, &updated).await.unwrap();
    tokio::fs::rename(&tmp, &demo.routes).await.unwrap();
    let seen = tokio::time::timeout(DEMO_RELOAD_WITHIN, status.wait_for(|s| s.version == version))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "stages {stages:?} (version {version}) not in force within {DEMO_RELOAD_WITHIN:?}; last status: {:?}",
                demo.proxy_state.subscribe().borrow()
            )
        })
        .expect("state dropped")
        .clone();
    assert_eq!(seen.last_error, None, "the flipped table was rejected");
    version
}

/// The Prometheus text of the admin listener at `admin`.
pub async fn metrics_text(admin: SocketAddr) -> String {
    let answer = get(&format!("http://{admin}/metrics")).await;
    assert_eq!(answer.status, 200, "admin /metrics: {}", answer.body);
    answer.body
}

/// The sum of the `strangler_requests_total` samples whose labels include every
/// `key="value"` of `labels` (other labels, e.g. method and status, summed over).
pub fn requests_total(metrics_text: &str, labels: &[(&str, &str)]) -> f64 {
    metrics_text
        .lines()
        .filter_map(|line| line.strip_prefix("strangler_requests_total{"))
        .filter_map(|rest| rest.split_once("} "))
        .filter(|(set, _)| {
            labels
                .iter()
                .all(|(key, value)| set.split(',').any(|pair| pair == format!("{key}=\"{value}\"")))
        })
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum()
}

/// The `strangler_requests_total` count for `labels` (see [`requests_total`]), once it
/// satisfies `accept` or 5 s have passed (a request is counted when its response body
/// finishes, which can trail the client's last read by a moment). Returns the last count.
pub async fn wait_requests_total(admin: SocketAddr, labels: &[(&str, &str)], accept: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let value = requests_total(&metrics_text(admin).await, labels);
        if accept(value) || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::task::yield_now().await;
    }
}

/// Polls `/admin/parity` on `admin` (up to 10 s) until `route` has `total` shadow
/// outcomes; returns the last answer.
pub async fn parity_when(admin: SocketAddr, route: &str, total: u64) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let parity = get(&format!("http://{admin}/admin/parity")).await.json();
        let r = &parity["routes"][route];
        let seen: u64 = ["match", "noise", "mismatch", "error", "dropped", "skipped"]
            .iter()
            .map(|k| r[k].as_u64().unwrap_or(0))
            .sum();
        if seen >= total || tokio::time::Instant::now() >= deadline {
            return parity;
        }
        tokio::task::yield_now().await;
    }
}

//! TLS on the listener (versions, SNI, certificate hot reload, half-finished updates) and
//! towards `https://` upstreams (CA file, untrusted certificates, mutual TLS). Every
//! certificate and key is generated here at test time (rcgen); none is committed.
//!
//! The helpers at the top (a test CA, TLS clients, TLS and h2c test upstreams) are used by
//! `http2.rs` too.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;

use crate::common::*;

// ---------------------------------------------------------------------------------------
// Test PKI
// ---------------------------------------------------------------------------------------

/// A certificate authority made for one test.
pub struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub pem: String,
    der: CertificateDer<'static>,
}

/// A leaf certificate and its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses), usable by servers and clients.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        roots
    }
}

impl Leaf {
    fn server_config(&self, alpn: &[&[u8]], client_ca: Option<&Ca>) -> Arc<ServerConfig> {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider())
                    .build()
                    .unwrap(),
            ),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(
                vec![self.der.clone()],
                PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
pub const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
pub const ANY_TLS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A client that trusts `ca`, speaks `versions` and offers `alpn`.
pub fn client_config(ca: &Ca, versions: &[&'static SupportedProtocolVersion], alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `addr` asking for `name` (SNI; none for an IP address).
pub async fn tls_connect(addr: SocketAddr, name: &str, config: Arc<ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake with {addr} as {name}: {e}"))
}

/// The certificate `addr` serves to a client asking for `name`.
pub async fn served_cert(addr: SocketAddr, name: &str, ca: &Ca) -> CertificateDer<'static> {
    let stream = tls_connect(addr, name, client_config(ca, ANY_TLS, &[])).await;
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// Polls (every 20 ms, up to `within`) until `addr` serves `expected` for `name`.
pub async fn wait_for_cert(addr: SocketAddr, name: &str, ca: &Ca, expected: &CertificateDer<'_>, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if served_cert(addr, name, ca).await == *expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: the new certificate was not served within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A response read to its end.
#[derive(Debug)]
pub struct Reply {
    pub version: Version,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub async fn read_reply(response: Response<Incoming>) -> Reply {
    let version = response.version();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    Reply {
        version,
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
    }
}

/// Sends `request` over `io` with HTTP/2 when `h2`, else HTTP/1.1.
pub async fn send_over<I>(io: I, h2: bool, request: Request<BoxBody>) -> Reply
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let response = if h2 {
        let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    };
    read_reply(response).await
}

/// `GET path` over TLS to `addr` as `host`, in whatever protocol ALPN picks.
pub async fn https_get(addr: SocketAddr, host: &str, config: Arc<ClientConfig>, path: &str) -> Reply {
    let stream = tls_connect(addr, host, config).await;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let request = if h2 {
        Request::get(format!("https://{host}:{}{path}", addr.port()))
    } else {
        Request::get(path).header("host", format!("{host}:{}", addr.port()))
    };
    send_over(stream, h2, request.body(full("")).unwrap()).await
}

// ---------------------------------------------------------------------------------------
// Test upstreams: TLS or plain, HTTP/1.1 and HTTP/2 or HTTP/2 only
// ---------------------------------------------------------------------------------------

/// What a test upstream saw of one request.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub version: Version,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The client certificate of the connection, if one was presented.
    pub client_cert: Option<CertificateDer<'static>>,
}

pub struct TestUpstream {
    pub addr: SocketAddr,
    /// TCP connections accepted.
    pub connections: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
    _stop: oneshot::Sender<()>,
}

impl TestUpstream {
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// How a test upstream speaks.
#[derive(Clone)]
pub struct UpstreamOptions {
    /// TLS with this certificate (and ALPN `h2`, `http/1.1`), else plain.
    pub tls: Option<Leaf>,
    /// Client certificates must chain to this CA.
    pub client_ca: Option<Arc<Ca>>,
    /// HTTP/2 only (h2c prior knowledge when plain), else HTTP/1.1 and HTTP/2.
    pub h2_only: bool,
    /// Close each connection gracefully after this many requests.
    pub requests_per_connection: Option<usize>,
}

impl UpstreamOptions {
    pub fn plain() -> Self {
        Self {
            tls: None,
            client_ca: None,
            h2_only: false,
            requests_per_connection: None,
        }
    }
}

pub async fn test_upstream<H, F>(options: UpstreamOptions, handler: H) -> TestUpstream
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Response<BoxBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
    let handler = Arc::new(handler);
    let acceptor = options.tls.as_ref().map(|leaf| {
        let alpn: &[&[u8]] = if options.h2_only {
            &[b"h2"]
        } else {
            &[b"h2", b"http/1.1"]
        };
        tokio_rustls::TlsAcceptor::from(leaf.server_config(alpn, options.client_ca.as_deref()))
    });
    let (stop, mut stopped) = oneshot::channel::<()>();
    let (counter, record) = (connections.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let (handler, record, acceptor) = (handler.clone(), record.clone(), acceptor.clone());
            let options = options.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let client_cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|certs| certs.first().cloned());
                        serve_test_connection(stream, client_cert, &options, handler, record).await;
                    }
                    None => serve_test_connection(stream, None, &options, handler, record).await,
                }
            });
        }
    });
    TestUpstream {
        addr,
        connections,
        seen,
        _stop: stop,
    }
}

async fn serve_test_connection<I, H, F>(
    io: I,
    client_cert: Option<CertificateDer<'static>>,
    options: &UpstreamOptions,
    handler: Arc<H>,
    record: Arc<Mutex<Vec<SeenRequest>>>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Response<BoxBody>> + Send + 'static,
{
    let served = Arc::new(AtomicUsize::new(0));
    let (enough, mut enough_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let limit = options.requests_per_connection;
    let count = served.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        record.lock().unwrap().push(SeenRequest {
            version: request.version(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            client_cert: client_cert.clone(),
        });
        if limit.is_some_and(|limit| count.fetch_add(1, Ordering::SeqCst) + 1 >= limit) {
            let _ = enough.send(());
        }
        let response = handler(request);
        async move { Ok::<_, std::convert::Infallible>(response.await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if options.h2_only {
        builder = builder.http2_only();
    }
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        Some(()) = enough_rx.recv() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// An upstream answering 200 `ok` to everything.
pub async fn ok_upstream(options: UpstreamOptions) -> TestUpstream {
    test_upstream(options, |_request| async { Response::new(full("ok")) }).await
}

// ---------------------------------------------------------------------------------------
// A proxy with TLS files in its config directory
// ---------------------------------------------------------------------------------------

/// `[proxy.tls]` with `default.pem`/`default.key` and one `[[proxy.tls.certs]]` per
/// `(hosts, file name)`.
pub fn tls_section(sni: &[(&[&str], &str)]) -> String {
    let mut text = String::from("[proxy.tls]\ncert = \"default.pem\"\nkey = \"default.key\"\n");
    for (hosts, name) in sni {
        let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
        text.push_str(&format!(
            "[[proxy.tls.certs]]\nhosts = [{}]\ncert = \"{name}.pem\"\nkey = \"{name}.key\"\n",
            hosts.join(", ")
        ));
    }
    text
}

/// Starts a proxy whose config directory holds `files` (name, contents) and `routes`.
/// A TLS proxy over a plain upstream (returned: it stops when dropped), whose default
/// certificate is `pair` in `default.pem` and `default.key` next to routes.toml.
pub async fn proxy_serving_pair(pair: &Leaf) -> (TestProxy, TestUpstream) {
    let legacy = ok_upstream(UpstreamOptions::plain()).await;
    let routes = routes_toml_with(
        &tls_section(&[]),
        &[("legacy", &format!("http://{}", legacy.addr), "")],
        "",
    );
    let proxy = proxy_with_files(
        &[("default.pem", &pair.cert_pem), ("default.key", &pair.key_pem)],
        &routes,
    )
    .await;
    (proxy, legacy)
}

/// Replaces `path` the way editors and cert tools do: write a temp file, rename it over.
fn replace_file(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

const TLS_OK: &str = "strangler_tls_reloads_total{result=\"ok\"}";
const TLS_ERROR: &str = "strangler_tls_reloads_total{result=\"error\"}";

/// Polls the metric until it reaches `at_least` (up to `within`).
async fn wait_for_metric(proxy: &TestProxy, series: &str, at_least: f64, within: Duration) {
    let value = wait_metric_within(proxy, series, within, |v| v.unwrap_or(0.0) >= at_least)
        .await
        .unwrap_or(0.0);
    assert!(
        value >= at_least,
        "{series} is {value}, expected at least {at_least} within {within:?}"
    );
}

/// How soon a changed certificate must be served.
const RELOAD_WITHIN: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------
// Tests: the listener
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn tls12_and_tls13_clients_are_served_with_forwarded_proto_https() {
    let ca = Ca::new("listener CA");
    let default = ca.leaf(&["app.example", "127.0.0.1"]);
    let (proxy, legacy) = proxy_serving_pair(&default).await;

    for (versions, expected) in [
        (TLS12, rustls::ProtocolVersion::TLSv1_2),
        (TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let config = client_config(&ca, versions, &[b"http/1.1"]);
        let stream = tls_connect(proxy.addr, "app.example", config.clone()).await;
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        let reply = https_get(proxy.addr, "app.example", config, "/hello").await;
        assert_eq!(reply.status, 200, "{expected:?}");
        assert_eq!(reply.body, "ok");
        assert_eq!(reply.version, Version::HTTP_11);
    }

    let seen = legacy.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.headers["x-forwarded-proto"], "https");
        assert_eq!(
            request.headers["x-forwarded-host"],
            format!("app.example:{}", proxy.addr.port())
        );
        assert_eq!(request.uri.path(), "/hello");
    }
    // Plain HTTP on the TLS port is not served.
    let text = raw(proxy.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(!text.starts_with("HTTP/1.1 200"), "{text}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sni_picks_the_certificate_of_the_host_and_the_default_otherwise() {
    let ca = Ca::new("listener CA");
    let default = ca.leaf(&["default.test", "other.example", "127.0.0.1"]);
    let a = ca.leaf(&["a.example"]);
    let b = ca.leaf(&["b.example", "x.wild.example"]);
    let legacy = ok_upstream(UpstreamOptions::plain()).await;
    let routes = routes_toml_with(
        &tls_section(&[(&["a.example"], "a"), (&["B.example", "*.wild.example"], "b")]),
        &[("legacy", &format!("http://{}", legacy.addr), "")],
        "",
    );
    let proxy = proxy_with_files(
        &[
            ("default.pem", &default.cert_pem),
            ("default.key", &default.key_pem),
            ("a.pem", &a.cert_pem),
            ("a.key", &a.key_pem),
            ("b.pem", &b.cert_pem),
            ("b.key", &b.key_pem),
        ],
        &routes,
    )
    .await;

    assert_eq!(served_cert(proxy.addr, "a.example", &ca).await, a.der);
    assert_eq!(served_cert(proxy.addr, "b.example", &ca).await, b.der);
    assert_eq!(served_cert(proxy.addr, "x.wild.example", &ca).await, b.der);
    assert_eq!(served_cert(proxy.addr, "other.example", &ca).await, default.der);
    // An IP address sends no SNI at all.
    assert_eq!(served_cert(proxy.addr, "127.0.0.1", &ca).await, default.der);
    let reply = https_get(proxy.addr, "a.example", client_config(&ca, ANY_TLS, &[]), "/").await;
    assert_eq!(reply.status, 200);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_replaced_by_rename_is_served_within_3s() {
    let ca = Ca::new("listener CA");
    let old = ca.leaf(&["app.example"]);
    let new = ca.leaf(&["app.example"]);
    let (proxy, _legacy) = proxy_serving_pair(&old).await;
    assert_eq!(served_cert(proxy.addr, "app.example", &ca).await, old.der);

    // A key and certificate in one PEM file would be one rename; two files are two.
    replace_file(&proxy.dir.path().join("default.key"), &new.key_pem);
    replace_file(&proxy.dir.path().join("default.pem"), &new.cert_pem);
    wait_for_cert(proxy.addr, "app.example", &ca, &new.der, RELOAD_WITHIN).await;
    wait_for_metric(&proxy, TLS_OK, 1.0, RELOAD_WITHIN).await;
    let reply = https_get(proxy.addr, "app.example", client_config(&ca, ANY_TLS, &[]), "/").await;
    assert_eq!(reply.status, 200);
    proxy.stop().await;
}

/// A Kubernetes Secret volume: `tls.crt -> ..data/tls.crt`, `..data -> ..TIMESTAMP`; an
/// update writes a new timestamped dir and renames a fresh `..data` symlink over the old.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn certificate_swapped_by_symlink_is_served_within_3s() {
    let ca = Ca::new("listener CA");
    let old = ca.leaf(&["app.example"]);
    let new = ca.leaf(&["app.example"]);
    let legacy = ok_upstream(UpstreamOptions::plain()).await;
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("secret");
    let mut volume = ConfigMapVolume::create(
        &base,
        "..2026_01_01",
        &[("tls.crt", &old.cert_pem), ("tls.key", &old.key_pem)],
    );
    let routes = routes_toml_with(
        "[proxy.tls]\ncert = \"secret/tls.crt\"\nkey = \"secret/tls.key\"\n",
        &[("legacy", &format!("http://{}", legacy.addr), "")],
        "",
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let proxy = TestProxy::start_at(dir, config).await;
    assert_eq!(served_cert(proxy.addr, "app.example", &ca).await, old.der);

    volume.update("..2026_01_02", &[("tls.crt", &new.cert_pem), ("tls.key", &new.key_pem)]);

    wait_for_cert(proxy.addr, "app.example", &ca, &new.der, RELOAD_WITHIN).await;
    // Both files changed in one swap: no half-finished pair was ever seen.
    assert_eq!(metric(&proxy, TLS_ERROR).await, Some(0.0));
    assert_eq!(metric(&proxy, TLS_OK).await, Some(1.0));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mismatched_pair_keeps_the_old_certificate_until_the_key_arrives() {
    let ca = Ca::new("listener CA");
    let old = ca.leaf(&["app.example"]);
    let new = ca.leaf(&["app.example"]);
    let (proxy, _legacy) = proxy_serving_pair(&old).await;
    assert_eq!(metric(&proxy, TLS_ERROR).await, Some(0.0));

    // Half an update: the new certificate next to the old key.
    replace_file(&proxy.dir.path().join("default.pem"), &new.cert_pem);
    wait_for_metric(&proxy, TLS_ERROR, 1.0, RELOAD_WITHIN).await;
    assert_eq!(served_cert(proxy.addr, "app.example", &ca).await, old.der);
    let reply = https_get(proxy.addr, "app.example", client_config(&ca, ANY_TLS, &[]), "/").await;
    assert_eq!(reply.status, 200, "still serving with the old pair");

    // Garbage in the key file: still the old pair, one more error.
    replace_file(&proxy.dir.path().join("default.key"), "not a key");
    wait_for_metric(&proxy, TLS_ERROR, 2.0, RELOAD_WITHIN).await;
    assert_eq!(served_cert(proxy.addr, "app.example", &ca).await, old.der);
    assert_eq!(metric(&proxy, TLS_OK).await, Some(0.0));

    // The key arrives: the new pair is served.
    replace_file(&proxy.dir.path().join("default.key"), &new.key_pem);
    wait_for_cert(proxy.addr, "app.example", &ca, &new.der, RELOAD_WITHIN).await;
    assert_eq!(metric(&proxy, TLS_OK).await, Some(1.0));
    assert_eq!(
        metric(&proxy, TLS_ERROR).await,
        Some(2.0),
        "each bad content counted once"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_proxy_with_a_mismatched_pair_does_not_start() {
    let ca = Ca::new("listener CA");
    let one = ca.leaf(&["app.example"]);
    let two = ca.leaf(&["app.example"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("default.pem"), &one.cert_pem).unwrap();
    std::fs::write(dir.path().join("default.key"), &two.key_pem).unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(
        &config,
        routes_toml_with(&tls_section(&[]), &[("legacy", "http://127.0.0.1:9", "")], ""),
    )
    .unwrap();
    let error = strangler::App::load(config.clone()).unwrap_err().to_string();
    // `key = …` is on line 7 of the generated file.
    assert!(error.starts_with(&format!("{}:7:7: key ", config.display())), "{error}");
    assert!(error.contains("does not match certificate"), "{error}");
}

// ---------------------------------------------------------------------------------------
// Tests: https upstreams
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn https_upstream_is_verified_against_its_ca_file() {
    let upstream_ca = Ca::new("upstream CA");
    let secure = ok_upstream(UpstreamOptions {
        tls: Some(upstream_ca.leaf(&["127.0.0.1"])),
        ..UpstreamOptions::plain()
    })
    .await;
    let stranger = ok_upstream(UpstreamOptions {
        tls: Some(Ca::new("unknown CA").leaf(&["127.0.0.1"])),
        ..UpstreamOptions::plain()
    })
    .await;
    let routes = routes_toml_with(
        "",
        &[
            ("legacy", &format!("https://{}", secure.addr), "ca_file = \"ca.pem\""),
            (
                "stranger",
                &format!("https://{}", stranger.addr),
                "ca_file = \"ca.pem\"",
            ),
            ("public", &format!("https://{}", secure.addr), ""),
        ],
        "[[routes]]\nname = \"stranger\"\npath = \"/stranger/\"\nlegacy = \"stranger\"\n\n\
         [[routes]]\nname = \"public\"\npath = \"/public/\"\nlegacy = \"public\"\n",
    );
    let proxy = proxy_with_files(&[("ca.pem", &upstream_ca.pem)], &routes).await;

    let answer = get(&proxy.url("/trusted")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, "ok");
    assert_eq!(secure.seen().len(), 1);
    assert_eq!(secure.seen()[0].headers["x-forwarded-proto"], "http");

    // Signed by a CA the ca_file does not hold.
    let answer = get(&proxy.url("/stranger/x")).await;
    assert_eq!(answer.status, 502);
    assert!(answer.body.contains("upstream `stranger`"), "{}", answer.body);
    assert!(answer.body.contains("TLS handshake"), "{}", answer.body);
    assert!(stranger.seen().is_empty());
    // No ca_file: Mozilla's roots, which do not hold the test CA either.
    let answer = get(&proxy.url("/public/x")).await;
    assert_eq!(answer.status, 502);
    assert!(answer.body.contains("upstream `public`"), "{}", answer.body);
    assert_eq!(
        metric(
            &proxy,
            "strangler_upstream_errors_total{kind=\"tls\",upstream=\"stranger\"}"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(secure.seen().len(), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_presents_the_client_certificate() {
    let upstream_ca = Ca::new("upstream CA");
    let client_ca = Arc::new(Ca::new("client CA"));
    let client = client_ca.leaf(&["strangler.internal"]);
    let strict = ok_upstream(UpstreamOptions {
        tls: Some(upstream_ca.leaf(&["127.0.0.1"])),
        client_ca: Some(client_ca.clone()),
        ..UpstreamOptions::plain()
    })
    .await;
    let url = format!("https://{}", strict.addr);
    let routes = routes_toml_with(
        "",
        &[
            (
                "legacy",
                &url,
                "ca_file = \"ca.pem\"\nclient_cert = \"client.pem\"\nclient_key = \"client.key\"",
            ),
            ("anonymous", &url, "ca_file = \"ca.pem\""),
        ],
        "[[routes]]\nname = \"anonymous\"\npath = \"/anonymous/\"\nlegacy = \"anonymous\"\n",
    );
    let proxy = proxy_with_files(
        &[
            ("ca.pem", &upstream_ca.pem),
            ("client.pem", &client.cert_pem),
            ("client.key", &client.key_pem),
        ],
        &routes,
    )
    .await;

    let answer = get(&proxy.url("/with-cert")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = strict.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].client_cert.as_ref(), Some(&client.der));

    let answer = get(&proxy.url("/anonymous/x")).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("upstream `anonymous`"), "{}", answer.body);
    assert_eq!(strict.seen().len(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn a_client_key_that_does_not_match_rejects_the_table() {
    let ca = Ca::new("client CA");
    let (one, two) = (ca.leaf(&["a.internal"]), ca.leaf(&["b.internal"]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.pem"), &one.cert_pem).unwrap();
    std::fs::write(dir.path().join("client.key"), &two.key_pem).unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(
        &config,
        routes_toml_with(
            "",
            &[(
                "legacy",
                "https://127.0.0.1:9",
                "client_cert = \"client.pem\"\nclient_key = \"client.key\"",
            )],
            "",
        ),
    )
    .unwrap();
    let error = strangler::App::load(config).unwrap_err().to_string();
    assert!(error.contains("`legacy` is not usable"), "{error}");
    assert!(error.contains("client.key` does not match certificate"), "{error}");
}

/// `strangler check` reads the certificate and key files too: a half-finished update is
/// caught before it is deployed, at the line that names the key.
#[test]
fn check_reports_a_mismatched_pair_and_an_unreadable_ca_file() {
    let ca = Ca::new("listener CA");
    let (one, two) = (ca.leaf(&["app.example"]), ca.leaf(&["app.example"]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("default.pem"), &one.cert_pem).unwrap();
    std::fs::write(dir.path().join("default.key"), &two.key_pem).unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(
        &config,
        routes_toml_with(
            &tls_section(&[]),
            &[("legacy", "https://127.0.0.1:9", "ca_file = \"missing-ca.pem\"")],
            "",
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strangler"))
        .args(["check", config.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let name = config.display();
    assert!(lines[0].starts_with(&format!("{name}:7:7: key ")), "{out}");
    assert!(lines[0].contains("does not match certificate"), "{out}");
    assert!(
        lines[1].starts_with(&format!("{name}:12:11: cannot read CA file ")),
        "{out}"
    );

    // Matching files: ok.
    std::fs::write(dir.path().join("default.key"), &one.key_pem).unwrap();
    std::fs::write(dir.path().join("missing-ca.pem"), &ca.pem).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strangler"))
        .args(["check", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

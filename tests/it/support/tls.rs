//! TLS for the tests: a test CA and leaf certificates made at test time (rcgen; none is
//! committed), TLS clients, test upstreams that speak TLS or plain, HTTP/1.1 and/or
//! HTTP/2 (recording the version and client certificate of each request), and a TLS proxy
//! over such an upstream.

use std::net::SocketAddr;
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

use super::body::{BoxBody, full};
use super::proxy::{TestProxy, proxy_with_files};
use super::routes::routes_toml_with;
use super::wait::poll;

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

/// Polls (with back-off, up to `within`) until `addr` serves `expected` for `name`.
pub async fn wait_for_cert(addr: SocketAddr, name: &str, ca: &Ca, expected: &CertificateDer<'_>, within: Duration) {
    let served = poll(within, || served_cert(addr, name, ca), |served| served == expected).await;
    assert!(
        served == *expected,
        "{name}: the new certificate was not served within {within:?}"
    );
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

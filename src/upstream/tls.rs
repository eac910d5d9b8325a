//! TLS towards `https://` upstreams.
//!
//! [`ClientTls`] is the rustls client side of one `https://` upstream: server
//! name from its URL (SNI and verification), trust in its `ca_file` or else in the compiled-in
//! Mozilla roots (`webpki-roots`, the same on every replica whatever its image ships), an
//! optional client certificate for mutual TLS, and ALPN `h2` or `http/1.1` after the
//! upstream's `http2` setting.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::UpstreamConfig;
use crate::tls::{ALPN_H2, ALPN_HTTP11, TlsError, certified_key, invalid, parse_chain, provider, read_file, read_pair};

/// How the proxy speaks TLS to one `https://` upstream.
pub struct ClientTls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// Digest of the CA and client certificate files read: a reload that finds them
    /// changed builds new connection pools.
    pub fingerprint: [u8; 32],
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Mozilla's roots as a store, built once.
fn webpki_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

impl ClientTls {
    /// The TLS side of an upstream: `None` for `http://` ones. Reads its `ca_file` and
    /// client certificate (blocking IO).
    pub fn for_upstream(config: &UpstreamConfig) -> Result<Option<Arc<Self>>, TlsError> {
        let Some(settings) = &config.tls else {
            return Ok(None);
        };
        let host = config
            .url
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_owned()).map_err(|_| TlsError::ServerName {
            upstream: config.name.clone(),
            host: host.to_owned(),
        })?;
        let mut fingerprint = Sha256::new();
        let roots = match &settings.ca_file {
            None => webpki_roots(),
            Some(file) => {
                let pem = read_file(file, "CA file")?;
                fingerprint.update(&pem);
                let certs = parse_chain(file, &pem)?;
                let mut store = RootCertStore::empty();
                let (added, _ignored) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(invalid(file, "CA file", "no usable CA certificate".to_owned()));
                }
                Arc::new(store)
            }
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots);
        let mut client = match &settings.client {
            None => builder.with_no_client_auth(),
            Some(pair) => {
                let files = read_pair(pair)?;
                fingerprint.update(files.digest);
                let certified = certified_key(pair, &files)?;
                builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)))
            }
        };
        client.alpn_protocols = vec![if config.http2 { ALPN_H2 } else { ALPN_HTTP11 }.to_vec()];
        Ok(Some(Arc::new(Self {
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
            fingerprint: fingerprint.finalize().into(),
        })))
    }

    /// Performs the TLS handshake on a connected socket.
    pub async fn connect(&self, stream: TcpStream) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        self.connector.connect(self.server_name.clone(), stream).await
    }
}

//! TLS: the public listener's certificates, and the client side of `https://` upstreams.
//!
//! Listener. One rustls [`ServerConfig`] lives as long as the listener (so its session
//! cache and ticket keys survive certificate reloads). Its certificate resolver holds the
//! current `CertSet` behind an `ArcSwap`: a handshake loads it once and picks the
//! certificate for the SNI host name (exact name, then a `*.` wildcard one label up, then
//! the default). Nothing on the request path touches TLS state. ALPN offers `h2` and
//! `http/1.1`; the protocol negotiated decides how [`crate::server`] serves the connection.
//!
//! Hot reload. [`watch`] watches the parent directory of every certificate and key file
//! (as [`crate::reload`] does for routes.toml, so that rename-over writes and Kubernetes
//! `..data` symlink swaps are seen), re-reads them every [`RECHECK`] in case an event was
//! missed, and follows routes.toml reloads that change the paths. A certificate and its key
//! are always read and checked as a pair: a pair whose files are unreadable, not PEM, or
//! whose key does not match the certificate (a half-finished update) is not used. The pair
//! loaded before keeps serving, the error is logged and counted once per distinct content
//! in `strangler_tls_reloads_total{result="error"}`, and the next change is tried again.
//! Reading and parsing PEM happens on the blocking pool, never on the async workers.
//!
//! Crypto provider: ring. It builds with a C compiler alone (aws-lc-rs needs cmake or a
//! long C build of aws-lc on a small machine), and for the suites that matter here
//! (TLS 1.3/1.2 with AES-GCM and ChaCha20-Poly1305, ECDHE over X25519/P-256) it is as fast.
//! What aws-lc-rs would add — FIPS mode and post-quantum key exchange — is not asked for.
//!
//! Upstreams. [`ClientTls`] is the rustls client side of one `https://` upstream: server
//! name from its URL (SNI and verification), trust in its `ca_file` or else in the compiled-in
//! Mozilla roots (`webpki-roots`, the same on every replica whatever its image ships), an
//! optional client certificate for mutual TLS, and ALPN `h2` or `http/1.1` after the
//! upstream's `http2` setting.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use prometheus::IntCounterVec;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{CertKeyPair, FileRef, TlsSettings, UpstreamConfig};
use crate::state::State;

/// ALPN name of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN name of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// How long to wait after a file event before reading, so that a burst of writes (cert,
/// then key) becomes one reload.
const SETTLE: Duration = Duration::from_millis(50);

/// Certificate files are re-read this often even without a file event (a watch can miss
/// changes, e.g. a symlink whose target directory is not watched).
pub const RECHECK: Duration = Duration::from_secs(10);

/// The crypto provider every TLS config here uses (ring; see the module docs).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Why certificates or keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{written_at}: cannot read {what} `{}`: {source}", path.display())]
    Read {
        /// Where routes.toml names the file.
        written_at: String,
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file was read but does not hold what it should.
    #[error("{written_at}: {what} `{}`: {message}", path.display())]
    Invalid {
        /// Where routes.toml names the file.
        written_at: String,
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The private key is not the one of the certificate.
    #[error("{written_at}: key `{}` does not match certificate `{}`", key.display(), cert.display())]
    Mismatch {
        /// Where routes.toml names the key.
        written_at: String,
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// An upstream's host cannot be a TLS server name.
    #[error("upstream `{upstream}`: host `{host}` is not a valid TLS server name")]
    ServerName {
        /// The upstream.
        upstream: String,
        /// Its host.
        host: String,
    },
    /// rustls refused the configuration.
    #[error("cannot set up TLS: {0}")]
    Setup(#[from] rustls::Error),
}

// ---------------------------------------------------------------------------------------
// Certificate/key pairs
// ---------------------------------------------------------------------------------------

/// The bytes of a certificate file and its key file, read together, and their digest.
struct PairFiles {
    cert: Vec<u8>,
    key: Vec<u8>,
    digest: [u8; 32],
}

fn read_file(file: &FileRef, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&file.path).map_err(|source| TlsError::Read {
        written_at: file.written_at.clone(),
        what,
        path: file.path.clone(),
        source,
    })
}

fn invalid(file: &FileRef, what: &'static str, message: String) -> TlsError {
    TlsError::Invalid {
        written_at: file.written_at.clone(),
        what,
        path: file.path.clone(),
        message,
    }
}

fn read_pair(pair: &CertKeyPair) -> Result<PairFiles, TlsError> {
    let cert = read_file(&pair.cert, "certificate")?;
    let key = read_file(&pair.key, "key")?;
    let digest = Sha256::new()
        .chain_update(&cert)
        .chain_update([0])
        .chain_update(&key)
        .finalize()
        .into();
    Ok(PairFiles { cert, key, digest })
}

fn parse_chain(file: &FileRef, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(file, "certificate", format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(file, "certificate", "no CERTIFICATE block".to_owned()));
    }
    Ok(chain)
}

fn parse_key(file: &FileRef, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => invalid(file, "key", "no PRIVATE KEY block".to_owned()),
        other => invalid(file, "key", format!("not a PEM private key: {other}")),
    })
}

/// Parses a pair and checks that the key is the certificate's.
fn certified_key(pair: &CertKeyPair, files: &PairFiles) -> Result<CertifiedKey, TlsError> {
    let chain = parse_chain(&pair.cert, &files.cert)?;
    let key = parse_key(&pair.key, &files.key)?;
    check_pair(pair, chain, key)
}

fn check_pair(
    pair: &CertKeyPair,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| invalid(&pair.key, "key", format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(TlsError::Mismatch {
            written_at: pair.key.written_at.clone(),
            cert: pair.cert.path.clone(),
            key: pair.key.path.clone(),
        }),
        Err(rustls::Error::InconsistentKeys(_)) => Err(invalid(
            &pair.key,
            "key",
            "cannot tell whether this key matches the certificate (unsupported key type)".to_owned(),
        )),
        Err(e) => Err(invalid(&pair.cert, "certificate", format!("unusable certificate: {e}"))),
    }
}

/// Reads and checks one pair (blocking).
pub fn load_pair(pair: &CertKeyPair) -> Result<CertifiedKey, TlsError> {
    certified_key(pair, &read_pair(pair)?)
}

// ---------------------------------------------------------------------------------------
// Listener
// ---------------------------------------------------------------------------------------

/// The certificates in force: what a handshake chooses from.
#[derive(Debug)]
struct CertSet {
    default: Arc<CertifiedKey>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` is stored as `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl CertSet {
    /// The certificate for a (lower-case, as rustls hands it over) SNI host name.
    fn pick(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        if let Some(name) = server_name {
            if let Some(key) = self.exact.get(name) {
                return key;
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(key) = self.wildcard.get(parent)
            {
                return key;
            }
        }
        &self.default
    }
}

/// rustls's certificate resolver over the swappable [`CertSet`].
#[derive(Debug)]
struct Resolver {
    current: ArcSwap<CertSet>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().pick(client_hello.server_name()).clone())
    }
}

/// What is known about one certificate/key pair (by its two paths).
#[derive(Debug, Default)]
struct PairState {
    /// The pair last loaded successfully.
    key: Option<Arc<CertifiedKey>>,
    /// Digest of the files it was loaded from.
    digest: Option<[u8; 32]>,
    /// Digest of the last content (or read error) that failed, already reported.
    failure: Option<[u8; 32]>,
}

#[derive(Debug)]
struct Loaded {
    settings: TlsSettings,
    pairs: HashMap<(PathBuf, PathBuf), PairState>,
}

/// TLS on the public listener: the server config, its certificates, and their reloads.
#[derive(Debug)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    resolver: Arc<Resolver>,
    reloads: IntCounterVec,
    loaded: Mutex<Loaded>,
}

/// What re-reading one pair found.
enum Attempt {
    /// The files hold what is loaded.
    Unchanged,
    /// New content that loads, and its digest.
    Loaded(CertifiedKey, [u8; 32]),
    /// New content that does not load, and a digest of what failed (the content, or the
    /// read error's text), so that the same failure is reported once.
    Failed(TlsError, [u8; 32]),
}

fn attempt(pair: &CertKeyPair, state: &PairState) -> Attempt {
    let files = match read_pair(pair) {
        Ok(files) => files,
        Err(error) => {
            let digest = Sha256::digest(error.to_string().as_bytes()).into();
            return Attempt::Failed(error, digest);
        }
    };
    if state.digest == Some(files.digest) {
        return Attempt::Unchanged;
    }
    match certified_key(pair, &files) {
        Ok(key) => Attempt::Loaded(key, files.digest),
        Err(error) => Attempt::Failed(error, files.digest),
    }
}

/// The pairs of a `[proxy.tls]` section: the default first, then the SNI entries.
fn pairs_of(settings: &TlsSettings) -> impl Iterator<Item = &CertKeyPair> {
    std::iter::once(&settings.default).chain(settings.sni.iter().map(|s| &s.pair))
}

fn pair_id(pair: &CertKeyPair) -> (PathBuf, PathBuf) {
    (pair.cert.path.clone(), pair.key.path.clone())
}

impl ServerTls {
    /// Loads every pair of `settings` (blocking IO). Any unusable pair is an error: the
    /// proxy does not start with a certificate missing.
    pub fn load(settings: &TlsSettings, reloads: IntCounterVec) -> Result<Self, TlsError> {
        let mut pairs = HashMap::new();
        for pair in pairs_of(settings) {
            let id = pair_id(pair);
            if pairs.contains_key(&id) {
                continue;
            }
            let files = read_pair(pair)?;
            let key = certified_key(pair, &files)?;
            pairs.insert(
                id,
                PairState {
                    key: Some(Arc::new(key)),
                    digest: Some(files.digest),
                    failure: None,
                },
            );
        }
        let set = build_set(settings, &pairs, None).ok_or_else(|| {
            invalid(
                &settings.default.cert,
                "certificate",
                "the default certificate is not loaded".to_owned(),
            )
        })?;
        let resolver = Arc::new(Resolver {
            current: ArcSwap::from_pointee(set),
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
        // Stateless resumption: a returning client skips the full handshake on any worker.
        config.ticketer = rustls::crypto::ring::Ticketer::new()?;
        Ok(Self {
            config: Arc::new(config),
            resolver,
            reloads,
            loaded: Mutex::new(Loaded {
                settings: settings.clone(),
                pairs,
            }),
        })
    }

    /// An acceptor for one connection. The certificates are chosen during its handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// Re-reads every pair of `settings` (blocking IO) and swaps in what changed and
    /// loads. Returns whether the certificates in force changed.
    pub fn refresh(&self, settings: &TlsSettings) -> bool {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = loaded.settings != *settings;
        let mut next: HashMap<(PathBuf, PathBuf), PairState> = HashMap::new();
        for pair in pairs_of(settings) {
            let id = pair_id(pair);
            if next.contains_key(&id) {
                continue;
            }
            let mut state = loaded.pairs.remove(&id).unwrap_or_default();
            match attempt(pair, &state) {
                Attempt::Unchanged => state.failure = None,
                Attempt::Loaded(key, digest) => {
                    state.key = Some(Arc::new(key));
                    state.digest = Some(digest);
                    state.failure = None;
                    changed = true;
                    self.reloads.with_label_values(&["ok"]).inc();
                    tracing::info!(
                        cert = %pair.cert.path.display(),
                        key = %pair.key.path.display(),
                        "TLS certificate loaded"
                    );
                }
                // The same bad content (or read error) as last time: already reported.
                Attempt::Failed(_, failure) if state.failure == Some(failure) => {}
                Attempt::Failed(error, failure) => {
                    state.failure = Some(failure);
                    self.reloads.with_label_values(&["error"]).inc();
                    let keeping = if state.key.is_some() {
                        "keeping the certificate loaded before"
                    } else {
                        "its hosts get the default certificate"
                    };
                    tracing::error!("TLS certificate not reloaded, {keeping}: {error}");
                }
            }
            next.insert(id, state);
        }
        loaded.pairs = next;
        loaded.settings = settings.clone();
        if changed {
            let current = self.resolver.current.load();
            if let Some(set) = build_set(settings, &loaded.pairs, Some(&current.default)) {
                self.resolver.current.store(Arc::new(set));
            }
        }
        changed
    }
}

/// The set for `settings` from the loaded pairs. An SNI entry whose pair never loaded is
/// left out (its hosts get the default); a default that never loaded falls back to
/// `previous_default`.
fn build_set(
    settings: &TlsSettings,
    pairs: &HashMap<(PathBuf, PathBuf), PairState>,
    previous_default: Option<&Arc<CertifiedKey>>,
) -> Option<CertSet> {
    let key_of = |pair: &CertKeyPair| pairs.get(&pair_id(pair)).and_then(|state| state.key.clone());
    let default = key_of(&settings.default).or_else(|| previous_default.cloned())?;
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    for entry in &settings.sni {
        let Some(key) = key_of(&entry.pair) else { continue };
        for host in &entry.hosts {
            match host.strip_prefix("*.") {
                Some(parent) => wildcard.insert(parent.to_owned(), key.clone()),
                None => exact.insert(host.clone(), key.clone()),
            };
        }
    }
    Some(CertSet {
        default,
        exact,
        wildcard,
    })
}

/// A running certificate watch; dropping it stops the watch.
#[derive(Debug)]
pub struct TlsWatch {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keeps `tls` up to date with its files and with `[proxy.tls]` in the routing table in
/// force, until the returned watch is dropped.
pub fn watch(tls: Arc<ServerTls>, state: Arc<State>) -> TlsWatch {
    let task = tokio::spawn(async move {
        let pending = Arc::new(Notify::new());
        let mut loads = state.subscribe();
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watching: Option<(TlsSettings, notify::RecommendedWatcher)> = None;
        let mut warned_removed = false;
        loop {
            match state.snapshot().config().proxy.tls.clone() {
                Some(settings) => {
                    warned_removed = false;
                    if watching.as_ref().is_none_or(|(watched, _)| *watched != settings) {
                        watching = watch_dirs(&settings, pending.clone()).map(|w| (settings.clone(), w));
                    }
                    let tls = tls.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || tls.refresh(&settings)).await {
                        tracing::error!(error = %e, "TLS certificate reload task failed");
                    }
                }
                None if !warned_removed => {
                    warned_removed = true;
                    tracing::warn!("`[proxy.tls]` was removed: the listener keeps serving TLS until restarted");
                }
                None => {}
            }
            tokio::select! {
                _ = pending.notified() => tokio::time::sleep(SETTLE).await,
                loaded = loads.changed() => {
                    if loaded.is_err() {
                        return;
                    }
                }
                _ = recheck.tick() => {}
            }
        }
    });
    TlsWatch { task }
}

/// Watches the directories of every file of `settings`; events about those file names, or
/// about `..`-prefixed entries (Kubernetes' `..data` swaps), wake `pending`.
fn watch_dirs(settings: &TlsSettings, pending: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let files: Vec<&Path> = pairs_of(settings)
        .flat_map(|pair| [pair.cert.path.as_path(), pair.key.path.as_path()])
        .collect();
    let names: Vec<std::ffi::OsString> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
        .collect();
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .map(|p| match p.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event) => {
            if event.kind.is_access() {
                return;
            }
            let relevant = event.paths.is_empty()
                || event.paths.iter().any(|p| {
                    p.file_name()
                        .is_some_and(|name| names.iter().any(|n| n == name) || name.to_string_lossy().starts_with(".."))
                });
            if relevant {
                pending.notify_one();
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "certificate watcher error; re-reading to be safe");
            pending.notify_one();
        }
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the TLS certificates; re-reading them every {RECHECK:?}");
            return None;
        }
    };
    for dir in &dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::error!(dir = %dir.display(), error = %e, "cannot watch a certificate directory; re-reading every {RECHECK:?}");
        }
    }
    tracing::info!(dirs = ?dirs, "watching TLS certificates for changes");
    Some(watcher)
}

/// Reads every certificate, key and CA file a config names and reports what would keep it
/// from loading (`strangler check`): the files themselves are not part of the config's
/// validation, which does no IO. Blocking.
pub fn check_files(config: &crate::config::Config) -> Vec<TlsError> {
    let mut problems = Vec::new();
    if let Some(settings) = &config.proxy.tls {
        let mut seen = Vec::new();
        for pair in pairs_of(settings) {
            if seen.contains(&pair) {
                continue;
            }
            seen.push(pair);
            if let Err(e) = load_pair(pair) {
                problems.push(e);
            }
        }
    }
    for upstream in config.upstreams.values() {
        if let Err(e) = ClientTls::for_upstream(upstream) {
            problems.push(e);
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------
// Upstreams
// ---------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let der = PrivateKeyDer::try_from(generated.signing_key.serialize_der()).unwrap();
        let signing = provider().key_provider.load_private_key(der).unwrap();
        Arc::new(CertifiedKey::new(vec![generated.cert.der().clone()], signing))
    }

    #[test]
    fn picks_exact_then_wildcard_then_default() {
        let (default, a, wild) = (key("default.test"), key("a.example"), key("x.b.example"));
        let set = CertSet {
            default: default.clone(),
            exact: HashMap::from([("a.example".to_owned(), a.clone())]),
            wildcard: HashMap::from([("b.example".to_owned(), wild.clone())]),
        };
        assert!(Arc::ptr_eq(set.pick(Some("a.example")), &a));
        assert!(Arc::ptr_eq(set.pick(Some("x.b.example")), &wild));
        // A wildcard covers one label only.
        assert!(Arc::ptr_eq(set.pick(Some("y.x.b.example")), &default));
        assert!(Arc::ptr_eq(set.pick(Some("b.example")), &default));
        assert!(Arc::ptr_eq(set.pick(Some("other.example")), &default));
        assert!(Arc::ptr_eq(set.pick(None), &default));
    }

    #[test]
    fn a_key_of_another_certificate_is_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let one = rcgen::generate_simple_self_signed(vec!["one.test".to_owned()]).unwrap();
        let two = rcgen::generate_simple_self_signed(vec!["two.test".to_owned()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), one.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), two.signing_key.serialize_pem()).unwrap();
        let file = |name: &str| FileRef {
            path: dir.path().join(name),
            written_at: "routes.toml:3:8".to_owned(),
        };
        let pair = CertKeyPair {
            cert: file("cert.pem"),
            key: file("key.pem"),
        };
        let error = load_pair(&pair).unwrap_err();
        assert!(matches!(error, TlsError::Mismatch { .. }), "{error}");
        assert!(error.to_string().starts_with("routes.toml:3:8: key "), "{error}");

        std::fs::write(dir.path().join("key.pem"), one.signing_key.serialize_pem()).unwrap();
        load_pair(&pair).unwrap();

        std::fs::write(dir.path().join("key.pem"), "garbage").unwrap();
        let error = load_pair(&pair).unwrap_err();
        assert!(error.to_string().contains("no PRIVATE KEY block"), "{error}");
        std::fs::write(dir.path().join("cert.pem"), "").unwrap();
        let error = load_pair(&pair).unwrap_err();
        assert!(error.to_string().contains("no CERTIFICATE block"), "{error}");
    }
}

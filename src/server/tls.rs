//! The public listener's TLS: certificates per SNI name, reloaded while serving.
//!
//! One rustls [`ServerConfig`] lives as long as the listener (so its session
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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use prometheus::IntCounterVec;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use crate::config::{CertKeyPair, TlsSettings};
use crate::state::State;
use crate::tls::{ALPN_H2, ALPN_HTTP11, TlsError, certified_key, invalid, provider, read_pair};

/// How long to wait after a file event before reading, so that a burst of writes (cert,
/// then key) becomes one reload.
const SETTLE: Duration = Duration::from_millis(50);

/// Certificate files are re-read this often even without a file event (a watch can miss
/// changes, e.g. a symlink whose target directory is not watched).
pub const RECHECK: Duration = Duration::from_secs(10);

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
pub fn pairs_of(settings: &TlsSettings) -> impl Iterator<Item = &CertKeyPair> {
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
/// force, until the returned watch is dropped. The directories are watched when this
/// returns (as [`crate::reload::watch`]'s are), so a change made after start-up is seen;
/// the certificates loaded at start are not read again until something changes or the
/// first [`RECHECK`] comes.
pub fn watch(tls: Arc<ServerTls>, state: Arc<State>) -> TlsWatch {
    let pending = Arc::new(Notify::new());
    let mut loads = state.subscribe();
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watching: Option<(TlsSettings, notify::RecommendedWatcher)> = state
        .snapshot()
        .config()
        .proxy
        .tls
        .clone()
        .and_then(|settings| watch_dirs(&settings, pending.clone()).map(|w| (settings, w)));
    let task = tokio::spawn(async move {
        let mut warned_removed = false;
        loop {
            tokio::select! {
                _ = pending.notified() => tokio::time::sleep(SETTLE).await,
                loaded = loads.changed() => {
                    if loaded.is_err() {
                        return;
                    }
                }
                _ = recheck.tick() => {}
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::PrivateKeyDer;

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
}

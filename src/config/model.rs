//! The validated configuration: what a loaded `routes.toml` means, as the rest of the proxy
//! sees it. Every value here has passed validation ([`super::validate`]); nothing in this file
//! reads files or reports config errors (the one parse is a [`Stage`] from its name, shared by
//! the validator and the commands), so every other file of `config` (and of the crate) can
//! depend on it without depending on anything else.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Uri};

use crate::parity::CompareRules;

/// A place in a config file, 1-based, as editors count.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// Line number, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// A validated routing table file. Immutable once built.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, as named by the user.
    pub source: String,
    /// Hex digest of the file's bytes: equal files give equal versions on every replica.
    pub version: String,
    /// The `[proxy]` section.
    pub proxy: ProxySettings,
    /// Upstreams by name, sorted by name.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes in file order (order does not affect matching).
    pub routes: Vec<RouteConfig>,
    /// `[record]`: sampled traffic written as a parity corpus.
    pub record: Option<RecordConfig>,
    /// `[tracing]`: OTLP export of spans (default: none).
    pub tracing: TracingConfig,
}

/// The `[record]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordConfig {
    /// The JSON Lines file (relative paths are relative to the config file's directory).
    pub path: PathBuf,
    /// Share of requests recorded, 0.0–1.0.
    pub sample: f64,
    /// The file is rotated to `PATH.1` when it would grow past this.
    pub max_bytes: u64,
    /// Headers redacted besides authorization, cookie, set-cookie and proxy-authorization.
    pub redact: Vec<http::HeaderName>,
    /// Whether each line also keeps the answer (`responses = true`): a golden corpus for
    /// `strangler parity --legacy-from`.
    pub responses: bool,
}

/// `[proxy] worker_cpu_affinity`: whether the proxy workers are pinned one per CPU
/// (see [`crate::server::affinity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerCpuAffinity {
    /// Pin when the CPUs the process may use are exactly as many as the workers.
    #[default]
    Auto,
    /// Never pin; the kernel places the workers.
    Off,
}

/// Settings of the `[proxy]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// Public listener. Changing it needs a restart.
    pub listen: SocketAddr,
    /// Admin listener (admin API, metrics). Changing it needs a restart.
    pub admin_listen: SocketAddr,
    /// Upstream for requests that no route matches.
    pub default_upstream: String,
    /// How long a client may take to send its request headers (slowloris guard).
    pub client_header_timeout: Duration,
    /// Largest request head accepted; larger heads get 431.
    pub max_header_bytes: usize,
    /// How long in-flight requests may run after a shutdown signal.
    pub drain_timeout: Duration,
    /// `reload_settle`: how long routes.toml must stay unchanged after its writer closed it
    /// (or, where the file watcher reports no closes, after its last change) before it is
    /// loaded, so that a file written in several parts loads once, whole.
    pub reload_settle: Duration,
    /// Proxy worker threads; `None` means one per available CPU. Needs a restart.
    pub workers: Option<usize>,
    /// Whether workers are pinned one per CPU (`worker_cpu_affinity`). Needs a restart.
    pub worker_cpu_affinity: WorkerCpuAffinity,
    /// `/readyz` fails while the default upstream's health check says it is unhealthy.
    pub ready_requires_healthy_default: bool,
    /// Client connections open at once on the public listener; beyond it accepting pauses.
    /// Needs a restart to change.
    pub max_connections: usize,
    /// `admin_token_file`: the file the admin API's bearer token is read from. With it,
    /// every admin request except the health checks needs `Authorization: Bearer <token>`;
    /// without it the admin API must listen on a loopback address.
    pub admin_token_file: Option<TokenFile>,
    /// The token itself, once [`Config::read_admin_token`] has read the file (the serving
    /// proxy does, at start and on every reload; `check` and `explain` never read it).
    pub admin_token: Option<AdminToken>,
    /// `admin_hosts`: host names (lowercase, no port) the admin API answers to besides IP
    /// literals and `localhost`; any other `Host` gets 421 (the DNS-rebinding guard of
    /// [`crate::admin::guard`]). Follows reloads.
    pub admin_hosts: Vec<String>,
    /// `[proxy.tls]`: the public listener speaks TLS. Turning it on or off needs a restart;
    /// certificate paths and SNI entries follow reloads.
    pub tls: Option<TlsSettings>,
    /// `client_idle_timeout`: how long a client connection may stay open with no request
    /// in progress after its first (HTTP/1.1 keep-alive; HTTP/2 with no open stream)
    /// before it is closed. Before the first request, and while a head or header block
    /// is arriving, `client_header_timeout` applies instead. New connections take a
    /// reloaded value.
    pub client_idle_timeout: Duration,
    /// `http2_max_concurrent_streams`: streams a client may have open at once on one
    /// HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused with
    /// REFUSED_STREAM. New connections take a reloaded value.
    pub http2_max_concurrent_streams: u32,
    /// `send_timeout`: the longest a client may leave the response unread (nginx's
    /// `send_timeout`); beyond it the exchange ends and the connection closes.
    pub send_timeout: Duration,
    /// `client_body_timeout`: the longest wait between two reads of a request body (nginx's
    /// `client_body_timeout`); beyond it the client gets 408, and no upstream is blamed.
    pub client_body_timeout: Duration,
    /// The settings the file leaves out that got a default worth saying (`listen`,
    /// `admin_listen`, `default_upstream`), in that order: `strangler check` prints them.
    pub defaulted: Vec<&'static str>,
    /// `error_bodies`: what the answers strangler makes itself say ([`ErrorBodies`]).
    pub error_bodies: ErrorBodies,
    /// `[proxy.error_pages]`: files served instead for some of those answers, by status
    /// (sorted by status, one per status).
    pub error_pages: Vec<ErrorPage>,
}

/// Where `admin_token_file` points, and where that setting is written (for the errors
/// found when the file is read, after validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFile {
    /// The file (relative paths are relative to the config file's directory).
    pub path: PathBuf,
    /// Where the setting's value starts in the config file.
    pub location: Location,
}

/// The admin API's bearer token. Only its SHA-256 digest is kept, so the token is not
/// held in memory after loading and never printed (`Debug` shows `[redacted]`); a
/// presented token is hashed the same way and the two digests are compared in constant
/// time, so neither the token's content nor its length leaks through timing.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl AdminToken {
    /// The token whose text is `token`.
    pub fn new(token: &[u8]) -> Self {
        Self(digest(token))
    }

    /// Whether `presented` is this token; constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        digest(presented).ct_eq(&self.0).into()
    }
}

impl PartialEq for AdminToken {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for AdminToken {}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

/// SHA-256 of `bytes`: what an [`AdminToken`] keeps instead of the token.
fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// A file named in routes.toml: its path (a relative path is resolved against the config
/// file's directory) and where it was written, for errors found when the file is read.
/// Two references are equal when they name the same path wherever they are written, so
/// that moving a line is not a change of settings.
#[derive(Debug, Clone)]
pub struct FileRef {
    /// The file.
    pub path: PathBuf,
    /// `file:line:column` of the value in routes.toml.
    pub written_at: String,
}

impl PartialEq for FileRef {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for FileRef {}

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertKeyPair {
    /// The chain, leaf first.
    pub cert: FileRef,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: FileRef,
}

/// `[proxy.tls]`: TLS on the public listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Served when the client names no host (no SNI) or a host that no `certs` entry lists.
    pub default: CertKeyPair,
    /// `[[proxy.tls.certs]]`: certificates chosen by the host name the client asks for.
    pub sni: Vec<SniCertificate>,
}

/// One `[[proxy.tls.certs]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCertificate {
    /// Lower-case host names; `*.example.com` matches one label below `example.com`.
    pub hosts: Vec<String>,
    /// The certificate and key served for them.
    pub pair: CertKeyPair,
}

/// TLS towards an `https://` upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamTls {
    /// CA certificates that the upstream's certificate must chain to, instead of the
    /// built-in web PKI roots.
    pub ca_file: Option<FileRef>,
    /// A client certificate presented to the upstream (mutual TLS).
    pub client: Option<CertKeyPair>,
}

/// One `[upstreams.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// The table key.
    pub name: String,
    /// Base URL: scheme, authority and an optional base path, under which every request
    /// to it goes (see [`super::forwarding::base_path_of`]).
    pub url: Uri,
    /// Time allowed to establish a TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed until the first byte of the response (its head).
    pub request_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle keep-alive connections kept per worker; more are closed when given back (like
    /// nginx's `keepalive N`), so a burst does not leave thousands of idle connections.
    pub pool_max_idle: usize,
    /// Speak HTTP/2 to it (over TLS for https, prior-knowledge h2c for http), multiplexing
    /// requests on one connection per proxy worker.
    pub http2: bool,
    /// TLS settings; `Some` exactly when the URL is `https://`.
    pub tls: Option<UpstreamTls>,
    /// Active health checks, when `[upstreams.NAME.health]` is set.
    pub health: Option<HealthCheckConfig>,
    /// Passive outlier detection (on when `[upstreams.NAME.outlier]` is present).
    pub outlier: OutlierConfig,
    /// Retries allowed on top of the requests, in thousandths (`retry_budget = 0.2` → 200).
    pub retry_budget_permille: u32,
    /// Most connections open to this upstream at once, over all workers; `None`: no limit.
    pub max_connections: Option<usize>,
    /// `read_timeout`: the longest wait between two reads of a response body (nginx's
    /// `proxy_read_timeout`); beyond it the exchange ends and the client connection closes.
    pub read_timeout: Duration,
}

/// `[upstreams.NAME.health]`: what an active health check asks and how its answers count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Path (and query) of the `GET` request; a 2xx or 3xx answer is a pass.
    pub path: http::uri::PathAndQuery,
    /// Time between checks.
    pub interval: Duration,
    /// Time allowed for one check (connect and response head).
    pub timeout: Duration,
    /// Consecutive passes that make an unhealthy upstream healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures that make a healthy upstream unhealthy.
    pub unhealthy_threshold: u32,
}

/// `[upstreams.NAME.outlier]`: when real traffic ejects an upstream, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierConfig {
    /// Off: the upstream is never ejected.
    pub enabled: bool,
    /// Consecutive failures (connect error, timeout, reset, 5xx) that eject the upstream.
    pub consecutive_failures: u32,
    /// The failures must all fall within this window, counted from the first of them.
    pub interval: Duration,
    /// The first ejection's length; each further ejection in a row doubles it.
    pub base_ejection: Duration,
    /// The longest ejection.
    pub max_ejection: Duration,
}

/// What an upstream without an `[outlier]` table gets: off (an upstream is usually one
/// address, and ejecting the only one turns a burst of errors into an outage; nginx never
/// ejects a lone server). A table switches it on unless it says `enabled = false`; its
/// other settings default to these.
impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            consecutive_failures: 5,
            interval: Duration::from_secs(10),
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
        }
    }
}

/// How a route's path is matched against the normalised request path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathPattern {
    /// Only this exact path.
    Exact(String),
    /// A template with `{param}` segments and an optional trailing `{*rest}`, matched
    /// against the whole path.
    Template(String),
    /// A segment-aware prefix: `/api/thoughts/` matches `/api/thoughts`,
    /// `/api/thoughts/` and everything below, never `/api/thoughtsX`.
    Prefix(String),
}

impl PathPattern {
    /// The kind as the admin API and `explain` name it.
    pub fn kind(&self) -> &'static str {
        match self {
            PathPattern::Exact(_) => "exact",
            PathPattern::Template(_) => "template",
            PathPattern::Prefix(_) => "prefix",
        }
    }

    /// The path or template as written.
    pub fn as_str(&self) -> &str {
        match self {
            PathPattern::Exact(p) | PathPattern::Template(p) | PathPattern::Prefix(p) => p,
        }
    }
}

/// Where a route sends its traffic. The variants are in migration order, which `Ord`
/// follows: each step forward (`legacy < shadow < canary < new`) moves traffic closer to
/// the new upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Everything goes to the legacy upstream.
    Legacy,
    /// Clients get legacy's answers; a copy of each request goes to the new upstream and
    /// the answers are compared.
    Shadow,
    /// `canary.percent` of the traffic goes to the new upstream, the rest to legacy.
    Canary,
    /// Everything goes to the new upstream.
    New,
}

impl Stage {
    /// Every stage, in migration order.
    pub const ALL: [Stage; 4] = [Stage::Legacy, Stage::Shadow, Stage::Canary, Stage::New];

    /// The name used in routes.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Legacy => "legacy",
            Stage::Shadow => "shadow",
            Stage::Canary => "canary",
            Stage::New => "new",
        }
    }
}

/// A stage name that is none of [`Stage::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage `{0}`, expected `legacy`, `shadow`, `canary` or `new`")]
pub struct UnknownStage(pub String);

impl std::str::FromStr for Stage {
    type Err = UnknownStage;

    /// A stage by its routes.toml name (exact, lower case).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == name)
            .ok_or_else(|| UnknownStage(name.to_owned()))
    }
}

/// What keeps one user on one side of a canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyKey {
    /// The value of this cookie.
    Cookie(String),
    /// The value of this request header.
    Header(http::HeaderName),
    /// The client's IP address.
    ClientIp,
}

impl std::fmt::Display for StickyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StickyKey::Cookie(name) => write!(f, "cookie:{name}"),
            StickyKey::Header(name) => write!(f, "header:{name}"),
            StickyKey::ClientIp => f.write_str("client_ip"),
        }
    }
}

/// A route's shadow-traffic settings: bounds that keep mirroring from costing the
/// client anything.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowConfig {
    /// Share of eligible requests mirrored, 0.0–1.0.
    pub sample: f64,
    /// Mirrored requests in flight at once for this route; beyond it they are dropped (and
    /// counted).
    pub max_inflight: usize,
    /// Largest request body mirrored (bytes); larger requests are skipped (and counted).
    pub max_body: usize,
    /// How long a mirrored request may take.
    pub timeout: Duration,
    /// Mirror methods other than GET, HEAD and OPTIONS (writes would usually run twice).
    pub unsafe_methods: bool,
    /// Share of compared requests also sent to legacy a second time to detect noise.
    pub noise_sample: f64,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        Self {
            sample: 1.0,
            max_inflight: 64,
            max_body: 65_536,
            timeout: Duration::from_secs(2),
            unsafe_methods: false,
            noise_sample: 0.0,
        }
    }
}

/// A route's canary settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryConfig {
    /// Share of requests (or of sticky keys) sent to the new upstream, in basis points
    /// (1/100 of a percent): `percent = 12.5` is 1250.
    pub basis_points: u32,
    /// What keeps a user on one side; without it each request is placed on its own.
    pub sticky: Option<StickyKey>,
}

/// One `[[routes]]` entry, validated.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Unique name, used in logs, metrics and the admin API.
    pub name: String,
    /// What paths it matches.
    pub pattern: PathPattern,
    /// Methods it matches; `None` means all methods.
    pub methods: Option<Vec<Method>>,
    /// Which side gets the traffic.
    pub stage: Stage,
    /// The legacy upstream (defaults to `proxy.default_upstream`).
    pub legacy: String,
    /// The new upstream, if one is set.
    pub new: Option<String>,
    /// Canary split, if the route has one (used at stage `canary`).
    pub canary: Option<CanaryConfig>,
    /// How this route's legacy and new answers are compared (shadow traffic, `strangler
    /// parity`); compiled once per load.
    pub compare: Arc<CompareRules>,
    /// Shadow-traffic settings (used at stage `shadow`).
    pub shadow: ShadowConfig,
    /// With `fallback = true`: the largest request body (bytes) buffered so that a request
    /// the new upstream fails can be replayed to legacy. `None`: no fallback.
    pub fallback_max_body: Option<usize>,
    /// `max_body`: the largest request body (bytes) this route forwards; larger ones get
    /// 413. `None`: no limit.
    pub max_body: Option<u64>,
    /// Where the route's path is written, for errors found later (conflicts).
    pub location: Location,
    /// `upgrades`: the protocols a request on this route may switch to (`Upgrade`),
    /// lower-case; [`DEFAULT_UPGRADES`] when left out, empty to forbid upgrades. Never
    /// `h2c` (refused when the file is read).
    pub upgrades: Vec<String>,
    /// `case_insensitive = true`: the route's `path` or `exact` (the literal segments of a
    /// template) matches whatever the ASCII case of the request path, for legacy stacks
    /// that ignore case (IIS), so that `/SECURE/x` cannot reach legacy's copy of a
    /// migrated `/secure/`.
    pub case_insensitive: bool,
    /// `strip_prefix`, `rewrite`, `host`, `request_headers`, `response_headers`: how its
    /// requests are addressed to the upstream and its answers to the client; the default
    /// forwards the path and `Host` as routed and edits no header.
    pub forwarding: super::forwarding::Forwarding,
}

/// The protocols a route allows requests to switch to when it says nothing, and the ones
/// requests that no route matches may switch to.
pub const DEFAULT_UPGRADES: [&str; 1] = ["websocket"];

impl RouteConfig {
    /// The upstream that gets this route's requests at its current stage (for a canary,
    /// the side that gets the rest: legacy).
    pub fn target(&self) -> &str {
        match (self.stage, &self.new) {
            (Stage::New, Some(new)) => new,
            _ => &self.legacy,
        }
    }
}

/// `[proxy] error_bodies`: what the body of an answer strangler makes itself (a 4xx
/// refusal, 408, 413, or a 502/503/504 for an upstream that failed or was not tried) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorBodies {
    /// What failed, by name (``upstream `users` (route `users-api`) refused the
    /// connection``): for whoever runs the migration and reads the answers.
    #[default]
    Detailed,
    /// The status line's text and the request id only: for a production site's clients,
    /// who should not see internal names. The names stay in the log and the metrics.
    Minimal,
}

/// The statuses strangler answers itself through the proxy (and so the only ones
/// `[proxy.error_pages]` may name): 400 (refused request, unreadable body), 405 (CONNECT),
/// 408 (stalled body), 413 (body over `max_body`), 502, 503 and 504 (an upstream failed or
/// was not tried). hyper's own 400 and 431, answered before a request exists, have
/// empty bodies and no page.
pub const ANSWERED_STATUSES: [u16; 7] = [400, 405, 408, 413, 502, 503, 504];

/// The largest error page file: a page is held in memory for every table loaded.
pub const MAX_ERROR_PAGE_BYTES: u64 = 1024 * 1024;

/// One `[proxy.error_pages]` entry: `"502" = "errors/502.html"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    /// The status it is served for (one of [`ANSWERED_STATUSES`]).
    pub status: http::StatusCode,
    /// The file (relative paths are relative to the config file's directory).
    pub path: PathBuf,
    /// Where the path is written, for the errors found when the file is read.
    pub location: Location,
    /// The `Content-Type` it is served with, from the file's extension.
    pub content_type: &'static str,
    /// The file's content, once [`Config::read_error_pages`](super::Config::read_error_pages)
    /// has read it (the serving proxy does, at start and on every reload; `check` too).
    pub content: Option<PageContent>,
}

/// An error page's bytes, cut at every `{request_id}`: the request id goes between two
/// consecutive pieces, so answering copies no page.
#[derive(Clone, PartialEq, Eq)]
pub struct PageContent {
    /// The pieces; one more than the placeholders.
    pub pieces: Vec<bytes::Bytes>,
}

impl fmt::Debug for PageContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: usize = self.pieces.iter().map(bytes::Bytes::len).sum();
        write!(
            f,
            "PageContent({bytes} bytes, {} placeholders)",
            self.pieces.len().saturating_sub(1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_ordered_for_migration_and_read_by_name() {
        assert!(Stage::Legacy < Stage::Shadow && Stage::Shadow < Stage::Canary && Stage::Canary < Stage::New);
        assert!(Stage::ALL.is_sorted());
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse(), Ok(stage));
        }
        assert_eq!(
            "dark-launch".parse::<Stage>(),
            Err(UnknownStage("dark-launch".to_owned()))
        );
        assert_eq!(
            "New".parse::<Stage>().unwrap_err().to_string(),
            "unknown stage `New`, expected `legacy`, `shadow`, `canary` or `new`"
        );
    }
}

/// The `[tracing]` section: where spans go (W3C trace headers are passed on whatever it says).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TracingConfig {
    /// The OTLP/HTTP collector's base URL (`http://host:4318`), as written; `None`: no export.
    pub otlp_endpoint: Option<Uri>,
    /// Where spans are POSTed: the endpoint with `/v1/traces` appended (unless its path
    /// already ends with it).
    pub otlp_traces_url: Option<Uri>,
}

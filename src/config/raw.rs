//! The file as serde sees it: every table refuses unknown keys, and every value that a
//! later check may reject keeps its span so the error can point at it.

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// `[proxy]`: optional, like every key in it (the default is a table without keys);
/// [`super::validate::validate_proxy`] gives the defaults.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(description = "The proxy's listeners, admin API, timeouts and limits. Optional, like every key in it.")]
pub(super) struct Proxy {
    /// Where end users connect, IP:PORT. Default "0.0.0.0:8000" (every interface). Restart to
    /// change.
    #[schemars(with = "Option<super::shapes::SocketAddress>")]
    pub listen: Option<Spanned<String>>,
    /// The admin API and /metrics, IP:PORT; never the public listener. Default "127.0.0.1:9100"
    /// (loopback); beyond loopback `admin_token_file` is required. Restart to change.
    #[schemars(with = "Option<super::shapes::SocketAddress>")]
    pub admin_listen: Option<Spanned<String>>,
    /// The upstream that gets every request no route matches. Default: the upstream named `legacy`,
    /// else the only upstream (with several and none named `legacy` it must be set).
    #[schemars(with = "Option<super::shapes::Name>")]
    pub default_upstream: Option<Spanned<String>>,
    /// A client must send its request head (HTTP/2: a complete header block) within this, and its
    /// first request within this of connecting; also bounds the TLS handshake (slowloris guard).
    /// Default "10s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub client_header_timeout: Option<Spanned<String>>,
    /// Larger request heads get 431; also caps HTTP/2 header lists. 8192 to 1048576, default 65536.
    #[schemars(with = "Option<super::shapes::Count<8192, 1048576>>")]
    pub max_header_bytes: Option<Spanned<i64>>,
    /// How long in-flight requests may finish after SIGTERM before the proxy exits. Default "30s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub drain_timeout: Option<Spanned<String>>,
    /// A routes.toml written in place loads once its writer has closed it and it stayed unchanged
    /// this long. 100ms to 10s, default "300ms".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub reload_settle: Option<Spanned<String>>,
    /// Proxy worker threads, 1 to 1024. Default: one per CPU. Restart to change.
    #[schemars(with = "Option<super::shapes::Count<1, 1024>>")]
    pub workers: Option<Spanned<i64>>,
    /// "auto" (the default): pin each worker to a CPU of its own when the CPUs this process may use
    /// are exactly as many as the workers; "off": never. Restart to change.
    #[schemars(with = "Option<super::shapes::CpuAffinity>")]
    pub worker_cpu_affinity: Option<Spanned<String>>,
    /// true (the default): /readyz answers 503 while the default upstream fails its health check.
    pub ready_requires_healthy_default: Option<bool>,
    /// Client connections open at once; beyond it accepting pauses until one closes. 1 to 10000000,
    /// default 10000. Restart to change.
    #[schemars(with = "Option<super::shapes::Count<1, 10000000>>")]
    pub max_connections: Option<Spanned<i64>>,
    /// A file holding the admin API's bearer token (relative to this file), read at start and on
    /// every reload; admin requests then need `Authorization: Bearer <token>`. Required when
    /// `admin_listen` is not a loopback address.
    #[schemars(with = "Option<super::shapes::FilePath>")]
    pub admin_token_file: Option<Spanned<String>>,
    /// Host names the admin API answers to besides IP literals and localhost (names only: no
    /// scheme, port, path or wildcard); any other Host gets 421 (DNS-rebinding guard). Default:
    /// none.
    #[schemars(with = "Option<Vec<super::shapes::HostName>>")]
    pub admin_hosts: Option<Vec<Spanned<String>>>,
    /// TLS on the public listener (TLS 1.3 and 1.2): the default certificate, and more chosen by
    /// SNI. Default: plain HTTP. Restart to turn on or off.
    #[schemars(with = "Option<ProxyTls>")]
    pub tls: Option<Spanned<ProxyTls>>,
    /// A client connection with no request in progress is closed after this (HTTP/2: GOAWAY first).
    /// 1s to 1h, default "75s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub client_idle_timeout: Option<Spanned<String>>,
    /// Streams one HTTP/2 client connection may have open at once (more get REFUSED_STREAM). 1 to
    /// 10000, default 128.
    #[schemars(with = "Option<super::shapes::Count<1, 10000>>")]
    pub http2_max_concurrent_streams: Option<Spanned<i64>>,
    /// A client that leaves its response unread this long is disconnected (nginx's send_timeout).
    /// Default "60s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub send_timeout: Option<Spanned<String>>,
    /// Longest wait between two reads of a request body; then 408 (nginx's client_body_timeout).
    /// Default "60s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub client_body_timeout: Option<Spanned<String>>,
    /// What the answers strangler makes itself say: "detailed" names the route and upstream,
    /// "minimal" only the status text and the request id. Default "detailed".
    #[schemars(with = "Option<super::shapes::ErrorBodiesName>")]
    pub error_bodies: Option<Spanned<String>>,
    /// A file served instead of the text, per status strangler answers itself (400, 405, 408,
    /// 413, 502, 503, 504), relative to this file; `{request_id}` in it is replaced.
    #[schemars(with = "Option<super::shapes::ErrorPages>")]
    pub error_pages: Option<std::collections::BTreeMap<Spanned<String>, Spanned<String>>>,
}

/// `[proxy.tls]`: the default certificate, and more chosen by SNI.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProxyTls {
    /// PEM certificate chain, leaf first, relative to this file: served when the client sends no
    /// SNI or a host no `certs` entry lists.
    #[schemars(with = "super::shapes::FilePath")]
    pub cert: Spanned<String>,
    /// PEM private key of `cert` (PKCS#8, PKCS#1 or SEC1), relative to this file.
    #[schemars(with = "super::shapes::FilePath")]
    pub key: Spanned<String>,
    /// More certificates, chosen by SNI (`[[proxy.tls.certs]]`).
    pub certs: Option<Vec<SniCert>>,
}

/// `[[proxy.tls.certs]]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SniCert {
    /// DNS names this certificate is served for; `*.` matches one label.
    #[schemars(with = "Vec<super::shapes::CertHost>")]
    pub hosts: Spanned<Vec<Spanned<String>>>,
    /// PEM certificate chain, leaf first, relative to this file.
    #[schemars(with = "super::shapes::FilePath")]
    pub cert: Spanned<String>,
    /// PEM private key of `cert`, relative to this file.
    #[schemars(with = "super::shapes::FilePath")]
    pub key: Spanned<String>,
}

/// `[upstreams.NAME]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Upstream {
    /// The upstream's base URL: http:// or https://, host and port ("http://127.0.0.1:3000").
    /// Required.
    #[schemars(with = "super::shapes::UpstreamUrl")]
    pub url: Spanned<String>,
    /// Longest wait for a TCP (and TLS) connection; also how long a request waits for a free
    /// connection under `max_connections`. Default "2s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub connect_timeout: Option<Spanned<String>>,
    /// Longest wait for the response head; then 504. Default "30s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub request_timeout: Option<Spanned<String>>,
    /// Idle keep-alive connections are kept this long. Default "90s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub pool_idle_timeout: Option<Spanned<String>>,
    /// Idle connections kept per worker (like nginx's `keepalive N`). 0 to 1000000, default 256.
    #[schemars(with = "Option<super::shapes::Count<0, 1000000>>")]
    pub pool_max_idle: Option<Spanned<i64>>,
    /// Speak HTTP/2 to this upstream (h2 by ALPN over TLS; prior-knowledge h2c for http://).
    /// Default false.
    #[schemars(with = "Option<bool>")]
    pub http2: Option<Spanned<bool>>,
    /// PEM CA certificates trusted for this https upstream instead of the built-in Mozilla roots,
    /// relative to this file.
    #[schemars(with = "Option<super::shapes::FilePath>")]
    pub ca_file: Option<Spanned<String>>,
    /// Mutual TLS: PEM certificate presented to the upstream (with `client_key`), relative to this
    /// file.
    #[schemars(with = "Option<super::shapes::FilePath>")]
    pub client_cert: Option<Spanned<String>>,
    /// Mutual TLS: PEM private key of `client_cert`, relative to this file.
    #[schemars(with = "Option<super::shapes::FilePath>")]
    pub client_key: Option<Spanned<String>>,
    /// Optional active health check: GET `path` every `interval`; an unhealthy upstream gets no
    /// traffic (503, or legacy with `fallback`). Default: none.
    #[schemars(with = "Option<Health>")]
    pub health: Option<Spanned<Health>>,
    /// Optional circuit breaker: that many failures in a row eject the upstream for
    /// `base_ejection`, doubling up to `max_ejection`. Off without this table.
    #[schemars(with = "Option<Outlier>")]
    pub outlier: Option<Spanned<Outlier>>,
    /// Refused connects are retried once, within this share of the traffic (plus a burst of 10).
    /// 0.0 to 1.0, default 0.2.
    #[schemars(with = "Option<super::shapes::Share>")]
    pub retry_budget: Option<Spanned<f64>>,
    /// HTTP/1.1 connections to this upstream over all workers, 1 to 1000000; a request finding them
    /// all busy waits up to `connect_timeout`, then gets 503. Default: no limit.
    #[schemars(with = "Option<super::shapes::Count<1, 1000000>>")]
    pub max_connections: Option<Spanned<i64>>,
    /// Longest wait between two reads of the response body; then the client's connection is closed
    /// (nginx's proxy_read_timeout). Default "60s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub read_timeout: Option<Spanned<String>>,
}

/// `[upstreams.NAME.health]`: active health checks.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Health {
    /// The absolute path to GET ("/healthz"); 2xx and 3xx pass. Required.
    #[schemars(with = "super::shapes::AbsolutePath")]
    pub path: Spanned<String>,
    /// Time between two checks. Default "5s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub interval: Option<Spanned<String>>,
    /// A check not answered within this fails. Default "1s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub timeout: Option<Spanned<String>>,
    /// Checks passed in a row that make an unhealthy upstream healthy. 1 to 100, default 2.
    #[schemars(with = "Option<super::shapes::Count<1, 100>>")]
    pub healthy_threshold: Option<Spanned<i64>>,
    /// Checks failed in a row that make a healthy upstream unhealthy. 1 to 100, default 3.
    #[schemars(with = "Option<super::shapes::Count<1, 100>>")]
    pub unhealthy_threshold: Option<Spanned<i64>>,
}

/// `[upstreams.NAME.outlier]`: passive outlier detection (circuit breaker).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Outlier {
    /// false turns the circuit breaker off while keeping its settings. Default true (when the table
    /// is written).
    pub enabled: Option<bool>,
    /// Failures in a row (connect error, timeout, reset, 5xx) within `interval` that eject the
    /// upstream. 1 to 10000, default 5.
    #[schemars(with = "Option<super::shapes::Count<1, 10000>>")]
    pub consecutive_failures: Option<Spanned<i64>>,
    /// The window the failures must fall in. Default "10s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub interval: Option<Spanned<String>>,
    /// How long the first ejection lasts; each ejection in a row doubles it. Default "10s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub base_ejection: Option<Spanned<String>>,
    /// The longest ejection; not shorter than `base_ejection`. Default "5m".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub max_ejection: Option<Spanned<String>>,
}

/// `[[routes]]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["path"] }, { "required": ["exact"] }]))]
pub(super) struct Route {
    /// Unique; letters, digits, `-` and `_` (not `default`); used in logs, metrics, the admin API
    /// and `strangler flip`. Required.
    #[schemars(with = "super::shapes::Name")]
    pub name: Spanned<String>,
    /// A prefix ("/api/thoughts/" matches /api/thoughts and below) or a template
    /// ("/api/items/{id}", "/files/{*rest}"). A route has `path` or `exact`.
    #[schemars(with = "Option<super::shapes::AbsolutePath>")]
    pub path: Option<Spanned<String>>,
    /// Only this exact path. A route has `path` or `exact`.
    #[schemars(with = "Option<super::shapes::AbsolutePath>")]
    pub exact: Option<Spanned<String>>,
    /// The methods the route matches (upper case, each once, never CONNECT). Default: every method.
    #[schemars(with = "Option<Vec<super::shapes::MethodName>>")]
    pub methods: Option<Vec<Spanned<String>>>,
    /// Where the route's requests go: "legacy" (the default), "shadow" (legacy answers, new gets a
    /// copy to compare), "canary" (a share to new) or "new".
    #[schemars(with = "Option<super::shapes::StageName>")]
    pub stage: Option<Spanned<String>>,
    /// The new upstream (required at stages shadow, canary and new).
    #[schemars(with = "Option<super::shapes::Name>")]
    pub new: Option<Spanned<String>>,
    /// The legacy upstream. Default: `proxy.default_upstream`.
    #[schemars(with = "Option<super::shapes::Name>")]
    pub legacy: Option<Spanned<String>>,
    /// At stage "canary": the share of requests for `new`, and what keeps a user on one side.
    #[schemars(with = "Option<Canary>")]
    pub canary: Option<Spanned<Canary>>,
    /// Requests sent to `new` that fail go to `legacy` instead (refused, out of service; timeout,
    /// reset or 5xx for idempotent methods). Default false.
    #[schemars(with = "Option<bool>")]
    pub fallback: Option<Spanned<bool>>,
    /// With `fallback = true`: request bodies up to this many bytes are buffered to be replayed. 0
    /// to 16777216, default 65536.
    #[schemars(with = "Option<super::shapes::Count<0, 16777216>>")]
    pub fallback_max_body: Option<Spanned<i64>>,
    /// How legacy's and new's answers are compared (shadow, `strangler parity`): status, these
    /// headers, JSON by pointer or bytes. Default: status, content-type and the whole body.
    #[schemars(with = "Option<super::shapes::CompareTable>")]
    pub compare: Option<Spanned<crate::parity::CompareSpec>>,
    /// At stage "shadow": bounds of the mirrored copies sent to `new`.
    #[schemars(with = "Option<Shadow>")]
    pub shadow: Option<Spanned<Shadow>>,
    /// Largest request body (bytes) this route accepts; larger gets 413. Default: no limit.
    #[schemars(with = "Option<super::shapes::AtLeast<0>>")]
    pub max_body: Option<Spanned<i64>>,
    /// Protocols a request on this route may switch to (Upgrade, HTTP/1.1); [] forbids upgrades;
    /// "h2c" is refused. Default ["websocket"].
    #[schemars(with = "Option<Vec<super::shapes::Protocol>>")]
    pub upgrades: Option<Vec<Spanned<String>>>,
    /// true: the route's path matches whatever the ASCII case of the request path (for a legacy
    /// stack that ignores case, such as IIS). Default false.
    #[schemars(with = "Option<bool>")]
    pub case_insensitive: Option<Spanned<bool>>,
    /// Prefix routes: cut the matched prefix before the request goes upstream (/api/users/7 ->
    /// /7). Default false.
    #[schemars(with = "Option<bool>")]
    pub strip_prefix: Option<Spanned<bool>>,
    /// The path the upstream gets: on a prefix route, the matched prefix replaced ("/people/");
    /// on a template route, a template of the path's placeholders ("/items/{id}").
    #[schemars(with = "Option<super::shapes::AbsolutePath>")]
    pub rewrite: Option<Spanned<String>>,
    /// "preserve" sends the client's Host; "upstream" the upstream URL's host:port. Default
    /// "preserve".
    #[schemars(with = "Option<super::shapes::HostPolicyName>")]
    pub host: Option<Spanned<String>>,
    /// Headers set on and removed from the request before it goes upstream.
    #[schemars(with = "Option<HeaderEdits>")]
    pub request_headers: Option<Spanned<HeaderEdits>>,
    /// Headers set on and removed from the answer before the client gets it.
    #[schemars(with = "Option<HeaderEdits>")]
    pub response_headers: Option<Spanned<HeaderEdits>>,
}

/// `request_headers = { set = { name = "value" }, remove = ["name"] }` (and
/// `response_headers`) in a route.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct HeaderEdits {
    /// Headers set, replacing any value the message had: { "X-Api-Version" = "2" }.
    #[schemars(with = "Option<super::shapes::HeaderValues>")]
    pub set: Option<std::collections::BTreeMap<Spanned<String>, Spanned<String>>>,
    /// Headers removed from the message: ["X-Powered-By", "Server"].
    #[schemars(with = "Option<Vec<super::shapes::HeaderName>>")]
    pub remove: Option<Vec<Spanned<String>>>,
}

/// `shadow = { sample = 0.1, max_inflight = 64, max_body = 65536, timeout = "2s", unsafe_methods = false, noise_sample = 0.05 }`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Shadow {
    /// Share of the route's requests mirrored to `new`. 0.0 to 1.0, default 1.0.
    #[schemars(with = "Option<super::shapes::Share>")]
    pub sample: Option<Spanned<f64>>,
    /// Mirrored copies in flight at once; beyond it a copy is dropped. 1 to 100000, default 64.
    #[schemars(with = "Option<super::shapes::Count<1, 100000>>")]
    pub max_inflight: Option<Spanned<i64>>,
    /// Requests with a larger body (bytes) are not mirrored. 0 to 16777216, default 65536.
    #[schemars(with = "Option<super::shapes::Count<0, 16777216>>")]
    pub max_body: Option<Spanned<i64>>,
    /// How long `new` may take to answer a copy. Default "2s".
    #[schemars(with = "Option<super::shapes::DurationText>")]
    pub timeout: Option<Spanned<String>>,
    /// Also mirror methods other than GET, HEAD and OPTIONS. Default false.
    pub unsafe_methods: Option<bool>,
    /// Share of mirrored requests also sent to legacy a second time, so that fields legacy changes
    /// by itself count as noise. 0.0 to 1.0, default 0.0.
    #[schemars(with = "Option<super::shapes::Share>")]
    pub noise_sample: Option<Spanned<f64>>,
}

/// `canary = { percent = 10, sticky = "cookie:session" }` in a route.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Canary {
    /// Share of requests sent to `new`, 0 to 100. Required.
    #[schemars(with = "super::shapes::Percent")]
    pub percent: Spanned<f64>,
    /// Keeps a user on one side: "cookie:NAME", "header:NAME" or "client_ip". Default: each request
    /// placed on its own.
    #[schemars(with = "Option<super::shapes::StickyKey>")]
    pub sticky: Option<Spanned<String>>,
}

/// `[record]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Record {
    /// The corpus file (JSON Lines; HAR 1.2 when the name ends in .har), relative to this
    /// file; rotated to PATH.1. Required.
    #[schemars(with = "super::shapes::FilePath")]
    pub path: Spanned<String>,
    /// Share of requests recorded. 0.0 to 1.0, default 1.0.
    #[schemars(with = "Option<super::shapes::Share>")]
    pub sample: Option<Spanned<f64>>,
    /// Rotate past this size, in bytes; at least 4096, default 104857600.
    #[schemars(with = "Option<super::shapes::AtLeast<4096>>")]
    pub max_bytes: Option<Spanned<i64>>,
    /// Headers whose values are replaced, besides authorization, cookie, set-cookie and
    /// proxy-authorization.
    #[schemars(with = "Option<Vec<super::shapes::HeaderName>>")]
    pub redact_headers: Option<Vec<Spanned<String>>>,
    /// Also keep each recorded request's answer (status, headers redacted like the
    /// request's, body up to 1 MiB) as its `response`, for `strangler parity
    /// --legacy-from`. Default false.
    pub responses: Option<bool>,
}

/// `[tracing]`: OTLP/HTTP export of a span per request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Tracing {
    /// The OTLP/HTTP collector spans are sent to (`/v1/traces` appended unless given). Default:
    /// no export.
    #[schemars(with = "Option<super::shapes::OtlpEndpoint>")]
    pub otlp_endpoint: Option<Spanned<String>>,
}

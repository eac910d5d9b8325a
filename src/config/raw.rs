//! The file as serde sees it: every table refuses unknown keys, and every value that a
//! later check may reject keeps its span so the error can point at it.

use serde::Deserialize;
use toml::Spanned;

/// `[proxy]`: optional, like every key in it (the default is a table without keys);
/// [`super::validate::validate_proxy`] gives the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Proxy {
    pub listen: Option<Spanned<String>>,
    pub admin_listen: Option<Spanned<String>>,
    pub default_upstream: Option<Spanned<String>>,
    pub client_header_timeout: Option<Spanned<String>>,
    pub max_header_bytes: Option<Spanned<i64>>,
    pub drain_timeout: Option<Spanned<String>>,
    pub reload_settle: Option<Spanned<String>>,
    pub workers: Option<Spanned<i64>>,
    pub worker_cpu_affinity: Option<Spanned<String>>,
    pub ready_requires_healthy_default: Option<bool>,
    pub max_connections: Option<Spanned<i64>>,
    pub admin_token_file: Option<Spanned<String>>,
    pub admin_hosts: Option<Vec<Spanned<String>>>,
    pub tls: Option<Spanned<ProxyTls>>,
    pub client_idle_timeout: Option<Spanned<String>>,
    pub http2_max_concurrent_streams: Option<Spanned<i64>>,
    pub send_timeout: Option<Spanned<String>>,
    pub client_body_timeout: Option<Spanned<String>>,
}

/// `[proxy.tls]`: the default certificate, and more chosen by SNI.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProxyTls {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
    pub certs: Option<Vec<SniCert>>,
}

/// `[[proxy.tls.certs]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SniCert {
    pub hosts: Spanned<Vec<Spanned<String>>>,
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

/// `[upstreams.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Upstream {
    pub url: Spanned<String>,
    pub connect_timeout: Option<Spanned<String>>,
    pub request_timeout: Option<Spanned<String>>,
    pub pool_idle_timeout: Option<Spanned<String>>,
    pub pool_max_idle: Option<Spanned<i64>>,
    pub http2: Option<Spanned<bool>>,
    pub ca_file: Option<Spanned<String>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    pub health: Option<Spanned<Health>>,
    pub outlier: Option<Spanned<Outlier>>,
    pub retry_budget: Option<Spanned<f64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub read_timeout: Option<Spanned<String>>,
}

/// `[upstreams.NAME.health]`: active health checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Health {
    pub path: Spanned<String>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub healthy_threshold: Option<Spanned<i64>>,
    pub unhealthy_threshold: Option<Spanned<i64>>,
}

/// `[upstreams.NAME.outlier]`: passive outlier detection (circuit breaker).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Outlier {
    pub enabled: Option<bool>,
    pub consecutive_failures: Option<Spanned<i64>>,
    pub interval: Option<Spanned<String>>,
    pub base_ejection: Option<Spanned<String>>,
    pub max_ejection: Option<Spanned<String>>,
}

/// `[[routes]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Route {
    pub name: Spanned<String>,
    pub path: Option<Spanned<String>>,
    pub exact: Option<Spanned<String>>,
    pub methods: Option<Vec<Spanned<String>>>,
    pub stage: Option<Spanned<String>>,
    pub new: Option<Spanned<String>>,
    pub legacy: Option<Spanned<String>>,
    pub canary: Option<Spanned<Canary>>,
    pub fallback: Option<Spanned<bool>>,
    pub fallback_max_body: Option<Spanned<i64>>,
    pub compare: Option<Spanned<crate::parity::CompareSpec>>,
    pub shadow: Option<Spanned<Shadow>>,
    pub max_body: Option<Spanned<i64>>,
    pub upgrades: Option<Vec<Spanned<String>>>,
    pub case_insensitive: Option<Spanned<bool>>,
}

/// `shadow = { sample = 0.1, max_inflight = 64, max_body = 65536, timeout = "2s", unsafe_methods = false, noise_sample = 0.05 }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Shadow {
    pub sample: Option<Spanned<f64>>,
    pub max_inflight: Option<Spanned<i64>>,
    pub max_body: Option<Spanned<i64>>,
    pub timeout: Option<Spanned<String>>,
    pub unsafe_methods: Option<bool>,
    pub noise_sample: Option<Spanned<f64>>,
}

/// `canary = { percent = 10, sticky = "cookie:session" }` in a route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Canary {
    pub percent: Spanned<f64>,
    pub sticky: Option<Spanned<String>>,
}

/// `[record]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Record {
    pub path: Spanned<String>,
    pub sample: Option<Spanned<f64>>,
    pub max_bytes: Option<Spanned<i64>>,
    pub redact_headers: Option<Vec<Spanned<String>>>,
}

/// `[tracing]`: OTLP/HTTP export of a span per request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Tracing {
    pub otlp_endpoint: Option<Spanned<String>>,
}

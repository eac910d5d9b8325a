//! The upstream client: how the proxy talks to legacy and new services.
//!
//! - [`Upstream`] (here): one upstream as requests use it: its settings, a keep-alive pool
//!   per proxy worker, its health; built once per reload, carrying warm pools and health
//!   state over from the previous table when they still fit;
//! - [`pool`]: keep-alive connection pools, HTTP/1.1 or HTTP/2, with a connection cap and
//!   retries of requests that never reached the upstream;
//! - [`body`]: the request body on its way upstream (streamed under `max_body`, or buffered
//!   for a replay);
//! - [`health`]: active health checks, outlier ejection and the retry budget per upstream;
//! - [`tls`]: TLS to `https://` upstreams.
//!
//! Nothing here knows routes or the request path's decisions: the proxy hands it a request
//! and an upstream, and gets an answer or a classified failure back.

pub mod body;
pub mod health;
pub mod pool;
pub mod tls;

use std::sync::Arc;

use http::HeaderValue;
use http::uri::{Authority, Scheme};
use prometheus::Histogram;

use crate::config::{HostPolicy, UpstreamConfig};
use crate::metrics::{Metrics, PerWorker};
use health::UpstreamHealth;
use pool::{ConnectionLimit, ConnectionPool, Dial};
use tls::ClientTls;

/// Index of an upstream in a table's upstreams ([`crate::state::Snapshot::upstreams`]).
pub type UpstreamId = usize;

/// An upstream the config names could not be set up (a validated config makes this
/// impossible but for unreadable TLS files; kept as an error rather than a panic).
#[derive(Debug, thiserror::Error)]
#[error("`{upstream}` is not usable: {reason}")]
pub struct UnusableUpstream {
    /// The upstream's name.
    pub upstream: String,
    /// Why.
    pub reason: String,
}

impl UnusableUpstream {
    fn new(upstream: &str, reason: impl Into<String>) -> Self {
        Self {
            upstream: upstream.to_owned(),
            reason: reason.into(),
        }
    }
}

/// An upstream as requests use it.
#[derive(Debug)]
pub struct Upstream {
    /// Name from routes.toml, shared with every response that goes to it (labels, logs).
    pub name: Arc<str>,
    /// Its settings.
    pub config: UpstreamConfig,
    /// Scheme of its URL, used to build request URIs.
    pub scheme: Scheme,
    /// Authority of its URL.
    pub authority: Authority,
    /// Keep-alive connection pools, one per proxy worker thread, so that a request and the
    /// upstream connection it uses are driven by the same thread (see [`crate::server`]).
    pools: Arc<[Arc<ConnectionPool>]>,
    /// Digest of the TLS files (CA, client certificate) the pools were built with: pools
    /// are carried over a reload only when these are unchanged too.
    tls_fingerprint: Option<[u8; 32]>,
    /// Duration histogram for requests that matched no route and came here.
    pub default_duration: PerWorker<Histogram>,
    /// Health checks, outlier detection and retry budget; kept across reloads.
    pub health: Arc<UpstreamHealth>,
    /// The pool the active health checks use (apart from the traffic's).
    check_pool: Arc<ConnectionPool>,
    /// The base path of its URL, without trailing `/`: every request goes under it.
    /// `None` (the usual case) when the URL has none.
    pub base_path: Option<Box<str>>,
    /// Its URL's authority as a `Host`, for routes with `host = "upstream"`.
    pub host_header: Option<HeaderValue>,
}

impl Upstream {
    /// Closes expired idle connections in every worker's pool (and the health checks').
    pub fn reap_idle(&self) -> usize {
        self.pools
            .iter()
            .chain(std::iter::once(&self.check_pool))
            .map(|p| p.reap())
            .sum()
    }

    /// Makes this upstream's new connections, traffic and health checks alike, as `dial`
    /// says instead of over TCP (in fresh pools): with [`Dial::Memory`], an upstream served
    /// in memory, so that the proxy's service is tested without sockets.
    pub fn connect_with(&mut self, dial: Dial) {
        let limit = self.config.max_connections.map(ConnectionLimit::new);
        self.pools = (0..self.pools.len())
            .map(|_| new_pool(&self.config, None, limit.clone(), dial.clone()))
            .collect();
        self.check_pool = new_pool(&self.config, None, None, dial);
        self.health.use_check_pool(self.check_pool.clone());
    }

    /// Addresses `request` to this upstream, at the moment it is sent here (so that a
    /// fallback's replay, a mirror's copy and a canary's side each get their own): its
    /// target goes under the URL's base path, and with [`HostPolicy::Upstream`] its `Host`
    /// becomes the URL's authority. Without a base path and with the client's `Host`
    /// (the usual case) it changes nothing.
    #[inline]
    pub fn address<B>(&self, request: &mut http::Request<B>, host: HostPolicy) {
        if let Some(base) = &self.base_path {
            let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
            if let Ok(uri) = http::Uri::try_from(crate::config::under_base(base, target)) {
                *request.uri_mut() = uri;
            }
        }
        if host == HostPolicy::Upstream
            && let Some(host) = &self.host_header
        {
            request.headers_mut().insert(http::header::HOST, host.clone());
        }
    }

    /// The connection pool of the calling worker thread.
    #[inline]
    pub fn pool(&self) -> &Arc<ConnectionPool> {
        let worker = crate::worker::worker_index();
        &self.pools[worker % self.pools.len()]
    }
}

impl Upstream {
    /// Builds upstream `name`, carrying over from `previous` its connection pools (when its
    /// settings and TLS files are unchanged) and its health state (when its address, TLS
    /// settings and files, checks and outlier settings are unchanged).
    pub fn build(
        name: &str,
        config: &UpstreamConfig,
        previous: &[Arc<Upstream>],
        metrics: &Metrics,
        workers: usize,
    ) -> Result<Self, UnusableUpstream> {
        let tls = ClientTls::for_upstream(config).map_err(|e| UnusableUpstream::new(name, e.to_string()))?;
        let tls_fingerprint = tls.as_ref().map(|tls| tls.fingerprint);
        let made_alike = |u: &Upstream| u.config == *config && u.tls_fingerprint == tls_fingerprint;
        let reused = previous
            .iter()
            .find(|u| made_alike(u))
            .filter(|u| u.pools.len() == workers.max(1) + 1)
            .map(|u| u.pools.clone());
        let (health, check_pool) = previous
            .iter()
            // Health belongs to the address (and TLS) it measured: a changed one starts unknown.
            .find(|u| {
                *u.name == *name
                    && u.health.fits(config)
                    && u.config.tls == config.tls
                    && u.tls_fingerprint == tls_fingerprint
            })
            .map(|u| {
                // Connections made the same way: the checks keep their pool.
                let check_pool = if made_alike(u) {
                    u.check_pool.clone()
                } else {
                    new_pool(config, tls.clone(), None, Dial::Tcp)
                };
                (u.health.clone(), check_pool)
            })
            .unwrap_or_else(|| {
                (
                    UpstreamHealth::new(config, metrics),
                    new_pool(config, tls.clone(), None, Dial::Tcp),
                )
            });
        // A checker already running takes the new pool from its next check on.
        health.use_check_pool(check_pool.clone());
        // One pool per worker, plus one for the shadow-mirror thread (index `workers`).
        let pools = reused.unwrap_or_else(|| {
            let limit = config.max_connections.map(ConnectionLimit::new);
            (0..=workers.max(1))
                .map(|_| new_pool(config, tls.clone(), limit.clone(), Dial::Tcp))
                .collect()
        });
        let scheme = config
            .url
            .scheme()
            .cloned()
            .ok_or_else(|| UnusableUpstream::new(name, "no scheme"))?;
        let authority = config
            .url
            .authority()
            .cloned()
            .ok_or_else(|| UnusableUpstream::new(name, "no host"))?;
        let host_header = HeaderValue::from_str(authority.as_str()).ok();
        Ok(Upstream {
            name: Arc::from(name),
            config: config.clone(),
            scheme,
            authority,
            pools,
            tls_fingerprint,
            default_duration: metrics.request_duration.with_label_values(&["default", name]),
            health,
            check_pool,
            base_path: Some(crate::config::base_path_of(&config.url))
                .filter(|base| !base.is_empty())
                .map(Box::from),
            host_header,
        })
    }
}

fn new_pool(
    config: &UpstreamConfig,
    tls: Option<Arc<ClientTls>>,
    limit: Option<Arc<ConnectionLimit>>,
    dial: Dial,
) -> Arc<ConnectionPool> {
    let default_port = if tls.is_some() { 443 } else { 80 };
    let address = config
        .url
        .authority()
        .map(|a| match a.port_u16() {
            Some(_) => a.as_str().to_owned(),
            None => format!("{}:{default_port}", a.host()),
        })
        .unwrap_or_default();
    ConnectionPool::new(
        address,
        dial,
        config.connect_timeout,
        config.pool_idle_timeout,
        config.pool_max_idle,
        tls,
        config.http2,
        limit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream `app` at `url` with a health check, built after `previous`.
    fn upstream_at(url: &str, connect_timeout: &str, previous: &[Arc<Upstream>], metrics: &Metrics) -> Arc<Upstream> {
        let text = format!(
            "[proxy]\nlisten = \"127.0.0.1:8000\"\nadmin_listen = \"127.0.0.1:9100\"\n\
             default_upstream = \"app\"\n\n[upstreams.app]\nurl = \"{url}\"\n\
             connect_timeout = \"{connect_timeout}\"\n\n[upstreams.app.health]\npath = \"/healthz\"\n"
        );
        let table = crate::table::Table::parse("routes.toml", &text).unwrap();
        Arc::new(Upstream::build("app", &table.config.upstreams["app"], previous, metrics, 1).unwrap())
    }

    fn upstream(connect_timeout: &str, previous: &[Arc<Upstream>], metrics: &Metrics) -> Arc<Upstream> {
        upstream_at("http://127.0.0.1:1", connect_timeout, previous, metrics)
    }

    #[test]
    fn a_reload_that_changes_how_connections_are_made_gives_the_health_checks_a_new_pool() {
        let metrics = Metrics::new().unwrap();
        let first = upstream("1s", &[], &metrics);
        let health = first.health.clone();
        let pool = health.check_pool().unwrap();
        assert!(Arc::ptr_eq(&pool, &first.check_pool));

        // Same settings: health state, check pool and traffic pools all carry over.
        let same = upstream("1s", std::slice::from_ref(&first), &metrics);
        assert!(Arc::ptr_eq(&same.health, &health));
        assert!(Arc::ptr_eq(&health.check_pool().unwrap(), &pool));
        assert!(Arc::ptr_eq(&same.pools, &first.pools));

        // Another connect timeout: the health state carries over, the pools do not, and the
        // (already running) checker sees the new check pool.
        let changed = upstream("2s", std::slice::from_ref(&same), &metrics);
        assert!(Arc::ptr_eq(&changed.health, &health));
        assert!(!Arc::ptr_eq(&changed.pools, &same.pools));
        let now = health.check_pool().unwrap();
        assert!(!Arc::ptr_eq(&now, &pool));
        assert!(Arc::ptr_eq(&now, &changed.check_pool));
    }

    #[test]
    fn health_stays_with_the_address_it_measured() {
        let metrics = Metrics::new().unwrap();
        let build = |url: &str, previous: &[Arc<Upstream>]| upstream_at(url, "1s", previous, &metrics);
        let first = build("http://127.0.0.1:1", &[]);
        let same = build("http://127.0.0.1:1", std::slice::from_ref(&first));
        assert!(Arc::ptr_eq(&same.health, &first.health));
        let moved = build("http://127.0.0.1:2", std::slice::from_ref(&same));
        assert!(
            !Arc::ptr_eq(&moved.health, &first.health),
            "another address, another health"
        );
        assert_eq!(moved.health.verdict(), health::Verdict::Unknown);
        let tls = build("https://127.0.0.1:2", std::slice::from_ref(&moved));
        assert!(
            !Arc::ptr_eq(&tls.health, &moved.health),
            "TLS now: measured another way"
        );
    }
}

//! Reading a running proxy's admin API: the Prometheus text and its samples, the JSON
//! views (`/admin/routes`, `/admin/upstreams`, `/admin/parity`, `/admin/traffic`), and
//! waiting (with back-off, bounded) until they show what a test expects. Every helper takes
//! anything with an admin address: a [`TestProxy`](super::proxy::TestProxy), a
//! [`BinaryProxy`](super::binary::BinaryProxy), or the address itself.

use std::net::SocketAddr;
use std::time::Duration;

use super::client::get;
use super::wait::{POLL_LIMIT, poll};

/// Something with an admin listener.
pub trait AdminAddr {
    fn admin_addr(&self) -> SocketAddr;
}

impl AdminAddr for SocketAddr {
    fn admin_addr(&self) -> SocketAddr {
        *self
    }
}

impl<T: AdminAddr + ?Sized> AdminAddr for &T {
    fn admin_addr(&self) -> SocketAddr {
        (**self).admin_addr()
    }
}

/// `GET path` on the admin listener, asserting a 200, as JSON.
pub async fn admin_json(admin: impl AdminAddr, path: &str) -> serde_json::Value {
    let answer = get(&format!("http://{}{path}", admin.admin_addr())).await;
    assert_eq!(answer.status, 200, "admin {path}: {}", answer.body);
    answer.json()
}

/// The Prometheus text of `/metrics`.
pub async fn metrics_text(admin: impl AdminAddr) -> String {
    let answer = get(&format!("http://{}/metrics", admin.admin_addr())).await;
    assert_eq!(answer.status, 200, "admin /metrics: {}", answer.body);
    answer.body
}

/// One sample (`name{labels}` exactly as rendered) from a Prometheus text exposition.
pub fn sample(metrics_text: &str, series: &str) -> Option<f64> {
    metrics_text
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// One sample (see [`sample`]) read from the admin endpoint now.
pub async fn metric(admin: impl AdminAddr, series: &str) -> Option<f64> {
    sample(&metrics_text(admin).await, series)
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

/// Polls [`metric`] (up to 5 s) until its value satisfies `accept`; returns the last value
/// seen. For metrics recorded when a response body is dropped or a background task runs,
/// which can trail the client's last read by a moment.
pub async fn wait_metric(admin: impl AdminAddr, series: &str, accept: impl Fn(Option<f64>) -> bool) -> Option<f64> {
    wait_metric_within(admin, series, POLL_LIMIT, accept).await
}

/// Like [`wait_metric`], with the caller's deadline (e.g. "reloaded within 3 s").
pub async fn wait_metric_within(
    admin: impl AdminAddr,
    series: &str,
    limit: Duration,
    accept: impl Fn(Option<f64>) -> bool,
) -> Option<f64> {
    let admin = admin.admin_addr();
    poll(limit, || metric(admin, series), |value| accept(*value)).await
}

/// Polls [`requests_total`] for `labels` (up to 5 s) until it satisfies `accept`; returns
/// the last count. A request is counted when its response body finishes, which can trail
/// the client's last read by a moment.
pub async fn wait_requests_total(admin: impl AdminAddr, labels: &[(&str, &str)], accept: impl Fn(f64) -> bool) -> f64 {
    let admin = admin.admin_addr();
    poll(
        POLL_LIMIT,
        || async move { requests_total(&metrics_text(admin).await, labels) },
        |value| accept(*value),
    )
    .await
}

/// Polls `/admin/parity` (up to 10 s) until `route` has `total` shadow outcomes; returns
/// the last answer.
pub async fn parity_when(admin: impl AdminAddr, route: &str, total: u64) -> serde_json::Value {
    let admin = admin.admin_addr();
    let outcomes = |parity: &serde_json::Value| -> u64 {
        let r = &parity["routes"][route];
        ["match", "noise", "mismatch", "error", "dropped", "skipped"]
            .iter()
            .map(|k| r[k].as_u64().unwrap_or(0))
            .sum()
    };
    poll(
        Duration::from_secs(10),
        || admin_json(admin, "/admin/parity"),
        |parity| outcomes(parity) >= total,
    )
    .await
}

/// The entry of upstream `name` in an `/admin/upstreams` view.
pub fn upstream_entry<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["upstreams"]
        .as_array()
        .and_then(|all| all.iter().find(|u| u["name"] == name))
        .unwrap_or_else(|| panic!("no upstream `{name}` in {json}"))
}

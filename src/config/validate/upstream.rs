//! `[upstreams.NAME]`: the URL, timeouts, pool and connection limits, the retry budget, and
//! the `health` and `outlier` tables; the TLS settings are checked in [`super::tls`].

use std::time::Duration;

use http::Uri;
use toml::Spanned;

use super::tls::validate_upstream_tls;
use super::values::{count_in, duration_or, share_in, valid_name};
use crate::config::error::Errors;
use crate::config::model::{HealthCheckConfig, OutlierConfig, UpstreamConfig};
use crate::config::raw;

/// One `[upstreams.NAME]` table, whose name is written at `at`; `None` when it has errors
/// (all of them pushed).
pub(crate) fn validate_upstream(
    errors: &mut Errors<'_>,
    file: &str,
    name: &str,
    at: usize,
    raw: &raw::Upstream,
) -> Option<UpstreamConfig> {
    let before = errors.len();
    if !valid_name(name) {
        errors.push(
            at,
            format!("upstream name `{name}` must be letters, digits, `-` or `_`"),
        );
    }
    let url = upstream_url(errors, &raw.url);
    let connect_timeout = duration_or(errors, raw.connect_timeout.as_ref(), Duration::from_secs(2));
    let request_timeout = duration_or(errors, raw.request_timeout.as_ref(), Duration::from_secs(30));
    let pool_idle_timeout = duration_or(errors, raw.pool_idle_timeout.as_ref(), Duration::from_secs(90));
    let pool_max_idle = count_in(errors, raw.pool_max_idle.as_ref(), "pool_max_idle", 0..=1_000_000, 256) as usize;
    let https = url.as_ref().is_some_and(|u| u.scheme_str() == Some("https"));
    let tls = validate_upstream_tls(errors, file, raw, https);
    let health = raw.health.as_ref().and_then(|h| validate_health(errors, h.get_ref()));
    let outlier = raw
        .outlier
        .as_ref()
        .map_or_else(OutlierConfig::default, |o| validate_outlier(errors, o.get_ref()));
    let retry_budget_permille =
        (share_in(errors, raw.retry_budget.as_ref(), "retry_budget", 0.2) * 1000.0).round() as u32;
    let max_connections = raw
        .max_connections
        .as_ref()
        .map(|v| count_in(errors, Some(v), "max_connections", 1..=1_000_000, 1) as usize);
    let read_timeout = duration_or(errors, raw.read_timeout.as_ref(), Duration::from_secs(60));
    if errors.len() != before {
        return None;
    }
    Some(UpstreamConfig {
        name: name.to_owned(),
        url: url?,
        connect_timeout,
        request_timeout,
        pool_idle_timeout,
        pool_max_idle,
        http2: raw.http2.as_ref().is_some_and(|v| *v.get_ref()),
        tls,
        health,
        outlier,
        retry_budget_permille,
        max_connections,
        read_timeout,
    })
}

/// `url`: `http://` or `https://`, a host, an optional base path (normalised; requests go
/// under it) and no query.
/// The URI is kept when only those checks fail, so that the TLS checks still run.
fn upstream_url(errors: &mut Errors<'_>, url: &Spanned<String>) -> Option<Uri> {
    match url.get_ref().parse::<Uri>() {
        Ok(uri) => {
            let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
            let path_problem = super::forwarding::base_path_problem(uri.path());
            if !scheme_ok {
                errors.push(
                    url.span().start,
                    format!("upstream url `{}` must start with http:// or https://", url.get_ref()),
                );
            } else if uri.authority().is_none() {
                errors.push(
                    url.span().start,
                    format!("upstream url `{}` has no host", url.get_ref()),
                );
            } else if let Some((_, host)) = uri.authority().and_then(|a| a.as_str().rsplit_once('@')) {
                // The url is shown in logs, metrics and `status`: its password is not echoed.
                errors.push(
                    url.span().start,
                    format!(
                        "upstream url `{}://…@{host}{}` must not carry a user name or password: \
                         it would be shown in logs and status (send credentials with \
                         `request_headers.set.authorization` on the route)",
                        uri.scheme_str().unwrap_or("http"),
                        uri.path().trim_end_matches('/'),
                    ),
                );
            } else if uri.query().is_some() {
                errors.push(
                    url.span().start,
                    format!(
                        "upstream url `{}` must not have a query: requests keep their own",
                        url.get_ref()
                    ),
                );
            } else if let Some(problem) = path_problem {
                errors.push(
                    url.span().start,
                    format!("upstream url `{}`: its base {problem}", url.get_ref()),
                );
            }
            Some(uri)
        }
        Err(e) => {
            errors.push(url.span().start, format!("bad upstream url `{}`: {e}", url.get_ref()));
            None
        }
    }
}

/// `[upstreams.NAME.health]`: an absolute path to `GET`, timings and thresholds.
fn validate_health(errors: &mut Errors<'_>, raw: &raw::Health) -> Option<HealthCheckConfig> {
    let before = errors.len();
    let text = raw.path.get_ref();
    let path = match http::uri::PathAndQuery::try_from(text.as_str()) {
        Ok(path) if text.starts_with('/') => Some(path),
        _ => {
            errors.push(
                raw.path.span().start,
                format!("bad `health.path` `{text}`: expected an absolute path like `/healthz`"),
            );
            None
        }
    };
    let interval = duration_or(errors, raw.interval.as_ref(), Duration::from_secs(5));
    let timeout = duration_or(errors, raw.timeout.as_ref(), Duration::from_secs(1));
    let healthy_threshold = count_in(
        errors,
        raw.healthy_threshold.as_ref(),
        "health.healthy_threshold",
        1..=100,
        2,
    );
    let unhealthy_threshold = count_in(
        errors,
        raw.unhealthy_threshold.as_ref(),
        "health.unhealthy_threshold",
        1..=100,
        3,
    );
    if errors.len() != before {
        return None;
    }
    Some(HealthCheckConfig {
        path: path?,
        interval,
        timeout,
        healthy_threshold,
        unhealthy_threshold,
    })
}

/// `[upstreams.NAME.outlier]`: on unless `enabled = false`; settings default to
/// [`OutlierConfig::default`], and the longest ejection is never shorter than the first.
fn validate_outlier(errors: &mut Errors<'_>, raw: &raw::Outlier) -> OutlierConfig {
    let defaults = OutlierConfig::default();
    let consecutive_failures = count_in(
        errors,
        raw.consecutive_failures.as_ref(),
        "outlier.consecutive_failures",
        1..=10_000,
        defaults.consecutive_failures,
    );
    let interval = duration_or(errors, raw.interval.as_ref(), defaults.interval);
    let base_ejection = duration_or(errors, raw.base_ejection.as_ref(), defaults.base_ejection);
    let max_ejection = match &raw.max_ejection {
        Some(v) => {
            let max = duration_or(errors, Some(v), defaults.max_ejection);
            if max < base_ejection {
                errors.push(
                    v.span().start,
                    "`outlier.max_ejection` must not be shorter than `outlier.base_ejection`".to_owned(),
                );
            }
            max
        }
        None => defaults.max_ejection.max(base_ejection),
    };
    OutlierConfig {
        enabled: raw.enabled.unwrap_or(true),
        consecutive_failures,
        interval,
        base_ejection,
        max_ejection,
    }
}

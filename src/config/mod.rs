//! Loading and validating `routes.toml`.
//!
//! ```text
//! routes.toml --(toml parser, recoverable)--> DeTable with spans
//!             --(serde, one section at a time)--> raw::* (deny_unknown_fields)
//!             --(validate)--> Config
//! ```
//!
//! Every problem is reported as a [`ConfigError`] that names `file:line:column` of the
//! offending value and says what is wrong in one line. Sections are deserialised one at a
//! time so that one bad route does not hide the errors of the next: `strangler check`
//! reports every error in the file. Nothing here does IO: [`crate::table::Table::load`] reads
//! the file, and its callers run it off the async workers.
//!
//! Route conflicts (two routes that match the same request with equal specificity) are
//! found when the routes are compiled by [`crate::router::RouteTable::build`], which
//! reports them with the locations kept in [`RouteConfig::location`].

mod error;
mod model;
mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use http::{Method, Uri};
use std::net::SocketAddr;

use crate::parity::CompareRules;
use toml::de::{DeTable, DeValue};

use crate::path::normalize_path;

use error::Errors;
pub use error::{ConfigError, ConfigErrors, LoadError, location_of};
pub use model::{
    AdminToken, CanaryConfig, CertKeyPair, Config, FileRef, HealthCheckConfig, Location, OutlierConfig, PathPattern,
    ProxySettings, RecordConfig, RouteConfig, ShadowConfig, SniCertificate, Stage, StickyKey, TlsSettings, TokenFile,
    UpstreamConfig, UpstreamTls, WorkerCpuAffinity,
};

impl Config {
    /// Reads `admin_token_file` into [`ProxySettings::admin_token`] (blocking IO) with
    /// [`read_token_file`]; its errors are at the setting's file:line:col.
    pub fn read_admin_token(&mut self) -> Result<(), ConfigErrors> {
        let Some(file) = &self.proxy.admin_token_file else {
            self.proxy.admin_token = None;
            return Ok(());
        };
        let problem = read_token_file(&file.path, "`admin_token_file`").map(|token| AdminToken::new(token.as_bytes()));
        match problem {
            Ok(token) => {
                self.proxy.admin_token = Some(token);
                Ok(())
            }
            Err(message) => Err(ConfigErrors(vec![ConfigError {
                file: self.source.clone(),
                location: file.location.clone(),
                message,
            }])),
        }
    }
}

/// Reads an admin token file: surrounding ASCII whitespace trimmed. An unreadable or empty
/// file, or one holding characters a client could not send in an `Authorization: Bearer`
/// header, is an error naming the file as `what`; errors never quote the file's content.
/// The proxy reads `admin_token_file` with it and the admin clients (`strangler status`,
/// `flip`) their `--admin-token-file`, so both accept the same files.
pub fn read_token_file(path: &Path, what: &str) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let token = bytes.trim_ascii();
    if token.is_empty() {
        return Err(format!("{what} {} is empty", path.display()));
    }
    if !token.iter().all(u8::is_ascii_graphic) {
        return Err(format!(
            "{what} {}: the token must be printable ASCII without spaces, as it is sent in an \
             `Authorization: Bearer` header",
            path.display()
        ));
    }
    // Printable ASCII is UTF-8: nothing is replaced.
    Ok(String::from_utf8_lossy(token).into_owned())
}

/// Parses and validates config text. `file` is only used in error messages and
/// [`Config::source`].
pub fn parse_str(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Errors::new(file, text);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    for error in &syntax_errors {
        errors.push(
            error.span().map_or(0, |s| s.start),
            error.message().trim_end().replace('\n', "; "),
        );
    }
    if !syntax_errors.is_empty() {
        return Err(errors.finish());
    }
    let root_span = root.span();
    let root = root.into_inner();

    let mut proxy = None;
    let mut upstreams = None;
    let mut routes = None;
    let mut record = None;
    for (key, value) in root.iter() {
        match key.get_ref().as_ref() {
            "proxy" => proxy = Some(value),
            "upstreams" => upstreams = Some(value),
            "routes" => routes = Some(value),
            "record" => record = Some(value),
            other => errors.push(
                key.span().start,
                format!("unknown section `{other}`, expected one of `proxy`, `upstreams`, `routes`, `record`"),
            ),
        }
    }

    let proxy = match proxy {
        Some(value) => errors.deserialize::<raw::Proxy>(value),
        None => {
            errors.push(root_span.start, "missing section `[proxy]`".to_owned());
            None
        }
    };

    // Upstreams, each deserialised on its own so that every error is reported.
    let mut raw_upstreams: Vec<(String, usize, raw::Upstream)> = Vec::new();
    // Every upstream the file defines, also those with errors of their own: a reference to
    // one is not an error too (that would be reported first, and be misleading).
    let mut defined_upstreams: Vec<String> = Vec::new();
    match upstreams {
        Some(value) => match value.get_ref() {
            DeValue::Table(table) => {
                for (name, body) in table.iter() {
                    defined_upstreams.push(name.get_ref().to_string());
                    if let Some(upstream) = errors.deserialize::<raw::Upstream>(body) {
                        raw_upstreams.push((name.get_ref().to_string(), name.span().start, upstream));
                    }
                }
            }
            _ => errors.push(value.span().start, "`upstreams` must be a table of tables".to_owned()),
        },
        None => errors.push(root_span.start, "missing section `[upstreams]`".to_owned()),
    }

    let mut raw_routes: Vec<raw::Route> = Vec::new();
    if let Some(value) = routes {
        match value.get_ref() {
            DeValue::Array(array) => {
                for item in array.iter() {
                    if let Some(route) = errors.deserialize::<raw::Route>(item) {
                        raw_routes.push(route);
                    }
                }
            }
            _ => errors.push(
                value.span().start,
                "`routes` must be an array of tables (`[[routes]]`)".to_owned(),
            ),
        }
    }

    let upstream_names: Vec<&str> = defined_upstreams.iter().map(String::as_str).collect();
    let mut upstream_configs = BTreeMap::new();
    for (name, at, upstream) in &raw_upstreams {
        if let Some(config) = validate_upstream(&mut errors, file, name, *at, upstream) {
            upstream_configs.insert(name.clone(), config);
        }
    }

    let proxy = proxy.and_then(|p| validate_proxy(&mut errors, &p, &upstream_names, file));
    let default_upstream = proxy.as_ref().map(|p| p.default_upstream.clone());

    let mut route_configs = Vec::new();
    let mut seen_names: BTreeMap<String, Location> = BTreeMap::new();
    for route in &raw_routes {
        let name = route.name.get_ref();
        if let Some(first) = seen_names.get(name) {
            errors.push(
                route.name.span().start,
                format!("duplicate route name `{name}` (first defined at line {})", first.line),
            );
        } else {
            seen_names.insert(name.clone(), errors.location(route.name.span().start));
        }
        if let Some(config) = validate_route(&mut errors, route, &upstream_names, default_upstream.as_deref()) {
            route_configs.push(config);
        }
    }

    let record = record
        .and_then(|value| errors.deserialize::<raw::Record>(value))
        .and_then(|raw| validate_record(&mut errors, &raw, file));

    match proxy {
        Some(proxy) if errors.is_empty() => Ok(Config {
            source: file.to_owned(),
            version: version_of(text),
            proxy,
            upstreams: upstream_configs,
            routes: route_configs,
            record,
        }),
        _ => Err(errors.finish()),
    }
}

/// The version of a table: a short hex digest of its bytes.
pub fn version_of(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn validate_proxy(errors: &mut Errors<'_>, raw: &raw::Proxy, upstreams: &[&str], file: &str) -> Option<ProxySettings> {
    let before = errors.len();
    let listen = parse_addr(errors, &raw.listen);
    let admin_listen = parse_addr(errors, &raw.admin_listen);
    if let (Some(a), Some(b)) = (listen, admin_listen)
        && a == b
        && a.port() != 0
    {
        {
            errors.push(
                raw.admin_listen.span().start,
                "`admin_listen` must differ from `listen`: the admin API is never served on the public listener"
                    .to_owned(),
            );
        }
    }
    let admin_token_file = match &raw.admin_token_file {
        None => None,
        Some(value) if value.get_ref().trim().is_empty() => {
            errors.push(value.span().start, "`admin_token_file` is empty".to_owned());
            None
        }
        Some(value) => Some(TokenFile {
            path: relative_to(file, value.get_ref()),
            location: errors.location(value.span().start),
        }),
    };
    if let Some(admin) = admin_listen
        && !admin.ip().is_loopback()
        && raw.admin_token_file.is_none()
    {
        errors.push(
            raw.admin_listen.span().start,
            format!(
                "`admin_listen` {admin} is not a loopback address: set `admin_token_file` so that admin \
                 requests need a bearer token"
            ),
        );
    }
    if !upstreams.contains(&raw.default_upstream.get_ref().as_str()) {
        errors.push(
            raw.default_upstream.span().start,
            unknown_upstream(raw.default_upstream.get_ref(), upstreams),
        );
    }
    let client_header_timeout = duration_or(errors, raw.client_header_timeout.as_ref(), Duration::from_secs(10));
    let drain_timeout = duration_or(errors, raw.drain_timeout.as_ref(), Duration::from_secs(30));
    let max_header_bytes = match &raw.max_header_bytes {
        None => 65_536,
        Some(v) if (8_192..=1_048_576).contains(v.get_ref()) => *v.get_ref() as usize,
        Some(v) => {
            errors.push(
                v.span().start,
                format!(
                    "`max_header_bytes` must be between 8192 and 1048576, got {}",
                    v.get_ref()
                ),
            );
            0
        }
    };
    let max_connections = count_in(
        errors,
        raw.max_connections.as_ref(),
        "max_connections",
        1..=10_000_000,
        10_000,
    ) as usize;
    let workers = raw
        .workers
        .as_ref()
        .map(|v| count_in(errors, Some(v), "workers", 1..=1024, 1) as usize);
    let worker_cpu_affinity = match raw.worker_cpu_affinity.as_ref() {
        None => WorkerCpuAffinity::Auto,
        Some(v) => match v.get_ref().as_str() {
            "auto" => WorkerCpuAffinity::Auto,
            "off" => WorkerCpuAffinity::Off,
            other => {
                errors.push(
                    v.span().start,
                    format!("unknown worker_cpu_affinity `{other}`, expected `auto` or `off`"),
                );
                WorkerCpuAffinity::Auto
            }
        },
    };
    let tls = raw
        .tls
        .as_ref()
        .and_then(|tls| validate_tls(errors, file, tls.get_ref()));
    if errors.len() != before {
        return None;
    }
    Some(ProxySettings {
        tls,
        workers,
        worker_cpu_affinity,
        listen: listen?,
        admin_listen: admin_listen?,
        default_upstream: raw.default_upstream.get_ref().clone(),
        client_header_timeout,
        max_header_bytes,
        drain_timeout,
        ready_requires_healthy_default: raw.ready_requires_healthy_default.unwrap_or(true),
        max_connections,
        admin_token_file,
        admin_token: None,
    })
}

fn validate_upstream(
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
    let url = match raw.url.get_ref().parse::<Uri>() {
        Ok(uri) => {
            let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
            let path_ok = matches!(uri.path(), "" | "/") && uri.query().is_none();
            if !scheme_ok {
                errors.push(
                    raw.url.span().start,
                    format!(
                        "upstream url `{}` must start with http:// or https://",
                        raw.url.get_ref()
                    ),
                );
            } else if uri.authority().is_none() {
                errors.push(
                    raw.url.span().start,
                    format!("upstream url `{}` has no host", raw.url.get_ref()),
                );
            } else if !path_ok {
                errors.push(
                    raw.url.span().start,
                    format!(
                        "upstream url `{}` must not have a path or query: requests keep their own path",
                        raw.url.get_ref()
                    ),
                );
            }
            Some(uri)
        }
        Err(e) => {
            errors.push(
                raw.url.span().start,
                format!("bad upstream url `{}`: {e}", raw.url.get_ref()),
            );
            None
        }
    };
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
    })
}

/// A count setting `name` within `range` (an error at its position otherwise), or `default` when absent.
fn count_in(
    errors: &mut Errors<'_>,
    value: Option<&toml::Spanned<i64>>,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
    default: u32,
) -> u32 {
    match value {
        None => default,
        Some(v) if range.contains(v.get_ref()) => *v.get_ref() as u32,
        Some(v) => {
            errors.push(
                v.span().start,
                format!(
                    "`{name}` must be between {} and {}, got {}",
                    range.start(),
                    range.end(),
                    v.get_ref()
                ),
            );
            default
        }
    }
}

/// A share setting `name` within 0.0..=1.0 (an error at its position otherwise), or
/// `default` when absent.
fn share_in(errors: &mut Errors<'_>, value: Option<&toml::Spanned<f64>>, name: &str, default: f64) -> f64 {
    match value {
        None => default,
        Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            errors.push(
                v.span().start,
                format!("`{name}` must be between 0.0 and 1.0, got {}", v.get_ref()),
            );
            default
        }
    }
}

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

fn validate_route(
    errors: &mut Errors<'_>,
    raw: &raw::Route,
    upstreams: &[&str],
    default_upstream: Option<&str>,
) -> Option<RouteConfig> {
    let before = errors.len();
    let name = raw.name.get_ref();
    if !valid_name(name) {
        errors.push(
            raw.name.span().start,
            format!("route name `{name}` must be letters, digits, `-` or `_`"),
        );
    }
    if name == "default" {
        errors.push(
            raw.name.span().start,
            "route name `default` is reserved for requests that no route matches".to_owned(),
        );
    }

    let (pattern, at) = match (&raw.path, &raw.exact) {
        (Some(_), Some(exact)) => {
            errors.push(
                exact.span().start,
                "a route has either `path` or `exact`, not both".to_owned(),
            );
            (None, exact.span().start)
        }
        (None, None) => {
            errors.push(raw.name.span().start, format!("route `{name}` needs `path` or `exact`"));
            (None, raw.name.span().start)
        }
        (Some(path), None) => {
            let p = path.get_ref();
            let pattern = if p.contains(['{', '}']) {
                check_template(p).map(|()| PathPattern::Template(p.clone()))
            } else {
                check_plain_path(p).map(|()| PathPattern::Prefix(p.clone()))
            };
            (
                pattern.map_err(|m| errors.push(path.span().start, m)).ok(),
                path.span().start,
            )
        }
        (None, Some(exact)) => {
            let p = exact.get_ref();
            let pattern = if p.contains(['{', '}']) {
                Err(format!(
                    "`exact` path `{p}` cannot hold a template; use `path` for templates"
                ))
            } else {
                check_plain_path(p).map(|()| PathPattern::Exact(p.clone()))
            };
            (
                pattern.map_err(|m| errors.push(exact.span().start, m)).ok(),
                exact.span().start,
            )
        }
    };

    let methods = match &raw.methods {
        None => None,
        Some(list) => {
            if list.is_empty() {
                errors.push(
                    raw.name.span().start,
                    "`methods` is empty: leave it out to match every method".to_owned(),
                );
            }
            let mut methods: Vec<Method> = Vec::with_capacity(list.len());
            for m in list {
                match parse_method(m.get_ref()) {
                    Ok(method) if methods.contains(&method) => {
                        errors.push(m.span().start, format!("method `{method}` is listed twice"))
                    }
                    Ok(method) => methods.push(method),
                    Err(msg) => errors.push(m.span().start, msg),
                }
            }
            Some(methods)
        }
    };

    let stage_at = raw.stage.as_ref().map_or(raw.name.span().start, |s| s.span().start);
    let stage = match raw.stage.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("legacy") => Some(Stage::Legacy),
        Some("shadow") => Some(Stage::Shadow),
        Some("canary") => Some(Stage::Canary),
        Some("new") => Some(Stage::New),
        Some(other) => {
            errors.push(
                stage_at,
                format!("unknown stage `{other}`, expected `legacy`, `shadow`, `canary` or `new`"),
            );
            None
        }
    };
    let canary = raw.canary.as_ref().and_then(|canary| {
        let table = canary.get_ref();
        let percent = *table.percent.get_ref();
        let basis_points = if (0.0..=100.0).contains(&percent) {
            Some((percent * 100.0).round() as u32)
        } else {
            errors.push(
                table.percent.span().start,
                format!("`canary.percent` must be between 0 and 100, got {percent}"),
            );
            None
        };
        let sticky = match &table.sticky {
            None => Some(None),
            Some(sticky) => match parse_sticky(sticky.get_ref()) {
                Ok(key) => Some(Some(key)),
                Err(message) => {
                    errors.push(sticky.span().start, message);
                    None
                }
            },
        };
        Some(CanaryConfig {
            basis_points: basis_points?,
            sticky: sticky?,
        })
    });
    if stage == Some(Stage::Canary) && raw.canary.is_none() {
        errors.push(
            stage_at,
            format!("route `{name}` is at stage `canary` but has no `canary = {{ percent = … }}`"),
        );
    }

    let legacy = match &raw.legacy {
        Some(l) => {
            if !upstreams.contains(&l.get_ref().as_str()) {
                errors.push(l.span().start, unknown_upstream(l.get_ref(), upstreams));
            }
            Some(l.get_ref().clone())
        }
        None => default_upstream.map(str::to_owned),
    };
    let new = raw.new.as_ref().map(|n| {
        if !upstreams.contains(&n.get_ref().as_str()) {
            errors.push(n.span().start, unknown_upstream(n.get_ref(), upstreams));
        }
        n.get_ref().clone()
    });
    let fallback_max_body = match (&raw.fallback, &raw.fallback_max_body) {
        (Some(on), limit) if *on.get_ref() => {
            if new.is_none() {
                errors.push(
                    on.span().start,
                    "`fallback = true` needs a `new` upstream to fall back from".to_owned(),
                );
            }
            if new.is_some() && new == legacy {
                errors.push(
                    on.span().start,
                    "`fallback = true` needs `new` and `legacy` to differ".to_owned(),
                );
            }
            match limit {
                None => Some(65_536),
                Some(v) if (0..=16 * 1024 * 1024).contains(v.get_ref()) => Some(*v.get_ref() as usize),
                Some(v) => {
                    errors.push(
                        v.span().start,
                        format!(
                            "`fallback_max_body` must be between 0 and 16777216 bytes, got {}",
                            v.get_ref()
                        ),
                    );
                    None
                }
            }
        }
        (_, Some(v)) => {
            errors.push(
                v.span().start,
                "`fallback_max_body` is only used with `fallback = true`".to_owned(),
            );
            None
        }
        _ => None,
    };
    let max_body = match &raw.max_body {
        None => None,
        Some(v) if *v.get_ref() >= 0 => Some(*v.get_ref() as u64),
        Some(v) => {
            errors.push(
                v.span().start,
                format!("`max_body` must be a number of bytes, 0 or more, got {}", v.get_ref()),
            );
            None
        }
    };
    let compare = match &raw.compare {
        None => Some(Arc::new(CompareRules::default())),
        Some(spec) => match CompareRules::from_spec(spec.get_ref()) {
            Ok(rules) => Some(Arc::new(rules)),
            Err(e) => {
                errors.push(spec.span().start, format!("bad `compare`: {e}"));
                None
            }
        },
    };
    let shadow = match &raw.shadow {
        None => Some(ShadowConfig::default()),
        Some(table) => validate_shadow(errors, table.get_ref()),
    };
    if matches!(stage, Some(Stage::New | Stage::Canary | Stage::Shadow)) && new.is_none() {
        errors.push(
            stage_at,
            format!(
                "route `{name}` is at stage `{}` but names no `new` upstream",
                raw.stage.as_ref().map_or("new", |s| s.get_ref().as_str())
            ),
        );
    }

    if errors.len() != before {
        return None;
    }
    Some(RouteConfig {
        name: name.clone(),
        pattern: pattern?,
        methods,
        stage: stage?,
        legacy: legacy?,
        new,
        canary,
        compare: compare?,
        shadow: shadow?,
        fallback_max_body,
        max_body,
        location: errors.location(at),
    })
}

/// `ca_file`, `client_cert` and `client_key` of an upstream: only for `https://` URLs, and
/// the client certificate and key come together.
fn validate_upstream_tls(errors: &mut Errors<'_>, file: &str, raw: &raw::Upstream, https: bool) -> Option<UpstreamTls> {
    if !https {
        for (key, value) in [
            ("ca_file", &raw.ca_file),
            ("client_cert", &raw.client_cert),
            ("client_key", &raw.client_key),
        ] {
            if let Some(value) = value {
                errors.push(
                    value.span().start,
                    format!("`{key}` only applies to https:// upstreams"),
                );
            }
        }
        return None;
    }
    let ca_file = raw.ca_file.as_ref().and_then(|v| file_ref(errors, file, v, "ca_file"));
    let client = match (&raw.client_cert, &raw.client_key) {
        (Some(cert), Some(key)) => pair(errors, file, (cert, key), ("client_cert", "client_key")),
        (Some(cert), None) => {
            errors.push(
                cert.span().start,
                "`client_cert` needs `client_key`: the private key of the client certificate".to_owned(),
            );
            None
        }
        (None, Some(key)) => {
            errors.push(
                key.span().start,
                "`client_key` needs `client_cert`: the certificate it belongs to".to_owned(),
            );
            None
        }
        (None, None) => None,
    };
    Some(UpstreamTls { ca_file, client })
}

/// `[proxy.tls]`: a default pair, and SNI entries whose hosts are valid DNS names (or
/// `*.` wildcards) listed once across all entries.
fn validate_tls(errors: &mut Errors<'_>, file: &str, raw: &raw::ProxyTls) -> Option<TlsSettings> {
    let before = errors.len();
    let default = pair(errors, file, (&raw.cert, &raw.key), ("cert", "key"));
    let mut sni = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in raw.certs.iter().flatten() {
        if entry.hosts.get_ref().is_empty() {
            errors.push(
                entry.hosts.span().start,
                "`hosts` is empty: list the host names this certificate is served for".to_owned(),
            );
        }
        let mut hosts = Vec::new();
        for host in entry.hosts.get_ref() {
            match check_sni_host(host.get_ref()) {
                Ok(name) => {
                    if let Some(first) = seen.get(&name) {
                        let line = errors.location(*first).line;
                        errors.push(
                            host.span().start,
                            format!("host `{name}` is already listed for another certificate (line {line})"),
                        );
                    } else {
                        seen.insert(name.clone(), host.span().start);
                        hosts.push(name);
                    }
                }
                Err(message) => errors.push(host.span().start, message),
            }
        }
        if let Some(pair) = pair(errors, file, (&entry.cert, &entry.key), ("cert", "key")) {
            sni.push(SniCertificate { hosts, pair });
        }
    }
    (errors.len() == before).then_some(TlsSettings { default: default?, sni })
}

/// A host name a certificate is chosen for: a DNS name, or `*.` and a DNS name; never an IP
/// address (SNI carries names only). Returned in lower case.
fn check_sni_host(host: &str) -> Result<String, String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "`{host}` is an IP address; clients send no SNI for addresses, so they get the default certificate"
        ));
    }
    let lower = host.to_ascii_lowercase();
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    match rustls::pki_types::DnsName::try_from(name) {
        Ok(_) if !name.contains('*') => Ok(lower),
        _ => Err(format!(
            "bad host `{host}`: expected a DNS name like `app.example.com` or a wildcard like `*.example.com`"
        )),
    }
}

/// A certificate chain and its private key, each a file named by the settings `cert_name`
/// and `key_name`.
fn pair(
    errors: &mut Errors<'_>,
    file: &str,
    (cert, key): (&toml::Spanned<String>, &toml::Spanned<String>),
    (cert_name, key_name): (&str, &str),
) -> Option<CertKeyPair> {
    let cert = file_ref(errors, file, cert, cert_name);
    let key = file_ref(errors, file, key, key_name);
    Some(CertKeyPair { cert: cert?, key: key? })
}

/// A file path written in routes.toml, resolved against the config file's directory.
fn file_ref(errors: &mut Errors<'_>, file: &str, value: &toml::Spanned<String>, what: &str) -> Option<FileRef> {
    let at = errors.location(value.span().start);
    if value.get_ref().is_empty() {
        errors.push(value.span().start, format!("`{what}` is empty: name a PEM file"));
        return None;
    }
    Some(FileRef {
        path: relative_to(file, value.get_ref()),
        written_at: format!("{file}:{}:{}", at.line, at.column),
    })
}

/// A route path (prefix or exact) must be absolute and already normalised, so that what
/// is written is what matches.
fn check_plain_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("path `{p}` must start with `/`"));
    }
    if p.contains(['?', '#']) {
        return Err(format!("path `{p}` must not contain a query or fragment"));
    }
    match normalize_path(p) {
        Ok(n) if n == p => Ok(()),
        Ok(n) => Err(format!("path `{p}` is not normalised; write `{n}`")),
        Err(e) => Err(format!("bad path `{p}`: {e}")),
    }
}

/// A template is a normalised path whose segments may be `{name}` (one segment) or,
/// last, `{*name}` (the rest of the path).
fn check_template(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("template `{p}` must start with `/`"));
    }
    let segments: Vec<&str> = p[1..].split('/').collect();
    let mut names: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        if !segment.contains(['{', '}']) {
            continue;
        }
        let inner = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .filter(|s| !s.contains(['{', '}']))
            .ok_or_else(|| format!("bad template `{p}`: a parameter must be a whole segment, like `{{id}}`"))?;
        let (catch_all, name) = match inner.strip_prefix('*') {
            Some(name) => (true, name),
            None => (false, inner),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "bad template `{p}`: parameter name `{name}` must be letters, digits or `_`"
            ));
        }
        if catch_all && i + 1 != segments.len() {
            return Err(format!("bad template `{p}`: `{{*{name}}}` must be the last segment"));
        }
        if names.contains(&name) {
            return Err(format!("bad template `{p}`: parameter `{name}` appears twice"));
        }
        names.push(name);
    }
    // The literal parts must be normalised too.
    let literal: String = segments
        .iter()
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .fold(String::new(), |acc, s| acc + "/" + s);
    match normalize_path(&literal) {
        Ok(n) if n == literal => Ok(()),
        Ok(_) => Err(format!(
            "template `{p}` is not normalised (dot-segments, empty segments or percent-encoded unreserved characters)"
        )),
        Err(e) => Err(format!("bad template `{p}`: {e}")),
    }
}

fn validate_shadow(errors: &mut Errors<'_>, raw: &raw::Shadow) -> Option<ShadowConfig> {
    let before = errors.len();
    let defaults = ShadowConfig::default();
    let sample = share_in(errors, raw.sample.as_ref(), "shadow.sample", defaults.sample);
    let noise_sample = share_in(
        errors,
        raw.noise_sample.as_ref(),
        "shadow.noise_sample",
        defaults.noise_sample,
    );
    let max_inflight = count_in(
        errors,
        raw.max_inflight.as_ref(),
        "shadow.max_inflight",
        1..=100_000,
        defaults.max_inflight as u32,
    ) as usize;
    let max_body = count_in(
        errors,
        raw.max_body.as_ref(),
        "shadow.max_body",
        0..=16 * 1024 * 1024,
        defaults.max_body as u32,
    ) as usize;
    let timeout = duration_or(errors, raw.timeout.as_ref(), defaults.timeout);
    (errors.len() == before).then(|| ShadowConfig {
        sample,
        max_inflight,
        max_body,
        timeout,
        unsafe_methods: raw.unsafe_methods.unwrap_or(false),
        noise_sample,
    })
}

fn validate_record(errors: &mut Errors<'_>, raw: &raw::Record, file: &str) -> Option<RecordConfig> {
    let before = errors.len();
    let sample = share_in(errors, raw.sample.as_ref(), "record.sample", 1.0);
    let max_bytes = match &raw.max_bytes {
        None => 100 * 1024 * 1024,
        Some(v) if *v.get_ref() >= 4096 => *v.get_ref() as u64,
        Some(v) => {
            errors.push(
                v.span().start,
                format!("`record.max_bytes` must be at least 4096, got {}", v.get_ref()),
            );
            0
        }
    };
    let mut redact = Vec::new();
    for name in raw.redact_headers.iter().flatten() {
        match http::HeaderName::from_bytes(name.get_ref().as_bytes()) {
            Ok(header) => redact.push(header),
            Err(_) => errors.push(name.span().start, format!("bad header name `{}`", name.get_ref())),
        }
    }
    if raw.path.get_ref().is_empty() {
        errors.push(raw.path.span().start, "`record.path` is empty".to_owned());
    }
    let path = relative_to(file, raw.path.get_ref());
    (errors.len() == before).then_some(RecordConfig {
        path,
        sample,
        max_bytes,
        redact,
    })
}

/// A path written in the config file: relative paths are relative to the file's directory.
fn relative_to(config_file: &str, written: &str) -> PathBuf {
    let written = PathBuf::from(written);
    match Path::new(config_file).parent() {
        Some(dir) if written.is_relative() && !dir.as_os_str().is_empty() => dir.join(written),
        _ => written,
    }
}

/// `cookie:NAME`, `header:NAME` or `client_ip`.
fn parse_sticky(text: &str) -> Result<StickyKey, String> {
    let bad = || format!("bad `canary.sticky` `{text}`: expected `cookie:NAME`, `header:NAME` or `client_ip`");
    match text.split_once(':') {
        None if text == "client_ip" => Ok(StickyKey::ClientIp),
        Some(("cookie", name))
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'=' && b != b';') =>
        {
            Ok(StickyKey::Cookie(name.to_owned()))
        }
        Some(("header", name)) => http::HeaderName::from_bytes(name.as_bytes())
            .map(StickyKey::Header)
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn parse_method(m: &str) -> Result<Method, String> {
    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("bad method `{m}`: methods are upper-case tokens like `GET`"));
    }
    match m {
        "CONNECT" => Err("method `CONNECT` is never proxied".to_owned()),
        _ => Method::from_bytes(m.as_bytes()).map_err(|e| format!("bad method `{m}`: {e}")),
    }
}

fn parse_addr(errors: &mut Errors<'_>, value: &toml::Spanned<String>) -> Option<SocketAddr> {
    match value.get_ref().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errors.push(
                value.span().start,
                format!(
                    "bad address `{}`: expected IP:PORT, like `127.0.0.1:8000`",
                    value.get_ref()
                ),
            );
            None
        }
    }
}

fn duration_or(errors: &mut Errors<'_>, value: Option<&toml::Spanned<String>>, default: Duration) -> Duration {
    let Some(value) = value else { return default };
    match parse_duration(value.get_ref()) {
        Ok(d) => d,
        Err(msg) => {
            errors.push(value.span().start, msg);
            default
        }
    }
}

/// Parses durations written as `250ms`, `2s`, `1m`, `1h` (also `1m30s`). Zero is refused:
/// every duration here is a timeout.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!("bad duration `{text}`: must be more than zero")),
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "bad duration `{text}`: expected a number and a unit, like `250ms`, `2s` or `1m`"
        )),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn unknown_upstream(name: &str, known: &[&str]) -> String {
    format!("unknown upstream `{name}`; defined upstreams: {}", known.join(", "))
}

#[cfg(test)]
mod tests;

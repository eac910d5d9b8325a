//! `[proxy]`: listeners, the admin token file, timeouts and limits, workers, and (through
//! [`super::tls`]) `[proxy.tls]`.

use std::net::SocketAddr;
use std::time::Duration;

use super::tls::validate_tls;
use super::values::{count_in, duration_or, parse_addr, relative_to, unknown_upstream};
use crate::config::error::Errors;
use crate::config::model::{ProxySettings, TokenFile, WorkerCpuAffinity};
use crate::config::raw;

/// `listen` when the file leaves it out: every interface, so that the proxy a production
/// site's clients talk to is reachable from outside its host (and its container) at once.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8000";

/// `admin_listen` when the file leaves it out: loopback only, so that no
/// `admin_token_file` is needed for a first table (beyond loopback one is required).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9100";

/// The `[proxy]` section (an absent one is `raw::Proxy::default()`); `None` when it has
/// errors (all of them pushed). `upstreams` are the names the file defines, for
/// `default_upstream`; `upstreams_at` is where `[upstreams]` is written (or 0), where an
/// undecidable default upstream is reported.
pub(crate) fn validate_proxy(
    errors: &mut Errors<'_>,
    raw: &raw::Proxy,
    upstreams: &[&str],
    upstreams_at: usize,
    file: &str,
) -> Option<ProxySettings> {
    let before = errors.len();
    let (listen, admin_listen) = listeners(errors, raw);
    let admin_token_file = admin_token_file(errors, raw, file, admin_listen);
    let admin_hosts = admin_hosts(errors, raw);
    let default_upstream = default_upstream(errors, raw, upstreams, upstreams_at);
    let client_header_timeout = duration_or(errors, raw.client_header_timeout.as_ref(), Duration::from_secs(10));
    let drain_timeout = duration_or(errors, raw.drain_timeout.as_ref(), Duration::from_secs(30));
    let reload_settle = reload_settle(errors, raw);
    let max_header_bytes = max_header_bytes(errors, raw);
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
    let worker_cpu_affinity = worker_cpu_affinity(errors, raw);
    let tls = raw
        .tls
        .as_ref()
        .and_then(|tls| validate_tls(errors, file, tls.get_ref()));
    let client_idle_timeout = client_idle_timeout(errors, raw);
    let http2_max_concurrent_streams = count_in(
        errors,
        raw.http2_max_concurrent_streams.as_ref(),
        "http2_max_concurrent_streams",
        1..=10_000,
        128,
    );
    let send_timeout = duration_or(errors, raw.send_timeout.as_ref(), Duration::from_secs(60));
    let client_body_timeout = duration_or(errors, raw.client_body_timeout.as_ref(), Duration::from_secs(60));
    let error_bodies = super::error_pages::error_bodies(errors, raw);
    let error_pages = super::error_pages::error_pages(errors, raw, file);
    if errors.len() != before {
        return None;
    }
    Some(ProxySettings {
        tls,
        workers,
        worker_cpu_affinity,
        listen: listen?,
        admin_listen: admin_listen?,
        default_upstream: default_upstream?,
        client_header_timeout,
        max_header_bytes,
        drain_timeout,
        reload_settle,
        ready_requires_healthy_default: raw.ready_requires_healthy_default.unwrap_or(true),
        max_connections,
        admin_token_file,
        admin_token: None,
        admin_hosts,
        client_idle_timeout,
        http2_max_concurrent_streams,
        send_timeout,
        client_body_timeout,
        defaulted: defaulted(raw),
        error_bodies,
        error_pages,
    })
}

/// `default_upstream`: the one written (it must be defined); when left out, the upstream
/// named `legacy`, else the only upstream; else an error at `[upstreams]` that says so.
/// No upstreams at all is reported as the missing section, not here.
fn default_upstream(
    errors: &mut Errors<'_>,
    raw: &raw::Proxy,
    upstreams: &[&str],
    upstreams_at: usize,
) -> Option<String> {
    if let Some(written) = &raw.default_upstream {
        if upstreams.contains(&written.get_ref().as_str()) {
            return Some(written.get_ref().clone());
        }
        errors.push(written.span().start, unknown_upstream(written.get_ref(), upstreams));
        return None;
    }
    match upstreams {
        [] => None,
        [only] => Some((*only).to_owned()),
        _ if upstreams.contains(&"legacy") => Some("legacy".to_owned()),
        _ => {
            errors.push(
                upstreams_at,
                format!(
                    "no upstream is named `legacy` and there are {}: set `default_upstream` in `[proxy]` \
                     to the one that serves unrouted requests ({})",
                    upstreams.len(),
                    upstreams.join(", ")
                ),
            );
            None
        }
    }
}

/// The settings of [`ProxySettings::defaulted`] that `raw` leaves out.
fn defaulted(raw: &raw::Proxy) -> Vec<&'static str> {
    [
        ("listen", raw.listen.is_none()),
        ("admin_listen", raw.admin_listen.is_none()),
        ("default_upstream", raw.default_upstream.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, left_out)| left_out.then_some(name))
    .collect()
}

/// `listen` and `admin_listen` ([`DEFAULT_LISTEN`], [`DEFAULT_ADMIN_LISTEN`] when left out):
/// two addresses, never the same one (port 0 excepted: each gets its own ephemeral port).
fn listeners(errors: &mut Errors<'_>, raw: &raw::Proxy) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let listen = address_or(errors, raw.listen.as_ref(), DEFAULT_LISTEN);
    let admin_listen = address_or(errors, raw.admin_listen.as_ref(), DEFAULT_ADMIN_LISTEN);
    if let (Some(a), Some(b)) = (listen, admin_listen)
        && a == b
        && a.port() != 0
    {
        let written = raw.admin_listen.as_ref().or(raw.listen.as_ref());
        errors.push(
            written.map_or(0, |v| v.span().start),
            "`admin_listen` must differ from `listen`: the admin API is never served on the public listener".to_owned(),
        );
    }
    (listen, admin_listen)
}

/// A listener address as written, or `default` when left out.
fn address_or(errors: &mut Errors<'_>, value: Option<&toml::Spanned<String>>, default: &str) -> Option<SocketAddr> {
    match value {
        Some(value) => parse_addr(errors, value),
        None => default.parse().ok(),
    }
}

/// `admin_token_file`, resolved against the config file's directory; required when the
/// admin API listens beyond loopback.
fn admin_token_file(
    errors: &mut Errors<'_>,
    raw: &raw::Proxy,
    file: &str,
    admin_listen: Option<SocketAddr>,
) -> Option<TokenFile> {
    let token_file = match &raw.admin_token_file {
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
            raw.admin_listen.as_ref().map_or(0, |v| v.span().start),
            format!(
                "`admin_listen` {admin} is not a loopback address: set `admin_token_file` so that admin \
                 requests need a bearer token"
            ),
        );
    }
    token_file
}

/// `admin_hosts`: host names only (no scheme, port, path or wildcard), each made of
/// letters, digits, `-`, `_` and `.`; kept lowercase without a trailing dot, as the admin
/// guard compares them.
fn admin_hosts(errors: &mut Errors<'_>, raw: &raw::Proxy) -> Vec<String> {
    let mut hosts = Vec::new();
    for value in raw.admin_hosts.iter().flatten() {
        let name = value.get_ref().trim();
        let bare = name.strip_suffix('.').unwrap_or(name);
        let problem = if bare.is_empty() {
            Some("is empty")
        } else if bare.contains("://") {
            Some("has a scheme: write the host name only")
        } else if bare.contains(':') {
            Some("has a port: write the host name only (any port is accepted)")
        } else if bare.contains('/') {
            Some("has a path: write the host name only")
        } else if bare.starts_with('.') || bare.contains("..") {
            Some("has an empty label")
        } else if !bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            Some("is not a host name (letters, digits, `-`, `_` and `.` only; no wildcards)")
        } else {
            None
        };
        match problem {
            Some(problem) => errors.push(
                value.span().start,
                format!("`admin_hosts` entry `{}` {problem}", value.get_ref()),
            ),
            None => hosts.push(bare.to_ascii_lowercase()),
        }
    }
    hosts
}

/// The shortest and longest `reload_settle`: shorter would not outlast the pause between
/// two writers of one save (`head … > f; tail … >> f` loaded half tables at 10 ms);
/// longer would keep an operator waiting for a save to apply.
const RELOAD_SETTLE: std::ops::RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(10);

/// `reload_settle`: a duration within [`RELOAD_SETTLE`], 300 ms when left out.
fn reload_settle(errors: &mut Errors<'_>, raw: &raw::Proxy) -> Duration {
    const DEFAULT: Duration = Duration::from_millis(300);
    let settle = duration_or(errors, raw.reload_settle.as_ref(), DEFAULT);
    match &raw.reload_settle {
        Some(value) if !RELOAD_SETTLE.contains(&settle) => {
            errors.push(
                value.span().start,
                format!(
                    "`reload_settle` must be between 100ms and 10s, got `{}`",
                    value.get_ref()
                ),
            );
            DEFAULT
        }
        _ => settle,
    }
}

/// The shortest and longest `client_idle_timeout`: shorter would close keep-alive
/// connections between the requests of one page load; longer would let idle clients hold
/// `max_connections` slots for hours.
const CLIENT_IDLE_TIMEOUT: std::ops::RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(3600);

/// `client_idle_timeout`: a duration within [`CLIENT_IDLE_TIMEOUT`], 75 s (nginx's
/// `keepalive_timeout`) when left out.
fn client_idle_timeout(errors: &mut Errors<'_>, raw: &raw::Proxy) -> Duration {
    const DEFAULT: Duration = Duration::from_secs(75);
    let idle = duration_or(errors, raw.client_idle_timeout.as_ref(), DEFAULT);
    match &raw.client_idle_timeout {
        Some(value) if !CLIENT_IDLE_TIMEOUT.contains(&idle) => {
            errors.push(
                value.span().start,
                format!(
                    "`client_idle_timeout` must be between 1s and 1h, got `{}`",
                    value.get_ref()
                ),
            );
            DEFAULT
        }
        _ => idle,
    }
}

/// `max_header_bytes`: 8 KiB to 1 MiB, 64 KiB when left out.
fn max_header_bytes(errors: &mut Errors<'_>, raw: &raw::Proxy) -> usize {
    match &raw.max_header_bytes {
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
    }
}

/// `worker_cpu_affinity`: `auto` (the default) or `off`.
fn worker_cpu_affinity(errors: &mut Errors<'_>, raw: &raw::Proxy) -> WorkerCpuAffinity {
    match raw.worker_cpu_affinity.as_ref() {
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
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::model::Location;
    use crate::config::parse::parse_str;
    use crate::config::tests::{GOOD, errors_of, with_token_file};

    use super::{DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN};

    #[test]
    fn the_default_listeners_parse() {
        assert!(DEFAULT_LISTEN.parse::<std::net::SocketAddr>().is_ok());
        assert!(
            DEFAULT_ADMIN_LISTEN
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
        );
    }

    #[test]
    fn admin_token_file_is_relative_to_the_config_file() {
        let text = with_token_file("secrets/admin-token", "127.0.0.1:9100");
        let c = parse_str("/etc/strangler/routes.toml", &text).unwrap();
        let file = c.proxy.admin_token_file.unwrap();
        assert_eq!(file.path, PathBuf::from("/etc/strangler/secrets/admin-token"));
        assert_eq!(file.location, Location { line: 5, column: 20 });
        assert_eq!(c.proxy.admin_token, None, "parsing never reads the token file");
        let absolute = parse_str(
            "/etc/strangler/routes.toml",
            &with_token_file("/run/token", "127.0.0.1:9100"),
        )
        .unwrap();
        assert_eq!(
            absolute.proxy.admin_token_file.unwrap().path,
            PathBuf::from("/run/token")
        );
        let errors = errors_of(&with_token_file("  ", "127.0.0.1:9100"));
        assert_eq!(errors, ["routes.toml:5:20: `admin_token_file` is empty"]);
    }

    #[test]
    fn reload_settle_is_a_duration_within_bounds() {
        use std::time::Duration;
        let settle = |line: &str| GOOD.replacen("[proxy]\n", &format!("[proxy]\n{line}\n"), 1);
        assert_eq!(
            parse_str("routes.toml", GOOD).unwrap().proxy.reload_settle,
            Duration::from_millis(300)
        );
        for (written, expected) in [("100ms", 100), ("150ms", 150), ("2s", 2000), ("10s", 10_000)] {
            let c = parse_str("routes.toml", &settle(&format!("reload_settle = \"{written}\""))).unwrap();
            assert_eq!(c.proxy.reload_settle, Duration::from_millis(expected), "{written}");
        }
        for (written, message) in [
            ("5ms", "`reload_settle` must be between 100ms and 10s, got `5ms`"),
            ("10ms", "`reload_settle` must be between 100ms and 10s, got `10ms`"),
            ("99ms", "`reload_settle` must be between 100ms and 10s, got `99ms`"),
            ("1m", "`reload_settle` must be between 100ms and 10s, got `1m`"),
            ("0s", "bad duration `0s`: must be more than zero"),
            ("soon", "bad duration `soon`: expected a number and a unit"),
        ] {
            let errors = errors_of(&settle(&format!("reload_settle = \"{written}\"")));
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].starts_with("routes.toml:3:17: "), "{errors:?}");
            assert!(errors[0].contains(message), "{errors:?}");
        }
    }

    #[test]
    fn admin_hosts_are_bare_host_names() {
        let hosts = |list: &str| GOOD.replacen("[proxy]\n", &format!("[proxy]\nadmin_hosts = {list}\n"), 1);
        assert!(parse_str("routes.toml", GOOD).unwrap().proxy.admin_hosts.is_empty());
        let c = parse_str(
            "routes.toml",
            &hosts(r#"["Strangler-Admin.example", "admin.svc.cluster.local.", "ops_1"]"#),
        )
        .unwrap();
        assert_eq!(
            c.proxy.admin_hosts,
            ["strangler-admin.example", "admin.svc.cluster.local", "ops_1"]
        );
        for (entry, column, message) in [
            ("", 16, "is empty"),
            ("http://admin.example", 16, "has a scheme"),
            ("admin.example:9100", 16, "has a port"),
            ("admin.example/x", 16, "has a path"),
            (".admin.example", 16, "has an empty label"),
            ("*.example", 16, "is not a host name"),
            ("admin example", 16, "is not a host name"),
        ] {
            let errors = errors_of(&hosts(&format!("[\"{entry}\"]")));
            assert_eq!(errors.len(), 1, "{entry}: {errors:?}");
            assert!(
                errors[0].starts_with(&format!(
                    "routes.toml:3:{column}: `admin_hosts` entry `{entry}` {message}"
                )),
                "{errors:?}"
            );
        }
        let errors = errors_of(&hosts(r#"["ok.example", "bad:1"]"#));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("routes.toml:3:30: "), "{errors:?}");
    }

    #[test]
    fn client_idle_timeout_and_http2_streams_have_defaults_and_bounds() {
        use std::time::Duration;
        let with = |line: &str| GOOD.replacen("[proxy]\n", &format!("[proxy]\n{line}\n"), 1);
        let c = parse_str("routes.toml", GOOD).unwrap();
        assert_eq!(c.proxy.client_idle_timeout, Duration::from_secs(75));
        assert_eq!(c.proxy.http2_max_concurrent_streams, 128);
        for (written, expected) in [("1s", 1), ("30s", 30), ("1h", 3600)] {
            let c = parse_str("routes.toml", &with(&format!("client_idle_timeout = \"{written}\""))).unwrap();
            assert_eq!(c.proxy.client_idle_timeout, Duration::from_secs(expected), "{written}");
        }
        let c = parse_str("routes.toml", &with("http2_max_concurrent_streams = 2")).unwrap();
        assert_eq!(c.proxy.http2_max_concurrent_streams, 2);
        for (line, message) in [
            (
                "client_idle_timeout = \"500ms\"",
                "`client_idle_timeout` must be between 1s and 1h, got `500ms`",
            ),
            (
                "client_idle_timeout = \"2h\"",
                "`client_idle_timeout` must be between 1s and 1h, got `2h`",
            ),
            ("client_idle_timeout = \"never\"", "bad duration `never`"),
            (
                "http2_max_concurrent_streams = 0",
                "`http2_max_concurrent_streams` must be between 1 and 10000, got 0",
            ),
            (
                "http2_max_concurrent_streams = 100000",
                "`http2_max_concurrent_streams` must be between 1 and 10000, got 100000",
            ),
        ] {
            let errors = errors_of(&with(line));
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].starts_with("routes.toml:3:"), "{errors:?}");
            assert!(errors[0].contains(message), "{line}: {errors:?}");
        }
    }

    /// The first table of issue 20: one upstream, nothing else.
    const THREE_LINES: &str = "[upstreams.legacy]\nurl = \"http://127.0.0.1:3000\"\n";

    #[test]
    fn a_table_with_one_upstream_alone_is_valid_with_documented_defaults() {
        let c = parse_str("routes.toml", THREE_LINES).unwrap();
        assert_eq!(c.proxy.listen.to_string(), "0.0.0.0:8000");
        assert_eq!(c.proxy.admin_listen.to_string(), "127.0.0.1:9100");
        assert_eq!(c.proxy.default_upstream, "legacy");
        assert_eq!(c.proxy.admin_token_file, None, "loopback admin needs no token");
        assert_eq!(c.proxy.defaulted, ["listen", "admin_listen", "default_upstream"]);
        assert!(c.routes.is_empty());
        assert!(parse_str("routes.toml", GOOD).unwrap().proxy.defaulted.is_empty());
    }

    #[test]
    fn the_default_upstream_is_legacy_else_the_only_one_else_an_error() {
        let only = parse_str("routes.toml", "[upstreams.monolith]\nurl = \"http://127.0.0.1:3000\"\n").unwrap();
        assert_eq!(only.proxy.default_upstream, "monolith");
        let with_legacy = format!("[upstreams.api]\nurl = \"http://127.0.0.1:3001\"\n{THREE_LINES}");
        let c = parse_str("routes.toml", &with_legacy).unwrap();
        assert_eq!(c.proxy.default_upstream, "legacy");
        assert_eq!(c.proxy.defaulted, ["listen", "admin_listen", "default_upstream"]);

        let two = "# two upstreams\n[upstreams.a]\nurl = \"http://127.0.0.1:3001\"\n\
                   [upstreams.b]\nurl = \"http://127.0.0.1:3002\"\n";
        let errors = errors_of(two);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .starts_with("routes.toml:2:2: no upstream is named `legacy` and there are 2: set `default_upstream`"),
            "{errors:?}"
        );
        assert!(errors[0].contains("(a, b)"), "{errors:?}");
        let written = format!("[proxy]\ndefault_upstream = \"b\"\n{two}");
        assert_eq!(parse_str("routes.toml", &written).unwrap().proxy.default_upstream, "b");
        let unknown = errors_of(&format!("[proxy]\ndefault_upstream = \"c\"\n{two}"));
        assert_eq!(
            unknown,
            ["routes.toml:2:20: unknown upstream `c`; defined upstreams: a, b"]
        );
    }

    #[test]
    fn a_written_listener_may_not_take_the_default_admin_address() {
        let errors = errors_of(&format!("[proxy]\nlisten = \"127.0.0.1:9100\"\n{THREE_LINES}"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("routes.toml:2:10: `admin_listen` must differ"),
            "{errors:?}"
        );
    }

    #[test]
    fn admin_beyond_loopback_needs_a_token_file() {
        for admin in ["0.0.0.0:9100", "10.1.2.3:9100", "[::]:9100"] {
            let text = GOOD.replace("127.0.0.1:9100", admin);
            let errors = errors_of(&text);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].starts_with("routes.toml:4:16: `admin_listen`"), "{errors:?}");
            assert!(
                errors[0].contains(admin) && errors[0].contains("admin_token_file"),
                "{errors:?}"
            );
            assert!(
                parse_str("routes.toml", &with_token_file("t", admin)).is_ok(),
                "{admin}"
            );
        }
        assert!(parse_str("routes.toml", &GOOD.replace("127.0.0.1:9100", "[::1]:9100")).is_ok());
    }
}

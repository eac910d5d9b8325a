//! What one routing table changes in another's routes, by route name: routes added,
//! removed, and changed (any property of the route, or the URL of an upstream it uses);
//! and what it changes in the other settings (`[proxy]`, upstreams, `[record]`), one line
//! each ([`settings_of`], [`settings_diff`]). Pure. The reload's log line and `POST /admin/reload`'s answer carry the
//! [`RouteChanges`]; `strangler check --against` prints the [`RouteDiff`] property by
//! property.
//!
//! A route is compared as its [`RouteFacts`]: each property rendered as text. Two tables
//! are compared on every property ([`RouteFacts::of`]); a caller that knows fewer of one
//! side's properties (a running proxy's listing) builds the facts of both sides the same
//! way from what it knows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{Config, RouteConfig};

/// Routes a table adds, removes and changes against another, by name (each list sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteChanges {
    /// Routes only the new table has.
    pub added: Vec<String>,
    /// Routes only the old table has.
    pub removed: Vec<String>,
    /// Routes both have, with a property (or an upstream's URL) that differs.
    pub changed: Vec<String>,
    /// Other settings that differ, one line each: `proxy.default_upstream legacy -> other`,
    /// `upstreams.legacy.request_timeout 30s -> 1ms`. Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
}

impl RouteChanges {
    /// The changes from `before` to `after`, on every property.
    pub fn between(before: &Config, after: &Config) -> Self {
        RouteDiff::of_tables(before, after).changes()
    }

    /// `+added -removed ~changed`, as counts: `+2 -0 ~1`, and ` (settings changed: N)`
    /// when other settings changed.
    pub fn summary(&self) -> String {
        let routes = format!("+{} -{} ~{}", self.added.len(), self.removed.len(), self.changed.len());
        match self.settings.len() {
            0 => routes,
            n => format!("{routes} (settings changed: {n})"),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty() && self.settings.is_empty()
    }
}

/// A route's compared properties, each as text, in the order they are reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteFacts(Vec<(&'static str, String)>);

impl RouteFacts {
    /// No properties yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// These facts and `property` = `value`.
    pub fn with(mut self, property: &'static str, value: impl Into<String>) -> Self {
        self.0.push((property, value.into()));
        self
    }

    /// Every property of `route`, and the URLs of its upstreams in `config`.
    pub fn of(config: &Config, route: &RouteConfig) -> Self {
        let url = |name: &str| {
            config
                .upstreams
                .get(name)
                .map_or_else(|| Self::NONE.to_owned(), |u| u.url.to_string())
        };
        let shadow = &route.shadow;
        Self::new()
            .with("path", format!("{} {}", route.pattern.kind(), route.pattern.as_str()))
            .with(
                "methods",
                Self::methods_text(route.methods.as_ref().map(|m| m.iter().map(|m| m.as_str()))),
            )
            .with("stage", route.stage.as_str())
            .with("legacy", route.legacy.as_str())
            .with("legacy_url", url(&route.legacy))
            .with("new", route.new.as_deref().unwrap_or(Self::NONE))
            .with(
                "new_url",
                route.new.as_deref().map_or_else(|| Self::NONE.to_owned(), url),
            )
            .with(
                "canary",
                Self::canary_text(route.canary.as_ref().map(|c| {
                    (
                        f64::from(c.basis_points) / 100.0,
                        c.sticky.as_ref().map(ToString::to_string),
                    )
                })),
            )
            .with("compare", route.compare.digest())
            .with(
                "shadow",
                format!(
                    "sample {}, max_inflight {}, max_body {}, timeout {}, unsafe_methods {}, noise_sample {}",
                    shadow.sample,
                    shadow.max_inflight,
                    shadow.max_body,
                    humantime::format_duration(shadow.timeout),
                    shadow.unsafe_methods,
                    shadow.noise_sample
                ),
            )
            .with(
                "fallback",
                Self::fallback_text(route.fallback_max_body.map(|b| b as u64)),
            )
            .with("max_body", Self::optional_text(route.max_body))
            .with("upgrades", Self::upgrades_text(Some(&route.upgrades)))
            .with("case_insensitive", route.case_insensitive.to_string())
            .with_forwarding(&route.forwarding)
    }

    /// These facts and a route's forwarding settings (`rewrite`, `host`,
    /// `request_headers`, `response_headers`).
    fn with_forwarding(self, forwarding: &super::forwarding::Forwarding) -> Self {
        let strip = forwarding.rewrite.is_strip();
        let edits = |edits: &super::forwarding::HeaderEdits| {
            let set: Vec<(String, String)> = edits.shown_set().collect();
            let remove: Vec<String> = edits.remove.iter().map(|n| n.as_str().to_owned()).collect();
            Self::header_edits_text(&set, &remove)
        };
        let host = (forwarding.host != super::forwarding::HostPolicy::Preserve).then(|| forwarding.host.as_str());
        self.with(
            "rewrite",
            Self::rewrite_text(strip, forwarding.rewrite.written().filter(|_| !strip)),
        )
        .with("host", Self::host_text(host))
        .with("request_headers", edits(&forwarding.request_headers))
        .with("response_headers", edits(&forwarding.response_headers))
    }

    /// `strip_prefix = true` or a `rewrite` as text: `strip_prefix`, the rewrite as
    /// written, or none.
    pub fn rewrite_text(strip_prefix: bool, rewrite: Option<&str>) -> String {
        match (strip_prefix, rewrite) {
            (true, _) => "strip_prefix".to_owned(),
            (false, Some(rewrite)) => rewrite.to_owned(),
            (false, None) => Self::NONE.to_owned(),
        }
    }

    /// A route's `host` as text: `preserve` when not given.
    pub fn host_text(host: Option<&str>) -> String {
        host.unwrap_or("preserve").to_owned()
    }

    /// Header edits as text, names sorted: `set a: 1, b: 2; remove c`, `remove c`, or none.
    pub fn header_edits_text(set: &[(String, String)], remove: &[String]) -> String {
        if set.is_empty() && remove.is_empty() {
            return Self::NONE.to_owned();
        }
        let mut set: Vec<String> = set.iter().map(|(name, value)| format!("{name}: {value}")).collect();
        set.sort();
        let mut remove = remove.to_vec();
        remove.sort();
        let parts: Vec<String> = [("set", set), ("remove", remove)]
            .into_iter()
            .filter(|(_, items)| !items.is_empty())
            .map(|(what, items)| format!("{what} {}", items.join(", ")))
            .collect();
        parts.join("; ")
    }

    /// How an absent value reads.
    pub const NONE: &str = "none";

    /// A route's `upgrades` as text: `[websocket]`, `[]`; the default when not given.
    pub fn upgrades_text(upgrades: Option<&[String]>) -> String {
        match upgrades {
            Some(upgrades) => format!("[{}]", upgrades.join(", ")),
            None => format!("[{}]", super::model::DEFAULT_UPGRADES.join(", ")),
        }
    }

    /// `methods` as text: `GET, POST`, or `any`.
    pub fn methods_text<'m>(methods: Option<impl Iterator<Item = &'m str>>) -> String {
        methods.map_or_else(|| "any".to_owned(), |m| m.collect::<Vec<_>>().join(", "))
    }

    /// A canary split as text: `25%`, `12.5% sticky cookie:uid`, or `none`.
    pub fn canary_text(canary: Option<(f64, Option<String>)>) -> String {
        match canary {
            None => Self::NONE.to_owned(),
            Some((percent, None)) => format!("{percent}%"),
            Some((percent, Some(sticky))) => format!("{percent}% sticky {sticky}"),
        }
    }

    /// A fallback as text: `max_body 65536`, or `off`.
    pub fn fallback_text(max_body: Option<u64>) -> String {
        max_body.map_or_else(|| "off".to_owned(), |b| format!("max_body {b}"))
    }

    /// An optional number as text, `none` when absent.
    pub fn optional_text(value: Option<u64>) -> String {
        value.map_or_else(|| Self::NONE.to_owned(), |v| v.to_string())
    }

    /// The value of `property`, if these facts have it.
    pub fn get(&self, property: &str) -> Option<&str> {
        self.0.iter().find(|(p, _)| *p == property).map(|(_, v)| v.as_str())
    }
}

/// Every route of `config` by name, on every property.
pub fn facts_of_table(config: &Config) -> BTreeMap<String, RouteFacts> {
    config
        .routes
        .iter()
        .map(|route| (route.name.clone(), RouteFacts::of(config, route)))
        .collect()
}

/// One property of a changed route: its value before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyChange {
    /// The property (`stage`, `new_url`, …).
    pub property: &'static str,
    /// Its value in the old table.
    pub before: String,
    /// Its value in the new table.
    pub after: String,
}

/// What a table changes in another's routes, property by property.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDiff {
    /// Routes only the new table has, sorted.
    pub added: Vec<String>,
    /// Routes only the old table has, sorted.
    pub removed: Vec<String>,
    /// Routes in both whose properties differ, by name, with what changed.
    pub changed: BTreeMap<String, Vec<PropertyChange>>,
    /// Other settings that differ, one line each (see [`settings_diff`]).
    pub settings: Vec<String>,
}

impl RouteDiff {
    /// The difference between two tables' routes, given as facts by route name. A property
    /// one side does not have reads as `none` there.
    pub fn between(before: &BTreeMap<String, RouteFacts>, after: &BTreeMap<String, RouteFacts>) -> Self {
        let mut diff = Self {
            added: after
                .keys()
                .filter(|name| !before.contains_key(*name))
                .cloned()
                .collect(),
            removed: before
                .keys()
                .filter(|name| !after.contains_key(*name))
                .cloned()
                .collect(),
            changed: BTreeMap::new(),
            settings: Vec::new(),
        };
        for (name, new) in after {
            let Some(old) = before.get(name) else { continue };
            let mut properties: Vec<&'static str> = new.0.iter().map(|(p, _)| *p).collect();
            properties.extend(old.0.iter().map(|(p, _)| *p).filter(|p| new.get(p).is_none()));
            let changes: Vec<PropertyChange> = properties
                .into_iter()
                .filter_map(|property| {
                    let (before, after) = (
                        old.get(property).unwrap_or(RouteFacts::NONE),
                        new.get(property).unwrap_or(RouteFacts::NONE),
                    );
                    (before != after).then(|| PropertyChange {
                        property,
                        before: before.to_owned(),
                        after: after.to_owned(),
                    })
                })
                .collect();
            if !changes.is_empty() {
                diff.changed.insert(name.clone(), changes);
            }
        }
        diff
    }

    /// The difference between two tables, on every property and every other setting.
    pub fn of_tables(before: &Config, after: &Config) -> Self {
        let mut diff = Self::between(&facts_of_table(before), &facts_of_table(after));
        diff.settings = settings_diff(&settings_of(before), &settings_of(after));
        diff
    }

    /// The names only.
    pub fn changes(&self) -> RouteChanges {
        RouteChanges {
            added: self.added.clone(),
            removed: self.removed.clone(),
            changed: self.changed.keys().cloned().collect(),
            settings: self.settings.clone(),
        }
    }
}

/// A table's settings other than its routes, each as text by key: `proxy.NAME`,
/// `upstreams.NAME.SETTING` (`url` first of each upstream's), `record` and
/// `tracing.otlp_endpoint`. Paths of
/// files (certificates, the admin token) are compared, not where they are written.
pub fn settings_of(config: &Config) -> BTreeMap<String, String> {
    let p = &config.proxy;
    let duration = |d: std::time::Duration| humantime::format_duration(d).to_string();
    let mut settings = BTreeMap::from([
        ("proxy.listen".to_owned(), p.listen.to_string()),
        ("proxy.admin_listen".to_owned(), p.admin_listen.to_string()),
        ("proxy.default_upstream".to_owned(), p.default_upstream.clone()),
        (
            "proxy.client_header_timeout".to_owned(),
            duration(p.client_header_timeout),
        ),
        ("proxy.max_header_bytes".to_owned(), p.max_header_bytes.to_string()),
        ("proxy.drain_timeout".to_owned(), duration(p.drain_timeout)),
        ("proxy.reload_settle".to_owned(), duration(p.reload_settle)),
        (
            "proxy.workers".to_owned(),
            p.workers.map_or_else(|| "auto".to_owned(), |w| w.to_string()),
        ),
        (
            "proxy.worker_cpu_affinity".to_owned(),
            format!("{:?}", p.worker_cpu_affinity).to_lowercase(),
        ),
        (
            "proxy.ready_requires_healthy_default".to_owned(),
            p.ready_requires_healthy_default.to_string(),
        ),
        ("proxy.max_connections".to_owned(), p.max_connections.to_string()),
        (
            "proxy.admin_token_file".to_owned(),
            p.admin_token_file
                .as_ref()
                .map_or_else(|| RouteFacts::NONE.to_owned(), |t| t.path.display().to_string()),
        ),
        ("proxy.admin_hosts".to_owned(), p.admin_hosts.join(", ")),
        ("proxy.tls".to_owned(), listener_tls_text(p.tls.as_ref())),
        ("record".to_owned(), record_text(config.record.as_ref())),
        ("proxy.client_idle_timeout".to_owned(), duration(p.client_idle_timeout)),
        (
            "proxy.http2_max_concurrent_streams".to_owned(),
            p.http2_max_concurrent_streams.to_string(),
        ),
        (
            "tracing.otlp_endpoint".to_owned(),
            config
                .tracing
                .otlp_endpoint
                .as_ref()
                .map_or_else(|| RouteFacts::NONE.to_owned(), ToString::to_string),
        ),
    ]);
    settings.insert("proxy.send_timeout".to_owned(), duration(p.send_timeout));
    settings.insert("proxy.client_body_timeout".to_owned(), duration(p.client_body_timeout));
    settings.insert(
        "proxy.error_bodies".to_owned(),
        format!("{:?}", p.error_bodies).to_lowercase(),
    );
    settings.insert("proxy.error_pages".to_owned(), error_pages_text(&p.error_pages));
    for (name, u) in &config.upstreams {
        let key = |setting: &str| format!("upstreams.{name}.{setting}");
        settings.extend([
            (key("url"), u.url.to_string()),
            (key("connect_timeout"), duration(u.connect_timeout)),
            (key("request_timeout"), duration(u.request_timeout)),
            (key("pool_idle_timeout"), duration(u.pool_idle_timeout)),
            (key("pool_max_idle"), u.pool_max_idle.to_string()),
            (key("http2"), u.http2.to_string()),
            (key("tls"), upstream_tls_text(u.tls.as_ref())),
            (key("health"), health_text(u.health.as_ref())),
            (key("outlier"), outlier_text(&u.outlier)),
            (
                key("retry_budget"),
                format!("{}", f64::from(u.retry_budget_permille) / 1000.0),
            ),
            (
                key("max_connections"),
                RouteFacts::optional_text(u.max_connections.map(|m| m as u64)),
            ),
        ]);
        settings.insert(key("read_timeout"), duration(u.read_timeout));
    }
    settings
}

/// `[proxy.error_pages]` as `502 errors/502.html, 503 …` (the files' paths; an edited page
/// is not a change of settings), or `none`.
fn error_pages_text(pages: &[super::model::ErrorPage]) -> String {
    if pages.is_empty() {
        return RouteFacts::NONE.to_owned();
    }
    let pages: Vec<String> = pages
        .iter()
        .map(|page| format!("{} {}", page.status.as_u16(), page.path.display()))
        .collect();
    pages.join(", ")
}

/// The settings that differ from `before` to `after` (as [`settings_of`] gives them, or
/// fewer), one line each in key order: `KEY BEFORE -> AFTER`. A key one side lacks reads as
/// `none`; an upstream only one side has is one line, its URL's
/// (`upstreams.thoughts.url none -> http://…`).
pub fn settings_diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let upstream_on_one_side = |key: &str| {
        key.strip_prefix("upstreams.")
            .and_then(|rest| rest.rsplit_once('.'))
            .is_some_and(|(name, setting)| {
                let url = format!("upstreams.{name}.url");
                setting != "url" && before.contains_key(&url) != after.contains_key(&url)
            })
    };
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|key| !upstream_on_one_side(key))
        .filter_map(|key| {
            let (old, new) = (
                before.get(key).map_or(RouteFacts::NONE, String::as_str),
                after.get(key).map_or(RouteFacts::NONE, String::as_str),
            );
            (old != new).then(|| format!("{key} {old} -> {new}"))
        })
        .collect()
}

/// `[proxy.tls]` as text: `off`, or the default pair's paths and the SNI entries.
fn listener_tls_text(tls: Option<&super::model::TlsSettings>) -> String {
    let Some(tls) = tls else { return "off".to_owned() };
    let pair = |p: &super::model::CertKeyPair| format!("{} {}", p.cert.path.display(), p.key.path.display());
    let mut text = format!("cert {}", pair(&tls.default));
    for sni in &tls.sni {
        text.push_str(&format!(", {}: {}", sni.hosts.join(" "), pair(&sni.pair)));
    }
    text
}

/// An upstream's TLS as text: `none` (http), `web roots`, or its CA file and client pair.
fn upstream_tls_text(tls: Option<&super::model::UpstreamTls>) -> String {
    let Some(tls) = tls else {
        return RouteFacts::NONE.to_owned();
    };
    let ca = tls
        .ca_file
        .as_ref()
        .map_or_else(|| "web roots".to_owned(), |ca| format!("ca_file {}", ca.path.display()));
    match &tls.client {
        Some(client) => format!(
            "{ca}, client {} {}",
            client.cert.path.display(),
            client.key.path.display()
        ),
        None => ca,
    }
}

/// A health check as text, or `off`.
fn health_text(health: Option<&super::model::HealthCheckConfig>) -> String {
    health.map_or_else(
        || "off".to_owned(),
        |h| {
            format!(
                "GET {} every {} timeout {} healthy {} unhealthy {}",
                h.path,
                humantime::format_duration(h.interval),
                humantime::format_duration(h.timeout),
                h.healthy_threshold,
                h.unhealthy_threshold
            )
        },
    )
}

/// Outlier detection as text, or `off`.
fn outlier_text(outlier: &super::model::OutlierConfig) -> String {
    if !outlier.enabled {
        return "off".to_owned();
    }
    format!(
        "{} failures in {}, ejected {} up to {}",
        outlier.consecutive_failures,
        humantime::format_duration(outlier.interval),
        humantime::format_duration(outlier.base_ejection),
        humantime::format_duration(outlier.max_ejection)
    )
}

/// `[record]` as text, or `off`.
fn record_text(record: Option<&super::model::RecordConfig>) -> String {
    record.map_or_else(
        || "off".to_owned(),
        |r| {
            let redact: Vec<&str> = r.redact.iter().map(http::HeaderName::as_str).collect();
            format!(
                "{} sample {} max_bytes {} redact [{}]{}",
                r.path.display(),
                r.sample,
                r.max_bytes,
                redact.join(", "),
                if r.responses { " responses" } else { "" }
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    const TABLE: &str = r#"
[proxy]
listen = "127.0.0.1:8000"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:8001"

[upstreams.thoughts]
url = "http://127.0.0.1:8002"

[[routes]]
name = "thoughts-api"
path = "/api/thoughts/"
stage = "shadow"
new = "thoughts"

[[routes]]
name = "login"
path = "/login"
methods = ["POST"]

[[routes]]
name = "search"
path = "/search/"
stage = "canary"
new = "thoughts"
canary = { percent = 25 }
"#;

    fn table(text: &str) -> Config {
        match parse_str("routes.toml", text) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_same_table_changes_nothing() {
        let changes = RouteChanges::between(&table(TABLE), &table(TABLE));
        assert!(changes.is_empty());
        assert_eq!(changes.summary(), "+0 -0 ~0");
        // Moving a route within the file is no change either.
        let moved = TABLE.replace(
            "[[routes]]\nname = \"login\"\npath = \"/login\"\nmethods = [\"POST\"]\n",
            "",
        ) + "\n[[routes]]\nname = \"login\"\npath = \"/login\"\nmethods = [\"POST\"]\n";
        assert!(RouteChanges::between(&table(TABLE), &table(&moved)).is_empty());
    }

    #[test]
    fn added_removed_and_changed_routes_are_named() {
        let after = TABLE
            .replace("name = \"login\"", "name = \"sign-in\"")
            .replace("stage = \"shadow\"", "stage = \"canary\"\ncanary = { percent = 10 }")
            + "\n[[routes]]\nname = \"about\"\npath = \"/about\"\n";
        let diff = RouteDiff::of_tables(&table(TABLE), &table(&after));
        let changes = diff.changes();
        assert_eq!(changes.added, ["about", "sign-in"]);
        assert_eq!(changes.removed, ["login"]);
        assert_eq!(changes.changed, ["thoughts-api"]);
        assert_eq!(changes.summary(), "+2 -1 ~1");
        let what: Vec<(&str, &str, &str)> = diff.changed["thoughts-api"]
            .iter()
            .map(|c| (c.property, c.before.as_str(), c.after.as_str()))
            .collect();
        assert_eq!(what, [("stage", "shadow", "canary"), ("canary", "none", "10%")]);
    }

    #[test]
    fn every_property_and_an_upstream_url_count_as_a_change() {
        let before = table(TABLE);
        for (edit, property) in [
            (TABLE.replace("path = \"/search/\"", "path = \"/find/\""), "path"),
            (
                TABLE.replace("methods = [\"POST\"]", "methods = [\"POST\", \"PUT\"]"),
                "methods",
            ),
            (
                TABLE.replace("percent = 25", "percent = 25, sticky = \"client_ip\""),
                "canary",
            ),
            (
                TABLE.replace("stage = \"shadow\"", "stage = \"shadow\"\nshadow = { sample = 0.5 }"),
                "shadow",
            ),
            (
                TABLE.replace(
                    "stage = \"shadow\"",
                    "stage = \"shadow\"\ncompare = { ignore = [\"/id\"] }",
                ),
                "compare",
            ),
            (
                TABLE.replace("stage = \"shadow\"", "stage = \"shadow\"\nfallback = true"),
                "fallback",
            ),
            (
                TABLE.replace("path = \"/login\"", "path = \"/login\"\nmax_body = 1024"),
                "max_body",
            ),
            (
                TABLE.replace("methods = [\"POST\"]", "methods = [\"POST\"]\nnew = \"thoughts\""),
                "new",
            ),
            (
                TABLE.replace("path = \"/login\"", "path = \"/login\"\nrewrite = \"/signin\""),
                "rewrite",
            ),
            (
                TABLE.replace("path = \"/login\"", "path = \"/login\"\nhost = \"upstream\""),
                "host",
            ),
            (
                TABLE.replace(
                    "path = \"/login\"",
                    "path = \"/login\"\nrequest_headers = { remove = [\"cookie\"] }",
                ),
                "request_headers",
            ),
            (
                TABLE.replace(
                    "path = \"/login\"",
                    "path = \"/login\"\nresponse_headers = { set = { x-a = \"1\" } }",
                ),
                "response_headers",
            ),
        ] {
            let diff = RouteDiff::of_tables(&before, &table(&edit));
            assert_eq!(diff.changed.len(), 1, "{property}: {diff:?}");
            let changes = diff.changed.values().next().unwrap();
            assert!(
                changes.iter().any(|c| c.property == property),
                "{property}: {changes:?}"
            );
        }
        let moved = TABLE.replace("http://127.0.0.1:8002", "http://127.0.0.1:9002");
        let changes = RouteChanges::between(&before, &table(&moved));
        assert_eq!(changes.changed, ["search", "thoughts-api"], "routes using `thoughts`");
        assert!(changes.added.is_empty() && changes.removed.is_empty());
    }

    #[test]
    fn facts_that_one_side_lacks_read_as_none() {
        let before = BTreeMap::from([("a".to_owned(), RouteFacts::new().with("stage", "new"))]);
        let after = BTreeMap::from([(
            "a".to_owned(),
            RouteFacts::new().with("stage", "new").with("max_body", "10"),
        )]);
        let diff = RouteDiff::between(&before, &after);
        assert_eq!(
            diff.changed["a"],
            [PropertyChange {
                property: "max_body",
                before: "none".to_owned(),
                after: "10".to_owned()
            }]
        );
    }

    #[test]
    fn changes_are_json_with_three_lists() {
        let mut changes = RouteChanges {
            added: vec!["a".to_owned()],
            removed: vec![],
            changed: vec!["c".to_owned()],
            settings: vec![],
        };
        let json = serde_json::to_value(&changes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"added": ["a"], "removed": [], "changed": ["c"]})
        );
        assert_eq!(serde_json::from_value::<RouteChanges>(json).unwrap(), changes);
        changes.settings = vec!["proxy.default_upstream legacy -> thoughts".to_owned()];
        let json = serde_json::to_value(&changes).unwrap();
        assert_eq!(
            json["settings"],
            serde_json::json!(["proxy.default_upstream legacy -> thoughts"])
        );
        assert_eq!(serde_json::from_value::<RouteChanges>(json).unwrap(), changes);
    }

    /// Issue 17 attack #9: a changed default upstream or upstream timeout read `+0 -0 ~0`.
    #[test]
    fn settings_other_than_routes_are_changes_too() {
        let before = table(TABLE);
        let after = TABLE
            .replace("default_upstream = \"legacy\"", "default_upstream = \"thoughts\"")
            .replace(
                "url = \"http://127.0.0.1:8001\"",
                "url = \"http://127.0.0.1:8001\"\nrequest_timeout = \"1ms\"",
            )
            + "\n[upstreams.users]\nurl = \"http://127.0.0.1:8003\"\n";
        let changes = RouteChanges::between(&before, &table(&after));
        assert_eq!(
            changes.settings,
            [
                "proxy.default_upstream legacy -> thoughts",
                "upstreams.legacy.request_timeout 30s -> 1ms",
                "upstreams.users.url none -> http://127.0.0.1:8003/",
            ]
        );
        // Every route's legacy side is the default upstream: they change with it.
        assert_eq!(changes.summary(), "+0 -0 ~3 (settings changed: 3)");
        assert!(!changes.is_empty());
        let back = RouteChanges::between(&table(&after), &before);
        assert_eq!(back.settings[2], "upstreams.users.url http://127.0.0.1:8003/ -> none");
        for edit in [
            TABLE.replace("listen = \"127.0.0.1:8000\"", "listen = \"127.0.0.1:8080\""),
            TABLE.replace("[proxy]\n", "[proxy]\nreload_settle = \"1s\"\n"),
            TABLE.replace(
                "url = \"http://127.0.0.1:8002\"",
                "url = \"http://127.0.0.1:8002\"\n[upstreams.thoughts.health]\npath = \"/healthz\"",
            ),
        ] {
            let changes = RouteChanges::between(&before, &table(&edit));
            assert_eq!(changes.settings.len(), 1, "{changes:?}");
        }
        assert!(RouteChanges::between(&before, &table(TABLE)).settings.is_empty());
    }
}

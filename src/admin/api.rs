//! The admin API's JSON documents: one type per endpoint, shared by the handlers that
//! write them ([`crate::admin`]), the commands that read them (`strangler status` and
//! `flip`), `strangler parity`'s report (in the shape of `/admin/parity`) and the tests.
//!
//! | endpoint | document |
//! |---|---|
//! | `GET /admin/routes` | [`RouteListing`] |
//! | `GET /admin/parity` | [`ParityReport`] |
//! | `GET /admin/upstreams` | [`UpstreamListing`] |
//! | `GET /admin/traffic` | [`Traffic`] |
//! | `GET /admin/history` | [`History`] |
//! | `POST /admin/reload` | [`ReloadAnswer`] |
//!
//! A low module: it imports serde and [`Stage`] (to read a stage's name), nothing of the
//! running proxy, so the offline commands use it without the runtime.
//!
//! Wire details the readers rely on: an `Option` serialises as `null` unless the field says
//! it is left out when absent (`skip_serializing_if`); stages are strings as written in
//! routes.toml, not [`crate::config::Stage`], so that a client reads replicas running a
//! build with a stage it does not know. The handlers write every document through a
//! `serde_json::Value`, whose keys are sorted: on the wire, keys are in alphabetical order
//! whatever the order of the fields here (pinned by the admin handlers' tests).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{EvidenceIdentity, RouteChanges, Stage};

/// `GET /admin/routes`: the table in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteListing {
    /// The table's version (digest of routes.toml's bytes).
    pub version: String,
    /// When it was loaded, RFC 3339 (seconds).
    pub loaded_at: String,
    /// The file it came from, as named on the command line.
    pub source: String,
    /// The errors of the last rejected reload, one per line; `None` once a reload succeeds.
    pub last_error: Option<String>,
    /// The upstream of requests no route matches.
    pub default_upstream: String,
    /// Every route, in file order.
    pub routes: Vec<ListedRoute>,
    /// This process's id, random at start (16 hex): two admin URLs that answer the same
    /// id are one replica (`localhost` and `127.0.0.1`, a name and its address). Left
    /// out when absent (a build without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// A route as `GET /admin/routes` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedRoute {
    /// Route name.
    pub name: String,
    /// `prefix`, `exact` or `template`.
    pub kind: String,
    /// The path, prefix or template as written.
    pub path: String,
    /// The methods it is limited to; `None`: every method.
    pub methods: Option<Vec<String>>,
    /// Its stage, as written in routes.toml.
    pub stage: String,
    /// Its legacy upstream.
    pub legacy: String,
    /// Its new upstream, if any.
    pub new: Option<String>,
    /// Canary settings; left out when the route has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<ListedCanary>,
    /// Fallback to legacy; left out when the route has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<ListedFallback>,
    /// The largest request body, in bytes; left out when the route sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body: Option<u64>,
    /// The protocols its requests may switch to (lower-case); left out when they are the
    /// default (`["websocket"]`), and by proxies that predate the setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrades: Option<Vec<String>>,
    /// Whether its pattern matches any ASCII case; left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub case_insensitive: bool,
    /// `strip_prefix`, `rewrite`, `host`, `request_headers`, `response_headers`: each a
    /// key of the route's document, left out when default.
    #[serde(flatten)]
    pub forwarding: ListedForwarding,
}

/// A listed route's forwarding settings, each left out when default (and by proxies that
/// predate them).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListedForwarding {
    /// `strip_prefix = true`; left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strip_prefix: bool,
    /// `rewrite`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
    /// `host`, when `"upstream"` (left out for the default, `"preserve"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `request_headers`, when the route edits any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<ListedHeaderEdits>,
    /// `response_headers`, when the route edits any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<ListedHeaderEdits>,
}

/// `request_headers` / `response_headers` of a listed route (the values of credential
/// headers shown as `[redacted]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListedHeaderEdits {
    /// Headers set, by name.
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
    /// Headers removed.
    #[serde(default)]
    pub remove: Vec<String>,
}

impl ListedRoute {
    /// The share of the route's traffic that the new upstream serves, in percent; `None`
    /// for a stage this build does not know, or a canary without settings.
    pub fn new_share(&self) -> Option<f64> {
        match self.stage.parse().ok()? {
            Stage::Legacy | Stage::Shadow => Some(0.0),
            Stage::New => Some(100.0),
            Stage::Canary => self.canary.as_ref().map(|c| c.percent),
        }
    }
}

/// `canary` of a listed route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedCanary {
    /// Share of traffic for the new upstream, in percent.
    pub percent: f64,
    /// What keeps a user on one side (`cookie:NAME`, `header:NAME`, `client_ip`), if set.
    #[serde(default)]
    pub sticky: Option<String>,
}

/// `fallback` of a listed route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedFallback {
    /// The largest request body kept for a retry at legacy, in bytes.
    pub max_body: u64,
}

/// `GET /admin/parity`, and the reports of `strangler parity` (which add fields of their
/// own): per-route comparison counts and the last mismatches. Unknown fields are
/// ignored, missing counts read as zero. `M` and `G` are how the mismatches and their
/// groups are read: see [`ParityCounts`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityReport<M = Mismatch, G = MismatchGroup> {
    /// Counts by route name.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteParity>,
    /// The last mismatches, newest first.
    #[serde(default = "Vec::new")]
    pub mismatches: Vec<M>,
    /// The same mismatches grouped by route, first differing pointer and status pair,
    /// newest group first (`/admin/parity` only; left out when empty).
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub mismatch_groups: Vec<G>,
}

impl<M, G> Default for ParityReport<M, G> {
    fn default() -> Self {
        Self {
            routes: BTreeMap::new(),
            mismatches: Vec::new(),
            mismatch_groups: Vec::new(),
        }
    }
}

/// A [`ParityReport`] read for its counts only, its mismatches (and their groups) left
/// unread: what `strangler status` and `flip` judge, from replicas or reports whose
/// mismatch records may be of another build.
pub type ParityCounts = ParityReport<serde::de::IgnoredAny, serde::de::IgnoredAny>;

/// One route's comparison counts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct RouteParity {
    /// The route's stage when the counts were taken.
    pub stage: Option<String>,
    /// Pairs whose responses were equal.
    #[serde(rename = "match")]
    pub matched: u64,
    /// Pairs that differed only where the compare rules allow (noise).
    pub noise: u64,
    /// Pairs that differed.
    pub mismatch: u64,
    /// Pairs where one side failed (connect, timeout, …).
    pub error: u64,
    /// Pairs that differed exactly as a stated divergence says (reports of `strangler
    /// parity` only; left out when 0): they agree.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expected: u64,
    /// Pairs whose stated divergence no longer occurs (reports of `strangler parity`
    /// only; left out when 0): a failure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resolved: u64,
    /// Mirrored requests dropped (queue full, body too large).
    pub dropped: u64,
    /// Requests not mirrored on purpose (unsafe method, sampling).
    pub skipped: u64,
    /// Requests seen (reports of `strangler parity` only; left out when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// The rate as the producer computed it (informational; flip recomputes it).
    pub match_rate: Option<f64>,
    /// The rate over the producer's recent window (informational).
    pub window_match_rate: Option<f64>,
    /// What these counts are evidence of: the period they were gathered in. Left out when
    /// absent (a replica or report of a build without evidence periods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// The route's previous evidence period (its counts and its `evidence`), so that
    /// nothing vanishes silently when a reload starts a new one; left out when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<RouteParity>>,
    /// The route's counts since the process started, over every period; left out when
    /// absent. The counts above are the current period's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Box<RouteParity>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The identity of an evidence period, as `/admin/parity` and `strangler parity` reports
/// give it: `{"since", "period", "stage", "legacy": {"name", "url"}, "new": {"name", "url"}
/// | null, "rules"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// When the period started, RFC 3339 (seconds).
    pub since: String,
    /// Its name, [`EvidenceIdentity::period`] (the `period` label of the parity counters).
    pub period: String,
    /// What it was gathered against.
    #[serde(flatten)]
    pub identity: EvidenceIdentity,
}

impl RouteParity {
    /// Pairs compared to the end: match + noise + mismatch + expected + resolved
    /// (saturating at `u64::MAX`: counts come from other processes, and a sum of them must
    /// not wrap).
    pub fn compared(&self) -> u64 {
        self.matched
            .saturating_add(self.noise)
            .saturating_add(self.mismatch)
            .saturating_add(self.expected)
            .saturating_add(self.resolved)
    }

    /// (match + noise + expected) / (those + mismatch + resolved + error); `None` before
    /// any pair. Computed in `f64`, so counts near `u64::MAX` cannot overflow: always
    /// within 0..=1.
    pub fn match_rate(&self) -> Option<f64> {
        let good = self.matched as f64 + self.noise as f64 + self.expected as f64;
        let total = good + self.mismatch as f64 + self.resolved as f64 + self.error as f64;
        (total > 0.0).then(|| (good / total).clamp(0.0, 1.0))
    }

    /// Adds another replica's counts to these (stage, requests and rates stay), saturating
    /// at `u64::MAX`.
    pub fn add(&mut self, other: &RouteParity) {
        self.matched = self.matched.saturating_add(other.matched);
        self.noise = self.noise.saturating_add(other.noise);
        self.mismatch = self.mismatch.saturating_add(other.mismatch);
        self.error = self.error.saturating_add(other.error);
        self.expected = self.expected.saturating_add(other.expected);
        self.resolved = self.resolved.saturating_add(other.resolved);
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.skipped = self.skipped.saturating_add(other.skipped);
    }
}

/// One mismatched request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The route.
    pub route: String,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// When, RFC 3339.
    pub at: String,
    /// The legacy and the new status.
    pub status: [u16; 2],
    /// The differences, secrets redacted.
    pub diffs: Vec<MismatchDiff>,
    /// More differences existed than listed; left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The evidence period it was found in (the route's `evidence.period` then); left out
    /// when absent (reports of `strangler parity`, builds without evidence periods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// The client request's id (`x-request-id`, as in the access log); left out when
    /// absent (reports of `strangler parity`, builds without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One difference of a [`Mismatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MismatchDiff {
    /// `status`, `header:NAME` or a JSON Pointer into the body (`""`: the whole body).
    pub pointer: String,
    /// The legacy value, rendered.
    pub legacy: String,
    /// The new value, rendered.
    pub new: String,
}

/// Mismatches alike: of one route, differing first at one pointer, with one status pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MismatchGroup {
    /// The route.
    pub route: String,
    /// The first difference's pointer (as [`MismatchDiff::pointer`]); `None` when the
    /// mismatches list no difference.
    pub pointer: Option<String>,
    /// The legacy and the new status.
    pub status: [u16; 2],
    /// How many of the kept mismatches are in the group.
    pub count: u64,
    /// When the oldest of them was found, RFC 3339.
    pub first_at: String,
    /// The newest of them.
    pub newest: Mismatch,
}

/// `GET /admin/upstreams`: every upstream of the table in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamListing {
    /// In the table's order.
    pub upstreams: Vec<UpstreamStatus>,
}

/// One upstream's health-check verdict and ejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamStatus {
    /// Upstream name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The active health check.
    pub health: HealthStatus,
    /// Ejected after failures in a row (passive check).
    pub ejected: bool,
    /// Until when, RFC 3339 (milliseconds); `None` when not ejected.
    pub ejected_until: Option<String>,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
}

/// The active health check of an upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// A health check is configured.
    pub checked: bool,
    /// Its verdict; `None` without a check or before its first verdict.
    pub healthy: Option<bool>,
    /// When it last ran, RFC 3339 (milliseconds).
    pub last_check: Option<String>,
    /// Why it last failed.
    pub last_error: Option<String>,
}

/// `GET /admin/traffic`: per-route figures for the table in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// The version of the table in force (the sides are its routes' upstreams).
    pub version: String,
    /// Every route of the table, in file order.
    pub routes: Vec<RouteTraffic>,
    /// Requests no route matched, at the default upstream.
    pub default: SideTraffic,
}

/// One route's traffic: since the process started (`legacy`, `new`, `other_requests`),
/// in its current evidence period (`period`, `new_share`) and over the last minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteTraffic {
    /// Route name.
    pub route: String,
    /// Its stage in the table in force.
    pub stage: String,
    /// Requests its legacy upstream answered since the process started.
    pub legacy: SideTraffic,
    /// Requests its new upstream answered since the process started; `None` when the
    /// route names no new upstream. Shadow copies are not client requests and are not
    /// counted here (they are under `period` and `last_minute`, marked `shadow`).
    pub new: Option<SideTraffic>,
    /// Requests of this route counted at an upstream that is neither side now (the
    /// route's upstreams changed in a reload).
    pub other_requests: u64,
    /// Share of the current period's client requests (legacy + new) that went to new, 0
    /// to 1 (0 in shadow: copies are not client requests); `None` before the period's
    /// first request.
    pub new_share: Option<f64>,
    /// The same share over `legacy` and `new`, since the process started (every stage the
    /// route went through mixed).
    #[serde(default)]
    pub lifetime_new_share: Option<f64>,
    /// The current traffic period's figures; absent from builds without them.
    #[serde(default)]
    pub period: TrafficPeriod,
    /// The last minute's figures; absent from builds without them.
    #[serde(default)]
    pub last_minute: RecentTraffic,
}

/// A route's traffic in its current traffic period: its evidence period (the one
/// `/admin/parity`'s `evidence` names: a change of stage, upstreams or compare rules starts
/// a new one), or the part of it since its canary share or stickiness last changed, so its
/// `since` may be later than the evidence's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficPeriod {
    /// When the period started, RFC 3339 (seconds).
    pub since: String,
    /// How long it has lasted, in seconds.
    pub seconds: f64,
    /// Answers of the legacy upstream.
    pub legacy: SideTraffic,
    /// Answers of the new upstream (in shadow: the copies, marked `shadow`); `None` when
    /// the route names no new upstream.
    pub new: Option<SideTraffic>,
}

/// A route's traffic over the last minute (55 to 60 s: five-second ticks; less while
/// the period is younger).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentTraffic {
    /// The seconds covered.
    pub seconds: f64,
    /// Answers of the legacy upstream, with their rate.
    pub legacy: SideTraffic,
    /// Answers of the new upstream (in shadow: the copies, marked `shadow`).
    pub new: Option<SideTraffic>,
    /// Share of these client requests that went to new, as the route's `new_share`.
    pub new_share: Option<f64>,
}

/// The figures of one upstream for one route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideTraffic {
    /// Upstream name.
    pub upstream: String,
    /// Requests answered (every status, proxy-made 502/504 included).
    pub requests: u64,
    /// Of which with a 5xx status.
    pub status_5xx: u64,
    /// Median duration estimated from the histogram buckets; `None` without observations.
    pub p50_seconds: Option<f64>,
    /// 99th percentile, estimated the same way.
    pub p99_seconds: Option<f64>,
    /// Requests per second (`last_minute` only; left out elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    /// These are shadow copies the proxy sent, not client requests (a shadow route's new
    /// side in `period` and `last_minute`); left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// `GET /admin/history`: each route's last hour, minute by minute (the dashboard's
/// sparklines), from an in-memory ring: nothing before the proxy started or the route
/// appeared, nothing of a route the table no longer has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// When read, RFC 3339 (seconds).
    pub at: String,
    /// The length of a bucket, in seconds (60).
    pub bucket_seconds: u64,
    /// Every route of the table in force, in file order.
    pub routes: Vec<RouteHistory>,
}

/// One route's last hour: one bucket per minute, oldest first, the current minute last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteHistory {
    /// Route name.
    pub route: String,
    /// Its stage in the table in force.
    pub stage: String,
    /// When its history began (the proxy started, or a reload added the route), RFC 3339.
    pub since: String,
    /// The start of the first bucket, RFC 3339: a whole minute (UTC), the later of 59
    /// minutes before the current one and the one `since` falls in.
    pub start: String,
    /// The seconds each bucket covers: 60, less for the first when the history began in
    /// it, and for the last, the current minute so far.
    pub seconds: Vec<f64>,
    /// Answers of the route's legacy upstream, per bucket.
    pub legacy: SideHistory,
    /// Answers of its new upstream (in shadow: the copies, marked `shadow`); `None` when
    /// the route names no new upstream.
    pub new: Option<SideHistory>,
}

/// One side of a route, per bucket (each list as long as [`RouteHistory::seconds`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideHistory {
    /// Upstream name (in the table in force).
    pub upstream: String,
    /// Answers.
    pub requests: Vec<u64>,
    /// Of which with a 5xx status.
    pub status_5xx: Vec<u64>,
    /// Answers per second over the seconds the bucket covers.
    pub requests_per_second: Vec<f64>,
    /// 99th percentile of the durations, estimated from the duration buckets; `None`
    /// for a bucket without answers.
    pub p99_seconds: Vec<Option<f64>>,
    /// These are shadow copies (the route is in shadow now); left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// `POST /admin/reload`: `{"result": "ok", "version": …, "changes": {"added": […],
/// "removed": […], "changed": […]}}` (200) or `{"result": "error",
/// "errors": […]}` (422).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum ReloadAnswer {
    /// The table in force after the reload (a new one, or the same when unchanged).
    Ok {
        /// Its version.
        version: String,
        /// What the reload changed in the routes (all empty when the file was unchanged).
        #[serde(default)]
        changes: RouteChanges,
    },
    /// The new table was rejected; the old one stays in force.
    Error {
        /// Every error, as `file:line:col: message`.
        errors: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_rates() {
        let route = |stage: &str, percent: Option<f64>| ListedRoute {
            name: "a".to_owned(),
            kind: "prefix".to_owned(),
            path: "/a/".to_owned(),
            methods: None,
            stage: stage.to_owned(),
            legacy: "legacy".to_owned(),
            new: Some("new".to_owned()),
            canary: percent.map(|percent| ListedCanary { percent, sticky: None }),
            fallback: None,
            max_body: None,
            upgrades: None,
            case_insensitive: false,
            forwarding: Default::default(),
        };
        assert_eq!(route("legacy", None).new_share(), Some(0.0));
        assert_eq!(route("shadow", None).new_share(), Some(0.0));
        assert_eq!(route("new", None).new_share(), Some(100.0));
        assert_eq!(route("canary", Some(12.5)).new_share(), Some(12.5));
        assert_eq!(route("canary", None).new_share(), None);
        assert_eq!(route("dark-launch", None).new_share(), None);
        let p = RouteParity {
            matched: 90,
            noise: 7,
            mismatch: 2,
            error: 1,
            ..RouteParity::default()
        };
        assert_eq!(p.compared(), 99);
        assert_eq!(p.match_rate(), Some(0.97));
        assert_eq!(RouteParity::default().match_rate(), None);
    }

    #[test]
    fn counts_near_the_top_of_u64_saturate_and_rates_stay_within_one() {
        let huge = RouteParity {
            matched: u64::MAX - 1,
            noise: 5,
            mismatch: 3,
            error: u64::MAX,
            dropped: u64::MAX,
            ..RouteParity::default()
        };
        assert_eq!(huge.compared(), u64::MAX);
        let rate = huge.match_rate().unwrap();
        assert!((0.0..=1.0).contains(&rate), "{rate}");
        assert!((rate - 0.5).abs() < 1e-9, "{rate}");
        let mut sum = huge.clone();
        sum.add(&huge);
        assert_eq!((sum.matched, sum.error, sum.dropped), (u64::MAX, u64::MAX, u64::MAX));
        assert_eq!(sum.mismatch, 6);
    }

    #[test]
    fn absent_and_null_are_kept_apart() {
        let counts = serde_json::to_value(RouteParity::default()).unwrap();
        assert_eq!(counts["stage"], serde_json::Value::Null);
        assert_eq!(counts["match_rate"], serde_json::Value::Null);
        assert!(counts.get("requests").is_none(), "{counts}");
        let read: RouteParity = serde_json::from_str(r#"{"match": 3, "extra": true}"#).unwrap();
        assert_eq!((read.matched, read.requests), (3, None));
        let report: ParityReport = serde_json::from_str("{}").unwrap();
        assert_eq!(report, ParityReport::default());
        let counts: ParityCounts = serde_json::from_str(
            r#"{"routes": {"r": {"match": 1}}, "mismatches": [{"diff": "old shape"}], "mismatch_groups": [{"x": 1}]}"#,
        )
        .unwrap();
        assert_eq!((counts.routes["r"].matched, counts.mismatches.len()), (1, 1));
        assert!(serde_json::from_str::<ParityReport>(r#"{"mismatches": [{"diff": "old shape"}]}"#).is_err());
    }

    #[test]
    fn evidence_is_flat_and_periods_nest() {
        let json = r#"{"match": 5, "evidence": {"since": "2026-12-07T18:00:00Z", "period": "0123456789ab",
            "stage": "shadow", "legacy": {"name": "legacy", "url": "http://127.0.0.1:1/"},
            "new": {"name": "thoughts", "url": "http://127.0.0.1:2/"}, "rules": "r"},
            "previous": {"match": 2}, "total": {"match": 7}}"#;
        let read: RouteParity = serde_json::from_str(json).unwrap();
        let evidence = read.evidence.clone().unwrap();
        assert_eq!(
            (evidence.identity.stage.as_str(), evidence.period.as_str()),
            ("shadow", "0123456789ab")
        );
        assert_eq!(read.previous.as_ref().map(|p| p.matched), Some(2));
        assert_eq!(read.total.as_ref().map(|t| t.matched), Some(7));
        let written = serde_json::to_value(&read).unwrap();
        assert_eq!(written["evidence"]["new"]["url"], "http://127.0.0.1:2/");
        assert!(written["previous"].get("evidence").is_none(), "{written}");
    }

    #[test]
    fn reload_answers_are_tagged_by_result() {
        let ok = ReloadAnswer::Ok {
            version: "v1".to_owned(),
            changes: RouteChanges {
                added: vec!["a".to_owned()],
                removed: vec![],
                changed: vec!["c".to_owned()],
                settings: vec![],
            },
        };
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            serde_json::json!({"result": "ok", "version": "v1",
                               "changes": {"added": ["a"], "removed": [], "changed": ["c"]}})
        );
        // An answer without `changes` (an older proxy) reads as no changes.
        let old: ReloadAnswer = serde_json::from_str(r#"{"result": "ok", "version": "v0"}"#).unwrap();
        assert_eq!(
            old,
            ReloadAnswer::Ok {
                version: "v0".to_owned(),
                changes: RouteChanges::default()
            }
        );
        let error: ReloadAnswer = serde_json::from_str(r#"{"errors": ["e"], "result": "error"}"#).unwrap();
        assert_eq!(
            error,
            ReloadAnswer::Error {
                errors: vec!["e".to_owned()]
            }
        );
    }
}

//! The running proxy's state: one immutable [`Snapshot`] behind one [`ArcSwap`].
//!
//! A snapshot is everything a request needs to be routed and forwarded: the validated
//! config, the compiled [`RouteTable`](crate::router::RouteTable), the upstreams with their connection pools and the
//! per-route metric handles. A request loads the snapshot once, at its start, and uses
//! that one to the end, so a reload never changes the table under a request. Reloads
//! build a new snapshot off the request path and swap it in atomically; upstream connection
//! pools (and so their warm connections) are carried over when an upstream's settings
//! did not change.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use prometheus::Histogram;
use tokio::sync::watch;

use crate::config::{CanaryConfig, Config, EvidenceIdentity, RouteConfig, Stage};
use crate::metrics::{Metrics, PerWorker};
use crate::migration::canary::CanarySplit;
use crate::migration::fallback::Fallback;
use crate::migration::period::EvidencePeriod;
use crate::migration::record::Recorder;
use crate::migration::shadow::admission::{MirrorsInFlight, ShadowRoute};
use crate::migration::shadow::ledger::ParityLedger;
use crate::table::Table;
use crate::telemetry::SpanExporter;
use crate::upstream::{UnusableUpstream, Upstream, UpstreamId};
use crate::window::SideWindows;

/// A route as requests use it.
#[derive(Debug)]
pub struct Route {
    /// Name from routes.toml.
    pub name: Arc<str>,
    /// The upstream its stage sends traffic to (for a canary: the legacy side).
    pub upstream: UpstreamId,
    /// Duration histogram for this route and its upstream.
    pub duration: PerWorker<Histogram>,
    /// At stage `canary`: the split.
    pub canary: Option<CanarySplit>,
    /// With `fallback = true`: where requests the new upstream fails are replayed.
    pub fallback: Option<Fallback>,
    /// At stage `shadow`: where copies go and how they are bounded and compared.
    pub shadow: Option<ShadowRoute>,
    /// `max_body`: the largest request body (bytes) forwarded; larger ones get 413.
    pub max_body: Option<u64>,
    /// Its mirrors in flight: carried over reloads (by name) and stage changes, so that
    /// mirrors still running count against the cap of whichever table is in force.
    pub mirrors_in_flight: Arc<MirrorsInFlight>,
    /// The route's evidence period: carried over reloads that leave its identity (stage,
    /// upstreams, compare rules) as it was.
    pub period: Arc<EvidencePeriod>,
    /// Its answers of the current traffic period by side, over time (`/admin/traffic`):
    /// carried while `period` and the canary split in force (share and stickiness) stay as
    /// they were, new otherwise. A traffic period starts with its evidence period, or later
    /// (a canary's share changed: the split changed, the evidence did not).
    pub windows: Arc<SideWindows>,
    /// Its new upstream, if any: answers from it count on the new side of `windows`.
    pub new_upstream: Option<UpstreamId>,
    /// `upgrades`: the protocols its requests may switch to (lower-case).
    pub upgrades: Arc<[Box<str>]>,
    /// `strip_prefix`, `rewrite`, `host`, `request_headers`, `response_headers`, compiled
    /// (the default forwards as routed).
    pub forwarding: crate::config::Forwarding,
}

impl Route {
    /// Builds a route; `find` resolves upstream names to ids. Its count of mirrors in
    /// flight is the one `counts` has under its name, if any.
    fn build(
        route: &RouteConfig,
        find: &impl Fn(&str) -> Result<UpstreamId, SnapshotError>,
        carried: &Carried,
        metrics: &Metrics,
    ) -> Result<Self, SnapshotError> {
        let target = route.target();
        let canary = match (route.stage, &route.canary, &route.new) {
            (Stage::Canary, Some(split), Some(new)) => {
                Some(CanarySplit::new(&route.name, split, find(new)?, new, metrics))
            }
            _ => None,
        };
        let fallback = match (route.fallback_max_body, &route.new) {
            (Some(max_body), Some(new)) => Some(Fallback {
                new: find(new)?,
                legacy: find(&route.legacy)?,
                legacy_duration: metrics
                    .request_duration
                    .with_label_values(&[&route.name, &route.legacy]),
                max_body,
            }),
            _ => None,
        };
        let mirrors_in_flight = carried.mirrors.get(route.name.as_str()).cloned().unwrap_or_default();
        let period = EvidencePeriod::carry(carried.periods.get(route.name.as_str()), carried.identity(route));
        let shadow = match (route.stage, &route.new) {
            (Stage::Shadow, Some(new)) => Some(ShadowRoute {
                new: find(new)?,
                config: route.shadow.clone(),
                rules: route.compare.clone(),
                in_flight: mirrors_in_flight.clone(),
                period: period.clone(),
            }),
            _ => None,
        };
        Ok(Route {
            name: Arc::from(route.name.as_str()),
            upstream: find(target)?,
            duration: metrics.request_duration.with_label_values(&[&route.name, target]),
            canary,
            fallback,
            shadow,
            max_body: route.max_body,
            mirrors_in_flight,
            windows: carried.windows(route, &period),
            new_upstream: route.new.as_deref().map(find).transpose()?,
            period,
            upgrades: route.upgrades.iter().map(|p| Box::from(p.as_str())).collect(),
            forwarding: route.forwarding.clone(),
        })
    }
}

/// Everything a request needs, immutable.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated config and compiled routes.
    pub table: Table,
    /// Routes, indexed by route id.
    pub routes: Vec<Route>,
    /// Upstreams, sorted by name. Each behind its own `Arc`, so that work that outlives the
    /// request (a mirror) keeps just the upstreams it uses alive.
    pub upstreams: Vec<Arc<Upstream>>,
    /// The upstream for requests no route matches.
    pub default_upstream: UpstreamId,
    /// When this table was swapped in.
    pub loaded_at: SystemTime,
    /// The traffic recording, when `[record]` is set.
    pub recorder: Option<Arc<Recorder>>,
    /// The counts of mirrors in flight of routes that left the table while some of their
    /// mirrors still ran (a mirror may run for its timeout plus 30 s): a route that comes
    /// back, in a later table, finds its mirrors still counted against its cap.
    retired_mirrors: MirrorCounts,
    /// The OTLP span exporter, when `[tracing] otlp_endpoint` is set: kept across reloads
    /// that keep the endpoint.
    pub spans: Option<Arc<SpanExporter>>,
}

/// Counts of mirrors in flight, by route name.
type MirrorCounts = std::collections::HashMap<Arc<str>, Arc<MirrorsInFlight>>;

/// What a new table's routes take over from the table in force, by route name.
struct Carried<'c> {
    /// The new table's config (whose upstreams the identities name).
    config: &'c Config,
    /// Counts of mirrors in flight.
    mirrors: MirrorCounts,
    /// Evidence periods.
    periods: std::collections::HashMap<Arc<str>, Arc<EvidencePeriod>>,
    /// Traffic windows, with what they count under.
    windows: std::collections::HashMap<Arc<str>, TrafficWindows>,
    /// How many copies new windows keep.
    window_copies: usize,
}

/// A route's traffic windows and the terms of their traffic period: the evidence period
/// and the canary split in force.
struct TrafficWindows {
    period: Arc<EvidencePeriod>,
    canary: Option<CanaryConfig>,
    windows: Arc<SideWindows>,
}

/// The canary split of `route` that is in force (its stage is `canary`), if any.
fn canary_in_force(route: &RouteConfig) -> Option<CanaryConfig> {
    route.canary.clone().filter(|_| route.stage == Stage::Canary)
}

impl Carried<'_> {
    fn identity(&self, route: &RouteConfig) -> EvidenceIdentity {
        EvidenceIdentity::of(self.config, route)
    }

    /// The route's traffic windows in `period`: the previous table's while both the period
    /// and the canary split in force are the same. New windows count from the period's
    /// start when the period is new, from now when only the split changed.
    fn windows(&self, route: &RouteConfig, period: &Arc<EvidencePeriod>) -> Arc<SideWindows> {
        let since = match self.windows.get(route.name.as_str()) {
            Some(kept) if Arc::ptr_eq(&kept.period, period) => {
                if kept.canary == canary_in_force(route) {
                    return kept.windows.clone();
                }
                SystemTime::now()
            }
            _ => period.since,
        };
        Arc::new(SideWindows::new(since, self.window_copies))
    }
}

/// The counts a new table's routes take over from `previous`: its routes', and those of
/// routes that had left it with mirrors still running.
fn carried_mirror_counts(previous: Option<&Snapshot>) -> MirrorCounts {
    let Some(previous) = previous else {
        return MirrorCounts::new();
    };
    let running = previous
        .retired_mirrors
        .iter()
        .filter(|(_, count)| count.get() > 0)
        .map(|(name, count)| (name.clone(), count.clone()));
    let current = previous
        .routes
        .iter()
        .map(|route| (route.name.clone(), route.mirrors_in_flight.clone()));
    running.chain(current).collect()
}

/// An upstream the config names could not be turned into a pool (a validated config
/// makes this impossible; kept as an error rather than a panic).
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not usable: {1}")]
pub struct SnapshotError(String, String);

impl From<UnusableUpstream> for SnapshotError {
    fn from(e: UnusableUpstream) -> Self {
        Self(e.upstream, e.reason)
    }
}

impl Snapshot {
    /// Builds a snapshot, reusing the connection pools of `previous` for upstreams whose settings
    /// are unchanged so their connection pools stay warm across reloads.
    ///
    /// Reads the TLS files of `https://` upstreams (blocking IO: call it off the async workers).
    ///
    /// `workers` is the number of proxy worker threads; each gets its own pool per upstream.
    pub fn build(
        table: Table,
        previous: Option<&Snapshot>,
        metrics: &Metrics,
        workers: usize,
    ) -> Result<Self, SnapshotError> {
        let upstreams = table
            .config
            .upstreams
            .iter()
            .map(|(name, config)| {
                let previous = previous.map_or(&[][..], |p| &p.upstreams[..]);
                Upstream::build(name, config, previous, metrics, workers).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let find = |name: &str| {
            upstreams
                .iter()
                .position(|u| &*u.name == name)
                .ok_or_else(|| SnapshotError(name.to_owned(), "not defined".into()))
        };
        let default_upstream = find(&table.config.proxy.default_upstream)?;
        let carried = Carried {
            config: &table.config,
            mirrors: carried_mirror_counts(previous),
            periods: previous
                .map(|p| p.routes.iter().map(|r| (r.name.clone(), r.period.clone())).collect())
                .unwrap_or_default(),
            windows: previous
                .map(|p| {
                    let traffic = |(route, config): (&Route, &RouteConfig)| TrafficWindows {
                        period: route.period.clone(),
                        canary: canary_in_force(config),
                        windows: route.windows.clone(),
                    };
                    // A snapshot's routes are its config's, in order.
                    p.routes
                        .iter()
                        .zip(&p.table.config.routes)
                        .map(move |pair| (pair.0.name.clone(), traffic(pair)))
                })
                .into_iter()
                .flatten()
                .collect(),
            // One copy per worker (a shadow copy is timed on its client's worker's copy).
            window_copies: workers,
        };
        let routes = table
            .config
            .routes
            .iter()
            .map(|route| Route::build(route, &find, &carried, metrics))
            .collect::<Result<Vec<_>, _>>()?;
        let mut counts = carried.mirrors;
        counts.retain(|name, count| count.get() > 0 && !routes.iter().any(|r| r.name == *name));
        let recorder = start_recorder(&table.config, previous, metrics)?;
        let spans = span_exporter(&table.config, previous, metrics);
        Ok(Self {
            table,
            routes,
            upstreams,
            default_upstream,
            loaded_at: SystemTime::now(),
            recorder,
            retired_mirrors: counts,
            spans,
        })
    }

    /// The config this snapshot was built from.
    pub fn config(&self) -> &Config {
        &self.table.config
    }

    /// Starts the active health checks of upstreams that have them (once per upstream).
    pub fn start_health_checks(&self, runtime: &tokio::runtime::Handle) {
        for upstream in &self.upstreams {
            upstream.health.start_checker(runtime);
        }
    }

    /// Whether the default upstream's health check (if any) currently fails.
    pub fn default_upstream_unhealthy(&self) -> bool {
        self.upstreams
            .get(self.default_upstream)
            .is_some_and(|u| u.health.verdict() == crate::upstream::health::Verdict::Unhealthy)
    }

    /// Makes this table's evidence periods the current ones in `ledger` (and in
    /// `strangler_parity_period_info`).
    fn enter_periods(&self, ledger: &ParityLedger, metrics: &Metrics) {
        let periods = self.routes.iter().map(|route| (&*route.name, &route.period));
        ledger.install(periods, &metrics.parity_period_info, &metrics.shadow_comparisons);
    }

    /// Publishes the per-route and per-upstream gauges of this table.
    fn publish_gauges(&self, metrics: &Metrics) {
        metrics.config_routes.set(self.routes.len() as i64);
        metrics.route_info.reset();
        for route in &self.table.config.routes {
            metrics
                .route_info
                .with_label_values(&[
                    route.name.as_str(),
                    route.stage.as_str(),
                    route.legacy.as_str(),
                    route.new.as_deref().unwrap_or(""),
                ])
                .set(1);
        }
        // Upstreams that left the table leave the health gauges too.
        for gauge in [&metrics.upstream_ejected, &metrics.upstream_healthy] {
            crate::metrics::retain_series(gauge, |labels| {
                labels
                    .get("upstream")
                    .is_none_or(|name| self.upstreams.iter().any(|u| &*u.name == *name))
            });
        }
    }
}

/// The traffic recorder of `config`'s `[record]`: the running one of `previous` when its
/// settings are unchanged, else a new one. A new one with the path of a recording already
/// being written sends to that file's running writer (see [`crate::migration::record`]):
/// answers still in flight under the old table and lines of the new one go through the
/// same writer, so a reload never puts two writers on one file.
fn start_recorder(
    config: &Config,
    previous: Option<&Snapshot>,
    metrics: &Metrics,
) -> Result<Option<Arc<Recorder>>, SnapshotError> {
    let Some(config) = &config.record else {
        return Ok(None);
    };
    if let Some(running) = previous
        .and_then(|p| p.recorder.as_ref())
        .filter(|r| r.config() == config)
    {
        return Ok(Some(running.clone()));
    }
    let recorder = Recorder::start(config.clone(), metrics.recorded.clone()).map_err(|e| {
        SnapshotError(
            "record.path".to_owned(),
            format!("cannot open {}: {e}", config.path.display()),
        )
    })?;
    Ok(Some(Arc::new(recorder)))
}

/// The outcome of the load attempts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadStatus {
    /// Loads that applied or rejected a table, the first included (unchanged files and
    /// no-op reloads do not count).
    pub attempts: u64,
    /// The version in force.
    pub version: String,
    /// The errors of the last failed load, cleared by the next good one.
    pub last_error: Option<Vec<String>>,
}

/// A random id for this process, 16 hex digits: std's randomly keyed hasher over the time
/// and the process id (no new dependency; not a secret, only unique).
pub fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// What every part of the running proxy shares.
#[derive(Debug)]
pub struct State {
    snapshot: ArcSwap<Snapshot>,
    /// The config file, as given on the command line.
    pub config_path: PathBuf,
    /// Metrics, exported on the admin listener.
    pub metrics: Metrics,
    /// The outcome of load attempts, observable (admin API, tests, future hooks).
    status: watch::Sender<LoadStatus>,
    /// Readiness latch: set once the first table is in force, cleared on shutdown.
    ready: AtomicBool,
    /// Number of proxy worker threads, fixed at start.
    pub workers: usize,
    /// This process's id ([`instance_id`]), which `GET /admin/routes` gives so that a
    /// client asking several admin URLs counts one process once.
    pub instance: String,
    /// Shadow-traffic evidence, per route and evidence period, since the start.
    pub ledger: Arc<ParityLedger>,
    /// The low-priority runtime that runs shadow mirrors (set by `run`; until then mirrors
    /// run on the calling runtime).
    pub mirrors: std::sync::OnceLock<tokio::runtime::Handle>,
    /// The runtime that runs active health checks (set by `run`).
    checks: std::sync::OnceLock<tokio::runtime::Handle>,
}

impl State {
    /// State around a first snapshot; ready at once.
    pub fn new(config_path: PathBuf, snapshot: Snapshot, metrics: Metrics, workers: usize) -> Self {
        let version = snapshot.config().version.clone();
        metrics.set_config_version(&version);
        snapshot.publish_gauges(&metrics);
        let ledger = Arc::new(ParityLedger::default());
        snapshot.enter_periods(&ledger, &metrics);
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            config_path,
            metrics,
            status: watch::Sender::new(LoadStatus {
                attempts: 1,
                version,
                last_error: None,
            }),
            ready: AtomicBool::new(true),
            workers,
            instance: instance_id(),
            ledger,
            mirrors: std::sync::OnceLock::new(),
            checks: std::sync::OnceLock::new(),
        }
    }

    /// The snapshot in force. Load it once per request and keep the `Arc`.
    #[inline]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Swaps in a new snapshot; requests already routed keep the one they loaded.
    pub fn install(&self, snapshot: Snapshot) {
        let version = snapshot.config().version.clone();
        self.metrics.set_config_version(&version);
        snapshot.publish_gauges(&self.metrics);
        if let Some(runtime) = self.checks.get() {
            snapshot.start_health_checks(runtime);
        }
        // Before the swap: no request of the new table may count in a period it ended.
        snapshot.enter_periods(&self.ledger, &self.metrics);
        self.snapshot.store(Arc::new(snapshot));
        self.status.send_modify(|status| {
            status.attempts += 1;
            status.version = version;
            status.last_error = None;
        });
    }

    /// Records a rejected load; the table in force stays.
    pub fn record_rejection(&self, errors: Vec<String>) {
        self.status.send_modify(|status| {
            status.attempts += 1;
            status.last_error = Some(errors);
        });
    }

    /// The errors of the last failed load since the last good one.
    pub fn last_error(&self) -> Option<Vec<String>> {
        self.status.borrow().last_error.clone()
    }

    /// Watches load outcomes: every reload that applies or rejects a table changes it.
    pub fn subscribe(&self) -> watch::Receiver<LoadStatus> {
        self.status.subscribe()
    }

    /// Starts active health checks on `runtime`, now and after every reload.
    pub fn start_health_checks(&self, runtime: tokio::runtime::Handle) {
        let runtime = self.checks.get_or_init(|| runtime);
        self.snapshot().start_health_checks(runtime);
    }

    /// Whether the proxy should receive traffic: a table is in force, it is not draining,
    /// and (unless `ready_requires_healthy_default = false`) the default upstream does not
    /// fail its health check.
    pub fn is_ready(&self) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return false;
        }
        let snapshot = self.snapshot();
        !(snapshot.config().proxy.ready_requires_healthy_default && snapshot.default_upstream_unhealthy())
    }

    /// Marks the proxy as not ready (draining).
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Release);
    }
}

/// The span exporter of `config`'s `[tracing] otlp_endpoint`: `previous`'s when the endpoint
/// is the same, else a new one (none, with an ERROR line, if its thread cannot start).
fn span_exporter(config: &Config, previous: Option<&Snapshot>, metrics: &Metrics) -> Option<Arc<SpanExporter>> {
    let (endpoint, traces_url) = (
        config.tracing.otlp_endpoint.as_ref()?,
        config.tracing.otlp_traces_url.as_ref()?,
    );
    if let Some(kept) = previous
        .and_then(|p| p.spans.as_ref())
        .filter(|s| s.endpoint() == endpoint)
    {
        return Some(kept.clone());
    }
    match SpanExporter::start(endpoint.clone(), traces_url.clone(), metrics) {
        Ok(exporter) => Some(exporter),
        Err(e) => {
            tracing::error!(endpoint = %endpoint, error = %e, "cannot start the OTLP span exporter; spans are not exported");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_keeps_its_count_of_mirrors_in_flight_across_reloads_and_stages() {
        let text = |stage: &str, max_inflight: u32| {
            format!(
                "[proxy]\nlisten = \"127.0.0.1:8000\"\nadmin_listen = \"127.0.0.1:9100\"\n\
                 default_upstream = \"app\"\n\n[upstreams.app]\nurl = \"http://127.0.0.1:1\"\n\
                 [upstreams.next]\nurl = \"http://127.0.0.1:2\"\n\n[[routes]]\nname = \"r\"\n\
                 path = \"/r/\"\nstage = \"{stage}\"\nnew = \"next\"\nshadow = {{ max_inflight = {max_inflight} }}\n"
            )
        };
        let build = |stage: &str, max_inflight: u32, previous: Option<&Snapshot>| {
            let table = Table::parse("routes.toml", &text(stage, max_inflight)).unwrap();
            Snapshot::build(table, previous, &Metrics::new().unwrap(), 1).unwrap()
        };
        let first = build("shadow", 2, None);
        let count = first.routes[0].mirrors_in_flight.clone();
        let shadow = first.routes[0].shadow.as_ref().unwrap();
        assert!(Arc::ptr_eq(&shadow.in_flight, &count));
        let resized = build("shadow", 5, Some(&first));
        assert!(Arc::ptr_eq(&resized.routes[0].mirrors_in_flight, &count));
        assert_eq!(resized.routes[0].shadow.as_ref().unwrap().config.max_inflight, 5);
        let flipped = build("legacy", 5, Some(&resized));
        assert!(flipped.routes[0].shadow.is_none());
        let back = build("shadow", 5, Some(&flipped));
        assert!(Arc::ptr_eq(&back.routes[0].shadow.as_ref().unwrap().in_flight, &count));
        assert!(!Arc::ptr_eq(
            &build("shadow", 2, None).routes[0].mirrors_in_flight,
            &count
        ));
    }

    #[test]
    fn a_route_that_leaves_the_table_and_comes_back_finds_its_mirrors_still_counted() {
        let table = |with_route: bool| {
            let route = "[[routes]]\nname = \"r\"\npath = \"/r/\"\nstage = \"shadow\"\nnew = \"next\"\n";
            let text = format!(
                "[proxy]\nlisten = \"127.0.0.1:8000\"\nadmin_listen = \"127.0.0.1:9100\"\n\
                 default_upstream = \"app\"\n\n[upstreams.app]\nurl = \"http://127.0.0.1:1\"\n\
                 [upstreams.next]\nurl = \"http://127.0.0.1:2\"\n\n{}",
                if with_route { route } else { "" }
            );
            Table::parse("routes.toml", &text).unwrap()
        };
        let metrics = Metrics::new().unwrap();
        let first = Snapshot::build(table(true), None, &metrics, 1).unwrap();
        let count = first.routes[0].mirrors_in_flight.clone();
        let shadow = first.routes[0].shadow.as_ref().unwrap();
        let admitted = shadow.admit("r", &http::Method::GET, Some(0), b"request-1");
        assert_eq!(count.get(), 1, "{admitted:?}");

        // Gone for two tables, back in the third: the mirror still running counts.
        let gone = Snapshot::build(table(false), Some(&first), &metrics, 1).unwrap();
        let still_gone = Snapshot::build(table(false), Some(&gone), &metrics, 1).unwrap();
        let back = Snapshot::build(table(true), Some(&still_gone), &metrics, 1).unwrap();
        assert!(Arc::ptr_eq(&back.routes[0].mirrors_in_flight, &count));

        // Once its mirrors are done, a route that left is forgotten.
        drop(admitted);
        let gone_again = Snapshot::build(table(false), Some(&back), &metrics, 1).unwrap();
        assert!(gone_again.retired_mirrors.is_empty());
        let fresh = Snapshot::build(table(true), Some(&gone_again), &metrics, 1).unwrap();
        assert!(!Arc::ptr_eq(&fresh.routes[0].mirrors_in_flight, &count));
    }

    #[test]
    fn a_canary_split_change_starts_new_traffic_windows_in_the_same_evidence_period() {
        let table = |canary: &str, path: &str| {
            let text = format!(
                "[proxy]\nlisten = \"127.0.0.1:8000\"\nadmin_listen = \"127.0.0.1:9100\"\n\
                 default_upstream = \"app\"\n\n[upstreams.app]\nurl = \"http://127.0.0.1:1\"\n\
                 [upstreams.next]\nurl = \"http://127.0.0.1:2\"\n\n[[routes]]\nname = \"r\"\n\
                 path = \"{path}\"\nstage = \"canary\"\nnew = \"next\"\ncanary = {canary}\n"
            );
            Table::parse("routes.toml", &text).unwrap()
        };
        let metrics = Metrics::new().unwrap();
        let first = Snapshot::build(table("{ percent = 10 }", "/r/"), None, &metrics, 2).unwrap();
        assert_eq!(first.routes[0].windows.since(), first.routes[0].period.since);
        let build = |canary, previous| Snapshot::build(table(canary, "/r2/"), Some(previous), &metrics, 2).unwrap();
        // Another path, the same split: the same traffic period.
        let moved = build("{ percent = 10 }", &first);
        assert!(Arc::ptr_eq(&moved.routes[0].windows, &first.routes[0].windows));
        for (canary, what) in [
            ("{ percent = 50 }", "share"),
            ("{ percent = 10, sticky = \"header:x-user\" }", "stickiness"),
        ] {
            let changed = build(canary, &moved);
            let (before, after) = (&moved.routes[0], &changed.routes[0]);
            assert!(Arc::ptr_eq(&before.period, &after.period), "{what}: the evidence stays");
            assert!(!Arc::ptr_eq(&before.windows, &after.windows), "{what}: new windows");
            assert!(after.windows.since() > before.period.since, "{what}: a later start");
        }
    }
}

//! The live parity evidence of shadowed routes: what happened to every mirrored (or not
//! mirrored) request, per route and per evidence period.
//!
//! Every outcome is counted twice, in one call ([`ParityLedger::count`]): in the ledger
//! (served as `GET /admin/parity`) and in
//! `strangler_shadow_comparisons_total{route,result,period}`. Each count carries the
//! [`EvidencePeriod`] of the route in the snapshot the request was routed by, so an answer
//! that arrives after a reload is counted where it belongs.
//!
//! Per route the ledger keeps the current period (the one of the table in force, set by
//! [`ParityLedger::install`] before that table takes requests), the previous one, and
//! lifetime totals. Periods are told apart as the tables carry them (by `Arc`), not by
//! name: a route that leaves the table and comes back with the same identity starts a new
//! period of the same name (the old one becomes the previous; in the metric, whose series
//! are by name, the new period starts from zero and a straggler of the old one counts in
//! the same series). A count of a period that is neither (a straggler routed by a table two
//! reloads old) goes to the totals only. `install` also keeps
//! `strangler_parity_period_info` to those two periods per route, so its series stay
//! bounded. The ledger hands out plain data ([`ParityLedger::evidence`]); the admin API
//! owns the document it becomes, so this module knows nothing of JSON.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::migration::period::EvidencePeriod;
use crate::parity::{Comparison, Diff, Outcome};
use prometheus::{IntCounterVec, IntGaugeVec};

/// How many compared requests the window match rate covers, per route.
const WINDOW: usize = 1_000;
/// How many mismatches `/admin/parity` keeps (newest first).
const KEPT_MISMATCHES: usize = 50;

/// What happened to one shadowed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowResult {
    /// Compared; the answers agree.
    Match,
    /// Compared; only fields that differ between two legacy answers differ.
    Noise,
    /// Compared; the answers differ.
    Mismatch,
    /// A side failed (new unreachable, timed out, or an answer too large to capture).
    Error,
    /// Not mirrored: too many mirrors in flight.
    Dropped,
    /// Not mirrored: the request body is too large or of unknown length.
    Skipped,
}

impl ShadowResult {
    /// Every result.
    pub const ALL: [ShadowResult; 6] = [
        ShadowResult::Match,
        ShadowResult::Noise,
        ShadowResult::Mismatch,
        ShadowResult::Error,
        ShadowResult::Dropped,
        ShadowResult::Skipped,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowResult::Match => "match",
            ShadowResult::Noise => "noise",
            ShadowResult::Mismatch => "mismatch",
            ShadowResult::Error => "error",
            ShadowResult::Dropped => "dropped",
            ShadowResult::Skipped => "skipped",
        }
    }

    /// From a comparison outcome. Live comparisons judge no divergence (the mirror calls
    /// [`crate::parity::compare()`]), so `expected` and `resolved` never come here; were
    /// they to, an expected difference agrees and a resolved one does not.
    pub fn from_outcome(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Match | Outcome::Expected => ShadowResult::Match,
            Outcome::Noise => ShadowResult::Noise,
            Outcome::Mismatch | Outcome::Resolved => ShadowResult::Mismatch,
            Outcome::Error => ShadowResult::Error,
        }
    }
}

/// One route's counts, read from the ledger: plain data, which the admin API turns into
/// its document (`GET /admin/parity`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteTally {
    /// Compared; the answers agree.
    pub matched: u64,
    /// Compared; they differ only where legacy differs from itself.
    pub noise: u64,
    /// Compared; they differ.
    pub mismatch: u64,
    /// A side failed.
    pub error: u64,
    /// Not mirrored: too many mirrors in flight.
    pub dropped: u64,
    /// Not mirrored: the request body is too large or of unknown length.
    pub skipped: u64,
    /// Of the route's last compared requests (at most `WINDOW`), how many there are…
    pub window_compared: u64,
    /// …and how many of them agreed (match or noise).
    pub window_agreed: u64,
}

impl RouteTally {
    /// (match + noise) / (match + noise + mismatch + error); `None` before any pair.
    pub fn match_rate(&self) -> Option<f64> {
        let compared = self.matched + self.noise + self.mismatch + self.error;
        rate(self.matched + self.noise, compared)
    }

    /// The same rate over the window of recent compared requests.
    pub fn window_match_rate(&self) -> Option<f64> {
        rate(self.window_agreed, self.window_compared)
    }
}

fn rate(agreed: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| agreed as f64 / total as f64)
}

/// A kept mismatch, its diffs already redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptMismatch {
    /// The route.
    pub route: String,
    /// The evidence period it was found in ([`EvidencePeriod::id`]).
    pub period: String,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// When it was recorded.
    pub at: SystemTime,
    /// The legacy and the new status.
    pub status: [u16; 2],
    /// The differences, the values of secret headers redacted.
    pub diffs: Vec<Diff>,
    /// The request id of the client's request (`x-request-id`), if it was valid text.
    pub request_id: Option<String>,
}

/// One evidence period's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodTally {
    /// The period: what the counts were gathered against, and since when.
    pub period: Arc<EvidencePeriod>,
    /// Its counts.
    pub counts: RouteTally,
}

/// One route's evidence: the current period's, the previous one's and the lifetime totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEvidence {
    /// The period of the table in force (or of the last table that had the route).
    pub current: PeriodTally,
    /// The period before it, if the route had one since the process started.
    pub previous: Option<PeriodTally>,
    /// Every count since the process started, whatever its period (stragglers included).
    pub total: RouteTally,
}

/// What the ledger holds at one moment: every route's evidence, by name, and the kept
/// mismatches, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParityEvidence {
    /// Evidence by route name.
    pub routes: BTreeMap<String, RouteEvidence>,
    /// The last mismatches (at most `KEPT_MISMATCHES`), newest first.
    pub mismatches: Vec<KeptMismatch>,
}

#[derive(Debug, Default)]
struct Tally {
    counts: RouteTally,
    /// Recent compared requests: true when they agreed (match or noise).
    window: VecDeque<bool>,
}

impl Tally {
    fn add(&mut self, result: ShadowResult) {
        let counts = &mut self.counts;
        let agreed = match result {
            ShadowResult::Match => {
                counts.matched += 1;
                Some(true)
            }
            ShadowResult::Noise => {
                counts.noise += 1;
                Some(true)
            }
            ShadowResult::Mismatch => {
                counts.mismatch += 1;
                Some(false)
            }
            ShadowResult::Error => {
                counts.error += 1;
                Some(false)
            }
            ShadowResult::Dropped => {
                counts.dropped += 1;
                None
            }
            ShadowResult::Skipped => {
                counts.skipped += 1;
                None
            }
        };
        if let Some(agreed) = agreed {
            if self.window.len() == WINDOW {
                self.window.pop_front();
            }
            self.window.push_back(agreed);
        }
    }

    fn read(&self) -> RouteTally {
        RouteTally {
            window_compared: self.window.len() as u64,
            window_agreed: self.window.iter().filter(|agreed| **agreed).count() as u64,
            ..self.counts
        }
    }
}

/// One period of a route and its counts, as the ledger keeps them.
#[derive(Debug)]
struct PeriodBook {
    period: Arc<EvidencePeriod>,
    tally: Tally,
}

impl PeriodBook {
    fn new(period: &Arc<EvidencePeriod>) -> Self {
        Self {
            period: period.clone(),
            tally: Tally::default(),
        }
    }

    /// Whether counts of `period` belong here: the same carried period (the same `Arc`,
    /// which a table hands on to the next while the route stays with its identity). The
    /// same identity is not enough: a route that left the table and came back starts a new
    /// period with the same name, as `/admin/traffic` does. (Both this book and the caller
    /// hold their `Arc`, so an equal address is the same period, never a reused one.)
    fn holds(&self, period: &Arc<EvidencePeriod>) -> bool {
        Arc::ptr_eq(&self.period, period)
    }

    fn read(&self) -> PeriodTally {
        PeriodTally {
            period: self.period.clone(),
            counts: self.tally.read(),
        }
    }
}

/// One route's books.
#[derive(Debug)]
struct RouteBook {
    current: PeriodBook,
    previous: Option<PeriodBook>,
    total: Tally,
}

impl RouteBook {
    fn new(period: &Arc<EvidencePeriod>) -> Self {
        Self {
            current: PeriodBook::new(period),
            previous: None,
            total: Tally::default(),
        }
    }

    /// Makes `period` current; the current one, if another, becomes the previous. True
    /// when `period` starts afresh (it was not current).
    fn enter(&mut self, period: &Arc<EvidencePeriod>) -> bool {
        if self.current.holds(period) {
            return false;
        }
        let left = std::mem::replace(&mut self.current, PeriodBook::new(period));
        self.previous = Some(left);
        true
    }

    /// Counts `result` in the totals and in `period`'s book; false when `period` is
    /// neither the current nor the previous one (a straggler: totals only).
    fn add(&mut self, period: &Arc<EvidencePeriod>, result: ShadowResult) -> bool {
        self.total.add(result);
        if self.current.holds(period) {
            self.current.tally.add(result);
        } else if let Some(previous) = self.previous.as_mut().filter(|p| p.holds(period)) {
            previous.tally.add(result);
        } else {
            return false;
        }
        true
    }

    fn periods(&self) -> impl Iterator<Item = &Arc<EvidencePeriod>> {
        std::iter::once(&self.current.period).chain(self.previous.as_ref().map(|p| &p.period))
    }

    fn read(&self) -> RouteEvidence {
        RouteEvidence {
            current: self.current.read(),
            previous: self.previous.as_ref().map(PeriodBook::read),
            total: self.total.read(),
        }
    }
}

/// Parity evidence since the process started, per route name and evidence period (it
/// survives reloads: a route that changes its stage, upstreams or rules starts a new period
/// and keeps the previous one).
#[derive(Debug, Default)]
pub struct ParityLedger {
    routes: Mutex<BTreeMap<String, RouteBook>>,
    mismatches: Mutex<VecDeque<KeptMismatch>>,
}

impl ParityLedger {
    /// Counts one shadowed request's outcome, in `period` (the route's period in the
    /// snapshot that routed the request): in the ledger and in `comparisons`
    /// (`strangler_shadow_comparisons_total{route,result,period}`).
    ///
    /// The metric counts only the current and the previous period of a route, like the
    /// ledger: a straggler of an older period (whose series [`ParityLedger::install`]
    /// removed) is in the ledger's totals only, so that series never come back.
    pub fn count(&self, comparisons: &IntCounterVec, route: &str, period: &Arc<EvidencePeriod>, result: ShadowResult) {
        if self.record(route, period, result) {
            comparisons
                .with_label_values(&[route, result.as_str(), period.id.as_str()])
                .inc();
        }
    }

    /// Records one shadowed request (in the ledger only; see [`ParityLedger::count`]). A
    /// route the ledger has not seen starts with `period` as its current one. False when
    /// it counted in the totals only (a straggler of a period neither current nor
    /// previous).
    pub fn record(&self, route: &str, period: &Arc<EvidencePeriod>, result: ShadowResult) -> bool {
        let Ok(mut routes) = self.routes.lock() else {
            return false;
        };
        match routes.get_mut(route) {
            Some(book) => book.add(period, result),
            None => {
                let mut book = RouteBook::new(period);
                let counted = book.add(period, result);
                routes.insert(route.to_owned(), book);
                counted
            }
        }
    }

    /// A table comes into force: each of its routes (`(name, period)`) gets its period as
    /// the current one (the one it had becomes the previous, when another). Routes with a
    /// new upstream are listed from now on even before their first count. Call it before
    /// the table takes requests, so that no request of the new table counts in the old
    /// period. Then sets `period_info` (`strangler_parity_period_info`) to the current and
    /// previous period of every route, and removes the series of periods that fell out,
    /// there and in `comparisons` (`strangler_shadow_comparisons_total`).
    ///
    /// A period that starts afresh starts from zero in `comparisons` too: a route whose
    /// identity comes back (A, then B, then A again) has the same period name as before,
    /// and its old counter series would otherwise carry the first round's counts into a
    /// period that the ledger (and `/admin/parity`) starts empty.
    pub fn install<'r>(
        &self,
        routes: impl IntoIterator<Item = (&'r str, &'r Arc<EvidencePeriod>)>,
        period_info: &IntGaugeVec,
        comparisons: &IntCounterVec,
    ) {
        let mut fresh: Vec<(String, String)> = Vec::new();
        let kept: Vec<(String, Arc<EvidencePeriod>)> = {
            let Ok(mut books) = self.routes.lock() else { return };
            for (name, period) in routes {
                let started = match books.get_mut(name) {
                    Some(book) => book.enter(period),
                    None if period.identity.new.is_some() => {
                        books.insert(name.to_owned(), RouteBook::new(period));
                        true
                    }
                    None => false,
                };
                if started {
                    fresh.push((name.to_owned(), period.id.clone()));
                }
            }
            books
                .iter()
                .flat_map(|(name, book)| book.periods().map(move |period| (name.clone(), period.clone())))
                .collect()
        };
        for (route, period) in &fresh {
            for result in ShadowResult::ALL {
                let _ = comparisons.remove_label_values(&[route, result.as_str(), period]);
            }
        }
        publish_periods(&kept, period_info);
        drop_fallen_out(&kept, comparisons);
    }

    /// Keeps a mismatch found in `period` for `/admin/parity`, the values of secret headers
    /// (see [`crate::parity::redact_headers`], plus `secret`) redacted.
    #[expect(clippy::too_many_arguments, reason = "one mismatch's facts, each from another place")]
    pub fn record_mismatch(
        &self,
        route: &str,
        period: &str,
        method: &str,
        path: &str,
        status: [u16; 2],
        comparison: &Comparison,
        secret: &[http::HeaderName],
        request_id: Option<&str>,
    ) {
        let Ok(mut kept) = self.mismatches.lock() else { return };
        if kept.len() == KEPT_MISMATCHES {
            kept.pop_back();
        }
        kept.push_front(KeptMismatch {
            route: route.to_owned(),
            period: period.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            at: SystemTime::now(),
            status,
            diffs: comparison
                .diffs
                .iter()
                .map(|d| crate::parity::redact_diff(d.clone(), secret))
                .collect(),
            request_id: request_id.map(str::to_owned),
        });
    }

    /// What the ledger holds now (each lock taken once, briefly).
    pub fn evidence(&self) -> ParityEvidence {
        let routes = self
            .routes
            .lock()
            .map(|routes| routes.iter().map(|(name, book)| (name.clone(), book.read())).collect())
            .unwrap_or_default();
        let mismatches = self
            .mismatches
            .lock()
            .map(|kept| kept.iter().cloned().collect())
            .unwrap_or_default();
        ParityEvidence { routes, mismatches }
    }
}

/// Removes the `comparisons` series (labels `route, result, period`) of every period that
/// is not in `kept`: neither current nor previous any more.
fn drop_fallen_out(kept: &[(String, Arc<EvidencePeriod>)], comparisons: &IntCounterVec) {
    crate::metrics::retain_series(comparisons, kept_period(kept));
}

/// Whether a series' `route` and `period` labels name one of `kept`'s periods.
fn kept_period(kept: &[(String, Arc<EvidencePeriod>)]) -> impl Fn(&HashMap<&str, &str>) -> bool {
    let wanted: HashSet<(String, String)> = kept
        .iter()
        .map(|(route, period)| (route.clone(), period.id.clone()))
        .collect();
    move |labels| {
        let label = |name: &str| labels.get(name).copied().unwrap_or_default().to_owned();
        wanted.contains(&(label("route"), label("period")))
    }
}

/// Sets `period_info` (labels `route, period, stage, legacy, new, legacy_url, new_url,
/// rules, forwarding`; an empty `forwarding` for a route forwarded as routed) to 1 for every `(route, period)` of `kept` and removes every other series: the
/// periods that are neither current nor previous any more.
fn publish_periods(kept: &[(String, Arc<EvidencePeriod>)], period_info: &IntGaugeVec) {
    crate::metrics::retain_series(period_info, kept_period(kept));
    for (route, period) in kept {
        let identity = &period.identity;
        let (new, new_url) = identity
            .new
            .as_ref()
            .map_or(("", ""), |side| (side.name.as_str(), side.url.as_str()));
        period_info
            .with_label_values(&[
                route.as_str(),
                period.id.as_str(),
                identity.stage.as_str(),
                identity.legacy.name.as_str(),
                new,
                identity.legacy.url.as_str(),
                new_url,
                identity.rules.as_str(),
                identity.forwarding.as_deref().unwrap_or(""),
            ])
            .set(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EvidenceIdentity, EvidenceSide};

    /// A period of a route whose new upstream listens on `new_port` (`None`: no new one).
    fn period(new_port: Option<u16>) -> Arc<EvidencePeriod> {
        let side = |name: &str, port: u16| EvidenceSide {
            name: name.to_owned(),
            url: format!("http://127.0.0.1:{port}/"),
        };
        let identity = EvidenceIdentity {
            stage: "shadow".to_owned(),
            legacy: side("legacy", 1),
            new: new_port.map(|port| side("next", port)),
            rules: "r".to_owned(),
            forwarding: None,
        };
        EvidencePeriod::carry(None, identity)
    }

    fn info() -> IntGaugeVec {
        IntGaugeVec::new(
            prometheus::Opts::new("info", "test"),
            &crate::metrics::PARITY_PERIOD_INFO_LABELS,
        )
        .unwrap()
    }

    fn counts() -> IntCounterVec {
        IntCounterVec::new(prometheus::Opts::new("counts", "test"), &["route", "result", "period"]).unwrap()
    }

    /// The `(route, period)` of every series of `info`, sorted.
    fn series(info: &IntGaugeVec) -> Vec<(String, String)> {
        let mut series: Vec<(String, String)> = prometheus::core::Collector::collect(info)
            .iter()
            .flat_map(|family| family.get_metric().iter())
            .map(|metric| {
                let label = |name: &str| {
                    let found = metric.get_label().iter().find(|l| l.name() == name);
                    found.map(|l| l.value().to_owned()).unwrap_or_default()
                };
                (label("route"), label("period"))
            })
            .collect();
        series.sort();
        series
    }

    #[test]
    fn ledger_counts_rates_and_window() {
        let ledger = ParityLedger::default();
        let p = period(Some(2));
        for _ in 0..8 {
            ledger.record("r", &p, ShadowResult::Match);
        }
        ledger.record("r", &p, ShadowResult::Noise);
        ledger.record("r", &p, ShadowResult::Mismatch);
        ledger.record("r", &p, ShadowResult::Dropped);
        ledger.record("r", &p, ShadowResult::Skipped);
        let r = ledger.evidence().routes["r"].current.counts;
        assert_eq!(
            (r.matched, r.noise, r.mismatch, r.error, r.dropped, r.skipped),
            (8, 1, 1, 0, 1, 1)
        );
        assert_eq!((r.window_compared, r.window_agreed), (10, 9));
        assert_eq!(r.match_rate(), Some(0.9));
        assert_eq!(r.window_match_rate(), Some(0.9));
        for _ in 0..WINDOW {
            ledger.record("r", &p, ShadowResult::Match);
        }
        let r = ledger.evidence().routes["r"].current.counts;
        assert_eq!(r.window_compared, WINDOW as u64);
        assert_eq!(r.window_match_rate(), Some(1.0));
        assert!(r.match_rate().is_some_and(|rate| rate < 1.0));
        assert_eq!(RouteTally::default().match_rate(), None);
        assert_eq!(RouteTally::default().window_match_rate(), None);
    }

    #[test]
    fn a_new_period_starts_empty_and_the_old_one_becomes_previous() {
        let ledger = ParityLedger::default();
        let info = info();
        let (first, second) = (period(Some(2)), period(Some(3)));
        ledger.install([("r", &first)], &info, &counts());
        for _ in 0..3 {
            ledger.record("r", &first, ShadowResult::Match);
        }
        ledger.install([("r", &second)], &info, &counts());
        let r = &ledger.evidence().routes["r"];
        assert_eq!(r.current.period, second, "the new period is current before any count");
        assert_eq!(r.current.counts, RouteTally::default());
        let previous = r.previous.as_ref().unwrap();
        assert_eq!(
            (previous.period.id.as_str(), previous.counts.matched),
            (first.id.as_str(), 3)
        );
        assert_eq!(r.total.matched, 3);

        // A late answer of a request routed by the first table counts there.
        ledger.record("r", &first, ShadowResult::Mismatch);
        ledger.record("r", &second, ShadowResult::Match);
        let r = &ledger.evidence().routes["r"];
        assert_eq!((r.current.counts.matched, r.current.counts.mismatch), (1, 0));
        let previous = r.previous.as_ref().unwrap().counts;
        assert_eq!((previous.matched, previous.mismatch), (3, 1));
        assert_eq!((r.total.matched, r.total.mismatch), (4, 1));
        assert_eq!(r.total.window_compared, 5);
    }

    #[test]
    fn a_reload_that_keeps_the_period_keeps_the_counts() {
        let ledger = ParityLedger::default();
        let info = info();
        let p = period(Some(2));
        ledger.install([("r", &p)], &info, &counts());
        ledger.record("r", &p, ShadowResult::Match);
        // A later table that keeps the route's identity carries its period (the same `Arc`).
        let same = EvidencePeriod::carry(Some(&p), p.identity.clone());
        ledger.install([("r", &same)], &info, &counts());
        let r = &ledger.evidence().routes["r"];
        assert!(Arc::ptr_eq(&r.current.period, &p), "the period keeps its start");
        assert_eq!(r.current.counts.matched, 1);
        assert!(r.previous.is_none());
    }

    #[test]
    fn a_route_that_comes_back_with_the_same_identity_starts_a_new_period() {
        let ledger = ParityLedger::default();
        let (info, comparisons) = (info(), counts());
        let first = period(Some(2));
        ledger.install([("r", &first)], &info, &comparisons);
        ledger.count(&comparisons, "r", &first, ShadowResult::Match);
        // The route left the table and came back: nothing carried its period, so the
        // table made a new one, with the same name and a later start.
        ledger.install([], &info, &comparisons);
        let back = EvidencePeriod::carry(None, first.identity.clone());
        assert_eq!(back.id, first.id);
        ledger.install([("r", &back)], &info, &comparisons);
        let r = &ledger.evidence().routes["r"];
        assert!(Arc::ptr_eq(&r.current.period, &back), "the new period is current");
        assert_eq!(r.current.counts.matched, 0);
        let previous = r.previous.as_ref().unwrap();
        assert!(Arc::ptr_eq(&previous.period, &first));
        assert_eq!(previous.counts.matched, 1);
        // A late answer routed by the old table counts in the old period.
        ledger.record("r", &first, ShadowResult::Mismatch);
        ledger.record("r", &back, ShadowResult::Match);
        let r = &ledger.evidence().routes["r"];
        assert_eq!((r.current.counts.matched, r.current.counts.mismatch), (1, 0));
        assert_eq!(r.previous.as_ref().map(|p| p.counts.mismatch), Some(1));
    }

    #[test]
    fn stragglers_of_a_period_two_reloads_old_count_in_the_totals_only() {
        let ledger = ParityLedger::default();
        let info = info();
        let periods = [period(Some(2)), period(Some(3)), period(Some(4))];
        for p in &periods {
            ledger.install([("r", p)], &info, &counts());
        }
        ledger.record("r", &periods[0], ShadowResult::Error);
        let r = &ledger.evidence().routes["r"];
        assert_eq!(r.current.period, periods[2]);
        assert_eq!(r.previous.as_ref().map(|p| p.period.clone()), Some(periods[1].clone()));
        assert_eq!(r.current.counts.error + r.previous.as_ref().unwrap().counts.error, 0);
        assert_eq!(r.total.error, 1);
    }

    #[test]
    fn routes_with_a_new_upstream_are_listed_before_their_first_count() {
        let ledger = ParityLedger::default();
        let info = info();
        let (shadowed, plain) = (period(Some(2)), period(None));
        ledger.install([("shadowed", &shadowed), ("plain", &plain)], &info, &counts());
        let evidence = ledger.evidence();
        let names: Vec<&str> = evidence.routes.keys().map(String::as_str).collect();
        assert_eq!(names, ["shadowed"]);
        assert_eq!(evidence.routes["shadowed"].current.counts, RouteTally::default());
        // A route that loses its new upstream keeps its evidence, in a new period.
        ledger.install([("shadowed", &plain)], &info, &counts());
        let r = &ledger.evidence().routes["shadowed"];
        assert_eq!(
            (r.current.period.identity.new.as_ref(), r.previous.is_some()),
            (None, true)
        );
    }

    #[test]
    fn the_info_series_are_the_current_and_previous_periods() {
        let ledger = ParityLedger::default();
        let info = info();
        let periods = [period(Some(2)), period(Some(3)), period(Some(4))];
        let pair = |route: &str, p: &Arc<EvidencePeriod>| (route.to_owned(), p.id.clone());
        ledger.install([("r", &periods[0]), ("s", &periods[0])], &info, &counts());
        assert_eq!(series(&info), [pair("r", &periods[0]), pair("s", &periods[0])]);
        ledger.install([("r", &periods[1]), ("s", &periods[0])], &info, &counts());
        ledger.install([("r", &periods[2]), ("s", &periods[0])], &info, &counts());
        let mut expected = vec![pair("r", &periods[1]), pair("r", &periods[2]), pair("s", &periods[0])];
        expected.sort();
        assert_eq!(series(&info), expected, "the oldest period of r is gone");
        let labels = [
            "r",
            periods[2].id.as_str(),
            "shadow",
            "legacy",
            "next",
            "http://127.0.0.1:1/",
            "http://127.0.0.1:4/",
            "r",
            "",
        ];
        assert_eq!(info.with_label_values(&labels).get(), 1);
    }

    #[test]
    fn the_counter_follows_the_ledger_s_periods() {
        let ledger = ParityLedger::default();
        let (info, comparisons) = (info(), counts());
        let (a, b, c) = (period(Some(2)), period(Some(3)), period(Some(4)));
        let value = |p: &Arc<EvidencePeriod>| comparisons.with_label_values(&["r", "match", p.id.as_str()]).get();
        ledger.install([("r", &a)], &info, &comparisons);
        for _ in 0..5 {
            ledger.count(&comparisons, "r", &a, ShadowResult::Match);
        }
        ledger.install([("r", &b)], &info, &comparisons);
        ledger.count(&comparisons, "r", &b, ShadowResult::Match);
        assert_eq!((value(&a), value(&b)), (5, 1), "the previous period keeps its counts");

        // A comes back: the ledger starts it empty, and so does its counter series.
        ledger.install([("r", &period(Some(2)))], &info, &comparisons);
        assert_eq!(ledger.evidence().routes["r"].current.counts.matched, 0);
        assert_eq!(value(&a), 0, "a period that starts afresh starts from zero");

        // C: A is previous, B fell out; its series goes and a straggler does not bring it back.
        ledger.install([("r", &c)], &info, &comparisons);
        ledger.count(&comparisons, "r", &b, ShadowResult::Match);
        let periods: HashSet<String> = prometheus::core::Collector::collect(&comparisons)
            .iter()
            .flat_map(|family| family.get_metric().iter())
            .filter_map(|metric| metric.get_label().iter().find(|l| l.name() == "period"))
            .map(|label| label.value().to_owned())
            .collect();
        assert_eq!(periods, HashSet::from([a.id.clone()]), "only kept periods have series");
        assert_eq!(
            ledger.evidence().routes["r"].total.matched,
            7,
            "the straggler is in the totals"
        );
    }

    #[test]
    fn count_labels_the_metric_with_the_period() {
        let ledger = ParityLedger::default();
        let comparisons =
            IntCounterVec::new(prometheus::Opts::new("c", "test"), &["route", "result", "period"]).unwrap();
        let p = period(Some(2));
        ledger.count(&comparisons, "r", &p, ShadowResult::Noise);
        assert_eq!(comparisons.with_label_values(&["r", "noise", &p.id]).get(), 1);
        assert_eq!(ledger.evidence().routes["r"].current.counts.noise, 1);
    }

    #[test]
    fn mismatches_are_kept_newest_first_with_secrets_redacted() {
        let ledger = ParityLedger::default();
        let diff = |pointer: &str| Diff {
            pointer: pointer.to_owned(),
            legacy: "a".to_owned(),
            new: "b".to_owned(),
        };
        let comparison = Comparison {
            outcome: Outcome::Mismatch,
            diffs: vec![diff("header:authorization"), diff("header:x-api-key"), diff("/id")],
            truncated: false,
            noisy: Vec::new(),
        };
        let secret = [http::HeaderName::from_static("x-api-key")];
        for n in 0..=KEPT_MISMATCHES {
            ledger.record_mismatch(
                "r",
                "p1",
                "GET",
                &format!("/{n}"),
                [200, 500],
                &comparison,
                &secret,
                None,
            );
        }
        let kept = ledger.evidence().mismatches;
        assert_eq!(kept.len(), KEPT_MISMATCHES);
        assert_eq!(kept[0].path, format!("/{KEPT_MISMATCHES}"), "newest first");
        assert_eq!(kept[KEPT_MISMATCHES - 1].path, "/1", "the oldest dropped");
        assert_eq!(
            (kept[0].method.as_str(), kept[0].status, kept[0].period.as_str()),
            ("GET", [200, 500], "p1")
        );
        let values: Vec<(&str, &str)> = kept[0]
            .diffs
            .iter()
            .map(|d| (d.legacy.as_str(), d.new.as_str()))
            .collect();
        let redacted = crate::parity::REDACTED;
        assert_eq!(values, [(redacted, redacted), (redacted, redacted), ("a", "b")]);
    }
}

//! The live parity evidence of shadowed routes: what happened to every mirrored (or not
//! mirrored) request, per route, since the process started.
//!
//! Every outcome is counted twice, in one call ([`ParityLedger::count`]): in the ledger
//! (served as `GET /admin/parity`) and in `strangler_shadow_comparisons_total{route,result}`.
//! The ledger hands out plain data ([`ParityLedger::evidence`]); the admin API owns the
//! document it becomes, so this module knows nothing of JSON.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::parity::{Comparison, Diff, Outcome};
use prometheus::IntCounterVec;

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

    /// From a comparison outcome.
    pub fn from_outcome(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Match => ShadowResult::Match,
            Outcome::Noise => ShadowResult::Noise,
            Outcome::Mismatch => ShadowResult::Mismatch,
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
}

/// What the ledger holds at one moment: every route's counts, by name, and the kept
/// mismatches, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParityEvidence {
    /// Counts by route name.
    pub routes: BTreeMap<String, RouteTally>,
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
    fn read(&self) -> RouteTally {
        RouteTally {
            window_compared: self.window.len() as u64,
            window_agreed: self.window.iter().filter(|agreed| **agreed).count() as u64,
            ..self.counts
        }
    }
}

/// Parity evidence since the process started, per route name (it survives reloads, so a
/// route keeps its evidence while its stage changes).
#[derive(Debug, Default)]
pub struct ParityLedger {
    routes: Mutex<BTreeMap<String, Tally>>,
    mismatches: Mutex<VecDeque<KeptMismatch>>,
}

impl ParityLedger {
    /// Counts one shadowed request's outcome: in the ledger and in `comparisons`
    /// (`strangler_shadow_comparisons_total{route,result}`).
    pub fn count(&self, comparisons: &IntCounterVec, route: &str, result: ShadowResult) {
        self.record(route, result);
        comparisons.with_label_values(&[route, result.as_str()]).inc();
    }

    /// Records one shadowed request (in the ledger only; see [`ParityLedger::count`]).
    pub fn record(&self, route: &str, result: ShadowResult) {
        let Ok(mut routes) = self.routes.lock() else { return };
        let tally = routes.entry(route.to_owned()).or_default();
        let counts = &mut tally.counts;
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
            if tally.window.len() == WINDOW {
                tally.window.pop_front();
            }
            tally.window.push_back(agreed);
        }
    }

    /// Keeps a mismatch for `/admin/parity`, the values of secret headers (see
    /// [`crate::parity::redact_headers`], plus `secret`) redacted.
    pub fn record_mismatch(
        &self,
        route: &str,
        method: &str,
        path: &str,
        status: [u16; 2],
        comparison: &Comparison,
        secret: &[http::HeaderName],
    ) {
        let Ok(mut kept) = self.mismatches.lock() else { return };
        if kept.len() == KEPT_MISMATCHES {
            kept.pop_back();
        }
        kept.push_front(KeptMismatch {
            route: route.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            at: SystemTime::now(),
            status,
            diffs: comparison
                .diffs
                .iter()
                .map(|d| crate::parity::redact_diff(d.clone(), secret))
                .collect(),
        });
    }

    /// What the ledger holds now (each lock taken once, briefly).
    pub fn evidence(&self) -> ParityEvidence {
        let routes = self
            .routes
            .lock()
            .map(|routes| {
                routes
                    .iter()
                    .map(|(name, tally)| (name.clone(), tally.read()))
                    .collect()
            })
            .unwrap_or_default();
        let mismatches = self
            .mismatches
            .lock()
            .map(|kept| kept.iter().cloned().collect())
            .unwrap_or_default();
        ParityEvidence { routes, mismatches }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_counts_rates_and_window() {
        let ledger = ParityLedger::default();
        for _ in 0..8 {
            ledger.record("r", ShadowResult::Match);
        }
        ledger.record("r", ShadowResult::Noise);
        ledger.record("r", ShadowResult::Mismatch);
        ledger.record("r", ShadowResult::Dropped);
        ledger.record("r", ShadowResult::Skipped);
        let r = ledger.evidence().routes["r"];
        assert_eq!(
            (r.matched, r.noise, r.mismatch, r.error, r.dropped, r.skipped),
            (8, 1, 1, 0, 1, 1)
        );
        assert_eq!((r.window_compared, r.window_agreed), (10, 9));
        assert_eq!(r.match_rate(), Some(0.9));
        assert_eq!(r.window_match_rate(), Some(0.9));
        for _ in 0..WINDOW {
            ledger.record("r", ShadowResult::Match);
        }
        let r = ledger.evidence().routes["r"];
        assert_eq!(r.window_compared, WINDOW as u64);
        assert_eq!(r.window_match_rate(), Some(1.0));
        assert!(r.match_rate().is_some_and(|rate| rate < 1.0));
        assert_eq!(RouteTally::default().match_rate(), None);
        assert_eq!(RouteTally::default().window_match_rate(), None);
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
            ledger.record_mismatch("r", "GET", &format!("/{n}"), [200, 500], &comparison, &secret);
        }
        let kept = ledger.evidence().mismatches;
        assert_eq!(kept.len(), KEPT_MISMATCHES);
        assert_eq!(kept[0].path, format!("/{KEPT_MISMATCHES}"), "newest first");
        assert_eq!(kept[KEPT_MISMATCHES - 1].path, "/1", "the oldest dropped");
        assert_eq!((kept[0].method.as_str(), kept[0].status), ("GET", [200, 500]));
        let values: Vec<(&str, &str)> = kept[0]
            .diffs
            .iter()
            .map(|d| (d.legacy.as_str(), d.new.as_str()))
            .collect();
        let redacted = crate::parity::REDACTED;
        assert_eq!(values, [(redacted, redacted), (redacted, redacted), ("a", "b")]);
    }
}

//! The live parity evidence of shadowed routes: what happened to every mirrored (or not
//! mirrored) request, per route, since the process started.
//!
//! Every outcome is counted twice, in one call ([`ParityLedger::count`]): in the ledger
//! (served as `GET /admin/parity`) and in `strangler_shadow_comparisons_total{route,result}`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use prometheus::IntCounterVec;
use serde_json::json;

use crate::parity::{Comparison, Outcome};

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

#[derive(Debug, Default)]
struct Tally {
    matched: u64,
    noise: u64,
    mismatch: u64,
    error: u64,
    dropped: u64,
    skipped: u64,
    /// Recent compared requests: true when they agreed (match or noise).
    window: VecDeque<bool>,
}

#[derive(Debug)]
struct MismatchRecord {
    route: String,
    method: String,
    path: String,
    at: SystemTime,
    status: [u16; 2],
    diffs: Vec<(String, String, String)>,
}

/// Parity evidence since the process started, per route name (it survives reloads, so a
/// route keeps its evidence while its stage changes).
#[derive(Debug, Default)]
pub struct ParityLedger {
    routes: Mutex<BTreeMap<String, Tally>>,
    mismatches: Mutex<VecDeque<MismatchRecord>>,
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
        let agreed = match result {
            ShadowResult::Match => {
                tally.matched += 1;
                Some(true)
            }
            ShadowResult::Noise => {
                tally.noise += 1;
                Some(true)
            }
            ShadowResult::Mismatch => {
                tally.mismatch += 1;
                Some(false)
            }
            ShadowResult::Error => {
                tally.error += 1;
                Some(false)
            }
            ShadowResult::Dropped => {
                tally.dropped += 1;
                None
            }
            ShadowResult::Skipped => {
                tally.skipped += 1;
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
        kept.push_front(MismatchRecord {
            route: route.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            at: SystemTime::now(),
            status,
            diffs: comparison
                .diffs
                .iter()
                .map(|d| crate::parity::redact_diff(d.clone(), secret))
                .map(|d| (d.pointer, d.legacy, d.new))
                .collect(),
        });
    }

    /// The `GET /admin/parity` document; `stage_of` names each route's current stage.
    pub fn to_json(&self, stage_of: impl Fn(&str) -> Option<&'static str>) -> serde_json::Value {
        let routes: serde_json::Map<String, serde_json::Value> = self
            .routes
            .lock()
            .map(|routes| {
                routes
                    .iter()
                    .map(|(name, t)| {
                        let compared = t.matched + t.noise + t.mismatch + t.error;
                        let rate = |agreed: u64, total: u64| (total > 0).then(|| agreed as f64 / total as f64);
                        let window_agreed = t.window.iter().filter(|ok| **ok).count() as u64;
                        (
                            name.clone(),
                            json!({
                                "stage": stage_of(name),
                                "match": t.matched,
                                "noise": t.noise,
                                "mismatch": t.mismatch,
                                "error": t.error,
                                "dropped": t.dropped,
                                "skipped": t.skipped,
                                "match_rate": rate(t.matched + t.noise, compared),
                                "window_match_rate": rate(window_agreed, t.window.len() as u64),
                            }),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mismatches: Vec<serde_json::Value> = self
            .mismatches
            .lock()
            .map(|kept| {
                kept.iter()
                    .map(|m| {
                        json!({
                            "route": m.route,
                            "method": m.method,
                            "path": m.path,
                            "at": humantime::format_rfc3339_seconds(m.at).to_string(),
                            "status": m.status,
                            "diffs": m.diffs.iter().map(|(pointer, legacy, new)| json!({
                                "pointer": pointer, "legacy": legacy, "new": new
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({ "routes": routes, "mismatches": mismatches })
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
        let json = ledger.to_json(|_| Some("shadow"));
        let r = &json["routes"]["r"];
        assert_eq!(r["match"], 8);
        assert_eq!(r["noise"], 1);
        assert_eq!(r["mismatch"], 1);
        assert_eq!(r["dropped"], 1);
        assert_eq!(r["skipped"], 1);
        assert_eq!(r["stage"], "shadow");
        assert_eq!(r["match_rate"], 0.9);
        assert_eq!(r["window_match_rate"], 0.9);
        for _ in 0..WINDOW {
            ledger.record("r", ShadowResult::Match);
        }
        let json = ledger.to_json(|_| None);
        assert_eq!(json["routes"]["r"]["window_match_rate"], 1.0);
    }
}

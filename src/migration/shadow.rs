//! Shadow traffic: the client gets the legacy answer; a copy of the request goes to the
//! new upstream in the background, and the two answers are compared.
//!
//! The mirror must never delay, slow or fail the client's response. It runs in its own
//! task after the legacy request has been sent; the legacy body streams to the client as
//! usual while a bounded copy of it is captured ([`Capture`]); the comparison waits for
//! both sides off the request path. Every bound is per route: a sample share, a cap on
//! mirrors in flight (beyond it a mirror is dropped and counted), a body size cap
//! (larger requests are skipped and counted), a timeout, and only safe methods unless the
//! route opts in. Outcomes go to [`ParityLedger`] (served as `GET /admin/parity`) and to
//! `strangler_shadow_comparisons_total{route,result}`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use serde_json::json;
use tokio::sync::oneshot;

use crate::parity::{Captured, Comparison, Outcome};

/// How many compared requests the window match rate covers, per route.
const WINDOW: usize = 1_000;
/// How many mismatches `/admin/parity` keeps (newest first).
const KEPT_MISMATCHES: usize = 50;
/// The largest answer captured for a comparison, per side.
pub const CAPTURE_LIMIT: usize = 1024 * 1024;

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
    /// Records one shadowed request.
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

/// A bounded copy of a response body as it streams to the client; delivered when the body
/// is complete, or `None` if it was abandoned or grew past [`CAPTURE_LIMIT`].
#[derive(Debug)]
pub struct Capture {
    status: u16,
    headers: HeaderMap,
    body: BytesMut,
    overflowed: bool,
    done: Option<oneshot::Sender<Option<Captured>>>,
}

impl Capture {
    /// Starts capturing a response with this status and headers.
    pub fn new(status: u16, headers: HeaderMap) -> (Self, oneshot::Receiver<Option<Captured>>) {
        let (done, receiver) = oneshot::channel();
        let capture = Self {
            status,
            headers,
            body: BytesMut::new(),
            overflowed: false,
            done: Some(done),
        };
        (capture, receiver)
    }

    /// Copies a chunk (up to the limit).
    pub fn data(&mut self, chunk: &Bytes) {
        if self.overflowed {
            return;
        }
        if self.body.len() + chunk.len() > CAPTURE_LIMIT {
            self.overflowed = true;
            self.body = BytesMut::new();
        } else {
            self.body.extend_from_slice(chunk);
        }
    }

    /// The body is complete: deliver the copy.
    pub fn complete(&mut self) {
        if let Some(done) = self.done.take() {
            let captured = (!self.overflowed).then(|| Captured {
                status: self.status,
                headers: std::mem::take(&mut self.headers),
                body: std::mem::take(&mut self.body).freeze(),
            });
            let _ = done.send(captured);
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(None);
        }
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

    #[test]
    fn capture_delivers_or_gives_up() {
        let (mut capture, mut receiver) = Capture::new(200, HeaderMap::new());
        capture.data(&Bytes::from_static(b"hello "));
        capture.data(&Bytes::from_static(b"world"));
        capture.complete();
        let captured = receiver.try_recv().unwrap().unwrap();
        assert_eq!(captured.body, Bytes::from_static(b"hello world"));

        let (mut capture, mut receiver) = Capture::new(200, HeaderMap::new());
        capture.data(&Bytes::from(vec![0u8; CAPTURE_LIMIT + 1]));
        capture.complete();
        assert!(
            receiver.try_recv().unwrap().is_none(),
            "an overflowing body is not compared"
        );

        let (capture, mut receiver) = Capture::new(200, HeaderMap::new());
        drop(capture);
        assert!(
            receiver.try_recv().unwrap().is_none(),
            "an abandoned body is not compared"
        );
    }
}

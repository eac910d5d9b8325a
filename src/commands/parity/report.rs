//! What `strangler parity` reports: a [`Run`] (one [`Record`] per corpus request) rendered
//! as a per-route table with every mismatch and error for people, as JUnit XML for CI, and
//! as JSON in the shape of the admin API's `/admin/parity` (which `strangler flip
//! --parity-report` reads, through [`crate::admin::api::ParityReport`]).
//!
//! Everything here is pure. Secrets are removed before a record is built (see
//! [`crate::commands::parity::replay`]): nothing in a [`Record`] needs redacting again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::admin::api::{Mismatch, MismatchDiff, RouteParity};
use crate::admin::documents::evidence;
use crate::config::EvidenceIdentity;
use crate::parity::{Diff, Outcome};

/// The route name of requests that match no route (as in the proxy's metrics).
pub const DEFAULT_ROUTE: &str = "default";

/// How many skipped requests of one reason the terminal report lists.
pub const SKIPS_LISTED: usize = 10;

/// What happened to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayVerdict {
    /// Both sides answered and were compared: match, noise or mismatch.
    Compared {
        /// The verdict of [`crate::parity::compare()`].
        outcome: Outcome,
        /// The legacy and the new status.
        status: [u16; 2],
        /// The real differences (none for match and noise).
        diffs: Vec<Diff>,
        /// More differences existed than `diffs` holds.
        truncated: bool,
    },
    /// Nothing to compare: a side failed, or the proxy would refuse the request. Why.
    Error(String),
    /// Not replayed on purpose (no new upstream). Why.
    Skipped(String),
}

/// One corpus request and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Line (JSON Lines) or entry (HAR) of the corpus, from 1.
    pub line: usize,
    /// The route it matched, or [`DEFAULT_ROUTE`].
    pub route: String,
    /// The method.
    pub method: String,
    /// The path and query as sent (normalised like the proxy does), or as written when
    /// the proxy would refuse it.
    pub path: String,
    /// The request headers sent, secrets redacted.
    pub headers: Vec<(String, String)>,
    /// What happened.
    pub verdict: ReplayVerdict,
    /// The divergence the request was judged against (its corpus line's `expect`, else its
    /// route's `compare.divergences`), and how the answers fell short of it.
    pub expect: Option<Expectation>,
    /// When the comparison was made.
    pub at: SystemTime,
    /// How long the exchanges took.
    pub elapsed: Duration,
    /// The corpus's `name` for it, if any (see [`Record::name`]).
    pub case_name: Option<String>,
}

/// A divergence as a record carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Why the difference is deliberate.
    pub reason: String,
    /// Each listed field that is not as stated, one line each.
    pub unmet: Vec<String>,
}

impl Record {
    /// The outcome, or `None` for a skipped request.
    pub fn outcome(&self) -> Option<Outcome> {
        match &self.verdict {
            ReplayVerdict::Compared { outcome, .. } => Some(*outcome),
            ReplayVerdict::Error(_) => Some(Outcome::Error),
            ReplayVerdict::Skipped(_) => None,
        }
    }

    /// Whether this request fails the run (a mismatch, a resolved divergence or an error).
    pub fn failed(&self) -> bool {
        matches!(
            self.outcome(),
            Some(Outcome::Mismatch | Outcome::Resolved | Outcome::Error)
        )
    }

    /// Its name in reports (a JUnit case's name): the corpus's `name`, or
    /// `METHOD path (line N)`.
    pub fn name(&self) -> String {
        crate::parity::visible(&match &self.case_name {
            Some(name) => name.clone(),
            None => crate::commands::parity::corpus::default_name(&self.method, &self.path, self.line),
        })
    }

    /// How the terminal heads its failure: `METHOD path`, after its name when the corpus
    /// gives one (the corpus line follows the heading).
    pub fn heading(&self) -> String {
        crate::parity::visible(&match &self.case_name {
            Some(name) => format!("{name}: {} {}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        })
    }

    /// What went wrong, several lines, for the terminal and for JUnit: the statuses and
    /// every difference, or the error; then the request headers.
    pub fn detail(&self) -> String {
        let mut text = String::new();
        match &self.verdict {
            ReplayVerdict::Compared {
                status,
                diffs,
                truncated,
                ..
            } => {
                let _ = writeln!(text, "status: legacy {} new {}", status[0], status[1]);
                // A status difference is the line above already.
                for diff in diffs.iter().filter(|diff| diff.pointer != "status") {
                    let pointer = if diff.pointer.is_empty() {
                        "(whole body)"
                    } else {
                        &diff.pointer
                    };
                    let _ = writeln!(text, "{pointer}: legacy {} new {}", diff.legacy, diff.new);
                }
                if *truncated {
                    let _ = writeln!(text, "(more differences not shown)");
                }
                if let Some(expect) = &self.expect {
                    let _ = writeln!(text, "divergence: {}", expect.reason);
                    for unmet in &expect.unmet {
                        let _ = writeln!(text, "not as stated: {unmet}");
                    }
                }
            }
            ReplayVerdict::Error(why) => {
                let _ = writeln!(text, "error: {why}");
            }
            ReplayVerdict::Skipped(why) => {
                let _ = writeln!(text, "skipped: {why}");
            }
        }
        if !self.headers.is_empty() {
            let shown: Vec<String> = self.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(text, "request headers: {}", shown.join(", "));
        }
        text
    }
}

/// A route of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedRoute {
    /// Its name ([`DEFAULT_ROUTE`] for requests no route matched).
    pub name: String,
    /// Its stage in the table (`None` for the default route).
    pub stage: Option<String>,
    /// What its comparisons were made against: the route of the table the run used, its
    /// upstreams replaced by `--legacy` / `--new` when given (`None` for the default
    /// route). The report's `evidence`, which `flip` matches like a live one.
    pub identity: Option<EvidenceIdentity>,
}

/// A whole replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The corpus, as named on the command line.
    pub corpus: String,
    /// The reported routes, in the table's order, then [`DEFAULT_ROUTE`]: every route a
    /// replayed request matched, and every route named with `--route`.
    pub routes: Vec<ReportedRoute>,
    /// The replayed requests, in corpus order.
    pub records: Vec<Record>,
    /// Requests of routes not named with `--route`: not replayed, not reported.
    pub outside: usize,
    /// When the run started: the `since` of its evidence.
    pub started: SystemTime,
}

/// `strangler parity --json`: the shape of `GET /admin/parity`, plus the errors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonReport {
    /// Counts by route name.
    pub routes: BTreeMap<String, RouteParity>,
    /// Every mismatch, in corpus order.
    pub mismatches: Vec<Mismatch>,
    /// Every request that could not be compared, in corpus order.
    pub errors: Vec<JsonError>,
    /// Every request that differed as its stated divergence says, in corpus order.
    #[serde(default)]
    pub expected: Vec<JsonDivergence>,
    /// Every request whose stated divergence no longer occurs, in corpus order.
    #[serde(default)]
    pub resolved: Vec<JsonDivergence>,
    /// Every replayed request, in corpus order: where it is in the corpus, its name and
    /// its outcome.
    #[serde(default)]
    pub requests: Vec<JsonRequest>,
}

/// One request of the corpus, in [`JsonReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonRequest {
    /// Line (JSON Lines) or entry (HAR) of the corpus, from 1.
    pub line: usize,
    /// Its name: the corpus's `name`, or `METHOD path (line N)`.
    pub name: String,
    /// The route.
    pub route: String,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// `match`, `noise`, `expected`, `mismatch`, `resolved`, `error`, or `skipped`.
    pub outcome: String,
}

/// A request judged against a divergence, in [`JsonReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonDivergence {
    /// The route.
    pub route: String,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The corpus line (JSON Lines) or entry (HAR), from 1.
    pub line: usize,
    /// When, RFC 3339.
    pub at: String,
    /// Why the difference is deliberate.
    pub reason: String,
    /// Each listed field that is not as stated (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<String>,
}

/// One request that could not be compared, in [`JsonReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonError {
    /// The route.
    pub route: String,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// When, RFC 3339.
    pub at: String,
    /// Why.
    pub error: String,
    /// Line (JSON Lines) or entry (HAR) of the corpus, from 1.
    #[serde(default)]
    pub line: usize,
    /// The request's name.
    #[serde(default)]
    pub name: String,
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

impl Run {
    /// Whether the run fails: a request mismatched, resolved or failed, or none was compared.
    pub fn failed(&self) -> bool {
        self.records.iter().any(Record::failed) || self.total().compared() == 0
    }

    /// The counts of one route, in the admin API's shape. The match rate covers the whole
    /// run, which is also the window.
    pub fn counts(&self, route: &ReportedRoute) -> RouteParity {
        let mut counts = RouteParity {
            stage: route.stage.clone(),
            requests: Some(0),
            evidence: route.identity.as_ref().map(|identity| evidence(identity, self.started)),
            ..RouteParity::default()
        };
        let mut requests = 0;
        for record in self.records.iter().filter(|r| r.route == route.name) {
            requests += 1;
            match record.outcome() {
                Some(Outcome::Match) => counts.matched += 1,
                Some(Outcome::Noise) => counts.noise += 1,
                Some(Outcome::Mismatch) => counts.mismatch += 1,
                Some(Outcome::Error) => counts.error += 1,
                Some(Outcome::Expected) => counts.expected += 1,
                Some(Outcome::Resolved) => counts.resolved += 1,
                None => counts.skipped += 1,
            }
        }
        counts.requests = Some(requests);
        counts.match_rate = counts.match_rate();
        counts.window_match_rate = counts.match_rate;
        counts
    }

    /// The counts of every route, summed.
    pub fn total(&self) -> RouteParity {
        let mut total = RouteParity::default();
        for route in &self.routes {
            let c = self.counts(route);
            total.matched += c.matched;
            total.noise += c.noise;
            total.mismatch += c.mismatch;
            total.error += c.error;
            total.expected += c.expected;
            total.resolved += c.resolved;
            total.skipped += c.skipped;
        }
        total.requests = Some(self.records.len() as u64);
        total
    }

    /// The `--json` report.
    pub fn json(&self) -> JsonReport {
        let routes = self
            .routes
            .iter()
            .map(|route| (route.name.clone(), self.counts(route)))
            .collect();
        let period_of = |route: &str| {
            let reported = self.routes.iter().find(|r| r.name == route);
            reported.and_then(|r| r.identity.as_ref()).map(EvidenceIdentity::period)
        };
        let mut mismatches = Vec::new();
        let mut errors = Vec::new();
        let (mut expected, mut resolved) = (Vec::new(), Vec::new());
        for record in &self.records {
            if let Some(expect) = &record.expect {
                let listed = JsonDivergence {
                    route: record.route.clone(),
                    method: record.method.clone(),
                    path: record.path.clone(),
                    line: record.line,
                    at: rfc3339(record.at),
                    reason: expect.reason.clone(),
                    unmet: expect.unmet.clone(),
                };
                match record.outcome() {
                    Some(Outcome::Expected) => expected.push(listed),
                    Some(Outcome::Resolved) => resolved.push(listed),
                    _ => {}
                }
            }
            match &record.verdict {
                ReplayVerdict::Compared {
                    outcome: Outcome::Mismatch,
                    status,
                    diffs,
                    truncated,
                } => mismatches.push(Mismatch {
                    route: record.route.clone(),
                    method: record.method.clone(),
                    path: record.path.clone(),
                    at: rfc3339(record.at),
                    status: *status,
                    diffs: diffs
                        .iter()
                        .map(|d| MismatchDiff {
                            pointer: d.pointer.clone(),
                            legacy: d.legacy.clone(),
                            new: d.new.clone(),
                        })
                        .collect(),
                    truncated: *truncated,
                    period: period_of(&record.route),
                    request_id: None,
                }),
                ReplayVerdict::Error(why) => errors.push(JsonError {
                    route: record.route.clone(),
                    method: record.method.clone(),
                    path: record.path.clone(),
                    at: rfc3339(record.at),
                    error: why.clone(),
                    line: record.line,
                    name: record.name(),
                }),
                ReplayVerdict::Compared { .. } | ReplayVerdict::Skipped(_) => {}
            }
        }
        let requests = self
            .records
            .iter()
            .map(|record| JsonRequest {
                line: record.line,
                name: record.name(),
                route: record.route.clone(),
                method: record.method.clone(),
                path: record.path.clone(),
                outcome: record.outcome().map_or("skipped", Outcome::as_str).to_owned(),
            })
            .collect();
        JsonReport {
            routes,
            mismatches,
            errors,
            expected,
            resolved,
            requests,
        }
    }

    /// The table, every mismatch and error, and a closing line.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let header = [
            "route",
            "stage",
            "requests",
            "match",
            "expected",
            "noise",
            "mismatch",
            "resolved",
            "error",
            "skipped",
            "match rate",
        ];
        let rows: Vec<[String; 11]> = self
            .routes
            .iter()
            .map(|route| {
                let c = self.counts(route);
                [
                    route.name.clone(),
                    route.stage.clone().unwrap_or_else(|| "-".to_owned()),
                    c.requests.unwrap_or_default().to_string(),
                    c.matched.to_string(),
                    c.expected.to_string(),
                    c.noise.to_string(),
                    c.mismatch.to_string(),
                    c.resolved.to_string(),
                    c.error.to_string(),
                    c.skipped.to_string(),
                    c.match_rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.4}")),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|row| row[i].chars().count())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[&str]| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let width = widths[i];
                if i > 0 {
                    text.push_str("  ");
                }
                // Names left, numbers right.
                if i < 2 {
                    let _ = write!(text, "{cell:<width$}");
                } else {
                    let _ = write!(text, "{cell:>width$}");
                }
            }
            text.trim_end().to_owned()
        };
        writeln!(out, "{}", line(&header))?;
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            writeln!(out, "{}", line(&cells))?;
        }
        if self.routes.is_empty() {
            writeln!(out, "(no routes)")?;
        }
        if self.outside > 0 {
            writeln!(
                out,
                "{} request(s) of other routes than those given with --route: not replayed",
                self.outside
            )?;
        }
        self.write_skips(out)?;
        self.write_expected(out)?;
        for record in self.records.iter().filter(|r| r.failed()) {
            let kind = match record.outcome() {
                Some(Outcome::Mismatch) => "MISMATCH",
                Some(Outcome::Resolved) => "RESOLVED",
                _ => "ERROR",
            };
            writeln!(out)?;
            writeln!(
                out,
                "{kind} {}  (route {}, {}:{})",
                record.heading(),
                record.route,
                self.corpus,
                record.line
            )?;
            for detail in record.detail().lines() {
                writeln!(out, "  {detail}")?;
            }
        }
        let t = self.total();
        writeln!(out)?;
        writeln!(
            out,
            "parity: {} request(s) from {}: {} match, {} expected, {} noise, {} mismatch, {} resolved, {} skipped, {} error: {}",
            self.records.len(),
            self.corpus,
            t.matched,
            t.expected,
            t.noise,
            t.mismatch,
            t.resolved,
            t.skipped,
            t.error,
            if self.failed() { "FAILED" } else { "ok" }
        )?;
        if t.compared() == 0 {
            writeln!(
                out,
                "no request was compared (every one was skipped: see SKIPPED above): a replay of nothing proves nothing"
            )?;
        }
        Ok(())
    }

    /// One line per request that differed as its divergence states, with the reason.
    fn write_expected(&self, out: &mut dyn Write) -> io::Result<()> {
        let expected: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.outcome() == Some(Outcome::Expected))
            .collect();
        if !expected.is_empty() {
            writeln!(out)?;
        }
        for record in expected {
            let reason = record.expect.as_ref().map_or("", |e| e.reason.as_str());
            writeln!(
                out,
                "EXPECTED {}  (route {}, {}:{}): {reason}",
                record.heading(),
                record.route,
                self.corpus,
                record.line
            )?;
        }
        Ok(())
    }

    /// The skipped requests, grouped by reason in order of first appearance: a count and
    /// the reason, then the requests (the first [`SKIPS_LISTED`] of each reason).
    fn write_skips(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut reasons: Vec<(&str, Vec<&Record>)> = Vec::new();
        for record in &self.records {
            if let ReplayVerdict::Skipped(why) = &record.verdict {
                match reasons.iter_mut().find(|(reason, _)| reason == why) {
                    Some((_, records)) => records.push(record),
                    None => reasons.push((why, vec![record])),
                }
            }
        }
        for (why, records) in reasons {
            writeln!(out)?;
            writeln!(out, "SKIPPED {} request(s): {why}", records.len())?;
            for record in records.iter().take(SKIPS_LISTED) {
                writeln!(
                    out,
                    "  {}  (route {}, {}:{})",
                    record.heading(),
                    record.route,
                    self.corpus,
                    record.line
                )?;
            }
            if records.len() > SKIPS_LISTED {
                writeln!(out, "  … and {} more", records.len() - SKIPS_LISTED)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::admin::api::ParityReport;

    fn record(line: usize, route: &str, path: &str, verdict: ReplayVerdict) -> Record {
        Record {
            line,
            route: route.to_owned(),
            method: "GET".to_owned(),
            path: path.to_owned(),
            headers: vec![("authorization".to_owned(), crate::parity::REDACTED.to_owned())],
            verdict,
            expect: None,
            at: SystemTime::UNIX_EPOCH,
            elapsed: Duration::from_millis(5),
            case_name: None,
        }
    }

    fn compared(outcome: Outcome, diffs: Vec<Diff>) -> ReplayVerdict {
        ReplayVerdict::Compared {
            outcome,
            status: [200, 200],
            diffs,
            truncated: false,
        }
    }

    #[test]
    fn a_status_difference_is_said_once() {
        let verdict = ReplayVerdict::Compared {
            outcome: Outcome::Mismatch,
            status: [421, 200],
            diffs: vec![Diff {
                pointer: "status".to_owned(),
                legacy: "421".to_owned(),
                new: "200".to_owned(),
            }],
            truncated: false,
        };
        let detail = record(1, "users-api", "/api/users/1", verdict).detail();
        assert_eq!(detail.matches("421").count(), 1, "{detail}");
        assert!(detail.starts_with("status: legacy 421 new 200\n"), "{detail}");
    }

    pub(in crate::commands::parity) fn run() -> Run {
        let diff = Diff {
            pointer: "/0/text".to_owned(),
            legacy: "\"a <b> & 'c'\"".to_owned(),
            new: "\"\u{1}x\"".to_owned(),
        };
        Run {
            corpus: "c.jsonl".to_owned(),
            routes: vec![
                ReportedRoute {
                    name: "thoughts-api".to_owned(),
                    stage: Some("new".to_owned()),
                    identity: Some(identity()),
                },
                ReportedRoute {
                    name: DEFAULT_ROUTE.to_owned(),
                    stage: None,
                    identity: None,
                },
            ],
            records: vec![
                record(1, "thoughts-api", "/api/thoughts/", compared(Outcome::Match, vec![])),
                record(
                    2,
                    "thoughts-api",
                    "/api/thoughts/?q=\"x\"",
                    compared(Outcome::Mismatch, vec![diff]),
                ),
                record(3, "thoughts-api", "/api/thoughts/3/", compared(Outcome::Noise, vec![])),
                record(
                    4,
                    "thoughts-api",
                    "/api/thoughts/4/",
                    ReplayVerdict::Error("new: timeout".to_owned()),
                ),
                record(
                    5,
                    DEFAULT_ROUTE,
                    "/",
                    ReplayVerdict::Skipped("no new upstream".to_owned()),
                ),
            ],
            outside: 2,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    fn identity() -> EvidenceIdentity {
        let side = |name: &str, port: u16| crate::config::EvidenceSide {
            name: name.to_owned(),
            url: format!("http://127.0.0.1:{port}/"),
        };
        EvidenceIdentity {
            stage: "new".to_owned(),
            legacy: side("legacy", 8001),
            new: Some(side("thoughts", 8002)),
            rules: "0123456789ab".to_owned(),
            forwarding: None,
        }
    }

    #[test]
    fn counts_per_route_and_in_total() {
        let run = run();
        let c = run.counts(&run.routes[0]);
        assert_eq!(
            (c.requests, c.matched, c.noise, c.mismatch, c.error, c.skipped),
            (Some(4), 1, 1, 1, 1, 0)
        );
        assert_eq!(c.match_rate, Some(0.5));
        assert_eq!(c.window_match_rate, Some(0.5));
        let d = run.counts(&run.routes[1]);
        assert_eq!((d.requests, d.skipped, d.match_rate), (Some(1), 1, None));
        assert!(run.failed());
        let t = run.total();
        assert_eq!((t.requests, t.compared(), t.error, t.skipped), (Some(5), 3, 1, 1));
    }

    #[test]
    fn json_is_a_parity_report() {
        let run = run();
        let json = serde_json::to_string(&run.json()).unwrap();
        let read: ParityReport = serde_json::from_str(&json).unwrap();
        assert_eq!(read.routes["thoughts-api"], run.counts(&run.routes[0]));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let route = &value["routes"]["thoughts-api"];
        for key in [
            "stage",
            "requests",
            "match",
            "noise",
            "mismatch",
            "error",
            "dropped",
            "skipped",
            "match_rate",
            "window_match_rate",
        ] {
            assert!(route.get(key).is_some(), "{key} missing: {route}");
        }
        // The evidence: what the run compared, from when; the mismatch names its period.
        let evidence = &route["evidence"];
        assert_eq!(evidence["since"], "2027-01-15T08:00:00Z", "{route}");
        assert_eq!(evidence["period"], identity().period().as_str());
        assert_eq!(evidence["new"]["url"], "http://127.0.0.1:8002/");
        assert_eq!(
            (evidence["stage"].as_str(), evidence["rules"].as_str()),
            (Some("new"), Some("0123456789ab"))
        );
        assert!(value["routes"]["default"].get("evidence").is_none(), "{value}");
        let mismatch = &value["mismatches"][0];
        assert_eq!(mismatch["period"], identity().period().as_str());
        assert_eq!(mismatch["status"], serde_json::json!([200, 200]));
        assert_eq!(mismatch["diffs"][0]["pointer"], "/0/text");
        assert_eq!(mismatch["at"], "1970-01-01T00:00:00.000Z");
        assert!(mismatch.get("truncated").is_none());
        assert_eq!(value["errors"][0]["error"], "new: timeout");
        let back: JsonReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, run.json());
    }

    #[test]
    fn text_has_the_table_and_every_failure() {
        let mut out = Vec::new();
        run().write_text(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("route         stage  requests  match"), "{text}");
        assert!(
            text.contains(
                "thoughts-api  new           4      1         0      1         1         0      1        0      0.5000"
            ),
            "{text}"
        );
        assert!(
            text.contains("MISMATCH GET /api/thoughts/?q=\"x\"  (route thoughts-api, c.jsonl:2)"),
            "{text}"
        );
        assert!(text.contains("  /0/text: legacy \"a <b> & 'c'\" new"), "{text}");
        assert!(text.contains("ERROR GET /api/thoughts/4/"), "{text}");
        assert!(text.contains("  error: new: timeout"), "{text}");
        assert!(text.contains("request headers: authorization: [redacted]"), "{text}");
        assert!(text.contains("2 request(s) of other routes"), "{text}");
        assert!(
            text.ends_with(": 1 match, 0 expected, 1 noise, 1 mismatch, 0 resolved, 1 skipped, 1 error: FAILED\n"),
            "{text}"
        );
    }

    #[test]
    fn text_lists_skips_by_reason() {
        let mut run = run();
        let skip =
            |line, path: &str, why: &str| record(line, DEFAULT_ROUTE, path, ReplayVerdict::Skipped(why.to_owned()));
        run.records.push(skip(6, "/api/login", "no route matches"));
        for line in 7..20 {
            run.records.push(skip(line, &format!("/n/{line}"), "no new upstream"));
        }
        let mut out = Vec::new();
        run.write_text(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\nSKIPPED 14 request(s): no new upstream\n  GET /  (route default, c.jsonl:5)\n  GET /n/7  (route default, c.jsonl:7)\n"),
            "{text}"
        );
        assert!(
            text.contains("  GET /n/15  (route default, c.jsonl:15)\n  … and 4 more\n"),
            "{text}"
        );
        assert!(!text.contains("/n/16"), "{text}");
        assert!(
            text.contains("\nSKIPPED 1 request(s): no route matches\n  GET /api/login  (route default, c.jsonl:6)\n"),
            "{text}"
        );
        assert!(text.ends_with("15 skipped, 1 error: FAILED\n"), "{text}");
    }

    fn with_divergences() -> Run {
        let mut run = run();
        let expect = |reason: &str, unmet: &[&str]| {
            Some(Expectation {
                reason: reason.to_owned(),
                unmet: unmet.iter().map(|u| (*u).to_owned()).collect(),
            })
        };
        let mut expected = record(
            6,
            "thoughts-api",
            "/api/thoughts/abc/",
            compared(Outcome::Expected, vec![]),
        );
        expected.expect = expect("the book <answers> HTML", &[]);
        let mut resolved = record(
            7,
            "thoughts-api",
            "/api/thoughts/-1/",
            compared(Outcome::Resolved, vec![]),
        );
        resolved.expect = expect("gone", &["status: stated legacy 500 new 401, got legacy 401 new 401"]);
        run.records = vec![expected, resolved];
        run.routes.truncate(1);
        run
    }

    #[test]
    fn expected_is_listed_and_resolved_fails_in_every_report() {
        let run = with_divergences();
        assert!(run.failed(), "resolved is a failure");
        let c = run.counts(&run.routes[0]);
        assert_eq!((c.expected, c.resolved, c.compared()), (1, 1, 2));
        assert_eq!(c.match_rate, Some(0.5));

        let mut out = Vec::new();
        run.write_text(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("EXPECTED GET /api/thoughts/abc/  (route thoughts-api, c.jsonl:6): the book <answers> HTML"),
            "{text}"
        );
        assert!(
            text.contains("RESOLVED GET /api/thoughts/-1/  (route thoughts-api, c.jsonl:7)"),
            "{text}"
        );
        assert!(
            text.contains("  divergence: gone\n  not as stated: status: stated legacy 500"),
            "{text}"
        );
        assert!(
            text.ends_with(": 0 match, 1 expected, 0 noise, 0 mismatch, 1 resolved, 0 skipped, 0 error: FAILED\n"),
            "{text}"
        );

        let xml = run.junit().unwrap();
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(
            xml.contains("<system-out>expected divergence: the book &lt;answers&gt; HTML</system-out>"),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"the stated divergence no longer occurs: gone\" type=\"resolved\">"),
            "{xml}"
        );

        let json = serde_json::to_value(run.json()).unwrap();
        assert_eq!(json["expected"][0]["reason"], "the book <answers> HTML");
        assert_eq!(json["expected"][0]["line"], 6);
        assert!(json["expected"][0].get("unmet").is_none());
        assert_eq!(
            json["resolved"][0]["unmet"][0],
            "status: stated legacy 500 new 401, got legacy 401 new 401"
        );
        assert_eq!(json["routes"]["thoughts-api"]["expected"], 1);
        assert_eq!(json["routes"]["thoughts-api"]["resolved"], 1);
        let back: JsonReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, run.json());
    }
}

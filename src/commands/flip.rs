//! `strangler flip ROUTE STAGE`: move one route to another stage by editing `routes.toml`
//! in place, with parity evidence required for every step forward.
//!
//! ```text
//! routes.toml --(edit: toml_edit, comments and layout kept)--> new text --> unified diff
//!    new text --(state::Table::parse, the proxy's own validator)--> errors as file:line:col
//!    a step forward to canary or new --(GET /admin/parity, or --parity-report FILE)--> judge
//!    --(write_atomically: temp file in the same directory, fsync, rename)--> proxy reloads
//! ```
//!
//! Invariants: nothing is written unless the new text passes the same validation as a
//! reload, and (without `--force`) unless a step forward to `canary` or `new` is backed by
//! enough parity evidence. A step back (toward `legacy`, or a smaller canary share) never
//! needs evidence: rolling back must always be possible. The running proxy sees either the
//! old file or the new one, never a part of one. [`edit`], [`judge`] and [`Edit::direction`]
//! are pure; [`run`] does the IO around them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, InlineTable, Item, TableLike, Value};

use crate::admin::api::{ParityCounts, RouteParity};
use crate::commands::evidence::{self, Matched, Period};
use crate::commands::fleet::{self, Fleet};
use crate::commands::{admin_client, prometheus, status};
use crate::config::{Config, EvidenceIdentity, Stage};
use crate::config::{location_of, version_of};
use crate::table::Table;

/// Which way a flip moves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Toward `new`, or a larger canary share: needs evidence when it lands on canary or new.
    Forward,
    /// Toward `legacy`, or a smaller canary share: always allowed.
    Back,
    /// Stage and share stay as they are.
    Unchanged,
}

/// The result of [`edit`]: the route before and after, and the new file text.
#[derive(Debug, Clone)]
pub struct Edit {
    /// The route's name.
    pub route: String,
    /// Its stage as written (`legacy` when the key is absent).
    pub from_text: String,
    /// Its stage, if it is one this build knows.
    pub from: Option<Stage>,
    /// Its canary share before, in basis points (1/100 %), if it has one.
    pub from_basis_points: Option<u32>,
    /// The stage after.
    pub to: Stage,
    /// The canary share after, in basis points.
    pub to_basis_points: Option<u32>,
    /// The whole file after the edit.
    pub text: String,
}

impl Edit {
    /// Forward, back, or no move at all.
    pub fn direction(&self) -> Direction {
        let Some(from) = self.from else {
            // A stage this build does not know: only legacy is surely behind it.
            return if self.to == Stage::Legacy {
                Direction::Back
            } else {
                Direction::Forward
            };
        };
        if from != self.to {
            return if from < self.to {
                Direction::Forward
            } else {
                Direction::Back
            };
        }
        match (self.to, self.from_basis_points, self.to_basis_points) {
            (Stage::Canary, Some(a), Some(b)) if b > a => Direction::Forward,
            (Stage::Canary, Some(a), Some(b)) if b < a => Direction::Back,
            (Stage::Canary, None, Some(_)) => Direction::Forward,
            _ => Direction::Unchanged,
        }
    }

    /// Whether the flip needs parity evidence: a step forward that lands on canary or new.
    pub fn needs_evidence(&self) -> bool {
        self.direction() == Direction::Forward && matches!(self.to, Stage::Canary | Stage::New)
    }

    /// `canary (10 %)`, `new`.
    fn describe(stage: &str, basis_points: Option<u32>, is_canary: bool) -> String {
        match basis_points {
            Some(bp) if is_canary => format!("{stage} ({})", status::format_percent(f64::from(bp) / 100.0)),
            _ => stage.to_owned(),
        }
    }

    /// `legacy -> canary (10 %)`.
    pub fn summary(&self) -> String {
        format!(
            "{} -> {}",
            Self::describe(
                &self.from_text,
                self.from_basis_points,
                self.from == Some(Stage::Canary)
            ),
            Self::describe(self.to.as_str(), self.to_basis_points, self.to == Stage::Canary)
        )
    }
}

/// Why [`edit`] could not make the change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    /// The file is not TOML; `at` is a byte offset.
    #[error("{message}")]
    Syntax {
        /// Byte offset of the problem.
        at: usize,
        /// What is wrong.
        message: String,
    },
    /// No `[[routes]]` entry has that name.
    #[error("no route named `{route}`; routes: {}", if known.is_empty() { "(none)".to_owned() } else { known.join(", ") })]
    UnknownRoute {
        /// The name asked for.
        route: String,
        /// The names in the file.
        known: Vec<String>,
    },
    /// A bad `--percent`.
    #[error("{0}")]
    Percent(String),
    /// The route's `canary` is not a table.
    #[error("route `{0}` has a `canary` that is not a table; fix it by hand")]
    CanaryShape(String),
}

/// Sets `stage` of the route named `route` (adding the key if absent) and, with `percent`,
/// its `canary.percent` (adding `canary = { percent = N }` if absent, keeping `sticky`).
/// Everything else in `text` is kept byte for byte, comments after the edited values
/// included.
pub fn edit(text: &str, route: &str, to: Stage, percent: Option<f64>) -> Result<Edit, EditError> {
    let to_basis_points = match percent {
        None => None,
        Some(_) if to != Stage::Canary => {
            return Err(EditError::Percent(format!(
                "--percent is for stage canary, not {}",
                to.as_str()
            )));
        }
        Some(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Some((p * 100.0).round() as u32),
        Some(p) => {
            return Err(EditError::Percent(format!(
                "--percent must be between 0 and 100, got {p}"
            )));
        }
    };
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| EditError::Syntax {
        at: e.span().map_or(0, |s| s.start),
        message: e.message().trim_end().replace('\n', "; "),
    })?;
    let mut tables = route_tables(&mut doc);
    let known: Vec<String> = tables
        .iter()
        .filter_map(|(_, t)| t.get("name").and_then(Item::as_str).map(str::to_owned))
        .collect();
    let Some((inline, table)) = tables
        .iter_mut()
        .find(|(_, t)| t.get("name").and_then(Item::as_str) == Some(route))
    else {
        return Err(EditError::UnknownRoute {
            route: route.to_owned(),
            known,
        });
    };
    let from_text = match table.get("stage") {
        None => Stage::Legacy.as_str().to_owned(),
        Some(item) => item
            .as_str()
            .map_or_else(|| item.to_string().trim().to_owned(), str::to_owned),
    };
    let from_basis_points = canary_basis_points(&**table);

    if from_text != to.as_str() {
        set_value(&mut **table, *inline, "stage", Value::from(to.as_str()));
    }
    if let (Some(p), Some(bp)) = (percent, to_basis_points)
        && from_basis_points != Some(bp)
    {
        let number = if p.fract() == 0.0 {
            Value::from(p as i64)
        } else {
            Value::from(p)
        };
        match table.get_mut("canary") {
            None => {
                let mut canary = InlineTable::new();
                canary.insert("percent", number);
                set_value(&mut **table, *inline, "canary", Value::InlineTable(canary));
            }
            Some(item) => {
                let canary_inline = item.is_inline_table();
                match item.as_table_like_mut() {
                    Some(canary) => set_value(canary, canary_inline, "percent", number),
                    None => return Err(EditError::CanaryShape(route.to_owned())),
                }
            }
        }
    }
    let to_basis_points = to_basis_points.or(from_basis_points);
    Ok(Edit {
        route: route.to_owned(),
        from: from_text.parse().ok(),
        from_text,
        from_basis_points,
        to,
        to_basis_points,
        text: doc.to_string(),
    })
}

/// The route entries: `[[routes]]` tables, or inline tables in `routes = [...]` (`true`).
fn route_tables(doc: &mut DocumentMut) -> Vec<(bool, &mut dyn TableLike)> {
    match doc.get_mut("routes") {
        Some(Item::ArrayOfTables(array)) => array.iter_mut().map(|t| (false, t as &mut dyn TableLike)).collect(),
        Some(Item::Value(Value::Array(array))) => array
            .iter_mut()
            .filter_map(|v| v.as_inline_table_mut().map(|t| (true, t as &mut dyn TableLike)))
            .collect(),
        _ => Vec::new(),
    }
}

fn canary_basis_points(route: &dyn TableLike) -> Option<u32> {
    let percent = route.get("canary")?.as_table_like()?.get("percent")?;
    let p = percent.as_float().or_else(|| percent.as_integer().map(|i| i as f64))?;
    (p.is_finite() && (0.0..=100.0).contains(&p)).then(|| (p * 100.0).round() as u32)
}

/// Replaces a value and keeps the whitespace and comment around it; adds the key at the
/// end if absent. In an inline table the space before `}` moves to the new last value, so
/// `{ a = 1 }` becomes `{ a = 1, b = 2 }`.
fn set_value(table: &mut dyn TableLike, inline: bool, key: &str, mut new: Value) {
    if let Some(old) = table.get_mut(key).and_then(Item::as_value_mut) {
        *new.decor_mut() = old.decor().clone();
        *old = new;
        return;
    }
    if inline && let Some(last) = table.iter_mut().last().and_then(|(_, item)| item.as_value_mut()) {
        let suffix = last.decor().suffix().cloned();
        last.decor_mut().set_suffix("");
        new.decor_mut().set_suffix(suffix.unwrap_or_else(|| " ".into()));
    }
    table.insert(key, Item::Value(new));
}

/// The unified diff of a change, `file` naming both sides.
pub fn unified_diff(file: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(file, file)
        .to_string()
}

/// How much parity evidence a step forward needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Least number of compared pairs (match + noise + mismatch).
    pub min_requests: u64,
    /// Least (match + noise) / (match + noise + mismatch + error).
    pub min_match_rate: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_requests: 100,
            min_match_rate: 0.999,
        }
    }
}

/// Evidence that met the thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sufficient {
    /// Compared pairs.
    pub compared: u64,
    /// The match rate.
    pub match_rate: f64,
}

/// Evidence that fell short, with how far.
#[derive(Debug, Clone, PartialEq)]
pub struct Shortfall {
    /// The route was not in the report at all.
    pub missing: bool,
    /// Compared pairs.
    pub compared: u64,
    /// The match rate, if any pair was compared or failed.
    pub match_rate: Option<f64>,
    /// Mismatched pairs.
    pub mismatches: u64,
    /// Failed pairs.
    pub errors: u64,
    /// The thresholds it was judged against.
    pub thresholds: Thresholds,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.thresholds;
        let mut parts = Vec::new();
        if self.missing {
            parts.push("the route has no parity counts".to_owned());
        }
        if self.compared < t.min_requests {
            parts.push(format!("{} of {} required comparisons", self.compared, t.min_requests));
        }
        match self.match_rate {
            Some(rate) if !(0.0..=1.0).contains(&rate) => {
                parts.push(format!(
                    "match rate {rate} is not between 0 and 1: the counts are not trustworthy"
                ));
            }
            Some(rate) if rate < t.min_match_rate => {
                let (mut a, mut b) = (format!("{rate:.4}"), format!("{:.4}", t.min_match_rate));
                if a == b {
                    (a, b) = (format!("{rate:.6}"), format!("{:.6}", t.min_match_rate));
                }
                let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
                parts.push(format!(
                    "match rate {a} < {b} ({}, {})",
                    plural(self.mismatches, "mismatch", "mismatches"),
                    plural(self.errors, "error", "errors")
                ));
            }
            Some(_) => {}
            None => parts.push("no match rate yet".to_owned()),
        }
        f.write_str(&parts.join("; "))
    }
}

/// Judges one route's parity counts (`None`: the route is not in the report).
pub fn judge(parity: Option<&RouteParity>, thresholds: Thresholds) -> Result<Sufficient, Shortfall> {
    let counts = parity.cloned().unwrap_or_default();
    let compared = counts.compared();
    match counts.match_rate() {
        Some(match_rate)
            if parity.is_some()
                && (0.0..=1.0).contains(&match_rate)
                && compared >= thresholds.min_requests
                && match_rate >= thresholds.min_match_rate =>
        {
            Ok(Sufficient { compared, match_rate })
        }
        match_rate => Err(Shortfall {
            missing: parity.is_none(),
            compared,
            match_rate,
            mismatches: counts.mismatch,
            errors: counts.error,
            thresholds,
        }),
    }
}

/// Where parity evidence comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum EvidenceSource {
    /// `GET /admin/routes` and `/admin/parity` of every replica.
    Fleet(fleet::Targets),
    /// A report file written by `strangler parity`.
    Report(PathBuf),
    /// A Prometheus server's HTTP API, at this base URL.
    Prometheus(String),
}

impl EvidenceSource {
    /// The source `options` name: a report, a Prometheus, the `--admin`/`--admin-dns`
    /// replicas, or else the `admin_listen` of `config` (with its admin token). Blocking
    /// (resolves `--admin-dns`).
    pub fn of(options: &Options, config: &Config) -> EvidenceSource {
        if let Some(path) = &options.parity_report {
            return EvidenceSource::Report(path.clone());
        }
        if let Some(url) = &options.prometheus {
            return EvidenceSource::Prometheus(url.clone());
        }
        if options.admins.is_empty() && options.admin_dns.is_empty() {
            admin_client::use_token_of(config);
            return EvidenceSource::Fleet(fleet::Targets {
                admins: vec![admin_client::admin_url_of(config)],
                unresolved: Vec::new(),
            });
        }
        EvidenceSource::Fleet(fleet::resolve(&options.admins, &options.admin_dns))
    }
}

/// What weighing the evidence and the running versions found: lines for stdout, warnings
/// (always printed), and reasons to refuse (warnings too under `--force`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weighing {
    /// What the evidence showed, for stdout.
    pub notes: Vec<String>,
    /// What the operator should know whatever the decision.
    pub warnings: Vec<String>,
    /// Why the flip must not be written (without `--force`).
    pub refusals: Vec<String>,
}

/// The identity the edited table gives `route` (which the edit found, so it exists).
fn wanted_identity(config: &Config, route: &str) -> Option<EvidenceIdentity> {
    let route = config.routes.iter().find(|r| r.name == route)?;
    Some(EvidenceIdentity::of(config, route))
}

/// Weighs a flip of `edit` to the table `config` (the edited one), whose file had `version`
/// before the edit: the running versions (replicas only) and, for a step forward to canary
/// or new, the evidence. Blocking.
pub fn weigh(options: &Options, edit: &Edit, config: &Config, file: &str, version: &str) -> Weighing {
    let mut weighing = Weighing::default();
    let Some(wanted) = wanted_identity(config, &edit.route) else {
        weighing
            .refusals
            .push(format!("route `{}` is not in the edited table", edit.route));
        return weighing;
    };
    let judged = match EvidenceSource::of(options, config) {
        EvidenceSource::Fleet(targets) => {
            weigh_fleet(
                &mut weighing,
                &targets,
                edit,
                &wanted,
                file,
                version,
                options.thresholds,
            );
            return weighing;
        }
        _ if !edit.needs_evidence() => return weighing,
        EvidenceSource::Report(path) => weigh_report(&path, &edit.route, &wanted, options.thresholds),
        EvidenceSource::Prometheus(url) => weigh_prometheus(
            &mut weighing,
            &url,
            &edit.route,
            &wanted,
            (file, version),
            options.thresholds,
        ),
    };
    match judged {
        Ok(note) => weighing.notes.push(note),
        Err(why) => weighing.refusals.push(why),
    }
    weighing
}

/// The line that says what evidence was accepted.
fn accepted(source: &str, enough: Sufficient, matched: &Matched, t: Thresholds) -> String {
    let periods = if matched.periods.len() == 1 {
        "period"
    } else {
        "periods"
    };
    format!(
        "parity evidence from {source}: {} comparisons (>= {}), match rate {:.4} (>= {:.4}); {periods} {} \
         (the edited table's upstreams and compare rules)",
        enough.compared,
        t.min_requests,
        enough.match_rate,
        t.min_match_rate,
        matched.periods.join(", ")
    )
}

/// Judges matched evidence: the accepting line, or why it falls short.
fn judge_matched(route: &str, source: &str, matched: Option<&Matched>, t: Thresholds) -> Result<String, String> {
    match judge(matched.map(|m| &m.counts), t) {
        Ok(enough) => Ok(accepted(source, enough, matched.unwrap_or(&Matched::default()), t)),
        Err(shortfall) if shortfall.mismatches + shortfall.errors > 0 => Err(format!(
            "{shortfall}; see {source}\n  (a mismatch that is noise, such as a timestamp, goes away with the route's \
             `compare = {{ ignore = [\"/pointer\"] }}`, which starts a new evidence period; failures count until the period \
             ends: once the new service is fixed, step the route back and forth, `strangler flip {route} legacy` then \
             `shadow`, to gather evidence afresh, or give a passing `strangler parity --json` report with --parity-report)"
        )),
        Err(shortfall) => Err(format!(
            "{shortfall}; see {source}\n  (to gather evidence, keep the route in shadow while traffic flows: every \
             mirrored request is compared; or replay a corpus with `strangler parity --json report.json` and give it with \
             --parity-report)"
        )),
    }
}

/// Evidence from a `strangler parity` report.
fn weigh_report(path: &Path, route: &str, wanted: &EvidenceIdentity, t: Thresholds) -> Result<String, String> {
    let source = format!("the report {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("no parity evidence: {source}: cannot read: {e}"))?;
    let report: ParityCounts =
        serde_json::from_str(&text).map_err(|e| format!("no parity evidence: {source}: not a parity report: {e}"))?;
    let matched = match report.routes.get(route) {
        None => None,
        Some(counts) => Some(
            evidence::matching(&Period::of_route(counts), wanted)
                .map_err(|unmatched| format!("{source}: {unmatched}"))?,
        ),
    };
    judge_matched(route, &source, matched.as_ref(), t)
}

/// Evidence from a Prometheus server: of the instances that run `version` of `file` (the
/// others are named, not counted; none is a refusal).
fn weigh_prometheus(
    weighing: &mut Weighing,
    url: &str,
    route: &str,
    wanted: &EvidenceIdentity,
    (file, version): (&str, &str),
    t: Thresholds,
) -> Result<String, String> {
    let source = format!("Prometheus at {}", admin_client::admin_base(url));
    let found = prometheus::route_evidence(url, route, version).map_err(|e| format!("no parity evidence: {e}"))?;
    if !found.elsewhere.is_empty() {
        weighing.warnings.push(format!(
            "not counted: {}, not version {version} of {file}",
            found.describe_elsewhere()
        ));
    }
    weighing.notes.push(format!(
        "running: {} instance(s) Prometheus scrapes run version {version}, that of {file}",
        found.on_version.len()
    ));
    for period in found.unidentified {
        let label = if period.is_empty() {
            "without a `period` label".to_owned()
        } else {
            format!("of period {period}")
        };
        weighing.warnings.push(format!(
            "not counted: counts {label} (no strangler_parity_period_info series says what they measured)"
        ));
    }
    let matched = evidence::matching(&found.periods, wanted).map_err(|unmatched| format!("{source}: {unmatched}"))?;
    note_ignored(weighing, &matched, wanted);
    let mut matched = Some(matched);
    let failures = evidence::failures(&found.elsewhere_failures, wanted);
    let from: Vec<&str> = found.elsewhere.iter().map(|(instance, _)| instance.as_str()).collect();
    add_failures_elsewhere(weighing, &mut matched, &failures, &from.join(", "));
    judge_matched(route, &source, matched.as_ref(), t)
}

/// Adds the mismatches and errors of replicas on another version (in periods of the same
/// upstreams and rules) to the evidence, and says so: their matches do not speak for the
/// edited file, their failures do.
fn add_failures_elsewhere(weighing: &mut Weighing, matched: &mut Option<Matched>, failures: &RouteParity, from: &str) {
    if failures.mismatch == 0 && failures.error == 0 {
        return;
    }
    matched.get_or_insert_with(Matched::default).counts.add(failures);
    weighing.warnings.push(format!(
        "counted from {from} (another table version, the same upstreams and compare rules): {} mismatches, {} \
         errors; their matches are not counted",
        failures.mismatch, failures.error
    ));
}

fn note_ignored(weighing: &mut Weighing, matched: &Matched, wanted: &EvidenceIdentity) {
    for identity in &matched.ignored {
        weighing.warnings.push(format!(
            "not counted: evidence gathered against other upstreams or compare rules ({}): {}",
            identity.differences(wanted).join(", "),
            identity.describe()
        ));
    }
}

/// The running versions and the evidence of the replicas. A replica on another version is
/// named and not counted; a step forward is refused when none runs the file's version, and
/// (when it needs evidence) when any replica did not answer: its evidence could hold the
/// mismatches. A step back only warns.
fn weigh_fleet(
    weighing: &mut Weighing,
    targets: &fleet::Targets,
    edit: &Edit,
    wanted: &EvidenceIdentity,
    file: &str,
    version: &str,
    t: Thresholds,
) {
    let forward = edit.direction() == Direction::Forward;
    let mut replicas = fleet::ask(targets, edit.needs_evidence());
    weighing.notes.extend(fleet::same_processes(&mut replicas));
    let fleet = Fleet::split(&replicas, version);
    if !fleet.elsewhere.is_empty() {
        let elsewhere = fleet.describe_elsewhere();
        if fleet.on_version.is_empty() {
            let why = format!(
                "the running proxy does not run the file being edited: {file} is version {version}, but {elsewhere} \
                 (deploy {file} first, or edit the copy that runs)"
            );
            if forward {
                weighing.refusals.push(why)
            } else {
                weighing.warnings.push(why)
            }
        } else {
            weighing
                .warnings
                .push(format!("not counted: {elsewhere}, not version {version} of {file}"));
        }
    }
    if !fleet.down.is_empty() {
        let down: Vec<String> = fleet
            .down
            .iter()
            .map(|(admin, why)| format!("{admin}: {why}"))
            .collect();
        let down = down.join("; ");
        if forward && edit.needs_evidence() {
            weighing.refusals.push(format!(
                "no parity evidence from {down} (a step forward needs the evidence of every replica)"
            ));
        } else {
            weighing
                .warnings
                .push(format!("could not check the version running at {down}"));
        }
    }
    if fleet.elsewhere.is_empty() && fleet.down.is_empty() {
        weighing.notes.push(format!(
            "running: {} replica(s) run version {version}, that of {file}",
            fleet.on_version.len()
        ));
    }
    if !edit.needs_evidence() || fleet.on_version.is_empty() {
        return;
    }
    let sources: Vec<String> = fleet
        .on_version
        .iter()
        .map(|r| format!("GET {}/admin/parity", r.admin))
        .collect();
    let source = sources.join(", ");
    match fleet.evidence(&edit.route, wanted) {
        Ok(mut matched) => {
            if let Some(matched) = &matched {
                note_ignored(weighing, matched, wanted);
            }
            let (failures, from) = fleet.failures_elsewhere(&edit.route, wanted);
            add_failures_elsewhere(weighing, &mut matched, &failures, &from.join(", "));
            match judge_matched(&edit.route, &source, matched.as_ref(), t) {
                Ok(note) => weighing.notes.push(note),
                Err(why) => weighing.refusals.push(why),
            }
        }
        Err(why) => weighing.refusals.push(why),
    }
}

/// What `strangler flip` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The routing table to edit.
    pub config: PathBuf,
    /// The route's name.
    pub route: String,
    /// The stage to move it to.
    pub stage: Stage,
    /// At stage canary: the new share, in percent.
    pub percent: Option<f64>,
    /// Admin URLs of the replicas to read versions and evidence from (with `admin_dns`
    /// empty too: the table's `proxy.admin_listen`).
    pub admins: Vec<String>,
    /// `HOST:PORT` names whose every address is a replica (`--admin-dns`).
    pub admin_dns: Vec<String>,
    /// A Prometheus server to read the counts from instead.
    pub prometheus: Option<String>,
    /// A report file to read evidence from instead.
    pub parity_report: Option<PathBuf>,
    /// How much evidence a step forward needs.
    pub thresholds: Thresholds,
    /// Flip even without enough evidence.
    pub force: bool,
    /// Show the diff and the decision; write nothing.
    pub dry_run: bool,
}

/// How a flip ended (errors aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file was replaced.
    Written {
        /// The table version before.
        from: String,
        /// The table version after.
        to: String,
    },
    /// The route already was where it was asked to go.
    Unchanged,
    /// `--dry-run`: the flip would have been written.
    WouldWrite,
    /// Not enough evidence (with `--dry-run` too).
    Refused,
    /// The new table would not pass validation.
    Invalid,
}

impl Outcome {
    /// The process exit code: 0 done (or would be), 1 refused.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Written { .. } | Outcome::Unchanged | Outcome::WouldWrite => 0,
            Outcome::Refused | Outcome::Invalid => 1,
        }
    }
}

/// Why a flip could not be attempted.
#[derive(Debug, thiserror::Error)]
pub enum FlipError {
    /// A bad command line (exit 2).
    #[error("{0}")]
    Usage(String),
    /// No route of that name (exit 2).
    #[error("{file}: {source}")]
    Edit {
        /// The table.
        file: String,
        /// What went wrong.
        source: EditError,
    },
    /// The file is not TOML.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The table.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The table could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The table.
        file: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The new table could not be written (the old one is untouched).
    #[error("{file}: cannot write: {source}; the file is unchanged")]
    Write {
        /// The table.
        file: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// Someone else changed the file while the flip was being decided.
    #[error("{0}: changed by someone else during the flip; nothing written, run it again")]
    Raced(String),
    /// Writing to stdout or stderr failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl FlipError {
    /// The process exit code: 2 for usage errors and unknown routes, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            FlipError::Usage(_)
            | FlipError::Edit {
                source: EditError::UnknownRoute { .. } | EditError::Percent(_),
                ..
            } => 2,
            _ => 1,
        }
    }
}

/// Runs a flip: edit, print the diff, validate, judge the evidence, write. The diff and
/// the decision go to `out`; refusals, validation errors and warnings to `err`.
pub fn run(options: &Options, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, FlipError> {
    let thresholds = options.thresholds;
    if !(0.0..=1.0).contains(&thresholds.min_match_rate) {
        return Err(FlipError::Usage(format!(
            "--min-match-rate must be between 0 and 1, got {}",
            thresholds.min_match_rate
        )));
    }
    for admin in &options.admins {
        admin_client::parse_admin_url(admin).map_err(|e| FlipError::Usage(format!("--admin {e}")))?;
    }
    if let Some(url) = &options.prometheus {
        admin_client::parse_admin_url(url).map_err(|e| FlipError::Usage(format!("--prometheus {e}")))?;
    }
    let file = options.config.display().to_string();
    let old = std::fs::read_to_string(&options.config).map_err(|source| FlipError::Read {
        file: file.clone(),
        source,
    })?;
    let edit = edit(&old, &options.route, options.stage, options.percent).map_err(|source| match source {
        EditError::Syntax { at, message } => {
            let at = location_of(&old, at);
            FlipError::Syntax {
                file: file.clone(),
                line: at.line,
                column: at.column,
                message,
            }
        }
        source => FlipError::Edit {
            file: file.clone(),
            source,
        },
    })?;
    if edit.direction() == Direction::Unchanged && edit.text == old {
        writeln!(
            out,
            "route `{}` is already at {}; nothing to change",
            edit.route,
            Edit::describe(edit.to.as_str(), edit.to_basis_points, edit.to == Stage::Canary)
        )?;
        return Ok(Outcome::Unchanged);
    }
    write!(out, "{}", unified_diff(&file, &old, &edit.text))?;

    let step = match edit.direction() {
        Direction::Forward if edit.needs_evidence() => "a step forward: needs parity evidence",
        Direction::Forward => "a step forward",
        Direction::Back => "a step back: no evidence needed",
        Direction::Unchanged => "no change of stage or share",
    };
    writeln!(out, "route `{}`: {} ({step})", edit.route, edit.summary())?;

    let edited = match Table::parse(&file, &edit.text) {
        Ok(table) => table,
        Err(errors) => {
            for error in &errors.0 {
                writeln!(err, "{error}")?;
            }
            if edit.to == Stage::Canary && edit.to_basis_points.is_none() {
                writeln!(err, "hint: give the canary its share with --percent N")?;
            }
            writeln!(
                err,
                "refused: the edited table would be invalid ({} error(s); line numbers are those of the edited text); \
             nothing written",
                errors.0.len()
            )?;
            return Ok(Outcome::Invalid);
        }
    };

    let weighing = weigh(options, &edit, &edited.config, &file, &version_of(&old));
    if report_weighing(options, &edit, &weighing, out, err)? {
        return Ok(Outcome::Refused);
    }

    let (from, to) = (version_of(&old), version_of(&edit.text));
    if options.dry_run {
        writeln!(
            out,
            "dry run: would write {file} (version {from} -> {to}); nothing written"
        )?;
        return Ok(Outcome::WouldWrite);
    }
    write_atomically(&options.config, &edit.text, &old).map_err(|e| match e {
        WriteError::Raced => FlipError::Raced(file.clone()),
        WriteError::Io(source) => FlipError::Write {
            file: file.clone(),
            source,
        },
    })?;
    writeln!(out, "wrote {file}: version {from} -> {to}")?;
    Ok(Outcome::Written { from, to })
}

/// Prints what [`weigh`] found; returns whether the flip is refused (never under `--force`,
/// which turns every refusal into a warning).
fn report_weighing(
    options: &Options,
    edit: &Edit,
    weighing: &Weighing,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<bool, FlipError> {
    for note in &weighing.notes {
        writeln!(out, "{note}")?;
    }
    for warning in &weighing.warnings {
        writeln!(err, "WARNING: {warning}")?;
    }
    if weighing.refusals.is_empty() {
        return Ok(false);
    }
    if options.force {
        writeln!(
            err,
            "WARNING: --force: moving `{}` to {} WITHOUT the checks passing",
            edit.route,
            edit.to.as_str()
        )?;
        for why in &weighing.refusals {
            writeln!(err, "WARNING: {why}")?;
        }
        return Ok(false);
    }
    let dry = if options.dry_run { "dry run: would be " } else { "" };
    for why in &weighing.refusals {
        writeln!(err, "{dry}refused: {why}")?;
    }
    writeln!(err, "nothing written; --force overrides (at your own risk)")?;
    Ok(true)
}

/// Why [`write_atomically`] did not replace the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file no longer holds the text the edit started from.
    #[error("the file changed meanwhile")]
    Raced,
    /// An IO error; the old file is untouched.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Replaces `path` with `text` so that a reader sees the old file or the new one, never a
/// part: a temp file in the same directory (same filesystem), written, fsynced, renamed
/// over, and the directory fsynced. Refuses if the file no longer holds `expected`. A
/// symlink is followed: the file it points to is replaced, the link stays. Blocking.
pub fn write_atomically(path: &Path, text: &str, expected: &str) -> Result<(), WriteError> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(|| "routes.toml".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.flip-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(&target) {
            file.set_permissions(meta.permissions())?;
            keep_owner(&file, &meta);
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        if std::fs::read_to_string(&target)? != expected {
            return Err(WriteError::Raced);
        }
        std::fs::rename(&tmp, &target)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // The rename is durable once the directory entry is on disk.
    #[cfg(unix)]
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

/// Gives the new file the old one's owner and group, as far as this user may (root: both;
/// a member of the group: the group; otherwise nothing changes): a table readable only by
/// the proxy's group (`0640 root:strangler`) stays readable after a flip run with sudo.
fn keep_owner(file: &std::fs::File, old: &std::fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())).is_err() {
            let _ = std::os::unix::fs::fchown(file, None, Some(old.gid()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table readable only by the proxy's group keeps its owner, group and mode through a
    /// flip's atomic replace (as root, which CI is: `.ci/run` installs with apt-get; another
    /// user may give a file away to nobody, so there the group it already has is checked).
    #[test]
    fn an_atomic_write_keeps_the_owner_group_and_mode() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let me = std::fs::metadata(&path).unwrap();
        let (uid, gid) = if me.uid() == 0 { (1, 2) } else { (me.uid(), me.gid()) };
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        write_atomically(&path, "new", "old").unwrap();
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!((after.uid(), after.gid()), (uid, gid), "owner and group kept");
        assert_eq!(after.permissions().mode() & 0o777, 0o640);
    }

    const TABLE: &str = r#"# head comment
[proxy]
listen = "127.0.0.1:8000"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:8001"

[upstreams.thoughts]
url = "http://127.0.0.1:8002"

# the API
[[routes]]
name = "api"
path = "/api/"
stage   =   "new"    # moved last week
new = "thoughts"

# no stage key at all
[[routes]]
name = "bare"
path = "/bare/"
new = "thoughts"
canary = { percent = 5, sticky = "cookie:session" } # keep sticky

[[routes]]
name = "c"
exact = "/c"
new = "thoughts"
"#;

    #[test]
    fn changes_only_the_value_and_keeps_its_comment() {
        let e = edit(TABLE, "api", Stage::Legacy, None).unwrap();
        assert_eq!(
            e.text,
            TABLE.replace(r#"stage   =   "new"    # moved"#, r#"stage   =   "legacy"    # moved"#)
        );
        assert_eq!(e.direction(), Direction::Back);
        assert!(!e.needs_evidence());
        assert_eq!(e.summary(), "new -> legacy");
    }

    #[test]
    fn adds_a_missing_stage_and_sets_the_canary_share() {
        let e = edit(TABLE, "bare", Stage::Canary, Some(12.5)).unwrap();
        assert_eq!(
            e.text,
            TABLE.replace(
                "canary = { percent = 5, sticky = \"cookie:session\" } # keep sticky\n",
                "canary = { percent = 12.5, sticky = \"cookie:session\" } # keep sticky\nstage = \"canary\"\n"
            )
        );
        assert_eq!(e.from, Some(Stage::Legacy));
        assert_eq!((e.from_basis_points, e.to_basis_points), (Some(500), Some(1250)));
        assert!(e.needs_evidence());
        assert_eq!(e.summary(), "legacy -> canary (12.5 %)");

        let e = edit(TABLE, "c", Stage::Canary, Some(10.0)).unwrap();
        assert!(
            e.text
                .ends_with("new = \"thoughts\"\nstage = \"canary\"\ncanary = { percent = 10 }\n"),
            "{}",
            e.text
        );
        Table::parse("t", &e.text).unwrap();
    }

    #[test]
    fn canary_share_direction() {
        let at_canary = edit(TABLE, "bare", Stage::Canary, Some(20.0)).unwrap().text;
        let down = edit(&at_canary, "bare", Stage::Canary, Some(5.0)).unwrap();
        assert_eq!(down.direction(), Direction::Back);
        let up = edit(&at_canary, "bare", Stage::Canary, Some(50.0)).unwrap();
        assert_eq!(up.direction(), Direction::Forward);
        let same = edit(&at_canary, "bare", Stage::Canary, None).unwrap();
        assert_eq!(same.direction(), Direction::Unchanged);
        assert_eq!(same.text, at_canary);
        let new_to_canary = edit(TABLE, "api", Stage::Canary, Some(99.0)).unwrap();
        assert_eq!(new_to_canary.direction(), Direction::Back);
        let to_shadow = edit(TABLE, "c", Stage::Shadow, None).unwrap();
        assert_eq!(to_shadow.direction(), Direction::Forward);
        assert!(!to_shadow.needs_evidence());
    }

    #[test]
    fn every_stage_change_steps_forward_or_back_in_migration_order() {
        let forward = [
            ("legacy", Stage::Shadow),
            ("legacy", Stage::Canary),
            ("legacy", Stage::New),
            ("shadow", Stage::Canary),
            ("shadow", Stage::New),
            ("canary", Stage::New),
        ];
        for from in ["legacy", "shadow", "canary", "new"] {
            let text = TABLE.replace("name = \"c\"\n", &format!("name = \"c\"\nstage = \"{from}\"\n"));
            for to in Stage::ALL {
                let e = edit(&text, "c", to, None).unwrap();
                assert_eq!((e.from_text.as_str(), e.from.map(Stage::as_str)), (from, Some(from)));
                let expected = if from == to.as_str() {
                    Direction::Unchanged
                } else if forward.contains(&(from, to)) {
                    Direction::Forward
                } else {
                    Direction::Back
                };
                assert_eq!(e.direction(), expected, "{from} -> {}", to.as_str());
            }
        }
    }

    #[test]
    fn refuses_bad_requests() {
        assert_eq!(
            edit(TABLE, "nope", Stage::New, None).unwrap_err().to_string(),
            "no route named `nope`; routes: api, bare, c"
        );
        assert!(matches!(
            edit(TABLE, "api", Stage::New, Some(5.0)),
            Err(EditError::Percent(_))
        ));
        assert!(matches!(
            edit(TABLE, "api", Stage::Canary, Some(101.0)),
            Err(EditError::Percent(_))
        ));
        assert!(matches!(
            edit("[[routes]\n", "api", Stage::New, None),
            Err(EditError::Syntax { .. })
        ));
    }

    #[test]
    fn an_absent_stage_is_legacy_and_an_unknown_one_is_behind_everything_but_legacy() {
        let e = edit(TABLE, "c", Stage::Legacy, None).unwrap();
        assert_eq!((e.direction(), e.text.as_str()), (Direction::Unchanged, TABLE));
        let odd = TABLE.replace("stage   =   \"new\"", "stage = \"dark-launch\"");
        let e = edit(&odd, "api", Stage::Canary, Some(1.0)).unwrap();
        assert_eq!((e.from, e.from_text.as_str()), (None, "dark-launch"));
        assert!(e.needs_evidence());
        assert_eq!(
            edit(&odd, "api", Stage::Legacy, None).unwrap().direction(),
            Direction::Back
        );
    }

    #[test]
    fn inline_route_arrays_are_edited_too() {
        let text = "routes = [ { name = \"a\", path = \"/a/\" } ]\n";
        let e = edit(text, "a", Stage::New, None).unwrap();
        assert_eq!(
            e.text,
            "routes = [ { name = \"a\", path = \"/a/\", stage = \"new\" } ]\n"
        );
    }

    /// A refusal for failures says how to gather evidence afresh once the new service is
    /// fixed (newcomer pass: `--force` was the only way forward it named).
    #[test]
    fn a_refusal_for_failures_says_how_to_start_afresh() {
        let t = Thresholds::default();
        let failing = Matched {
            counts: RouteParity {
                matched: 60,
                mismatch: 5,
                ..RouteParity::default()
            },
            ..Matched::default()
        };
        let said = judge_matched("users-api", "GET http://x/admin/parity", Some(&failing), t).unwrap_err();
        assert!(
            said.contains("strangler flip users-api legacy` then `shadow`"),
            "{said}"
        );
        assert!(said.contains("compare = { ignore"), "{said}");
        let thin = Matched {
            counts: RouteParity {
                matched: 60,
                ..RouteParity::default()
            },
            ..Matched::default()
        };
        let said = judge_matched("users-api", "GET http://x/admin/parity", Some(&thin), t).unwrap_err();
        assert!(!said.contains("afresh"), "{said}");
        assert!(said.contains("keep the route in shadow while traffic flows"), "{said}");
    }

    #[test]
    fn judges_evidence() {
        let t = Thresholds::default();
        let good = RouteParity {
            matched: 150,
            noise: 10,
            ..RouteParity::default()
        };
        assert_eq!(
            judge(Some(&good), t),
            Ok(Sufficient {
                compared: 160,
                match_rate: 1.0
            })
        );
        let thin = RouteParity {
            matched: 33,
            noise: 1,
            mismatch: 3,
            ..RouteParity::default()
        };
        assert_eq!(
            judge(Some(&thin), t).unwrap_err().to_string(),
            "37 of 100 required comparisons; match rate 0.9189 < 0.9990 (3 mismatches, 0 errors)"
        );
        let errors = RouteParity {
            matched: 1000,
            error: 2,
            ..RouteParity::default()
        };
        assert_eq!(
            judge(Some(&errors), t).unwrap_err().to_string(),
            "match rate 0.9980 < 0.9990 (0 mismatches, 2 errors)"
        );
        assert_eq!(
            judge(None, t).unwrap_err().to_string(),
            "the route has no parity counts; 0 of 100 required comparisons; no match rate yet"
        );
    }
}

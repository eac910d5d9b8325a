//! `strangler parity`: replays a corpus of requests against the legacy and the new
//! upstream of each request's route and compares the answers with the route's `compare`
//! rules: parity evidence before any real traffic reaches the new service.
//!
//! ```text
//! routes.toml --(Table::load)--------> Table ------------------------------\
//! --requests FILE --(corpus::load)--> [CorpusRequest] --(plan: pure)--> [Planned]
//!   --(replay: both sides at once, bounded concurrency, a timeout per request)--> [Record]
//!   --(report::Run)--> table and failures on stdout, --junit FILE, --json FILE
//! ```
//!
//! Requests are routed exactly as the proxy routes them: the same [`normalize_path`] (a
//! path it would refuse with 400 is an error for that request), the same
//! [`crate::router::RouteTable::lookup`], and the normalised path, after the route's
//! `strip_prefix` or `rewrite` and under each upstream URL's base path, is what both
//! upstreams get, with the route's `request_headers` and `host`; its `response_headers`
//! edit both answers before they are compared. Each request goes to its route's `legacy` and `new` upstreams; `--legacy` and
//! `--new` replace them for every request. A request without a new side (a route with no
//! `new`, or no route at all) is skipped and counted. With `--noise-sample F` a fraction F
//! of the requests, chosen by a hash of their position in the corpus (the same ones on
//! every run), is sent to legacy a second time so that fields legacy does not repeat
//! itself on count as noise rather than mismatches.
//!
//! A request with a divergence (its corpus line's `expect`, else the first of its route's
//! `compare.divergences` covering its method and routed path) is judged against it by
//! [`compare_expecting`]: `expected`, `resolved` (a failure) or `mismatch`.
//!
//! Writes are replayed as they are: a `POST` in the corpus reaches both sides once (only
//! safe requests are sampled for noise). Because a write changes what later requests read, a
//! request whose method is not safe ([`is_safe`]) waits for every earlier request and
//! finishes before any later one starts (unless `--concurrent-writes`); `--setup` runs a
//! command first (to reset both databases). With `--legacy-from`, legacy's answers are
//! the ones recorded in a file and only the new side is asked. Without a table (no
//! `--config`, no `./routes.toml`), every request goes to `--legacy` and `--new` under the
//! default route. Secrets never reach the output: request headers are
//! shown through [`redact_headers`], with every `--header` name treated as a secret too,
//! and differences in such headers show `[redacted]` values.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::corpus::{self, CorpusError, CorpusRequest};
use super::recorded;
use super::report::{DEFAULT_ROUTE, Expectation, Record, ReplayVerdict, ReportedRoute, Run};
use crate::config::{
    EvidenceIdentity, EvidenceSide, Forwarding, HeaderEdits, HostPolicy, LoadError, RouteConfig, base_path_of,
    under_base,
};
use crate::parity::{
    Captured, CompareRules, Divergence, Judged, REDACTED, compare_expecting, redact_diff, redact_headers,
};
use crate::path::normalize_path;
use crate::table::Table;

/// Largest response body read from one side; a larger one makes the request an error.
pub const MAX_BODY: usize = 10 << 20;

/// What `strangler parity` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The routing table: routes, upstreams and compare rules. `None`: `routes.toml` when
    /// there is one, else no table at all (every request to `--legacy` and `--new`).
    pub config: Option<PathBuf>,
    /// The corpus (JSON Lines or HAR); `None`: the `--legacy-from` file.
    pub requests: Option<PathBuf>,
    /// Replay only the requests of these routes (all when empty).
    pub routes: Vec<String>,
    /// Send every request's legacy side here instead (`http://host:port`).
    pub legacy: Option<String>,
    /// Send every request's new side here instead.
    pub new: Option<String>,
    /// `K: V` headers added to every request that does not set K itself.
    pub headers: Vec<String>,
    /// Share of requests also sent to legacy a second time, 0 to 1.
    pub noise_sample: f64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long one side may take for one request, body included.
    pub timeout: Duration,
    /// Write JUnit XML here.
    pub junit: Option<PathBuf>,
    /// Write the JSON report here.
    pub json: Option<PathBuf>,
    /// A shell command run before the replay (`sh -c`); failing aborts the run.
    pub setup: Option<String>,
    /// Replay unsafe methods (anything but GET, HEAD, OPTIONS, TRACE) concurrently like
    /// the rest, instead of one at a time in corpus order.
    pub concurrent_writes: bool,
    /// Compare the new side with the answers recorded in this file (HAR with responses,
    /// JSON Lines with `response`) instead of asking legacy.
    pub legacy_from: Option<PathBuf>,
}

/// Why a replay could not be run or reported (mismatches are not errors: see [`Run`]).
#[derive(Debug, thiserror::Error)]
pub enum ParityError {
    /// A bad command line.
    #[error("{0}")]
    Usage(String),
    /// The routing table is unusable.
    #[error("{0}")]
    Config(#[from] LoadError),
    /// The corpus is unusable.
    #[error("{0}")]
    Corpus(#[from] CorpusError),
    /// A report file could not be written.
    #[error("{file}: cannot write: {source}")]
    Write {
        /// The file.
        file: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// `--setup` failed: nothing was replayed.
    #[error("{0}")]
    Setup(String),
    /// The async runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// Writing to stdout failed.
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
}

impl ParityError {
    /// The process exit code: 2, "could not tell" (1 is kept for mismatches and errors).
    pub fn exit_code(&self) -> u8 {
        2
    }
}

/// One side of a replayed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// How messages name it: `upstream `legacy` (127.0.0.1:8001)`, `--new (…)`.
    pub label: String,
    /// Where it listens.
    pub authority: Authority,
    /// The base path of the table's upstream URL (without trailing `/`; `""` for none and
    /// for `--legacy`/`--new`): requests go under it, as the proxy sends them.
    pub base_path: String,
}

/// The upstreams given on the command line, replacing the table's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--legacy`.
    pub legacy: Option<Side>,
    /// `--new`.
    pub new: Option<Side>,
    /// `--legacy-from FILE`, as named: legacy's answers are the recorded ones.
    pub legacy_from: Option<String>,
}

/// What to do with one corpus request.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send it to both sides (`again`: to legacy a second time, for noise) and compare.
    Replay {
        /// The legacy side.
        legacy: Side,
        /// The new side.
        new: Side,
        /// Whether legacy also answers a second time.
        again: bool,
    },
    /// Not replayed: the route has no new side. Why.
    Skip(String),
    /// The proxy would refuse the request itself: an error. Why.
    Refuse(String),
    /// Its route was not named with `--route`: not replayed, not reported.
    Outside,
}

/// One corpus request, routed.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Line or entry in the corpus.
    pub line: usize,
    /// The route's name, or [`DEFAULT_ROUTE`].
    pub route: String,
    /// The method.
    pub method: Method,
    /// The normalised path and the query as routed and reported (as written when
    /// refused); the sides get [`Planned::upstream_target`].
    pub target: String,
    /// Every header sent: the corpus's, then `--header` defaults.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The route's compare rules.
    pub rules: Arc<CompareRules>,
    /// What to do.
    pub action: Action,
    /// What both sides get before their base path: `target` after the route's
    /// `strip_prefix` or `rewrite`, as the proxy sends it.
    pub upstream_target: String,
    /// The route's `host`: with `upstream`, each side gets its own authority as `Host`.
    pub host: HostPolicy,
    /// The route's `response_headers`, applied to both answers before they are compared
    /// (the client would get them so).
    pub response_headers: HeaderEdits,
    /// The divergence the answers are judged against: the corpus line's `expect`, else the
    /// first of the route's `compare.divergences` that covers the request.
    pub expect: Option<Arc<Divergence>>,
    /// The corpus's `name` for it, if any (reports make one up otherwise).
    pub name: Option<String>,
    /// Legacy's recorded answer (`--legacy-from`): legacy is not asked.
    pub recorded: Option<Captured>,
}

/// Routes every corpus request as the proxy would and decides what to do with it. Pure.
///
/// `only`: the `--route` names (empty: all routes); `defaults`: the `--header` headers,
/// added where a request does not set (or explicitly unset) that header.
pub fn plan(
    table: &Table,
    corpus: Vec<CorpusRequest>,
    overrides: &Overrides,
    only: &[String],
    defaults: &[(HeaderName, HeaderValue)],
    noise_sample: f64,
) -> Vec<Planned> {
    let config = &table.config;
    let side_of = |name: &str| {
        config.upstreams.get(name).and_then(|u| {
            let authority = u.url.authority()?.clone();
            Some(Side {
                label: format!("upstream `{name}` ({authority})"),
                authority,
                base_path: base_path_of(&u.url).to_owned(),
            })
        })
    };
    let default_rules = Arc::new(CompareRules::default());
    corpus
        .into_iter()
        .enumerate()
        .map(|(index, request)| {
            let mut planned = unrouted(request, defaults, &default_rules);
            if planned.method == Method::CONNECT {
                planned.action = Action::Refuse("the proxy answers CONNECT with 405 itself".to_owned());
                return planned;
            }
            let written = planned.target.clone();
            let (path, query) = match written.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (written.as_str(), None),
            };
            let normalized = match normalize_path(path) {
                Ok(normalized) => normalized.into_owned(),
                Err(e) => {
                    planned.action = Action::Refuse(format!("the proxy answers 400 itself: bad request path: {e}"));
                    return planned;
                }
            };
            let matched = table.routes.lookup(&planned.method, &normalized);
            planned.target = match query {
                Some(query) => format!("{normalized}?{query}"),
                None => normalized,
            };
            let route = matched.and_then(|m| config.routes.get(m.route));
            planned.upstream_target = planned.target.clone();
            if let Some(route) = route {
                planned.route = route.name.clone();
                planned.rules = route.compare.clone();
                if planned.expect.is_none() {
                    let name = planned.name.clone().unwrap_or_else(|| {
                        super::corpus::default_name(planned.method.as_str(), &planned.target, planned.line)
                    });
                    planned.expect = route
                        .compare
                        .divergence_for(&planned.method, &planned.target, &name)
                        .cloned();
                }
                forward_as_routed(&mut planned, &route.forwarding);
            }
            if !only.is_empty() && !route.is_some_and(|r| only.contains(&r.name)) {
                return planned;
            }
            let legacy_name = route.map_or(config.proxy.default_upstream.as_str(), |r| r.legacy.as_str());
            let legacy = match &overrides.legacy_from {
                Some(file) => planned.recorded.is_some().then(|| recorded_side(file, planned.line)),
                None => overrides.legacy.clone().or_else(|| side_of(legacy_name)),
            };
            let new = overrides
                .new
                .clone()
                .or_else(|| route.and_then(|r| r.new.as_deref()).and_then(side_of));
            planned.action = match (legacy, new) {
                (Some(legacy), Some(new)) => Action::Replay {
                    legacy,
                    new,
                    // A recorded answer cannot be asked for a second time, and a write
                    // sent twice would change legacy twice.
                    again: overrides.legacy_from.is_none() && is_safe(&planned.method) && sampled(index, noise_sample),
                },
                (None, _) => Action::Refuse(match &overrides.legacy_from {
                    Some(file) => format!("no recorded answer for it in {file}"),
                    None => format!("no upstream `{legacy_name}` in the table"),
                }),
                (Some(_), None) => Action::Skip(match route {
                    Some(r) => format!("route `{}` has no new upstream", r.name),
                    None => format!(
                        "no route matches: the default upstream `{legacy_name}` has no new side (give --new to compare)"
                    ),
                }),
            };
            planned
        })
        .collect()
}

/// A corpus request before routing: its `--header` defaults added (where it does not set
/// or explicitly unset them), under the default route and rules, nothing decided yet.
fn unrouted(request: CorpusRequest, defaults: &[(HeaderName, HeaderValue)], rules: &Arc<CompareRules>) -> Planned {
    let mut headers = request.headers;
    for (name, value) in defaults {
        if !request.without.contains(name) && !headers.contains_key(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    for name in &request.without {
        headers.remove(name);
    }
    Planned {
        line: request.line,
        route: DEFAULT_ROUTE.to_owned(),
        method: request.method,
        target: request.target,
        headers,
        body: request.body,
        rules: rules.clone(),
        action: Action::Outside,
        upstream_target: String::new(),
        host: HostPolicy::Preserve,
        response_headers: HeaderEdits::default(),
        expect: request.expect,
        name: request.name,
        recorded: request.recorded,
    }
}

/// The legacy side of a request whose answer was recorded: never connected to.
fn recorded_side(file: &str, line: usize) -> Side {
    Side {
        label: format!("recorded answer ({file}:{line})"),
        authority: Authority::from_static("recorded.invalid"),
        base_path: String::new(),
    }
}

/// Applies a route's forwarding settings to a planned request as the proxy would: the
/// rewritten target, the request headers set and removed, the `host` policy and the
/// response edits kept for the answers.
fn forward_as_routed(planned: &mut Planned, forwarding: &Forwarding) {
    if let Ok(routed) = PathAndQuery::try_from(planned.target.as_str())
        && let Some(rewritten) = forwarding.rewrite.apply(&routed)
    {
        planned.upstream_target = rewritten.as_str().to_owned();
    }
    forwarding.request_headers.apply(&mut planned.headers);
    planned.host = forwarding.host;
    planned.response_headers = forwarding.response_headers.clone();
}

/// Whether the request at `index` is also sent to legacy a second time: a hash of the
/// index, so that the same requests are sampled on every run.
pub fn sampled(index: usize, fraction: f64) -> bool {
    if fraction >= 1.0 {
        return true;
    }
    if fraction <= 0.0 || fraction.is_nan() {
        return false;
    }
    let hash = twox_hash::XxHash64::oneshot(0x7061_7269_7479, &(index as u64).to_le_bytes());
    let unit = (hash >> 11) as f64 / (1u64 << 53) as f64;
    unit < fraction
}

/// How requests are sent.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long one side may take for one request, body included.
    pub timeout: Duration,
    /// Largest response body read.
    pub max_body: usize,
    /// Header names whose values are never shown (besides the usual secrets): the
    /// `--header` names.
    pub secret_headers: Vec<HeaderName>,
    /// Whether a request with an unsafe method ([`is_safe`]) waits for every earlier
    /// request to finish and is finished before any later one starts.
    pub ordered_writes: bool,
}

/// Whether `method` is safe in the sense of RFC 9110 §9.2.1 (GET, HEAD, OPTIONS, TRACE):
/// it changes nothing on the server, so it may run at the same time as others. Every
/// other method (POST and PATCH, which are not idempotent, but also PUT and DELETE, which
/// are idempotent yet change what a later request reads, and any unknown method) is a
/// write, replayed in corpus order.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

type ReplayClient = Client<HttpConnector, Full<Bytes>>;

/// Replays the planned requests; returns one record per request that is not
/// [`Action::Outside`], in corpus order. `progress` advances by one per request.
pub async fn replay(planned: Vec<Planned>, settings: Settings, progress: &ProgressBar) -> Vec<Record> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(settings.timeout));
    let client: ReplayClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let settings = Arc::new(settings);
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let planned: Vec<Planned> = planned.into_iter().filter(|p| p.action != Action::Outside).collect();
    let mut records: Vec<Option<Record>> = vec![None; planned.len()];
    let mut slots = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut lines = Vec::with_capacity(planned.len());
    for (slot, planned) in planned.into_iter().enumerate() {
        lines.push((
            planned.line,
            planned.route.clone(),
            planned.method.clone(),
            planned.target.clone(),
            planned.name.clone(),
        ));
        let headers = redact_headers(&planned.headers, &settings.secret_headers);
        let verdict = match &planned.action {
            Action::Skip(why) => Some(ReplayVerdict::Skipped(why.clone())),
            Action::Refuse(why) => Some(ReplayVerdict::Error(why.clone())),
            Action::Replay { .. } | Action::Outside => None,
        };
        if let Some(verdict) = verdict {
            records[slot] = Some(record_of(&planned, headers, (verdict, Vec::new()), Duration::ZERO));
            progress.inc(1);
            continue;
        }
        let write = settings.ordered_writes && !is_safe(&planned.method);
        if write {
            // Every earlier request finishes first.
            while let Some(done) = tasks.join_next_with_id().await {
                collect(done, &slots, &mut records, progress);
            }
        }
        // Bounded: a task is started only when a permit is free.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (client, settings) = (client.clone(), settings.clone());
        let handle = tasks.spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            let verdict = exchange(&client, &planned, &settings).await;
            record_of(&planned, headers, verdict, started.elapsed())
        });
        slots.insert(handle.id(), slot);
        if write {
            // And it finishes before any later one starts.
            while let Some(done) = tasks.join_next_with_id().await {
                collect(done, &slots, &mut records, progress);
            }
        }
        while let Some(done) = tasks.try_join_next_with_id() {
            collect(done, &slots, &mut records, progress);
        }
    }
    while let Some(done) = tasks.join_next_with_id().await {
        collect(done, &slots, &mut records, progress);
    }
    records
        .into_iter()
        .zip(lines)
        .map(|(record, (line, route, method, path, case_name))| {
            record.unwrap_or_else(|| Record {
                line,
                route,
                method: method.to_string(),
                path,
                headers: Vec::new(),
                verdict: ReplayVerdict::Error("the replay of this request failed (internal error)".to_owned()),
                expect: None,
                at: SystemTime::now(),
                elapsed: Duration::ZERO,
                case_name,
            })
        })
        .collect()
}

fn collect(
    done: Result<(tokio::task::Id, Record), tokio::task::JoinError>,
    slots: &HashMap<tokio::task::Id, usize>,
    records: &mut [Option<Record>],
    progress: &ProgressBar,
) {
    progress.inc(1);
    // A task that panicked leaves its slot empty; it is reported as an error.
    if let Ok((id, record)) = done
        && let Some(slot) = slots.get(&id).and_then(|&slot| records.get_mut(slot))
    {
        *slot = Some(record);
    }
}

/// The record of a request: its verdict and, with a divergence, each listed field that
/// was not as stated.
fn record_of(
    planned: &Planned,
    headers: Vec<(String, String)>,
    (verdict, unmet): (ReplayVerdict, Vec<String>),
    elapsed: Duration,
) -> Record {
    let expect = planned.expect.as_ref().map(|divergence| Expectation {
        reason: divergence.reason.clone(),
        unmet,
    });
    Record {
        line: planned.line,
        route: planned.route.clone(),
        method: planned.method.to_string(),
        path: planned.target.clone(),
        headers,
        verdict,
        expect,
        at: SystemTime::now(),
        elapsed,
        case_name: planned.name.clone(),
    }
}

/// Sends one request to both sides (and legacy again when sampled) and compares; with a
/// divergence, also the listed fields that were not as stated.
async fn exchange(client: &ReplayClient, planned: &Planned, settings: &Settings) -> (ReplayVerdict, Vec<String>) {
    match exchange_answers(client, planned, settings).await {
        Ok(answers) => judge(planned, answers, settings).await,
        Err(why) => (ReplayVerdict::Error(why), Vec::new()),
    }
}

/// The legacy answer, the new one and (when sampled) a second legacy one.
type Answers = (Captured, Captured, Option<Captured>);

/// Both sides' answers, and legacy's again when sampled; or why not.
async fn exchange_answers(client: &ReplayClient, planned: &Planned, settings: &Settings) -> Result<Answers, String> {
    let Action::Replay { legacy, new, again } = &planned.action else {
        return Err("not a replayed request".to_owned());
    };
    let (first, second) = match &planned.recorded {
        Some(recorded) => (Ok(recorded.clone()), fetch(client, new, planned, settings).await),
        None => {
            tokio::join!(
                fetch(client, legacy, planned, settings),
                fetch(client, new, planned, settings)
            )
        }
    };
    let (legacy_answer, new_answer) = match (first, second) {
        (Ok(l), Ok(n)) if planned.recorded.is_some() => {
            let n = recorded::redacted_like_recorded(&l, n);
            (l, n)
        }
        (Ok(l), Ok(n)) => (l, n),
        (l, n) => {
            let mut failures = Vec::new();
            if let Err(e) = l {
                failures.push(format!("legacy, {}: {e}", legacy.label));
            }
            if let Err(e) = n {
                failures.push(format!("new, {}: {e}", new.label));
            }
            return Err(failures.join("; "));
        }
    };
    let legacy_again = if *again {
        let answer = fetch(client, legacy, planned, settings)
            .await
            .map_err(|e| format!("legacy (second answer, for noise), {}: {e}", legacy.label))?;
        Some(answer)
    } else {
        None
    };
    Ok((legacy_answer, new_answer, legacy_again))
}

/// Compares the answers with the route's rules, and the request's divergence if any.
async fn judge(
    planned: &Planned,
    (legacy, new, legacy_again): Answers,
    settings: &Settings,
) -> (ReplayVerdict, Vec<String>) {
    let status = [legacy.status, new.status];
    let (rules, expect) = (planned.rules.clone(), planned.expect.clone());
    // Parsing two bodies of up to 10 MiB is CPU work: off the async workers.
    let judged = tokio::task::spawn_blocking(move || {
        compare_expecting(&rules, &legacy, &new, legacy_again.as_ref(), expect.as_deref())
    })
    .await;
    match judged {
        Ok(Judged { comparison, unmet }) => (
            ReplayVerdict::Compared {
                outcome: comparison.outcome,
                status,
                diffs: comparison
                    .diffs
                    .into_iter()
                    .map(|d| redact_diff(d, &settings.secret_headers))
                    .collect(),
                truncated: comparison.truncated,
            },
            unmet
                .into_iter()
                .map(|line| redact_unmet(line, &settings.secret_headers))
                .collect(),
        ),
        Err(e) => (ReplayVerdict::Error(format!("the comparison failed: {e}")), Vec::new()),
    }
}

/// An unmet statement about a `--header` header, values replaced by [`REDACTED`] (the
/// engine redacts the usual secrets itself).
fn redact_unmet(line: String, secret: &[HeaderName]) -> String {
    let name = line
        .strip_prefix("header:")
        .and_then(|rest| rest.split_once(": "))
        .map(|(name, _)| name);
    match name {
        Some(name) if secret.iter().any(|s| s.as_str() == name) => {
            format!("header:{name}: not as stated (values {REDACTED})")
        }
        _ => line,
    }
}

/// One side's answer, body read to the end (at most [`Settings::max_body`] bytes), within
/// the timeout.
async fn fetch(client: &ReplayClient, side: &Side, planned: &Planned, settings: &Settings) -> Result<Captured, String> {
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(side.authority.clone())
        .path_and_query(under_base(&side.base_path, &planned.upstream_target))
        .build()
        .map_err(|e| format!("cannot build the request URI: {e}"))?;
    let mut request = Request::new(Full::new(planned.body.clone()));
    *request.method_mut() = planned.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = planned.headers.clone();
    if planned.host == HostPolicy::Upstream
        && let Ok(host) = HeaderValue::from_str(side.authority.as_str())
    {
        request.headers_mut().insert(http::header::HOST, host);
    }
    let edits = planned.response_headers.clone();
    let max_body = settings.max_body;
    let work = async move {
        let response = client.request(request).await.map_err(|e| crate::error_line::of(&e))?;
        let (mut parts, body) = response.into_parts();
        edits.apply(&mut parts.headers);
        let body = Limited::new(body, max_body).collect().await.map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                format!("the answer's body is larger than {max_body} bytes")
            } else {
                format!("reading the body: {}", crate::error_line::of(&*e))
            }
        })?;
        Ok(Captured {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.to_bytes(),
        })
    };
    match tokio::time::timeout(settings.timeout, work).await {
        Ok(answer) => answer,
        Err(_) => Err(format!(
            "no whole answer within {}",
            humantime::format_duration(settings.timeout)
        )),
    }
}

/// `--legacy` / `--new`: `http://host:port` (or `host:port`), with an optional base path as
/// in an upstream's `url` (`http://host:port/app`: requests go under it).
pub fn parse_side(flag: &str, url: &str) -> Result<Side, ParityError> {
    let trimmed = url.trim().trim_end_matches('/');
    let full = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let bad = |why: &str| ParityError::Usage(format!("{flag} `{url}`: {why}"));
    let uri: Uri = full.parse().map_err(|_| bad("not a URL like http://127.0.0.1:8001"))?;
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(bad("must start with http:// (https upstreams are not supported)"));
    }
    if uri.query().is_some() {
        return Err(bad("must not have a query: requests keep their own"));
    }
    if let Some(problem) = crate::config::base_path_problem(uri.path()) {
        return Err(bad(&format!("its base {problem}")));
    }
    let authority = uri.authority().cloned().ok_or_else(|| bad("has no host"))?;
    let base_path = uri.path().trim_end_matches('/').to_owned();
    Ok(Side {
        label: format!("{flag} ({authority}{base_path})"),
        authority,
        base_path,
    })
}

/// `--header 'K: V'`.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), ParityError> {
    // The value is never quoted back: it is likely a secret.
    let bad = |why: String| ParityError::Usage(format!("--header: {why}"));
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| bad("expected `NAME: VALUE`".to_owned()))?;
    let name = name.trim();
    let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(format!("`{name}` is not a header name")))?;
    if corpus::is_connection_header(&parsed) {
        return Err(bad(format!("`{name}` is set by the replaying client itself")));
    }
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| bad(format!("the value of `{name}` has characters a header cannot carry")))?;
    Ok((parsed, value))
}

/// The routes of the report: those a request went to or `--route` named, in the table's
/// order, then [`DEFAULT_ROUTE`].
fn report_routes(table: &Table, records: &[Record], only: &[String], overrides: &Overrides) -> Vec<ReportedRoute> {
    let used = |name: &str| records.iter().any(|r| r.route == name);
    let mut rows: Vec<ReportedRoute> = table
        .config
        .routes
        .iter()
        .filter(|r| used(&r.name) || only.contains(&r.name))
        .map(|r| ReportedRoute {
            name: r.name.clone(),
            stage: Some(r.stage.as_str().to_owned()),
            identity: Some(replayed_identity(table, r, overrides)),
        })
        .collect();
    if used(DEFAULT_ROUTE) && !rows.iter().any(|r| r.name == DEFAULT_ROUTE) {
        rows.push(ReportedRoute {
            name: DEFAULT_ROUTE.to_owned(),
            stage: None,
            identity: None,
        });
    }
    rows
}

/// What `route`'s comparisons are evidence of: its identity in `table`, with the upstream
/// `--legacy` / `--new` put in place of the table's (named after the flag when the route
/// has no such upstream), and `recorded:FILE` for `--legacy-from`, so that a report of a
/// run against other addresses, or against recorded answers, matches no table that does
/// not have them.
fn replayed_identity(table: &Table, route: &RouteConfig, overrides: &Overrides) -> EvidenceIdentity {
    let mut identity = EvidenceIdentity::of(&table.config, route);
    let url = |side: &Side| match side.base_path.as_str() {
        "" => format!("http://{}/", side.authority),
        base => format!("http://{}{base}", side.authority),
    };
    if let Some(legacy) = &overrides.legacy {
        identity.legacy.url = url(legacy);
    }
    if let Some(file) = &overrides.legacy_from {
        // Recorded answers are not the table's legacy: evidence of another kind.
        identity.legacy.url = format!("recorded:{file}");
    }
    if let Some(new) = &overrides.new {
        let name = identity.new.take().map_or_else(|| "--new".to_owned(), |side| side.name);
        identity.new = Some(EvidenceSide { name, url: url(new) });
    }
    identity
}

/// Writes `--junit` and `--json`, when asked for, with placeholders' values concealed.
fn write_reports(options: &Options, run: &Run, placeholders: &corpus::Placeholders) -> Result<(), ParityError> {
    let write = |path: &PathBuf, text: String| {
        std::fs::write(path, placeholders.conceal(&text)).map_err(|source| ParityError::Write {
            file: path.display().to_string(),
            source,
        })
    };
    if let Some(path) = &options.junit {
        let xml = run.junit().map_err(|e| ParityError::Write {
            file: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        write(path, xml)?;
    }
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&run.json()).map_err(|e| ParityError::Write {
            file: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        write(path, text + "\n")?;
    }
    Ok(())
}

/// Runs `strangler parity`: loads the table and the corpus, runs `--setup`, replays,
/// writes `--junit` and `--json`, prints the table and every failure to `out`. The
/// progress bar is drawn on stderr when it is a terminal. Whether the run passed is
/// [`Run::failed`].
pub fn run(options: &Options, out: &mut dyn Write) -> Result<Run, ParityError> {
    check_numbers(options)?;
    let overrides = Overrides {
        legacy: options
            .legacy
            .as_deref()
            .map(|u| parse_side("--legacy", u))
            .transpose()?,
        new: options.new.as_deref().map(|u| parse_side("--new", u)).transpose()?,
        legacy_from: options.legacy_from.as_ref().map(|f| f.display().to_string()),
    };
    let defaults = options
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let (table, table_name) = load_table(options, &overrides)?;
    let known: Vec<&str> = table.config.routes.iter().map(|r| r.name.as_str()).collect();
    for name in &options.routes {
        if !known.contains(&name.as_str()) {
            return Err(ParityError::Usage(format!(
                "--route `{name}`: no such route in {table_name}; routes: {}",
                known.join(", ")
            )));
        }
    }
    let mut placeholders = corpus::Placeholders::default();
    let (corpus_file, corpus) = load_corpus(options, &mut placeholders)?;
    if let Some(command) = &options.setup {
        run_setup(command)?;
    }
    let planned = plan(
        &table,
        corpus,
        &overrides,
        &options.routes,
        &defaults,
        options.noise_sample,
    );
    let outside = planned.iter().filter(|p| p.action == Action::Outside).count();
    let settings = Settings {
        concurrency: options.concurrency,
        timeout: options.timeout,
        max_body: MAX_BODY,
        secret_headers: defaults.iter().map(|(name, _)| name.clone()).collect(),
        ordered_writes: !options.concurrent_writes,
    };
    let started = SystemTime::now();
    let records = replay_with_progress(planned, outside, settings)?;
    let run = Run {
        corpus: corpus_file,
        routes: report_routes(&table, &records, &options.routes, &overrides),
        records,
        outside,
        started,
    };
    let written = write_reports(options, &run, &placeholders);
    // The results are shown even when a report file cannot be written.
    let mut text = Vec::new();
    run.write_text(&mut text).map_err(ParityError::Output)?;
    out.write_all(placeholders.conceal(&String::from_utf8_lossy(&text)).as_bytes())
        .map_err(ParityError::Output)?;
    written.map(|()| run)
}

/// The numbers of the command line, checked.
fn check_numbers(options: &Options) -> Result<(), ParityError> {
    if !(0.0..=1.0).contains(&options.noise_sample) {
        return Err(ParityError::Usage(format!(
            "--noise-sample must be between 0 and 1, got {}",
            options.noise_sample
        )));
    }
    if options.concurrency == 0 {
        return Err(ParityError::Usage("--concurrency must be at least 1".to_owned()));
    }
    if options.timeout.is_zero() {
        return Err(ParityError::Usage("--timeout must be more than 0".to_owned()));
    }
    Ok(())
}

/// The table the run routes with, and how messages name it: `--config`, else
/// `routes.toml` when there is one, else none (an empty table: every request goes to
/// `--legacy` (or `--legacy-from`) and `--new`, under the default route).
fn load_table(options: &Options, overrides: &Overrides) -> Result<(Table, String), ParityError> {
    let default = std::path::Path::new("routes.toml");
    let path = match &options.config {
        Some(path) => Some(path.as_path()),
        None => default.exists().then_some(default),
    };
    if let Some(path) = path {
        return Ok((Table::load(path)?, path.display().to_string()));
    }
    if overrides.new.is_none() || (overrides.legacy.is_none() && overrides.legacy_from.is_none()) {
        return Err(ParityError::Usage(
            "no routes.toml here: give --config FILE, or both sides with --legacy URL (or --legacy-from FILE) and --new URL"
                .to_owned(),
        ));
    }
    // The one upstream a table must have; --legacy (or the recorded answers) replaces it.
    let table = Table::parse(NO_TABLE, "[upstreams.legacy]\nurl = \"http://127.0.0.1:9\"\n")
        .map_err(|e| ParityError::Config(LoadError::Invalid(e)))?;
    Ok((table, NO_TABLE.to_owned()))
}

/// How messages name the empty table of a run without routes.toml.
const NO_TABLE: &str = "(no routes.toml)";

/// The corpus (`--requests`, else the `--legacy-from` file) as named, with the recorded
/// answers of `--legacy-from` attached to its requests. Without `--legacy-from`, any
/// recorded answer in the corpus is left unused.
fn load_corpus(
    options: &Options,
    placeholders: &mut corpus::Placeholders,
) -> Result<(String, Vec<CorpusRequest>), ParityError> {
    let Some(file) = options.requests.as_ref().or(options.legacy_from.as_ref()) else {
        return Err(ParityError::Usage(
            "give --requests FILE or --legacy-from FILE".to_owned(),
        ));
    };
    let mut corpus = corpus::load_with(file, placeholders)?;
    match &options.legacy_from {
        None => corpus.iter_mut().for_each(|request| request.recorded = None),
        Some(from) if Some(from) != options.requests.as_ref() && options.requests.is_some() => {
            let recorded = corpus::load_with(from, placeholders)?;
            recorded::no_answers_refused(from, &recorded).map_err(ParityError::Usage)?;
            recorded::attach_recorded(&mut corpus, recorded);
        }
        Some(from) => recorded::no_answers_refused(from, &corpus).map_err(ParityError::Usage)?,
    }
    Ok((file.display().to_string(), corpus))
}

/// `--setup`: `sh -c COMMAND`, its output on stderr (stdout is the report's); anything
/// but exit 0 aborts the run.
fn run_setup(command: &str) -> Result<(), ParityError> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| ParityError::Setup(format!("--setup `{command}`: cannot run sh: {e}")))?;
    if status.success() {
        return Ok(());
    }
    Err(ParityError::Setup(match status.code() {
        Some(code) => format!("--setup `{command}` exited with {code}: nothing was replayed"),
        None => format!("--setup `{command}` was killed ({status}): nothing was replayed"),
    }))
}

/// Replays on a runtime of its own, with a progress bar on stderr when it is a terminal.
fn replay_with_progress(planned: Vec<Planned>, outside: usize, settings: Settings) -> Result<Vec<Record>, ParityError> {
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new((planned.len() - outside) as u64);
        if let Ok(style) = ProgressStyle::with_template("parity {bar:40} {pos}/{len} requests {elapsed}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ParityError::Runtime)?;
    let records = runtime.block_on(replay(planned, settings, &progress));
    progress.finish_and_clear();
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::parity::{Diff, REDACTED};

    const TABLE: &str = r#"[proxy]
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
methods = ["GET"]
stage = "new"
new = "thoughts"
compare = { ignore = ["/timestamp"] }

[[routes]]
name = "login"
exact = "/api/login/"
"#;

    fn request(method: &str, target: &str) -> CorpusRequest {
        CorpusRequest {
            line: 1,
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            target: target.to_owned(),
            headers: HeaderMap::new(),
            without: Vec::new(),
            body: Bytes::new(),
            expect: None,
            name: None,
            recorded: None,
        }
    }

    fn planned(corpus: Vec<CorpusRequest>, overrides: &Overrides, only: &[&str]) -> Vec<Planned> {
        let table = Table::parse("routes.toml", TABLE).unwrap();
        let only: Vec<String> = only.iter().map(|s| (*s).to_owned()).collect();
        plan(&table, corpus, overrides, &only, &[], 0.0)
    }

    fn side(label: &str, authority: &str) -> Side {
        Side {
            label: label.to_owned(),
            authority: authority.parse().unwrap(),
            base_path: String::new(),
        }
    }

    #[test]
    fn the_routes_rewrite_and_each_sides_base_path_are_planned() {
        let text = TABLE
            .replace("url = \"http://127.0.0.1:8001\"", "url = \"http://127.0.0.1:8001/app/\"")
            .replace(
                "compare = { ignore = [\"/timestamp\"] }",
                "strip_prefix = true\nhost = \"upstream\"\nrequest_headers = { set = { x-api = \"2\" }, remove = [\"cookie\"] }",
            );
        let table = Table::parse("routes.toml", &text).unwrap();
        let mut corpus = request("GET", "/api/thoughts/a/../5?x=1");
        corpus.headers.insert("cookie", HeaderValue::from_static("s=1"));
        let planned = plan(&table, vec![corpus], &Overrides::default(), &[], &[], 0.0);
        let planned = &planned[0];
        assert_eq!(planned.target, "/api/thoughts/5?x=1", "reported as routed");
        assert_eq!(planned.upstream_target, "/5?x=1");
        assert_eq!(planned.host, HostPolicy::Upstream);
        assert_eq!(planned.headers["x-api"], "2");
        assert!(!planned.headers.contains_key("cookie"));
        let Action::Replay { legacy, new, .. } = &planned.action else {
            panic!("{:?}", planned.action)
        };
        assert_eq!((legacy.base_path.as_str(), new.base_path.as_str()), ("/app", ""));
        // Without a route: the routed target, the default upstream's base.
        let other = plan(
            &table,
            vec![request("GET", "/x?y")],
            &Overrides::default(),
            &[],
            &[],
            0.0,
        );
        assert_eq!(other[0].upstream_target, "/x?y");
        assert_eq!(other[0].host, HostPolicy::Preserve);
    }

    #[test]
    fn the_reported_identity_is_the_tables_route_with_the_overrides_in_place() {
        let table = Table::parse("routes.toml", TABLE).unwrap();
        let route = &table.config.routes[0];
        let plain = replayed_identity(&table, route, &Overrides::default());
        assert_eq!(plain, EvidenceIdentity::of(&table.config, route));
        let overrides = Overrides {
            legacy: None,
            new: Some(side("--new (127.0.0.1:10)", "127.0.0.1:10")),
            legacy_from: None,
        };
        let moved = replayed_identity(&table, route, &overrides);
        let new = moved.new.as_ref().unwrap();
        assert_eq!(
            (new.name.as_str(), new.url.as_str()),
            ("thoughts", "http://127.0.0.1:10/")
        );
        assert_eq!(moved.legacy, plain.legacy);
        assert!(
            !moved.same_sides(&plain),
            "a run against another address is other evidence"
        );
        let recorded = Overrides {
            legacy_from: Some("golden.har".to_owned()),
            ..Overrides::default()
        };
        let recorded = replayed_identity(&table, route, &recorded);
        assert_eq!(recorded.legacy.url, "recorded:golden.har");
        assert!(!recorded.same_sides(&plain), "recorded answers are other evidence");
    }

    #[test]
    fn requests_are_routed_like_the_proxy_routes_them() {
        let got = planned(
            vec![
                request("GET", "//api//thoughts/./1/?search=a%2Fb"),
                request("GET", "/api/%2e%2e/%2e%2e/etc"),
                request("CONNECT", "/"),
                request("POST", "/api/thoughts/"),
                request("POST", "/api/login/"),
            ],
            &Overrides::default(),
            &[],
        );
        assert_eq!(got[0].route, "thoughts-api");
        assert_eq!(got[0].target, "/api/thoughts/1/?search=a%2Fb");
        assert_eq!(
            got[0].action,
            Action::Replay {
                legacy: side("upstream `legacy` (127.0.0.1:8001)", "127.0.0.1:8001"),
                new: side("upstream `thoughts` (127.0.0.1:8002)", "127.0.0.1:8002"),
                again: false,
            }
        );
        assert_eq!(got[1].route, DEFAULT_ROUTE);
        assert!(
            matches!(&got[1].action, Action::Refuse(why) if why.contains("400") && why.contains("above")),
            "{:?}",
            got[1].action
        );
        assert!(matches!(&got[2].action, Action::Refuse(why) if why.contains("405")));
        // POST is not a method of thoughts-api: the default upstream, no new side.
        assert_eq!(got[3].route, DEFAULT_ROUTE);
        assert!(matches!(&got[3].action, Action::Skip(why) if why.contains("no route matches")));
        assert_eq!(got[4].route, "login");
        assert_eq!(
            got[4].action,
            Action::Skip("route `login` has no new upstream".to_owned())
        );
    }

    #[test]
    fn overrides_send_everything_to_the_two_given_sides() {
        let overrides = Overrides {
            legacy: Some(side("--legacy (127.0.0.1:9)", "127.0.0.1:9")),
            new: Some(side("--new (127.0.0.1:10)", "127.0.0.1:10")),
            legacy_from: None,
        };
        let got = planned(
            vec![
                request("GET", "/api/thoughts/"),
                request("POST", "/api/login/"),
                request("GET", "/"),
            ],
            &overrides,
            &[],
        );
        for p in &got {
            match &p.action {
                Action::Replay { legacy, new, .. } => {
                    assert_eq!(
                        (legacy.authority.as_str(), new.authority.as_str()),
                        ("127.0.0.1:9", "127.0.0.1:10")
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            got.iter().map(|p| p.route.as_str()).collect::<Vec<_>>(),
            ["thoughts-api", "login", DEFAULT_ROUTE]
        );
    }

    #[test]
    fn only_the_named_routes_are_replayed() {
        let got = planned(
            vec![
                request("GET", "/api/thoughts/"),
                request("POST", "/api/login/"),
                request("GET", "/"),
                request("GET", "/%2f"),
            ],
            &Overrides::default(),
            &["thoughts-api"],
        );
        assert!(matches!(got[0].action, Action::Replay { .. }));
        assert_eq!(got[1].action, Action::Outside);
        assert_eq!(got[2].action, Action::Outside);
        // A path the proxy refuses is an error whatever the filter: no route can own it.
        assert!(matches!(got[3].action, Action::Refuse(_)));
    }

    #[test]
    fn header_defaults_fill_in_but_never_override() {
        let table = Table::parse("routes.toml", TABLE).unwrap();
        let mut own = request("GET", "/api/thoughts/");
        own.headers
            .insert("authorization", HeaderValue::from_static("Bearer own"));
        let mut without = request("GET", "/api/thoughts/");
        without.without.push(http::header::AUTHORIZATION);
        let plain = request("GET", "/api/thoughts/");
        let defaults = [
            parse_header("Authorization: Bearer given").unwrap(),
            parse_header("x-extra:1").unwrap(),
        ];
        let got = plan(
            &table,
            vec![own, without, plain],
            &Overrides::default(),
            &[],
            &defaults,
            0.0,
        );
        let auth = |p: &Planned| p.headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(auth(&got[0]).as_deref(), Some("Bearer own"));
        assert_eq!(auth(&got[1]), None);
        assert_eq!(auth(&got[2]).as_deref(), Some("Bearer given"));
        assert!(got.iter().all(|p| p.headers["x-extra"] == "1"));
    }

    #[test]
    fn noise_sampling_is_deterministic_and_proportional() {
        assert!((0..100).all(|i| sampled(i, 1.0)));
        assert!((0..100).all(|i| !sampled(i, 0.0)));
        let picked: Vec<usize> = (0..10_000).filter(|&i| sampled(i, 0.25)).collect();
        let again: Vec<usize> = (0..10_000).filter(|&i| sampled(i, 0.25)).collect();
        assert_eq!(picked, again);
        assert!((2_200..2_800).contains(&picked.len()), "{}", picked.len());
    }

    #[test]
    fn command_line_values_are_checked() {
        assert_eq!(parse_side("--new", "127.0.0.1:9/").unwrap().authority, "127.0.0.1:9");
        assert_eq!(
            parse_side("--new", "http://localhost:9").unwrap().label,
            "--new (localhost:9)"
        );
        let based = parse_side("--legacy", "http://x:1/app/").unwrap();
        assert_eq!(
            (based.base_path.as_str(), based.label.as_str()),
            ("/app", "--legacy (x:1/app)")
        );
        for (url, why) in [
            ("https://x:1", "https"),
            ("http://x:1/a/../b", "base"),
            ("http://x:1/?a=1", "query"),
        ] {
            let e = parse_side("--legacy", url).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--legacy `{url}`")) && e.contains(why), "{e}");
        }
        let e = parse_header("Authorization Bearer secret").unwrap_err().to_string();
        assert!(!e.contains("secret") && e.contains("NAME: VALUE"), "{e}");
        let e = parse_header("x y: 1").unwrap_err().to_string();
        assert!(e.contains("`x y` is not a header name"), "{e}");
        assert!(parse_header("content-length: 5").is_err());
    }

    #[test]
    fn secret_headers_are_redacted_in_unmet_statements() {
        let secret = [HeaderName::from_static("x-api-key")];
        let line = "header:x-api-key: stated legacy a new b, got legacy k1 new k2".to_owned();
        let redacted = redact_unmet(line, &secret);
        assert!(!redacted.contains("k1") && redacted.contains(REDACTED), "{redacted}");
        let plain = "header:x-other: stated legacy a new b, got legacy k1 new k2".to_owned();
        assert_eq!(redact_unmet(plain.clone(), &secret), plain);
        let status = "status: stated legacy 500 new 401, got legacy 500 new 403".to_owned();
        assert_eq!(redact_unmet(status.clone(), &secret), status);
    }

    #[test]
    fn secret_headers_are_redacted_in_diffs() {
        let diff = |pointer: &str| Diff {
            pointer: pointer.to_owned(),
            legacy: "a=1".to_owned(),
            new: crate::parity::ABSENT.to_owned(),
        };
        let extra = [HeaderName::from_static("x-api-key")];
        for pointer in ["header:set-cookie", "header:x-api-key", "header:authorization"] {
            let d = redact_diff(diff(pointer), &extra);
            assert_eq!(
                (d.legacy.as_str(), d.new.as_str()),
                (REDACTED, crate::parity::ABSENT),
                "{pointer}"
            );
        }
        for pointer in ["header:content-type", "/set-cookie", "status"] {
            assert_eq!(redact_diff(diff(pointer), &extra).legacy, "a=1", "{pointer}");
        }
    }

    #[test]
    fn writes_are_never_sent_to_legacy_twice() {
        let table = Table::parse("routes.toml", TABLE).unwrap();
        let overrides = Overrides {
            legacy: Some(side("--legacy (127.0.0.1:9)", "127.0.0.1:9")),
            new: Some(side("--new (127.0.0.1:10)", "127.0.0.1:10")),
            legacy_from: None,
        };
        let got = plan(
            &table,
            vec![request("GET", "/api/thoughts/"), request("POST", "/api/thoughts/")],
            &overrides,
            &[],
            &[],
            1.0,
        );
        let again: Vec<bool> = got
            .iter()
            .map(|p| matches!(p.action, Action::Replay { again: true, .. }))
            .collect();
        assert_eq!(again, [true, false]);
    }

    #[test]
    fn only_safe_methods_run_alongside_others() {
        for method in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(is_safe(&Method::from_bytes(method.as_bytes()).unwrap()), "{method}");
        }
        for method in ["POST", "PATCH", "PUT", "DELETE", "PURGE"] {
            assert!(!is_safe(&Method::from_bytes(method.as_bytes()).unwrap()), "{method}");
        }
    }

    fn answered(method: &str, target: &str, status: u16) -> CorpusRequest {
        CorpusRequest {
            recorded: Some(Captured::new(http::StatusCode::from_u16(status).unwrap(), "")),
            ..request(method, target)
        }
    }

    #[test]
    fn recorded_answers_are_paired_by_method_and_path_once_each() {
        let mut corpus = vec![
            request("GET", "/a"),
            request("POST", "/a"),
            request("GET", "/a"),
            request("GET", "/a"),
        ];
        let recorded = vec![
            answered("GET", "/a", 200),
            request("POST", "/a"),
            answered("GET", "/a", 201),
            answered("POST", "/a", 202),
        ];
        super::recorded::attach_recorded(&mut corpus, recorded);
        let statuses: Vec<Option<u16>> = corpus.iter().map(|r| r.recorded.as_ref().map(|a| a.status)).collect();
        assert_eq!(statuses, [Some(200), Some(202), Some(201), None]);
    }

    #[test]
    fn recorded_answers_replace_the_legacy_side() {
        let overrides = Overrides {
            legacy: None,
            new: Some(side("--new (127.0.0.1:10)", "127.0.0.1:10")),
            legacy_from: Some("golden.har".to_owned()),
        };
        let mut sampled = answered("GET", "/api/thoughts/", 200);
        sampled.line = 3;
        let got = planned(vec![sampled, request("GET", "/x")], &overrides, &[]);
        let Action::Replay { legacy, new, again } = &got[0].action else {
            panic!("{:?}", got[0].action)
        };
        assert_eq!(legacy.label, "recorded answer (golden.har:3)");
        assert_eq!(new.authority, "127.0.0.1:10");
        assert!(!again);
        assert_eq!(got[0].recorded.as_ref().map(|a| a.status), Some(200));
        assert_eq!(
            got[1].action,
            Action::Refuse("no recorded answer for it in golden.har".to_owned())
        );
    }
}

//! Is an upstream worth sending to? Active health checks, passive outlier detection (a
//! circuit breaker fed by real traffic) and the retry budget, per upstream.
//!
//! The request path asks one question, [`UpstreamHealth::admit`], which costs an atomic
//! load while the upstream is fine, and reports every exchange's outcome with
//! [`UpstreamHealth::record`], which costs another. Everything else (ejecting, half-open
//! probing, health-check bookkeeping) takes a lock, but only on failures and state changes.
//!
//! - **Passive** (on for upstreams with `[upstreams.NAME.outlier]`): `consecutive_failures` failures in a row (connect error,
//!   timeout, reset, or a 5xx answer), all within `interval`, eject the upstream for
//!   `base_ejection`, doubled for every further ejection in a row up to `max_ejection`.
//!   While ejected, requests fail fast (503) or, on routes with `fallback = true`, go to
//!   legacy. When the ejection ends, one request at a time is let through as a probe
//!   (half-open): it closes the circuit if it succeeds and re-ejects if it fails.
//! - **Active** (only with `[upstreams.NAME.health]`): a `GET path` every `interval`;
//!   `unhealthy_threshold` failures in a row mark the upstream unhealthy (it gets no
//!   traffic), `healthy_threshold` passes in a row mark it healthy again.
//! - **Retry budget**: every request admitted deposits `retry_budget` of a token, every
//!   retry withdraws a whole one, and the balance is capped, so retries stay within that
//!   share of the traffic (plus a small burst) and never multiply an outage.
//!
//! The state outlives reloads: a snapshot whose upstream keeps its URL and these settings
//! reuses the previous [`UpstreamHealth`].

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Instant, SystemTime};

use http::{Method, Request, StatusCode};
use prometheus::{IntCounter, IntGauge, IntGaugeVec};

use crate::config::{HealthCheckConfig, OutlierConfig, UpstreamConfig};
use crate::metrics::Metrics;
use crate::upstream::body::RequestBody;
use crate::upstream::pool::ConnectionPool;

/// Retry tokens are kept in thousandths; the balance never exceeds this many tokens.
const RETRY_BURST: u64 = 10;

/// What the active health check last concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No health check configured, or none has finished yet.
    Unknown,
    /// Passing.
    Healthy,
    /// Failing: the upstream gets no traffic.
    Unhealthy,
}

impl Verdict {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Verdict::Healthy,
            2 => Verdict::Unhealthy,
            _ => Verdict::Unknown,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Verdict::Unknown => 0,
            Verdict::Healthy => 1,
            Verdict::Unhealthy => 2,
        }
    }
}

/// Why a request is not sent to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Ejected by outlier detection, until the given time.
    Ejected,
    /// Its health check fails.
    Unhealthy,
}

impl Unavailable {
    /// A few words for the response body and the log.
    pub fn describe(self) -> &'static str {
        match self {
            Unavailable::Ejected => "is ejected after repeated failures and was not tried",
            Unavailable::Unhealthy => "fails its health check and was not tried",
        }
    }
}

/// Permission to send one request; a probe must report its outcome (dropping it unreported
/// lets the next request probe instead).
#[derive(Debug)]
#[must_use]
pub struct Ticket {
    probe: Option<Arc<UpstreamHealth>>,
}

impl Ticket {
    /// Whether this request is the half-open probe.
    #[cfg(test)]
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(health) = self.probe.take() {
            // Never resolved (the client went away): let another request probe.
            if let Ok(mut passive) = health.passive.lock() {
                passive.probing = false;
            }
        }
    }
}

#[derive(Debug)]
struct Passive {
    /// Failures in the current run, and when the run started.
    run: u32,
    run_started: Instant,
    /// Set while ejected.
    ejected_until: Option<Instant>,
    ejected_until_wall: Option<SystemTime>,
    /// Ejections in a row (reset by a successful probe); sets the back-off.
    ejections: u32,
    /// A half-open probe is in flight.
    probing: bool,
}

#[derive(Debug, Default)]
struct Active {
    passes: u32,
    failures: u32,
    last_check: Option<SystemTime>,
    last_error: Option<String>,
}

/// The health of one upstream, shared by every worker and by the snapshots that use it.
#[derive(Debug)]
pub struct UpstreamHealth {
    name: String,
    url: http::Uri,
    check: Option<HealthCheckConfig>,
    outlier: OutlierConfig,
    retry_budget_permille: u32,
    /// Fast path: true while ejected or half-open.
    ejected: AtomicBool,
    /// Fast path: failures in the current run (0 in steady state).
    failing: AtomicU32,
    verdict: AtomicU8,
    passive: Mutex<Passive>,
    active: Mutex<Active>,
    /// Retry tokens, in thousandths.
    retry_tokens: AtomicU64,
    checker_started: AtomicBool,
    /// The pool the active checks use: replaced on a reload that keeps this state but
    /// changes how connections are made (TLS files, timeouts, HTTP/2), so that the running
    /// checker follows it.
    check_pool: arc_swap::ArcSwapOption<ConnectionPool>,
    /// `strangler_upstream_healthy`; its series appears with the first verdict.
    healthy_gauge: Option<IntGaugeVec>,
    ejected_gauge: IntGauge,
    retries: IntCounter,
}

/// One upstream's health at one moment: plain data, which the admin API turns into its
/// document (`GET /admin/upstreams`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamReport {
    /// Upstream name.
    pub name: String,
    /// Its URL.
    pub url: http::Uri,
    /// An active health check is configured.
    pub checked: bool,
    /// The active check's verdict.
    pub verdict: Verdict,
    /// When the active check last ran.
    pub last_check: Option<SystemTime>,
    /// Why it last failed (cleared by a pass).
    pub last_check_error: Option<String>,
    /// Until when it is ejected (passive check); `None` when it is not, or no longer is.
    /// Stays set while the half-open probe is in flight.
    pub ejected_until: Option<SystemTime>,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
}

impl UpstreamHealth {
    /// Fresh state for `config`, registering its metric series.
    pub fn new(config: &UpstreamConfig, metrics: &Metrics) -> Arc<Self> {
        let name = config.name.as_str();
        let ejected_gauge = metrics.upstream_ejected.with_label_values(&[name]);
        ejected_gauge.set(0);
        // A verdict an earlier state of this name (another address) left behind is not this
        // one's: the series comes back with this state's first verdict.
        let _ = metrics.upstream_healthy.remove_label_values(&[name]);
        Arc::new(Self {
            name: config.name.clone(),
            url: config.url.clone(),
            check: config.health.clone(),
            outlier: config.outlier.clone(),
            retry_budget_permille: config.retry_budget_permille,
            ejected: AtomicBool::new(false),
            failing: AtomicU32::new(0),
            verdict: AtomicU8::new(Verdict::Unknown.as_u8()),
            passive: Mutex::new(Passive {
                run: 0,
                run_started: Instant::now(),
                ejected_until: None,
                ejected_until_wall: None,
                ejections: 0,
                probing: false,
            }),
            active: Mutex::new(Active::default()),
            retry_tokens: AtomicU64::new(RETRY_BURST * 1000),
            checker_started: AtomicBool::new(false),
            check_pool: arc_swap::ArcSwapOption::empty(),
            healthy_gauge: config.health.as_ref().map(|_| metrics.upstream_healthy.clone()),
            ejected_gauge,
            retries: metrics.retries.with_label_values(&[name]),
        })
    }

    /// Whether `config` can keep using this state across a reload.
    pub fn fits(&self, config: &UpstreamConfig) -> bool {
        self.url == config.url
            && self.check == config.health
            && self.outlier == config.outlier
            && self.retry_budget_permille == config.retry_budget_permille
    }

    /// Whether a request may go to this upstream now. While it is ejected and the ejection
    /// has run out, the first caller gets the half-open probe ticket.
    #[inline]
    pub fn admit(self: &Arc<Self>) -> Result<Ticket, Unavailable> {
        self.deposit_retry_share();
        if self.verdict.load(Ordering::Relaxed) == Verdict::Unhealthy.as_u8() {
            return Err(Unavailable::Unhealthy);
        }
        if !self.ejected.load(Ordering::Acquire) {
            return Ok(Ticket { probe: None });
        }
        let Ok(mut passive) = self.passive.lock() else {
            return Ok(Ticket { probe: None });
        };
        match passive.ejected_until {
            Some(until) if Instant::now() < until => Err(Unavailable::Ejected),
            _ if passive.probing => Err(Unavailable::Ejected),
            _ => {
                passive.probing = true;
                Ok(Ticket {
                    probe: Some(self.clone()),
                })
            }
        }
    }

    /// Whether requests would be turned away now (no probe ticket is taken).
    pub fn unavailable(&self) -> Option<Unavailable> {
        if self.verdict.load(Ordering::Relaxed) == Verdict::Unhealthy.as_u8() {
            return Some(Unavailable::Unhealthy);
        }
        if !self.ejected.load(Ordering::Acquire) {
            return None;
        }
        let passive = self.passive.lock().ok()?;
        match passive.ejected_until {
            Some(until) if Instant::now() < until => Some(Unavailable::Ejected),
            _ if passive.probing => Some(Unavailable::Ejected),
            _ => None,
        }
    }

    /// Reports how an admitted exchange went: `true` for any answer below 500.
    #[inline]
    pub fn record(&self, mut ticket: Ticket, success: bool) {
        let probe = ticket.probe.take().is_some();
        if success && !probe && self.failing.load(Ordering::Relaxed) == 0 {
            return;
        }
        if !self.outlier.enabled && !probe {
            return;
        }
        let Ok(mut passive) = self.passive.lock() else { return };
        let now = Instant::now();
        if probe {
            passive.probing = false;
        }
        if success {
            passive.run = 0;
            self.failing.store(0, Ordering::Relaxed);
            if probe {
                passive.ejected_until = None;
                passive.ejected_until_wall = None;
                passive.ejections = 0;
                self.ejected.store(false, Ordering::Release);
                self.ejected_gauge.set(0);
                tracing::info!(upstream = %self.name, "upstream answered its probe; back in service");
            }
            return;
        }
        if passive.run == 0 || now.duration_since(passive.run_started) > self.outlier.interval {
            passive.run = 0;
            passive.run_started = now;
        }
        passive.run = passive.run.saturating_add(1);
        self.failing.store(passive.run, Ordering::Relaxed);
        let already_out = passive.ejected_until.is_some_and(|until| now < until);
        if probe || (!already_out && passive.run >= self.outlier.consecutive_failures) {
            let exponent = passive.ejections.min(16);
            let length = self
                .outlier
                .base_ejection
                .saturating_mul(1 << exponent)
                .min(self.outlier.max_ejection);
            passive.ejections = passive.ejections.saturating_add(1);
            passive.ejected_until = Some(now + length);
            passive.ejected_until_wall = Some(SystemTime::now() + length);
            self.ejected.store(true, Ordering::Release);
            self.ejected_gauge.set(1);
            tracing::warn!(
                upstream = %self.name,
                failures = passive.run,
                ejection_ms = length.as_millis() as u64,
                probe,
                "upstream ejected: requests fail fast or fall back until it answers a probe"
            );
        }
    }

    /// Takes a retry token if the budget has one.
    pub fn try_retry(&self) -> bool {
        let taken = self
            .retry_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tokens| tokens.checked_sub(1000))
            .is_ok();
        if taken {
            self.retries.inc();
        }
        taken
    }

    #[inline]
    fn deposit_retry_share(&self) {
        let share = u64::from(self.retry_budget_permille);
        if share == 0 {
            return;
        }
        // A plain load first: in steady state the bucket is full and nothing is written.
        if self.retry_tokens.load(Ordering::Relaxed) >= RETRY_BURST * 1000 {
            return;
        }
        let _ = self
            .retry_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tokens| {
                Some((tokens + share).min(RETRY_BURST * 1000))
            });
    }

    /// The active verdict.
    pub fn verdict(&self) -> Verdict {
        Verdict::from_u8(self.verdict.load(Ordering::Relaxed))
    }

    /// Its health now, for `GET /admin/upstreams`.
    pub fn report(&self) -> UpstreamReport {
        let (ejected_until, consecutive_failures) = match self.passive.lock() {
            Ok(passive) => (
                passive
                    .ejected_until
                    .zip(passive.ejected_until_wall)
                    .filter(|(until, _)| Instant::now() < *until || passive.probing)
                    .map(|(_, wall)| wall),
                passive.run,
            ),
            Err(_) => (None, 0),
        };
        let (last_check, last_check_error) = match self.active.lock() {
            Ok(active) => (active.last_check, active.last_error.clone()),
            Err(_) => (None, None),
        };
        UpstreamReport {
            name: self.name.clone(),
            url: self.url.clone(),
            checked: self.check.is_some(),
            verdict: self.verdict(),
            last_check,
            last_check_error,
            ejected_until,
            consecutive_failures,
        }
    }

    /// Sets the pool the active checks use from their next check on.
    pub fn use_check_pool(&self, pool: Arc<ConnectionPool>) {
        self.check_pool.store(Some(pool));
    }

    /// The pool the active checks use now.
    pub fn check_pool(&self) -> Option<Arc<ConnectionPool>> {
        self.check_pool.load_full()
    }

    /// Starts the active checker on `runtime` (once; a no-op without `[health]`). The task
    /// holds only a weak reference and ends when no snapshot uses this upstream any more.
    pub fn start_checker(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let Some(check) = self.check.clone() else { return };
        if self.checker_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        runtime.spawn(run_checks(weak, check));
    }

    fn note_check(&self, check: &HealthCheckConfig, outcome: Result<StatusCode, String>) {
        let Ok(mut active) = self.active.lock() else { return };
        active.last_check = Some(SystemTime::now());
        let before = self.verdict();
        let after = match outcome {
            Ok(_) => {
                active.passes = active.passes.saturating_add(1);
                active.failures = 0;
                active.last_error = None;
                match before {
                    // Until a verdict, traffic flows: one pass is enough to say healthy, and
                    // it takes `unhealthy_threshold` failures to say unhealthy.
                    Verdict::Unknown => Verdict::Healthy,
                    Verdict::Unhealthy if active.passes >= check.healthy_threshold => Verdict::Healthy,
                    other => other,
                }
            }
            Err(reason) => {
                active.failures = active.failures.saturating_add(1);
                active.passes = 0;
                active.last_error = Some(reason);
                match before {
                    Verdict::Unknown | Verdict::Healthy if active.failures >= check.unhealthy_threshold => {
                        Verdict::Unhealthy
                    }
                    other => other,
                }
            }
        };
        if after != before {
            self.verdict.store(after.as_u8(), Ordering::Relaxed);
            if let Some(gauge) = &self.healthy_gauge {
                gauge
                    .with_label_values(&[self.name.as_str()])
                    .set(i64::from(after == Verdict::Healthy));
            }
            match after {
                Verdict::Unhealthy => tracing::warn!(
                    upstream = %self.name,
                    error = active.last_error.as_deref().unwrap_or(""),
                    "upstream failed its health check; it gets no traffic"
                ),
                _ => tracing::info!(upstream = %self.name, "upstream passes its health check"),
            }
        }
    }
}

/// The checker loop: check, wait `interval`, again, until the upstream is gone.
async fn run_checks(health: Weak<UpstreamHealth>, check: HealthCheckConfig) {
    let mut ticker = tokio::time::interval(check.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some((url, pool)) = health.upgrade().and_then(|h| Some((h.url.clone(), h.check_pool()?))) else {
            return;
        };
        let outcome = check_once(&pool, &check, &url).await;
        match health.upgrade() {
            Some(health) => health.note_check(&check, outcome),
            None => return,
        }
    }
}

/// One check: `GET path` (under the base path of the upstream's `url`, as every request
/// to it), 2xx or 3xx within `timeout` passes.
async fn check_once(
    pool: &Arc<ConnectionPool>,
    check: &HealthCheckConfig,
    url: &http::Uri,
) -> Result<StatusCode, String> {
    let mut request = Request::new(RequestBody::Buffered(None));
    *request.method_mut() = Method::GET;
    *request.uri_mut() = match crate::config::base_path_of(url) {
        "" => http::Uri::from(check.path.clone()),
        base => http::Uri::try_from(crate::config::under_base(base, check.path.as_str()))
            .unwrap_or_else(|_| http::Uri::from(check.path.clone())),
    };
    let headers = request.headers_mut();
    if let Some(authority) = url.authority()
        && let Ok(host) = http::HeaderValue::from_str(authority.as_str())
    {
        headers.insert(http::header::HOST, host);
    }
    headers.insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static("strangler-health-check"),
    );
    let exchange = async {
        let (response, lease) = pool.send(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        // Read the (small) body so that the connection can be reused.
        let body = http_body_util::Limited::new(response.into_body(), 64 * 1024);
        if http_body_util::BodyExt::collect(body).await.is_ok() {
            lease.give_back();
        }
        Ok::<_, String>(status)
    };
    match tokio::time::timeout(check.timeout, exchange).await {
        Ok(Ok(status)) if status.is_success() || status.is_redirection() => Ok(status),
        Ok(Ok(status)) => Err(format!("answered {status}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(check.timeout)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(consecutive: u32, base_ms: u64) -> UpstreamConfig {
        UpstreamConfig {
            name: "new".to_owned(),
            url: http::Uri::from_static("http://127.0.0.1:9"),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            pool_idle_timeout: Duration::from_secs(1),
            pool_max_idle: 256,
            health: None,
            outlier: OutlierConfig {
                enabled: true,
                consecutive_failures: consecutive,
                interval: Duration::from_secs(60),
                base_ejection: Duration::from_millis(base_ms),
                max_ejection: Duration::from_millis(base_ms * 4),
            },
            retry_budget_permille: 200,
            max_connections: None,
            http2: false,
            tls: None,
            read_timeout: Duration::from_secs(60),
        }
    }

    fn fail(health: &Arc<UpstreamHealth>) {
        let ticket = health.admit().expect("admitted");
        health.record(ticket, false);
    }

    #[test]
    fn ejects_after_consecutive_failures_only() {
        let metrics = Metrics::new().expect("metrics");
        let health = UpstreamHealth::new(&config(3, 60_000), &metrics);
        fail(&health);
        fail(&health);
        // A success breaks the run.
        let ticket = health.admit().expect("admitted");
        health.record(ticket, true);
        fail(&health);
        fail(&health);
        assert!(health.admit().is_ok(), "two failures in a row must not eject");
        fail(&health);
        assert_eq!(health.admit().err(), Some(Unavailable::Ejected));
        assert_eq!(health.unavailable(), Some(Unavailable::Ejected));
        assert!(health.report().ejected_until.is_some());
        assert_eq!(metrics.upstream_ejected.with_label_values(&["new"]).get(), 1);
    }

    #[test]
    fn half_open_probe_closes_or_reopens_the_circuit() {
        let metrics = Metrics::new().expect("metrics");
        let health = UpstreamHealth::new(&config(1, 1), &metrics);
        fail(&health);
        // Wait out the 1 ms ejection (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        let probe = loop {
            match health.admit() {
                Ok(ticket) => break ticket,
                Err(_) if Instant::now() < deadline => std::thread::yield_now(),
                Err(e) => panic!("no probe admitted: {e:?}"),
            }
        };
        assert!(probe.is_probe());
        assert_eq!(health.admit().err(), Some(Unavailable::Ejected), "one probe at a time");
        // A failed probe re-ejects with a longer back-off.
        health.record(probe, false);
        assert!(health.unavailable().is_some());
        let probe = loop {
            match health.admit() {
                Ok(ticket) => break ticket,
                Err(_) if Instant::now() < deadline => std::thread::yield_now(),
                Err(e) => panic!("no probe admitted: {e:?}"),
            }
        };
        health.record(probe, true);
        assert!(health.admit().is_ok_and(|t| !t.is_probe()));
        assert_eq!(metrics.upstream_ejected.with_label_values(&["new"]).get(), 0);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_request_probe() {
        let metrics = Metrics::new().expect("metrics");
        let health = UpstreamHealth::new(&config(1, 1), &metrics);
        fail(&health);
        let deadline = Instant::now() + Duration::from_secs(5);
        let probe = loop {
            if let Ok(ticket) = health.admit() {
                break ticket;
            }
            assert!(Instant::now() < deadline);
            std::thread::yield_now();
        };
        drop(probe);
        assert!(health.admit().is_ok_and(|t| t.is_probe()));
    }

    #[test]
    fn disabled_outlier_detection_never_ejects() {
        let metrics = Metrics::new().expect("metrics");
        let mut config = config(1, 60_000);
        config.outlier.enabled = false;
        let health = UpstreamHealth::new(&config, &metrics);
        for _ in 0..10 {
            fail(&health);
        }
        assert!(health.admit().is_ok());
    }

    #[test]
    fn retry_budget_is_a_share_of_the_traffic() {
        let metrics = Metrics::new().expect("metrics");
        let health = UpstreamHealth::new(&config(1000, 60_000), &metrics);
        // The initial burst, then nothing without traffic.
        let burst = (0..100).filter(|_| health.try_retry()).count();
        assert_eq!(burst as u64, RETRY_BURST);
        // 100 requests at 20 % buy 20 retries.
        for _ in 0..100 {
            drop(health.admit());
        }
        let bought = (0..100).filter(|_| health.try_retry()).count();
        assert_eq!(bought, 10, "20 bought, capped at the burst size of 10");
        for _ in 0..25 {
            drop(health.admit());
        }
        assert_eq!((0..100).filter(|_| health.try_retry()).count(), 5);
        assert_eq!(metrics.retries.with_label_values(&["new"]).get(), 25);
    }

    #[test]
    fn active_verdict_follows_the_thresholds() {
        let metrics = Metrics::new().expect("metrics");
        let mut config = config(5, 1000);
        let check = HealthCheckConfig {
            path: http::uri::PathAndQuery::from_static("/healthz"),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        };
        config.health = Some(check.clone());
        let health = UpstreamHealth::new(&config, &metrics);
        assert_eq!(health.verdict(), Verdict::Unknown);
        health.note_check(&check, Err("refused".into()));
        assert_eq!(health.verdict(), Verdict::Unknown, "one failure is not a verdict");
        assert!(health.admit().is_ok(), "traffic flows until a verdict");
        health.note_check(&check, Ok(StatusCode::OK));
        assert_eq!(health.verdict(), Verdict::Healthy);
        health.note_check(&check, Err("refused".into()));
        health.note_check(&check, Err("refused".into()));
        assert_eq!(health.verdict(), Verdict::Healthy);
        health.note_check(&check, Err("refused".into()));
        assert_eq!(health.verdict(), Verdict::Unhealthy);
        assert_eq!(health.admit().err(), Some(Unavailable::Unhealthy));
        assert_eq!(metrics.upstream_healthy.with_label_values(&["new"]).get(), 0);
        health.note_check(&check, Ok(StatusCode::OK));
        assert_eq!(health.verdict(), Verdict::Unhealthy);
        health.note_check(&check, Ok(StatusCode::NO_CONTENT));
        assert_eq!(health.verdict(), Verdict::Healthy);
        let report = health.report();
        assert_eq!((report.checked, report.verdict), (true, Verdict::Healthy));
        assert!(report.last_check.is_some() && report.last_check_error.is_none());
    }
}

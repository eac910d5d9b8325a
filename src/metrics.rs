//! Prometheus metrics. The names and labels are a contract with dashboards and alerts;
//! see README. Labels are bounded: route name (or `default`), upstream name, method
//! (unknown methods fold into `OTHER`), status code — never the raw path.
//!
//! A [`Metrics`] owns its own [`Registry`] (not the process-wide default one), so tests
//! can run several proxies in one process and read each one's figures.
//!
//! The metrics every request updates (requests, durations, in flight) are kept
//! [`PerWorker`]: one copy per proxy worker thread, summed when the metrics are gathered.
//! A single copy updated by two workers bounces its cache lines between the cores on every
//! request: 0.45 µs of user CPU per request in `bench/run.sh`'s setup (measured by leaving
//! these metrics out), about an eighth of what the proxy spends in user space.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric the proxy exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `strangler_requests_total{route,upstream,method,status}`
    pub requests: PerWorker<IntCounterVec>,
    /// `strangler_request_duration_seconds{route,upstream}`
    pub request_duration: PerWorker<HistogramVec>,
    /// `strangler_upstream_errors_total{upstream,kind}`
    pub upstream_errors: IntCounterVec,
    /// `strangler_config_reloads_total{result}`
    pub config_reloads: IntCounterVec,
    /// `strangler_config_routes`: routes in the table in force.
    pub config_routes: IntGauge,
    /// `strangler_config_routes_removed_total`: routes removed by reloads (each reload adds
    /// the number it removed).
    pub config_routes_removed: IntCounter,
    /// `strangler_config_route_drops_total`: reloads that removed at least half of the
    /// routes in force (and at least one); alerted, however briefly the table served.
    pub config_route_drops: IntCounter,
    /// `strangler_config_info{version}` = 1 for the table in force.
    pub config_info: IntGaugeVec,
    /// `strangler_inflight_requests`
    pub inflight: PerWorker<IntGauge>,
    /// `strangler_canary_requests_total{route,side}`: where canary routes placed requests.
    pub canary: IntCounterVec,
    /// `strangler_shadow_comparisons_total{route,result,period}`: shadowed requests by
    /// outcome (match, mismatch, noise, error, dropped, skipped) and evidence period (the
    /// period's name, equal on every replica of a table).
    pub shadow_comparisons: IntCounterVec,
    /// `strangler_parity_period_info{route,period,stage,legacy,new,legacy_url,new_url,rules,forwarding}`
    /// = 1 for the current and previous evidence period of every route with parity
    /// evidence: what a `period` label stands for (`new`, `new_url` empty when the route has
    /// no new upstream).
    pub parity_period_info: IntGaugeVec,
    /// `strangler_recorded_requests_total{result}`: traffic recording (recorded, dropped,
    /// skipped).
    pub recorded: IntCounterVec,
    /// `strangler_fallbacks_total{route,reason}`: requests the new upstream failed that were
    /// replayed to legacy (reason: connect, timeout, status_5xx).
    pub fallbacks: IntCounterVec,
    /// `strangler_rejected_requests_total{reason}`: requests answered by the proxy itself
    /// before any route was chosen (bad path, CONNECT).
    pub rejected: IntCounterVec,
    /// `strangler_route_info{route,stage,legacy,new}` = 1 per route of the table in force.
    pub route_info: IntGaugeVec,
    /// `strangler_upstream_healthy{upstream}`: the active health check's verdict (1/0).
    pub upstream_healthy: IntGaugeVec,
    /// `strangler_upstream_ejected{upstream}`: 1 while outlier detection has it ejected.
    pub upstream_ejected: IntGaugeVec,
    /// `strangler_retries_total{upstream}`
    pub retries: IntCounterVec,
    /// `strangler_tls_reloads_total{result}`: listener certificate pairs (re)loaded after
    /// their files changed (ok), or left as they were because the new files are unusable
    /// (error: unreadable, not PEM, key not matching the certificate).
    pub tls_reloads: IntCounterVec,
    /// `strangler_client_connections{worker}`: open client connections per proxy worker
    /// (how evenly they are spread; see `server::balance`).
    pub client_connections: IntGaugeVec,
    /// `strangler_worker_cpu{worker}`: the CPU each proxy worker is pinned to; no series
    /// when the workers are not pinned (see `server::affinity`).
    pub worker_cpu: IntGaugeVec,
    /// `strangler_shadow_duration_seconds{route,upstream}`: how long the new upstream took
    /// to answer shadow copies (the legacy side is the client request's own duration).
    pub shadow_duration: HistogramVec,
    /// `strangler_client_errors_total{kind}`: exchanges ended for the client's fault, by
    /// kind: `send_timeout` (the response left unread), `body_timeout` (the request body
    /// stalled).
    pub client_errors: IntCounterVec,
    /// `strangler_trace_spans_dropped_total`: spans not exported to the OTLP collector
    /// (the export queue was full, or the collector did not take them).
    pub trace_spans_dropped: IntCounter,
}

/// Metric construction failed; only possible through a programming error (bad names).
#[derive(Debug, thiserror::Error)]
#[error("cannot register metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Creates and registers every metric in a fresh registry: one entry per metric, its
    /// name, help and labels (the contract), grouped by what it describes.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let shards = shard_count();
        let counters = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), labels)?)
        };
        let metrics = Self {
            // The request path, one copy per worker.
            requests: register(&registry, PerWorker::new(shards, requests)?)?,
            request_duration: register(&registry, PerWorker::new(shards, request_duration)?)?,
            inflight: register(&registry, PerWorker::new(shards, inflight)?)?,
            rejected: counters(
                "strangler_rejected_requests_total",
                "Requests refused before routing, by reason",
                &["reason"],
            )?,
            // Upstreams.
            upstream_errors: counters(
                "strangler_upstream_errors_total",
                "Failed upstream exchanges, by kind",
                &["upstream", "kind"],
            )?,
            upstream_healthy: gauges(
                "strangler_upstream_healthy",
                "Active health check verdict per upstream (1 healthy, 0 unhealthy)",
                &["upstream"],
            )?,
            upstream_ejected: gauges(
                "strangler_upstream_ejected",
                "1 while outlier detection keeps the upstream out of service",
                &["upstream"],
            )?,
            retries: counters(
                "strangler_retries_total",
                "Requests sent again after a connect error, within the retry budget",
                &["upstream"],
            )?,
            // Migration features.
            route_info: gauges(
                "strangler_route_info",
                "Routes of the table in force (value 1), with their stage and upstreams",
                &["route", "stage", "legacy", "new"],
            )?,
            canary: counters(
                "strangler_canary_requests_total",
                "Requests of canary routes, by side (legacy, new)",
                &["route", "side"],
            )?,
            fallbacks: counters(
                "strangler_fallbacks_total",
                "Requests replayed to legacy after the new upstream failed",
                &["route", "reason"],
            )?,
            shadow_comparisons: counters(
                "strangler_shadow_comparisons_total",
                "Shadowed requests by comparison outcome and evidence period",
                &["route", "result", "period"],
            )?,
            parity_period_info: register(&registry, parity_period_info()?)?,
            recorded: counters(
                "strangler_recorded_requests_total",
                "Sampled requests offered to the traffic recording",
                &["result"],
            )?,
            // Configuration and certificates.
            config_reloads: counters(
                "strangler_config_reloads_total",
                "Routing table load attempts, by result",
                &["result"],
            )?,
            config_routes: register(
                &registry,
                IntGauge::new("strangler_config_routes", "Routes in the routing table in force")?,
            )?,
            config_routes_removed: counter(
                &registry,
                "strangler_config_routes_removed_total",
                "Routes removed by reloads of the routing table",
            )?,
            config_route_drops: counter(
                &registry,
                "strangler_config_route_drops_total",
                "Reloads that removed at least half of the routes in force",
            )?,
            config_info: gauges(
                "strangler_config_info",
                "The routing table in force (value 1)",
                &["version"],
            )?,
            tls_reloads: counters(
                "strangler_tls_reloads_total",
                "Listener certificate reloads after their files changed, by result",
                &["result"],
            )?,
            // Workers.
            client_connections: gauges(
                "strangler_client_connections",
                "Open client connections on the public listener, per proxy worker",
                &["worker"],
            )?,
            worker_cpu: gauges(
                "strangler_worker_cpu",
                "The CPU each proxy worker is pinned to (no series when workers are not pinned)",
                &["worker"],
            )?,
            shadow_duration: register(&registry, shadow_duration()?)?,
            client_errors: register(&registry, client_errors()?)?,
            trace_spans_dropped: counter(&registry, "strangler_trace_spans_dropped_total", "Spans not exported")?,
            registry: registry.clone(),
        };
        // Pre-create the reload series so that dashboards see zeros rather than gaps.
        for result in ["ok", "error"] {
            metrics.config_reloads.with_label_values(&[result]);
            metrics.tls_reloads.with_label_values(&[result]);
        }
        Ok(metrics)
    }

    /// Marks `version` as the table in force.
    pub fn set_config_version(&self, version: &str) {
        self.config_info.reset();
        self.config_info.with_label_values(&[version]).set(1);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Registers `metric` in `registry` and hands it back.
fn register<C: Collector + Clone + 'static>(registry: &Registry, metric: C) -> prometheus::Result<C> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// `strangler_client_errors_total{kind}`, its series made at zero so that alerts see them.
fn client_errors() -> prometheus::Result<IntCounterVec> {
    let opts = Opts::new(
        "strangler_client_errors_total",
        "Exchanges ended for the client's fault (send_timeout, body_timeout)",
    );
    let vec = IntCounterVec::new(opts, &["kind"])?;
    for kind in [CLIENT_SEND_TIMEOUT, CLIENT_BODY_TIMEOUT] {
        vec.with_label_values(&[kind]);
    }
    Ok(vec)
}

/// `kind` of `strangler_client_errors_total`: a client left the response unread for `send_timeout`.
pub const CLIENT_SEND_TIMEOUT: &str = "send_timeout";
/// `kind` of `strangler_client_errors_total`: a request body stalled for `client_body_timeout`.
pub const CLIENT_BODY_TIMEOUT: &str = "body_timeout";
/// `kind` of `strangler_upstream_errors_total`: a response body stalled for `read_timeout`.
pub const UPSTREAM_READ_TIMEOUT: &str = "read_timeout";

/// `strangler_request_duration_seconds{route,upstream}`, one worker's copy.
fn request_duration() -> prometheus::Result<HistogramVec> {
    HistogramVec::new(
        HistogramOpts::new(
            "strangler_request_duration_seconds",
            "Time from request head received to response body finished",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]),
        &["route", "upstream"],
    )
}

/// Removes every series of `vec` whose labels `keep` refuses: how a labelled metric
/// forgets what left the table (an upstream, an evidence period), so its series stay
/// bounded by what is in force.
pub fn retain_series<T: prometheus::core::MetricVecBuilder>(
    vec: &prometheus::core::MetricVec<T>,
    keep: impl Fn(&HashMap<&str, &str>) -> bool,
) {
    for family in Collector::collect(vec) {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> = metric.get_label().iter().map(|l| (l.name(), l.value())).collect();
            if !keep(&labels) {
                let _ = vec.remove(&labels);
            }
        }
    }
}

/// A counter without labels, registered.
fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    register(registry, IntCounter::new(name, help)?)
}

/// `strangler_requests_total{route,upstream,method,status}`.
fn requests() -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(
        Opts::new(
            "strangler_requests_total",
            "Requests proxied, by route, upstream, method and status",
        ),
        &["route", "upstream", "method", "status"],
    )
}

/// `strangler_inflight_requests`.
fn inflight() -> prometheus::Result<IntGauge> {
    IntGauge::new("strangler_inflight_requests", "Requests being proxied now")
}

/// `strangler_parity_period_info{route,period,stage,legacy,new,legacy_url,new_url,rules,forwarding}`.
fn parity_period_info() -> prometheus::Result<IntGaugeVec> {
    IntGaugeVec::new(
        Opts::new(
            "strangler_parity_period_info",
            "Evidence periods of the parity counts (value 1): the current and previous one per route",
        ),
        &PARITY_PERIOD_INFO_LABELS,
    )
}

/// The labels of `strangler_parity_period_info`, in the order the ledger gives values.
pub const PARITY_PERIOD_INFO_LABELS: [&str; 9] = [
    "route",
    "period",
    "stage",
    "legacy",
    "new",
    "legacy_url",
    "new_url",
    "rules",
    "forwarding",
];

/// `strangler_shadow_duration_seconds{route,upstream}`, with the request durations' buckets.
fn shadow_duration() -> prometheus::Result<HistogramVec> {
    HistogramVec::new(
        HistogramOpts::new(
            "strangler_shadow_duration_seconds",
            "Time the new upstream took to answer a shadow copy (failed copies included)",
        )
        .buckets(crate::window::DURATION_BOUNDS.to_vec()),
        &["route", "upstream"],
    )
}

/// How many copies a [`PerWorker`] metric keeps: one per CPU (the default worker count)
/// and one for the shadow thread. More workers than that share copies, which stays correct.
fn shard_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 1
}

/// A metric kept as one copy (shard) per proxy worker thread, each updated only by its own
/// worker, and exported as one metric: [`Collector::collect`] sums the shards, series by
/// series. Threads other than the workers use the first shard.
#[derive(Debug, Clone)]
pub struct PerWorker<M> {
    shards: Arc<[M]>,
}

impl<M> PerWorker<M> {
    /// `count` (at least one) copies made by `make`.
    fn new(count: usize, mut make: impl FnMut() -> prometheus::Result<M>) -> prometheus::Result<Self> {
        let shards = (0..count.max(1))
            .map(|_| make())
            .collect::<prometheus::Result<Vec<M>>>()?;
        Ok(Self { shards: shards.into() })
    }

    /// The calling thread's copy.
    #[inline]
    pub fn here(&self) -> &M {
        // `new` makes at least one shard.
        &self.shards[crate::worker::worker_index() % self.shards.len()]
    }
}

impl PerWorker<IntCounterVec> {
    /// The calling thread's copy of the counter for `values`.
    pub fn with_label_values(&self, values: &[&str]) -> IntCounter {
        self.here().with_label_values(values)
    }
}

impl PerWorker<HistogramVec> {
    /// The histogram for `values`, one copy per worker.
    pub fn with_label_values(&self, values: &[&str]) -> PerWorker<Histogram> {
        PerWorker {
            shards: self
                .shards
                .iter()
                .map(|shard| shard.with_label_values(values))
                .collect(),
        }
    }
}

impl PerWorker<Histogram> {
    /// Records `value` in the calling thread's copy.
    pub fn observe(&self, value: f64) {
        self.here().observe(value);
    }
}

impl PerWorker<IntGauge> {
    /// Adds one on the calling thread's copy.
    pub fn inc(&self) {
        self.here().inc();
    }

    /// Takes one off the calling thread's copy (copies can go below zero; their sum cannot).
    pub fn dec(&self) {
        self.here().dec();
    }

    /// The value over every copy.
    pub fn get(&self) -> i64 {
        self.shards.iter().map(IntGauge::get).sum()
    }
}

impl<M: Collector> Collector for PerWorker<M> {
    fn desc(&self) -> Vec<&Desc> {
        self.shards.first().map(Collector::desc).unwrap_or_default()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut shards = self.shards.iter();
        let Some(first) = shards.next() else {
            return Vec::new();
        };
        let mut families = first.collect();
        for shard in shards {
            for (into, from) in families.iter_mut().zip(shard.collect()) {
                merge_family(into, from);
            }
        }
        families
    }
}

/// Adds the series of `from` to those of `into` (the same family from another shard):
/// counters and gauges add up, histograms add up bucket by bucket.
fn merge_family(into: &mut MetricFamily, mut from: MetricFamily) {
    let kind = into.get_field_type();
    let key = |metric: &prometheus::proto::Metric| -> Vec<(String, String)> {
        metric
            .get_label()
            .iter()
            .map(|pair| (pair.name().to_owned(), pair.value().to_owned()))
            .collect()
    };
    let mut index: HashMap<Vec<(String, String)>, usize> =
        into.get_metric().iter().enumerate().map(|(i, m)| (key(m), i)).collect();
    for metric in from.take_metric() {
        let labels = key(&metric);
        let Some(&at) = index.get(&labels) else {
            index.insert(labels, into.get_metric().len());
            into.mut_metric().push(metric);
            continue;
        };
        let Some(sum) = into.mut_metric().get_mut(at) else {
            continue;
        };
        match kind {
            MetricType::COUNTER => {
                let mut counter = prometheus::proto::Counter::default();
                counter.set_value(sum.get_counter().get_value() + metric.get_counter().get_value());
                sum.set_counter(counter);
            }
            MetricType::GAUGE => {
                let mut gauge = prometheus::proto::Gauge::default();
                gauge.set_value(sum.get_gauge().get_value() + metric.get_gauge().get_value());
                sum.set_gauge(gauge);
            }
            MetricType::HISTOGRAM => {
                let (a, b) = (sum.get_histogram(), metric.get_histogram());
                let mut histogram = prometheus::proto::Histogram::default();
                histogram.set_sample_count(a.get_sample_count() + b.get_sample_count());
                histogram.set_sample_sum(a.get_sample_sum() + b.get_sample_sum());
                histogram.set_bucket(
                    a.get_bucket()
                        .iter()
                        .zip(b.get_bucket())
                        .map(|(x, y)| {
                            let mut bucket = prometheus::proto::Bucket::default();
                            bucket.set_upper_bound(x.upper_bound());
                            bucket.set_cumulative_count(x.cumulative_count() + y.cumulative_count());
                            bucket
                        })
                        .collect(),
                );
                sum.set_histogram(histogram);
            }
            // Not used per worker.
            MetricType::SUMMARY | MetricType::UNTYPED => {}
        }
    }
}

/// A method as a bounded label value.
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_contract_names() {
        let m = Metrics::new().unwrap();
        m.requests.with_label_values(&["r", "u", "GET", "200"]).inc();
        m.request_duration.with_label_values(&["r", "u"]).observe(0.01);
        m.upstream_errors.with_label_values(&["u", "connect"]).inc();
        m.set_config_version("abc");
        m.set_config_version("def");
        m.inflight.inc();
        let text = m.render();
        for name in [
            "strangler_requests_total{method=\"GET\",route=\"r\",status=\"200\",upstream=\"u\"} 1",
            "strangler_request_duration_seconds_bucket",
            "strangler_upstream_errors_total{kind=\"connect\",upstream=\"u\"} 1",
            "strangler_config_reloads_total{result=\"ok\"} 0",
            "strangler_config_routes 0",
            "strangler_config_routes_removed_total 0",
            "strangler_config_route_drops_total 0",
            "strangler_config_info{version=\"def\"} 1",
            "strangler_inflight_requests 1",
            "strangler_tls_reloads_total{result=\"error\"} 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        assert!(!text.contains("version=\"abc\""), "old version still exported");
    }

    /// Lines of the rendering that start with `series` followed by a space.
    fn samples<'t>(text: &'t str, series: &str) -> Vec<&'t str> {
        text.lines()
            .filter(|line| line.strip_prefix(series).is_some_and(|rest| rest.starts_with(' ')))
            .collect()
    }

    #[test]
    fn per_worker_copies_are_exported_as_one() {
        use crate::worker::as_worker;
        let m = Metrics::new().unwrap();
        let shards = m.requests.shards.len();
        assert!(shards >= 2, "{shards} shards");
        let duration = m.request_duration.with_label_values(&["r", "u"]);
        for worker in 0..shards + 1 {
            as_worker(worker, || {
                m.requests.with_label_values(&["r", "u", "GET", "200"]).inc();
                duration.observe(0.002);
                m.inflight.inc();
            });
        }
        // A series only one worker has seen.
        as_worker(1, || m.requests.with_label_values(&["r", "u", "GET", "503"]).inc());
        // A request that began on one worker and ended on another.
        as_worker(1, || m.inflight.dec());
        assert_eq!(m.inflight.get(), shards as i64);

        let text = m.render();
        let total = shards + 1;
        let ok = r#"strangler_requests_total{method="GET",route="r",status="200",upstream="u"}"#;
        assert_eq!(samples(&text, ok), [format!("{ok} {total}")], "{text}");
        let failed = r#"strangler_requests_total{method="GET",route="r",status="503",upstream="u"}"#;
        assert_eq!(samples(&text, failed), [format!("{failed} 1")], "{text}");
        let count = r#"strangler_request_duration_seconds_count{route="r",upstream="u"}"#;
        assert_eq!(samples(&text, count), [format!("{count} {total}")], "{text}");
        let under = r#"strangler_request_duration_seconds_bucket{route="r",upstream="u",le="0.0025"}"#;
        assert_eq!(samples(&text, under), [format!("{under} {total}")], "{text}");
        let over = r#"strangler_request_duration_seconds_bucket{route="r",upstream="u",le="0.001"}"#;
        assert_eq!(samples(&text, over), [format!("{over} 0")], "{text}");
        let sum = r#"strangler_request_duration_seconds_sum{route="r",upstream="u"}"#;
        let summed: f64 = samples(&text, sum)[0].rsplit(' ').next().unwrap().parse().unwrap();
        assert!((summed - 0.002 * total as f64).abs() < 1e-9, "{text}");
        assert_eq!(
            samples(&text, "strangler_inflight_requests"),
            [format!("strangler_inflight_requests {shards}")]
        );
    }

    #[test]
    fn unknown_methods_fold() {
        assert_eq!(method_label(&http::Method::from_bytes(b"PROPFIND").unwrap()), "OTHER");
        assert_eq!(method_label(&http::Method::GET), "GET");
    }
}

//! The migration dashboard of the admin API: one self-contained HTML page (`GET /`) and
//! the per-route traffic figures it shows (`GET /admin/traffic`).
//!
//! Operators want the whole migration at a glance without installing Grafana: each
//! route's stage, how much of its traffic the new upstream serves, its parity evidence
//! and its latency on each side. The page is embedded in the binary, makes no request to
//! any other origin (its Content-Security-Policy forbids it, and its only script is
//! allowed by hash), and refreshes itself from the admin JSON endpoints.
//!
//! The traffic figures are read from the proxy's own Prometheus metrics, so they agree
//! with `/metrics` by construction: requests and 5xx answers per route and side come from
//! `strangler_requests_total`, latency quantiles are estimated from the buckets of
//! `strangler_request_duration_seconds` the way Prometheus' `histogram_quantile` does.
//! A side is the route's legacy or new upstream in the table in force; counts run from
//! the process start.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine as _;
use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderValue};
use http_body_util::Full;
use prometheus::core::Collector;
use prometheus::proto::{Metric, MetricFamily};
use sha2::{Digest, Sha256};

use crate::admin::api::{RouteTraffic, SideTraffic, Traffic};
use crate::metrics::Metrics;
use crate::state::Snapshot;

/// The page, served as is.
pub const PAGE: &str = include_str!("dashboard.html");

/// The Content-Security-Policy of the page: nothing but the page's own inline script
/// (by hash), inline styles, and `fetch` to the admin API's own origin.
pub static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let script = inline_script(PAGE).map_or_else(|| "'none'".to_owned(), |s| format!("'sha256-{}'", sha256_base64(s)));
    format!(
        "default-src 'none'; script-src {script}; connect-src 'self'; style-src 'unsafe-inline'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});

/// The text of the page's one inline `<script>` element.
fn inline_script(page: &str) -> Option<&str> {
    let start = page.find("<script>")? + "<script>".len();
    let end = start + page[start..].find("</script>")?;
    Some(&page[start..end])
}

fn sha256_base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// `GET /`: the page, with headers that keep it self-contained and out of frames.
pub fn page() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(policy) = HeaderValue::from_str(&CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[derive(Debug, Default)]
struct Counts {
    requests: u64,
    status_5xx: u64,
}

#[derive(Debug, Default)]
struct Buckets {
    /// `(upper bound, cumulative count)` of the finite buckets, ascending; summed over
    /// series that share a route and upstream.
    cumulative: Vec<(f64, u64)>,
    count: u64,
}

impl Buckets {
    fn add(&mut self, histogram: &prometheus::proto::Histogram) {
        let buckets = histogram.get_bucket();
        if self.cumulative.is_empty() {
            self.cumulative = buckets
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect();
        } else {
            for (mine, theirs) in self.cumulative.iter_mut().zip(buckets) {
                mine.1 += theirs.cumulative_count();
            }
        }
        self.count += histogram.get_sample_count();
    }
}

/// `(route, upstream)` label pair of a sample.
type Series = (String, String);

fn label<'m>(metric: &'m Metric, name: &str) -> &'m str {
    metric
        .get_label()
        .iter()
        .find(|pair| pair.name() == name)
        .map_or("", |pair| pair.value())
}

fn samples(families: &[MetricFamily]) -> impl Iterator<Item = &Metric> {
    families.iter().flat_map(|family| family.get_metric())
}

/// `GET /admin/traffic`: the figures of `snapshot`'s routes, read from `metrics`.
pub fn traffic(snapshot: &Snapshot, metrics: &Metrics) -> Traffic {
    let mut counts: HashMap<Series, Counts> = HashMap::new();
    for sample in samples(&metrics.requests.collect()) {
        let series = (label(sample, "route").to_owned(), label(sample, "upstream").to_owned());
        let value = sample.get_counter().get_value() as u64;
        let entry = counts.entry(series).or_default();
        entry.requests += value;
        if label(sample, "status").starts_with('5') {
            entry.status_5xx += value;
        }
    }
    let mut durations: HashMap<Series, Buckets> = HashMap::new();
    for sample in samples(&metrics.request_duration.collect()) {
        let series = (label(sample, "route").to_owned(), label(sample, "upstream").to_owned());
        durations.entry(series).or_default().add(sample.get_histogram());
    }
    let side = |route: &str, upstream: &str| {
        let key = (route.to_owned(), upstream.to_owned());
        let counted = counts.get(&key);
        let timed = durations.get(&key);
        let estimate = |q| timed.and_then(|b| histogram_quantile(q, &b.cumulative, b.count));
        SideTraffic {
            upstream: upstream.to_owned(),
            requests: counted.map_or(0, |c| c.requests),
            status_5xx: counted.map_or(0, |c| c.status_5xx),
            p50_seconds: estimate(0.5),
            p99_seconds: estimate(0.99),
        }
    };
    let config = snapshot.config();
    let routes = config
        .routes
        .iter()
        .map(|route| {
            let legacy = side(&route.name, &route.legacy);
            let new = route.new.as_deref().map(|new| side(&route.name, new));
            let on_sides = legacy.requests + new.as_ref().map_or(0, |n| n.requests);
            let all: u64 = counts
                .iter()
                .filter(|((name, _), _)| *name == route.name)
                .map(|(_, c)| c.requests)
                .sum();
            let to_new = new.as_ref().map_or(0, |n| n.requests);
            RouteTraffic {
                route: route.name.clone(),
                stage: route.stage.as_str().to_owned(),
                new_share: (on_sides > 0).then(|| to_new as f64 / on_sides as f64),
                other_requests: all.saturating_sub(on_sides),
                legacy,
                new,
            }
        })
        .collect();
    Traffic {
        version: config.version.clone(),
        routes,
        default: side("default", &config.proxy.default_upstream),
    }
}

/// The `q`-quantile (0 to 1) of a histogram, like Prometheus' `histogram_quantile`: find
/// the bucket that holds the rank `q × count` and interpolate linearly inside it (the
/// first bucket starts at 0). `cumulative` lists the finite buckets as `(upper bound,
/// cumulative count)` in ascending order; `count` includes the implicit `+Inf` bucket.
/// A rank beyond the last finite bucket gives that bucket's upper bound. `None` without
/// observations.
pub fn histogram_quantile(q: f64, cumulative: &[(f64, u64)], count: u64) -> Option<f64> {
    if count == 0 || cumulative.is_empty() || q.is_nan() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * count as f64;
    let Some(index) = cumulative.iter().position(|(_, c)| *c as f64 >= rank) else {
        return cumulative.last().map(|(upper, _)| *upper);
    };
    let (end, below_end) = cumulative[index];
    if index == 0 && end <= 0.0 {
        return Some(end);
    }
    let (start, below_start) = match index {
        0 => (0.0, 0),
        _ => cumulative[index - 1],
    };
    let in_bucket = below_end.saturating_sub(below_start);
    if in_bucket == 0 {
        return Some(start);
    }
    Some(start + (end - start) * (rank - below_start as f64) / in_bucket as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Table;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn quantile_interpolates_within_the_bucket() {
        // 10 observations ≤ 0.1, 10 more in (0.1, 0.2], none above.
        let buckets = [(0.1, 10), (0.2, 20), (0.5, 20)];
        assert!(close(histogram_quantile(0.5, &buckets, 20), 0.1));
        assert!(close(histogram_quantile(0.25, &buckets, 20), 0.05));
        assert!(close(histogram_quantile(0.75, &buckets, 20), 0.15));
        assert!(close(histogram_quantile(1.0, &buckets, 20), 0.2));
        assert!(close(histogram_quantile(0.0, &buckets, 20), 0.0));
        // Out-of-range quantiles are clamped.
        assert!(close(histogram_quantile(7.0, &buckets, 20), 0.2));
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_last_finite_bound() {
        // 4 observations ≤ 1, 6 above every finite bound.
        let buckets = [(0.5, 2), (1.0, 4)];
        assert!(close(histogram_quantile(0.99, &buckets, 10), 1.0));
        assert!(close(histogram_quantile(0.3, &buckets, 10), 0.75));
    }

    #[test]
    fn quantile_of_nothing_is_none() {
        assert_eq!(histogram_quantile(0.5, &[(0.1, 0), (1.0, 0)], 0), None);
        assert_eq!(histogram_quantile(0.5, &[], 3), None);
        assert_eq!(histogram_quantile(f64::NAN, &[(0.1, 1)], 1), None);
    }

    #[test]
    fn quantile_matches_prometheus_on_the_proxy_buckets() {
        // Observations go through a real prometheus histogram with the proxy's buckets.
        let metrics = Metrics::new().unwrap();
        let histogram = metrics.request_duration.with_label_values(&["r", "u"]);
        for _ in 0..98 {
            histogram.observe(0.003); // bucket (0.0025, 0.005]
        }
        histogram.observe(0.2); // (0.1, 0.25]
        histogram.observe(0.3); // (0.25, 0.5]
        let families = metrics.request_duration.collect();
        let sample = samples(&families).next().unwrap();
        let mut buckets = Buckets::default();
        buckets.add(sample.get_histogram());
        assert_eq!(buckets.count, 100);
        // rank 50 of 98 in (0.0025, 0.005]: 0.0025 + 0.0025 × 50/98.
        let p50 = histogram_quantile(0.5, &buckets.cumulative, buckets.count);
        assert!(close(p50, 0.0025 + 0.0025 * 50.0 / 98.0), "{p50:?}");
        // rank 99: the one observation in (0.1, 0.25], at its top.
        let p99 = histogram_quantile(0.99, &buckets.cumulative, buckets.count);
        assert!(close(p99, 0.25), "{p99:?}");
    }

    fn snapshot(routes: &str, metrics: &Metrics) -> Snapshot {
        let text = format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndefault_upstream = \"legacy\"\n\n\
             [upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n[upstreams.next]\nurl = \"http://127.0.0.1:2\"\n\
             [upstreams.older]\nurl = \"http://127.0.0.1:3\"\n\n{routes}"
        );
        let table = Table::parse("routes.toml", &text).unwrap();
        Snapshot::build(table, None, metrics, 1).unwrap()
    }

    #[test]
    fn sides_are_the_route_upstreams_in_force() {
        let metrics = Metrics::new().unwrap();
        let snapshot = snapshot(
            "[[routes]]\nname = \"api\"\npath = \"/api/\"\nstage = \"canary\"\nnew = \"next\"\n\
             canary = { percent = 25 }\n\n\
             [[routes]]\nname = \"pages\"\npath = \"/pages/\"\n",
            &metrics,
        );
        let count = |route: &str, upstream: &str, status: &str, n: u64| {
            metrics
                .requests
                .with_label_values(&[route, upstream, "GET", status])
                .inc_by(n);
        };
        count("api", "legacy", "200", 6);
        count("api", "legacy", "503", 3);
        count("api", "next", "200", 2);
        count("api", "next", "502", 1);
        count("api", "older", "200", 5);
        count("default", "legacy", "404", 4);
        for _ in 0..4 {
            metrics
                .request_duration
                .with_label_values(&["api", "next"])
                .observe(0.003);
        }
        let traffic = traffic(&snapshot, &metrics);
        let api = &traffic.routes[0];
        assert_eq!(api.route, "api");
        assert_eq!(api.stage, "canary");
        assert_eq!((api.legacy.requests, api.legacy.status_5xx), (9, 3));
        let new = api.new.as_ref().unwrap();
        assert_eq!((new.upstream.as_str(), new.requests, new.status_5xx), ("next", 3, 1));
        assert_eq!(api.other_requests, 5);
        assert!(close(api.new_share, 0.25));
        assert!(close(new.p50_seconds, 0.0025 + 0.0025 * 0.5), "{:?}", new.p50_seconds);
        // Legacy's histogram series exists (created with the snapshot) but is empty.
        assert_eq!(api.legacy.p50_seconds, None);

        let pages = &traffic.routes[1];
        assert_eq!(
            (pages.stage.as_str(), pages.legacy.requests, pages.new_share),
            ("legacy", 0, None)
        );
        assert_eq!(pages.new, None);
        assert_eq!(
            (traffic.default.upstream.as_str(), traffic.default.requests),
            ("legacy", 4)
        );
        assert_eq!(traffic.version, snapshot.config().version);
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script() {
        let script = inline_script(PAGE).unwrap();
        assert!(script.contains("fetch("), "not the dashboard script");
        assert_eq!(PAGE.matches("<script").count(), 1, "one inline script, hashed");
        let policy = &*CONTENT_SECURITY_POLICY;
        assert!(policy.starts_with("default-src 'none'; "), "{policy}");
        assert!(
            policy.contains(&format!("script-src 'sha256-{}'", sha256_base64(script))),
            "{policy}"
        );
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe-eval"), "{policy}");
    }

    #[test]
    fn the_page_names_no_other_origin() {
        for scheme in ["http:", "https:", "//"] {
            // `//` inside the script only in comments or regexes would be fine, but the
            // page has neither: any occurrence is a URL to look at.
            let found: Vec<&str> = PAGE
                .match_indices(scheme)
                .map(|(at, _)| &PAGE[at..(at + 40).min(PAGE.len())])
                .collect();
            assert!(found.is_empty(), "{scheme} in the page: {found:?}");
        }
        assert!(
            !PAGE.contains("@import") && !PAGE.contains("url("),
            "CSS that loads something"
        );
    }
}

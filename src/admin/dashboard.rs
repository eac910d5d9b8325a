//! The migration dashboard of the admin API: one self-contained HTML page (`GET /`), the
//! per-route traffic figures it shows (`GET /admin/traffic`), each route's last hour for
//! its sparklines (`GET /admin/history`, from the rings of [`crate::history`]) and the
//! kept mismatches grouped (`mismatch_groups` of `GET /admin/parity`).
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
//! A side is the route's legacy or new upstream in the table in force; those counts run
//! from the process start. The figures of the route's current evidence period and of the
//! last minute come from the route's [`SideWindows`](crate::window::SideWindows), which
//! also time the shadow copies a shadow route sends to its new upstream.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Instant, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderValue};
use http_body_util::Full;
use prometheus::core::Collector;
use prometheus::proto::{Metric, MetricFamily};
use sha2::{Digest, Sha256};

use crate::admin::api::{
    History, Mismatch, MismatchGroup, RecentTraffic, RouteHistory, RouteTraffic, SideHistory, SideTraffic, Traffic,
    TrafficPeriod,
};
use crate::config::{RouteConfig, Stage};
use crate::history::{BUCKET, HistoryRing, Minute, TrafficHistory, minute_of, start_of};
use crate::metrics::Metrics;
use crate::state::{Route, Snapshot};
use crate::window::{Tally, WindowSide, histogram_quantile};

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
            ..SideTraffic::default()
        }
    };
    let config = snapshot.config();
    let (now, wall) = (Instant::now(), SystemTime::now());
    let routes = config
        .routes
        .iter()
        .zip(&snapshot.routes)
        .map(|(route, running)| {
            let legacy = side(&route.name, &route.legacy);
            let new = route.new.as_deref().map(|new| side(&route.name, new));
            let on_sides = legacy.requests + new.as_ref().map_or(0, |n| n.requests);
            let all: u64 = counts
                .iter()
                .filter(|((name, _), _)| *name == route.name)
                .map(|(_, c)| c.requests)
                .sum();
            let (period, last_minute, new_share) = windowed(route, running, now, wall);
            RouteTraffic {
                route: route.name.clone(),
                stage: route.stage.as_str().to_owned(),
                new_share,
                lifetime_new_share: share_to_new(legacy.requests, new.as_ref().map_or(0, |n| n.requests), false),
                other_requests: all.saturating_sub(on_sides),
                legacy,
                new,
                period,
                last_minute,
            }
        })
        .collect();
    Traffic {
        version: config.version.clone(),
        routes,
        default: side("default", &config.proxy.default_upstream),
    }
}

/// A route's figures of its current evidence period and of the last minute, read from its
/// windows at `now` (`wall`: the same moment on the wall clock), and the period's share to
/// new.
fn windowed(
    route: &RouteConfig,
    running: &Route,
    now: Instant,
    wall: SystemTime,
) -> (TrafficPeriod, RecentTraffic, Option<f64>) {
    let shadow = route.stage == Stage::Shadow;
    let legacy = running.windows.read(WindowSide::Legacy, now);
    let new = route
        .new
        .as_deref()
        .map(|name| (name, running.windows.read(WindowSide::New, now)));
    let seconds = legacy.recent_span.as_secs_f64();
    // A rate over less than a second would make a burst look like a flood.
    let rate = |tally: &Tally| tally.requests as f64 / seconds.max(1.0);
    let side = |upstream: &str, tally: &Tally, per_second: Option<f64>, shadow: bool| SideTraffic {
        upstream: upstream.to_owned(),
        requests: tally.requests,
        status_5xx: tally.status_5xx,
        p50_seconds: tally.quantile(0.5),
        p99_seconds: tally.quantile(0.99),
        requests_per_second: per_second,
        shadow,
    };
    let new_requests = |recent: bool| {
        new.as_ref().map_or(0, |(_, read)| {
            if recent {
                read.recent.requests
            } else {
                read.total.requests
            }
        })
    };
    let period = TrafficPeriod {
        since: humantime::format_rfc3339_seconds(running.windows.since()).to_string(),
        seconds: wall
            .duration_since(running.windows.since())
            .unwrap_or_default()
            .as_secs_f64(),
        legacy: side(&route.legacy, &legacy.total, None, false),
        new: new.as_ref().map(|(name, read)| side(name, &read.total, None, shadow)),
    };
    let last_minute = RecentTraffic {
        seconds,
        legacy: side(&route.legacy, &legacy.recent, Some(rate(&legacy.recent)), false),
        new: new
            .as_ref()
            .map(|(name, read)| side(name, &read.recent, Some(rate(&read.recent)), shadow)),
        new_share: share_to_new(legacy.recent.requests, new_requests(true), shadow),
    };
    let new_share = share_to_new(legacy.total.requests, new_requests(false), shadow);
    (period, last_minute, new_share)
}

/// The share of client requests that went to new, 0 to 1; `None` without requests. In
/// shadow the new side's answers are copies, not client requests: the share is 0.
fn share_to_new(legacy: u64, new: u64, shadow: bool) -> Option<f64> {
    let new = if shadow { 0 } else { new };
    let all = legacy + new;
    (all > 0).then(|| new as f64 / all as f64)
}

/// The kept mismatches (`newest_first`) grouped by route, first differing pointer and
/// status pair: each group with its count, its oldest time and its newest mismatch; the
/// group with the newest mismatch first.
pub fn group_mismatches(newest_first: &[Mismatch]) -> Vec<MismatchGroup> {
    let mut groups: Vec<MismatchGroup> = Vec::new();
    let mut index: HashMap<(&str, Option<&str>, [u16; 2]), usize> = HashMap::new();
    for mismatch in newest_first {
        let pointer = mismatch.diffs.first().map(|d| d.pointer.as_str());
        let key = (mismatch.route.as_str(), pointer, mismatch.status);
        match index.get(&key) {
            Some(&at) => {
                let group = &mut groups[at];
                group.count += 1;
                // Older than every one seen so far: the list is newest first.
                group.first_at.clone_from(&mismatch.at);
            }
            None => {
                index.insert(key, groups.len());
                groups.push(MismatchGroup {
                    route: mismatch.route.clone(),
                    pointer: pointer.map(str::to_owned),
                    status: mismatch.status,
                    count: 1,
                    first_at: mismatch.at.clone(),
                    newest: mismatch.clone(),
                });
            }
        }
    }
    groups
}

/// `GET /admin/history`: the last hour of `snapshot`'s routes at `wall`, from `rings`
/// (a route not followed yet has a history of one empty minute).
pub fn history(snapshot: &Snapshot, rings: &TrafficHistory, wall: SystemTime) -> History {
    let now = minute_of(wall);
    let routes = snapshot
        .config()
        .routes
        .iter()
        .map(|route| {
            let fresh;
            let ring = match rings.ring(&route.name) {
                Some(ring) => ring,
                None => {
                    fresh = HistoryRing::new(wall);
                    &fresh
                }
            };
            route_history(route, ring, now, wall)
        })
        .collect();
    History {
        at: humantime::format_rfc3339_seconds(wall).to_string(),
        bucket_seconds: BUCKET.as_secs(),
        routes,
    }
}

/// One route's buckets from `ring`, the current minute `now` (at `wall`) last.
fn route_history(route: &RouteConfig, ring: &HistoryRing, now: u64, wall: SystemTime) -> RouteHistory {
    let minutes = ring.last_hour(now);
    let seconds: Vec<f64> = minutes
        .iter()
        .map(|m| {
            let from = start_of(m.minute).max(ring.started());
            let to = (start_of(m.minute) + BUCKET).min(wall);
            to.duration_since(from).unwrap_or_default().as_secs_f64()
        })
        .collect();
    let side = |upstream: &str, pick: fn(&Minute) -> &Tally, shadow: bool| SideHistory {
        upstream: upstream.to_owned(),
        requests: minutes.iter().map(|m| pick(m).requests).collect(),
        status_5xx: minutes.iter().map(|m| pick(m).status_5xx).collect(),
        // A rate over less than a second would make a burst look like a flood.
        requests_per_second: minutes
            .iter()
            .zip(&seconds)
            .map(|(m, s)| pick(m).requests as f64 / s.max(1.0))
            .collect(),
        p99_seconds: minutes.iter().map(|m| pick(m).quantile(0.99)).collect(),
        shadow,
    };
    let first = minutes.first().map_or(now, |m| m.minute);
    RouteHistory {
        route: route.name.clone(),
        stage: route.stage.as_str().to_owned(),
        since: humantime::format_rfc3339_seconds(ring.started()).to_string(),
        start: humantime::format_rfc3339_seconds(start_of(first)).to_string(),
        legacy: side(&route.legacy, |m| &m.legacy, false),
        new: route
            .new
            .as_deref()
            .map(|new| side(new, |m| &m.new, route.stage == Stage::Shadow)),
        seconds,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::table::Table;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
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

    #[test]
    fn windows_and_prometheus_share_their_duration_buckets() {
        let metrics = Metrics::new().unwrap();
        metrics.request_duration.with_label_values(&["r", "u"]).observe(0.1);
        metrics.shadow_duration.with_label_values(&["r", "u"]).observe(0.1);
        for families in [metrics.request_duration.collect(), metrics.shadow_duration.collect()] {
            let sample = samples(&families).next().unwrap();
            let bounds: Vec<f64> = sample
                .get_histogram()
                .get_bucket()
                .iter()
                .map(|b| b.upper_bound())
                .collect();
            assert_eq!(bounds, crate::window::DURATION_BOUNDS);
        }
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
        assert!(close(api.lifetime_new_share, 0.25));
        // The period's figures are the windows', empty here.
        assert_eq!((api.new_share, api.period.legacy.requests), (None, 0));
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

    const CANARY_AND_SHADOW: &str = "[[routes]]\nname = \"api\"\npath = \"/api/\"\nstage = \"canary\"\nnew = \"next\"\n\
         canary = { percent = 25 }\n\n\
         [[routes]]\nname = \"copied\"\npath = \"/copied/\"\nstage = \"shadow\"\nnew = \"older\"\n";

    #[test]
    fn period_and_last_minute_come_from_the_route_windows() {
        let metrics = Metrics::new().unwrap();
        let snapshot = snapshot(CANARY_AND_SHADOW, &metrics);
        // The lifetime counters say something else: they must not leak into the period.
        metrics
            .requests
            .with_label_values(&["api", "next", "GET", "200"])
            .inc_by(50);
        let record = |route: usize, side, millis: u64, status_5xx: bool, times: usize| {
            for _ in 0..times {
                let window = snapshot.routes[route].windows.here();
                window.record(side, Instant::now(), Duration::from_millis(millis), status_5xx);
            }
        };
        record(0, WindowSide::Legacy, 3, false, 6);
        record(0, WindowSide::New, 3, true, 2);
        record(1, WindowSide::Legacy, 3, false, 4);
        record(1, WindowSide::New, 40, false, 4);

        let traffic = traffic(&snapshot, &metrics);
        let api = &traffic.routes[0];
        assert!(close(api.new_share, 0.25), "{api:?}");
        assert!(close(api.lifetime_new_share, 1.0));
        let period_new = api.period.new.as_ref().unwrap();
        assert_eq!((period_new.requests, period_new.status_5xx), (2, 2));
        assert!(!period_new.shadow);
        assert_eq!(period_new.requests_per_second, None);
        assert!(
            humantime::parse_rfc3339(&api.period.since).is_ok(),
            "{}",
            api.period.since
        );
        assert!((0.0..60.0).contains(&api.period.seconds), "{}", api.period.seconds);
        let recent = &api.last_minute;
        assert_eq!(recent.legacy.requests, 6);
        assert!(close(recent.new_share, 0.25));
        // Less than a second old: the rate is over one second.
        assert!(recent.seconds < 60.0, "{}", recent.seconds);
        assert!(close(recent.legacy.requests_per_second, 6.0), "{recent:?}");
        assert!(close(recent.legacy.p50_seconds, 0.0025 + 0.0025 * 0.5));

        // Shadow: the new side's answers are the copies, timed, and no client's share.
        let copied = &traffic.routes[1];
        assert_eq!(copied.new_share, Some(0.0));
        let copies = copied.period.new.as_ref().unwrap();
        assert!(copies.shadow && copies.requests == 4, "{copies:?}");
        assert!(close(copies.p50_seconds, 0.025 + 0.025 * 0.5), "{copies:?}");
        assert!(
            copied
                .last_minute
                .new
                .as_ref()
                .is_some_and(|n| n.shadow && n.requests == 4)
        );
        assert!(!copied.period.legacy.shadow);
        assert_eq!(copied.new.as_ref().map(|n| (n.requests, n.shadow)), Some((0, false)));
    }

    #[test]
    fn a_reload_keeps_the_windows_of_a_period_and_a_new_period_gets_new_ones() {
        let metrics = Metrics::new().unwrap();
        let first = snapshot(CANARY_AND_SHADOW, &metrics);
        let build = |routes: &str, previous: &Snapshot| {
            let text = format!(
                "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndefault_upstream = \"legacy\"\n\n\
                 [upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n[upstreams.next]\nurl = \"http://127.0.0.1:2\"\n\
                 [upstreams.older]\nurl = \"http://127.0.0.1:3\"\n\n{routes}"
            );
            Snapshot::build(Table::parse("routes.toml", &text).unwrap(), Some(previous), &metrics, 1).unwrap()
        };
        let same = build(&CANARY_AND_SHADOW.replace("/copied/", "/copies/"), &first);
        for (before, after) in first.routes.iter().zip(&same.routes) {
            assert!(Arc::ptr_eq(&before.windows, &after.windows), "{}", before.name);
        }
        let promoted = build(
            &CANARY_AND_SHADOW.replace("\"shadow\"", "\"canary\"\ncanary = { percent = 5 }"),
            &same,
        );
        assert!(Arc::ptr_eq(&same.routes[0].windows, &promoted.routes[0].windows));
        assert!(!Arc::ptr_eq(&same.routes[1].windows, &promoted.routes[1].windows));
        assert_eq!(
            promoted.routes[1].new_upstream,
            promoted.upstreams.iter().position(|u| &*u.name == "older")
        );
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

    fn mismatch(route: &str, pointer: &str, status: [u16; 2], at: &str) -> Mismatch {
        Mismatch {
            route: route.to_owned(),
            method: "GET".to_owned(),
            path: format!("/{route}/{at}"),
            at: at.to_owned(),
            status,
            diffs: vec![crate::admin::api::MismatchDiff {
                pointer: pointer.to_owned(),
                legacy: "\"same\"".to_owned(),
                new: format!("\"{at}\""),
            }],
            truncated: false,
            period: None,
            request_id: Some(format!("req-{at}")),
        }
    }

    #[test]
    fn identical_mismatches_are_one_group_with_their_count_and_newest_example() {
        // Newest first, as the ledger keeps them: ten alike, interleaved with others.
        let mut kept = Vec::new();
        for n in (0..10).rev() {
            kept.push(mismatch(
                "api",
                "/text",
                [200, 200],
                &format!("2026-12-08T14:{:02}:00Z", 10 + n),
            ));
            if n == 5 {
                kept.push(mismatch("api", "/text", [200, 500], "2026-12-08T14:14:30Z"));
                kept.push(mismatch("api", "/id", [200, 200], "2026-12-08T14:14:20Z"));
                kept.push(mismatch("pages", "/text", [200, 200], "2026-12-08T14:14:10Z"));
            }
        }
        let mut bare = mismatch("api", "", [200, 200], "2026-12-08T14:00:00Z");
        bare.diffs.clear();
        kept.push(bare);
        let groups = group_mismatches(&kept);
        let keys: Vec<(&str, Option<&str>, [u16; 2], u64)> = groups
            .iter()
            .map(|g| (g.route.as_str(), g.pointer.as_deref(), g.status, g.count))
            .collect();
        assert_eq!(
            keys,
            [
                ("api", Some("/text"), [200, 200], 10),
                ("api", Some("/text"), [200, 500], 1),
                ("api", Some("/id"), [200, 200], 1),
                ("pages", Some("/text"), [200, 200], 1),
                ("api", None, [200, 200], 1),
            ]
        );
        assert_eq!(groups[0].newest.at, "2026-12-08T14:19:00Z");
        assert_eq!(groups[0].newest.diffs[0].new, "\"2026-12-08T14:19:00Z\"");
        assert_eq!(groups[0].first_at, "2026-12-08T14:10:00Z");
        assert_eq!(groups[0].newest.request_id.as_deref(), Some("req-2026-12-08T14:19:00Z"));
        assert_eq!(groups[1].first_at, groups[1].newest.at);
        assert!(group_mismatches(&[]).is_empty());
    }

    #[test]
    fn history_lists_every_route_minute_by_minute_with_rates_and_p99() {
        let metrics = Metrics::new().unwrap();
        let snapshot = snapshot(CANARY_AND_SHADOW, &metrics);
        let origin = Instant::now();
        // The history began 30 s into minute 1000; it is read 20 s into minute 1002.
        let began = start_of(1000) + Duration::from_secs(30);
        let mut rings = TrafficHistory::default();
        let routes = || snapshot.routes.iter().map(|r| (&r.name, &r.windows));
        rings.sample(routes(), origin, began);
        for _ in 0..30 {
            snapshot.routes[0]
                .windows
                .here()
                .record(WindowSide::Legacy, origin, Duration::from_millis(3), false);
        }
        snapshot.routes[0]
            .windows
            .here()
            .record(WindowSide::New, origin, Duration::from_millis(300), true);
        rings.sample(routes(), origin, began + Duration::from_secs(10));
        for _ in 0..4 {
            snapshot.routes[1]
                .windows
                .here()
                .record(WindowSide::New, origin, Duration::from_millis(40), false);
        }
        let read_at = start_of(1002) + Duration::from_secs(20);
        rings.sample(routes(), origin, read_at);
        let document = history(&snapshot, &rings, read_at);
        assert_eq!(document.bucket_seconds, 60);
        assert_eq!(document.at, humantime::format_rfc3339_seconds(read_at).to_string());
        let api = &document.routes[0];
        assert_eq!((api.route.as_str(), api.stage.as_str()), ("api", "canary"));
        assert_eq!(api.start, humantime::format_rfc3339_seconds(start_of(1000)).to_string());
        assert_eq!(api.since, humantime::format_rfc3339_seconds(began).to_string());
        assert_eq!(api.seconds, [30.0, 60.0, 20.0]);
        assert_eq!(api.legacy.requests, [30, 0, 0]);
        assert_eq!(api.legacy.requests_per_second, [1.0, 0.0, 0.0]);
        let p99 = api.legacy.p99_seconds[0].unwrap();
        assert!((0.0025..=0.005).contains(&p99), "{p99}");
        assert_eq!(api.legacy.p99_seconds[1], None);
        let new = api.new.as_ref().unwrap();
        assert_eq!((new.upstream.as_str(), new.shadow), ("next", false));
        assert_eq!((new.requests[0], new.status_5xx[0]), (1, 1));
        // Shadow copies are marked, and land in the minute they were sampled in.
        let copied = document.routes[1].new.as_ref().unwrap();
        assert!(copied.shadow);
        assert_eq!(copied.requests, [0, 0, 4]);
        assert!((copied.requests_per_second[2] - 0.2).abs() < 1e-9, "{copied:?}");
        let json = serde_json::to_value(&document).unwrap();
        assert!(json["routes"][0]["new"].get("shadow").is_none(), "{json}");
        // A route not sampled yet: one empty minute.
        let unsampled = history(&snapshot, &TrafficHistory::default(), read_at);
        assert_eq!(unsampled.routes[0].seconds, [0.0]);
        assert_eq!(unsampled.routes[0].legacy.requests, [0]);
    }
}

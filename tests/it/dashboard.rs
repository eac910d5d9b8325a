//! The migration dashboard of the admin API: `GET /admin/traffic` and `GET /admin/history`
//! against the traffic a test sends, the page's headers, and the page itself in headless
//! Chromium at 1280×800 (the route's stage, parity, traffic, latency and last-hour
//! sparklines rendered from a running proxy; identical mismatches as one group; ISO dates;
//! no cell wrapped, no horizontal scroll; a neutral sign-in form when the admin API answers
//! 401; no request to any other origin). The screenshots go to the workspace's
//! `target/screenshots/` (`dashboard.png`, `dashboard-sign-in.png`, `dashboard-token.png`).
//!
//! The browser test needs Debian's `chromium` and `chromium-driver`, and is skipped
//! without them unless `STRANGLER_REQUIRE_BROWSER=1` (see `support/browser.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fantoccini::{Client, Locator};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::support::browser::{
    ChromeDriver, PAGE_WITHIN, browser_programs, click, element, open_browser, screenshot, screenshot_dir, type_into,
};
use crate::support::*;

/// How long the whole browser session may take (one page waits for a second refresh, 5 s).
const SESSION_WITHIN: Duration = Duration::from_secs(90);
/// How long counted requests may take to show in `/admin/traffic` (a request is counted
/// when its response body is finished, which can trail the client's read).
const COUNTED_WITHIN: Duration = Duration::from_secs(5);

/// An upstream answering `{"id": 1, "text": …}`; with `every` > 0, every `every`-th answer
/// (by arrival) says `"different"` instead of `"same"`.
async fn json_upstream(every: u64) -> Upstream {
    let counter = Arc::new(AtomicU64::new(0));
    upstream_with(move |_request: Request<Incoming>| {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        async move {
            let text = if every > 0 && n.is_multiple_of(every) {
                "different"
            } else {
                "same"
            };
            Response::builder()
                .header("content-type", "application/json")
                .body(full(format!("{{\"id\": 1, \"text\": \"{text}\"}}")))
                .unwrap()
        }
    })
    .await
}

/// A canary route `users-api` (50 % to `users`), a shadow route `thoughts-api` (copies to
/// `thoughts`), a legacy-only route `pages`; everything else to `legacy`.
fn three_routes(legacy: &Upstream, users: &Upstream, thoughts: &Upstream) -> String {
    routes_toml(
        &[
            ("legacy", &legacy.url()),
            ("users", &users.url()),
            ("thoughts", &thoughts.url()),
        ],
        "[[routes]]\nname = \"users-api\"\npath = \"/api/users/\"\nstage = \"canary\"\nnew = \"users\"\n\
         canary = { percent = 50 }\n\n\
         [[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n\n\
         [[routes]]\nname = \"pages\"\npath = \"/pages/\"\n",
    )
}

/// Sends `count` GETs to `path` (numbered) and checks each got `status`.
async fn send_many(proxy: &TestProxy, path: &str, count: usize, status: u16) {
    let http = client();
    for i in 0..count {
        let request = Request::get(proxy.url(&format!("{path}{i}"))).body(full("")).unwrap();
        let answer = send(&http, request).await;
        assert_eq!(answer.status.as_u16(), status, "{path}{i}: {}", answer.body);
    }
}

/// The total requests `/admin/traffic` counts over every route and the default.
fn counted(traffic: &Value) -> u64 {
    let side = |s: &Value| s["requests"].as_u64().unwrap_or(0);
    let routes: u64 = traffic["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| side(&r["legacy"]) + side(&r["new"]) + r["other_requests"].as_u64().unwrap_or(0))
        .sum();
    routes + side(&traffic["default"])
}

/// Polls `/admin/traffic` (bounded) until it counts `total` requests; returns it.
async fn traffic_when(admin: SocketAddr, total: u64) -> Value {
    poll(
        COUNTED_WITHIN,
        || admin_json(admin, "/admin/traffic"),
        |traffic| counted(traffic) >= total,
    )
    .await
}

fn route<'t>(traffic: &'t Value, name: &str) -> &'t Value {
    traffic["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == name)
        .unwrap_or_else(|| panic!("no route {name} in {traffic}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_counts_each_side_of_each_route() {
    let legacy = echo_upstream("legacy").await;
    // The canary's new side fails every request: its 5xx must be counted on its side only.
    let users = upstream_with(|_request: Request<Incoming>| async {
        Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(full("boom"))
            .unwrap()
    })
    .await;
    let thoughts = json_upstream(0).await;
    let proxy = TestProxy::start(&three_routes(&legacy, &users, &thoughts)).await;

    // The canary places each request on its own (no sticky key): read the sides back
    // from the answers.
    let http = client();
    let (mut to_legacy, mut to_new) = (0u64, 0u64);
    for i in 0..40 {
        let request = Request::get(proxy.url(&format!("/api/users/{i}")))
            .body(full(""))
            .unwrap();
        match send(&http, request).await.status.as_u16() {
            200 => to_legacy += 1,
            500 => to_new += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(to_legacy > 0 && to_new > 0, "40 requests at 50 % all on one side");
    send_many(&proxy, "/api/thoughts/", 10, 200).await;
    send_many(&proxy, "/pages/", 5, 200).await;
    send_many(&proxy, "/elsewhere/", 3, 200).await;

    let traffic = traffic_when(proxy.admin, 58).await;
    assert_eq!(counted(&traffic), 58, "{traffic:#}");
    assert_eq!(traffic["version"], proxy.version().as_str());

    let canary = route(&traffic, "users-api");
    assert_eq!(canary["stage"], "canary");
    assert_eq!(canary["legacy"]["upstream"], "legacy");
    assert_eq!(canary["legacy"]["requests"], to_legacy, "{traffic:#}");
    assert_eq!(canary["legacy"]["status_5xx"], 0);
    assert_eq!(canary["new"]["upstream"], "users");
    assert_eq!(canary["new"]["requests"], to_new, "{traffic:#}");
    assert_eq!(canary["new"]["status_5xx"], to_new);
    assert_eq!(users.seen().len() as u64, to_new);
    assert_eq!(canary["other_requests"], 0);
    let share = canary["new_share"].as_f64().unwrap();
    assert!((share - to_new as f64 / 40.0).abs() < 1e-9, "{share} vs {to_new}/40");
    for side in ["legacy", "new"] {
        let p50 = canary[side]["p50_seconds"]
            .as_f64()
            .unwrap_or_else(|| panic!("no {side} p50: {canary}"));
        let p99 = canary[side]["p99_seconds"].as_f64().unwrap();
        assert!(0.0 < p50 && p50 <= p99 && p99 <= 30.0, "{side}: p50 {p50}, p99 {p99}");
    }

    // No reload: the period and the last minute saw what the process saw.
    for figures in [&canary["period"], &canary["last_minute"]] {
        assert_eq!(figures["legacy"]["requests"], to_legacy, "{canary:#}");
        assert_eq!(figures["new"]["requests"], to_new, "{canary:#}");
        assert_eq!(figures["new"]["status_5xx"], to_new, "{canary:#}");
    }
    assert_eq!(canary["lifetime_new_share"], canary["new_share"]);
    assert!(canary["last_minute"]["legacy"]["requests_per_second"].as_f64().unwrap() > 0.0);

    // Shadow: clients were all answered by legacy; the copies are not client requests,
    // but they are timed: under the period's new side, marked as copies.
    let shadow = route(&traffic, "thoughts-api");
    assert_eq!(shadow["stage"], "shadow");
    assert_eq!(shadow["legacy"]["requests"], 10);
    assert_eq!(shadow["new"]["requests"], 0);
    assert_eq!(shadow["new"]["p50_seconds"], Value::Null);
    assert_eq!(shadow["new_share"], 0.0);
    let copies = poll(
        COUNTED_WITHIN,
        || admin_json(proxy.admin, "/admin/traffic"),
        |t| route(t, "thoughts-api")["period"]["new"]["requests"] == 10,
    )
    .await;
    let copies = &route(&copies, "thoughts-api")["period"]["new"];
    assert_eq!(
        (copies["requests"].as_u64(), copies["shadow"].as_bool()),
        (Some(10), Some(true)),
        "{copies}"
    );
    assert!(copies["p50_seconds"].as_f64().is_some(), "{copies}");

    let pages = route(&traffic, "pages");
    assert_eq!(pages["stage"], "legacy");
    assert_eq!(pages["legacy"]["requests"], 5);
    assert_eq!(pages["new"], Value::Null);

    assert_eq!(traffic["default"]["upstream"], "legacy");
    assert_eq!(traffic["default"]["requests"], 3);

    // The last hour, minute by minute: the same answers by side (in the minutes they came
    // in), the shadow copies marked, a rate and a p99 where there were answers.
    let sum = |values: &Value| {
        values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    };
    let history = poll(
        COUNTED_WITHIN,
        || admin_json(proxy.admin, "/admin/history"),
        |h| {
            let canary = route(h, "users-api");
            let copies = route(h, "thoughts-api");
            sum(&canary["legacy"]["requests"]) == to_legacy
                && sum(&canary["new"]["requests"]) == to_new
                && sum(&copies["new"]["requests"]) == 10
        },
    )
    .await;
    assert_eq!(history["bucket_seconds"], 60);
    let canary = route(&history, "users-api");
    assert_eq!(sum(&canary["legacy"]["requests"]), to_legacy, "{history:#}");
    assert_eq!(sum(&canary["new"]["status_5xx"]), to_new, "{history:#}");
    let buckets = canary["seconds"].as_array().unwrap().len();
    assert!((1..=2).contains(&buckets), "a proxy seconds old: {history:#}");
    let some_positive = |values: &Value| {
        values
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_f64().is_some_and(|v| v > 0.0))
    };
    assert!(some_positive(&canary["legacy"]["requests_per_second"]), "{history:#}");
    assert!(some_positive(&canary["legacy"]["p99_seconds"]), "{history:#}");
    assert_eq!(route(&history, "thoughts-api")["new"]["shadow"], true);
    assert_eq!(route(&history, "pages")["new"], Value::Null);
    assert_eq!(sum(&route(&history, "pages")["legacy"]["requests"]), 5);

    // The same figures as the Prometheus text.
    let metrics = metrics_text(proxy.admin).await;
    let new_total = requests_total(&metrics, &[("route", "users-api"), ("upstream", "users")]);
    assert_eq!(new_total, to_new as f64);

    let refused = post(&proxy.admin_url("/admin/traffic"), "").await;
    assert_eq!(refused.status, 405);
    assert_eq!(refused.headers["allow"], "GET");
    proxy.stop().await;
}

/// The answers `/admin/history` counts for `name`, both sides, every minute (0 for a route
/// it does not list).
fn history_total(history: &Value, name: &str) -> u64 {
    let sum = |values: &Value| {
        values
            .as_array()
            .map_or(0, |v| v.iter().filter_map(Value::as_u64).sum())
    };
    history["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == name)
        .map_or(0, |r| sum(&r["legacy"]["requests"]) + sum(&r["new"]["requests"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_kept_across_a_reload_for_routes_that_stay() {
    let legacy = echo_upstream("legacy").await;
    let users = echo_upstream("users").await;
    let thoughts = json_upstream(0).await;
    let proxy = TestProxy::start(&three_routes(&legacy, &users, &thoughts)).await;
    send_many(&proxy, "/api/users/", 6, 200).await;
    send_many(&proxy, "/pages/", 5, 200).await;
    let history = |admin| admin_json(admin, "/admin/history");
    let before = poll(
        COUNTED_WITHIN,
        || history(proxy.admin),
        |h| history_total(h, "users-api") == 6 && history_total(h, "pages") == 5,
    )
    .await;
    assert_eq!(history_total(&before, "pages"), 5, "{before:#}");

    // `users-api` goes from canary to new (a new traffic period: new windows), `pages`
    // leaves the table, `search` comes in.
    proxy.write_config(&routes_toml(
        &[
            ("legacy", &legacy.url()),
            ("users", &users.url()),
            ("thoughts", &thoughts.url()),
        ],
        "[[routes]]\nname = \"users-api\"\npath = \"/api/users/\"\nstage = \"new\"\nnew = \"users\"\n\n\
         [[routes]]\nname = \"search\"\npath = \"/search/\"\n",
    ));
    let reloaded = post(&proxy.admin_url("/admin/reload"), "").await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    send_many(&proxy, "/api/users/", 2, 200).await;
    let after = poll(
        COUNTED_WITHIN,
        || history(proxy.admin),
        |h| history_total(h, "users-api") == 8,
    )
    .await;
    assert_eq!(
        history_total(&after, "users-api"),
        8,
        "kept, and followed on: {after:#}"
    );
    let names: Vec<&str> = after["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["users-api", "search"], "a removed route's history goes");
    let users_api = route(&after, "users-api");
    assert_eq!(users_api["stage"], "new");
    assert_eq!(users_api["since"], route(&before, "users-api")["since"]);
    assert_eq!(history_total(&after, "search"), 0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_self_contained_and_locked_to_its_origin() {
    let legacy = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;
    let page = get(&proxy.admin_url("/")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "connect-src 'self'",
        "style-src 'unsafe-inline'",
        "img-src 'self' data:",
        "script-src 'sha256-",
    ] {
        assert!(policy.contains(directive), "{directive} not in {policy}");
    }
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert!(page.body.contains("<table id=\"routes\">"), "{}", page.body);
    assert!(page.body.contains("/admin/traffic"));
    for other_origin in ["http://", "https://", "\"//", "'//"] {
        assert!(!page.body.contains(other_origin), "the page names {other_origin}");
    }

    let head = send(&client(), Request::head(proxy.admin_url("/")).body(full("")).unwrap()).await;
    assert_eq!((head.status.as_u16(), head.body.as_str()), (200, ""));
    let refused = post(&proxy.admin_url("/"), "").await;
    assert_eq!(refused.status, 405);
    assert_eq!(refused.headers["allow"], "GET, HEAD");
    proxy.stop().await;
}

// ---- In a browser ----

/// The text of the element `css` selects.
async fn text_of(browser: &Client, css: &str) -> String {
    element(browser, css).await.text().await.unwrap()
}

/// Polls (every 200 ms, at most [`PAGE_WITHIN`]) until the text of `css` satisfies
/// `accept`; returns it.
pub(crate) async fn until_text(browser: &Client, css: &str, accept: impl Fn(&str) -> bool) -> String {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let attempts = PAGE_WITHIN.as_millis() / 200;
    let mut last = String::new();
    for _ in 0..attempts {
        tick.tick().await;
        if let Ok(found) = browser.find(Locator::Css(css)).await {
            last = found.text().await.unwrap_or_default();
            if accept(&last) {
                return last;
            }
        }
    }
    panic!("`{css}` did not show what was expected within {PAGE_WITHIN:?}; last text: {last:?}");
}

/// Every URL the page loaded (itself, and each `fetch`), as the browser recorded them.
async fn loaded_urls(browser: &Client) -> (String, Vec<String>) {
    let found = browser
        .execute(
            "return [location.origin, location.href, \
             performance.getEntriesByType('resource').map((e) => e.name)];",
            vec![],
        )
        .await
        .unwrap();
    let origin = found[0].as_str().unwrap().to_owned();
    let mut urls = vec![found[1].as_str().unwrap().to_owned()];
    urls.extend(
        found[2]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_owned()),
    );
    (origin, urls)
}

/// An ISO 8601 moment in UTC as the page shows it: `2026-12-08 14:03:07Z`.
fn is_iso(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    bytes.len() == 20
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b' '
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19)
        && bytes[19] == b'Z'
}

/// The texts of every `<time>` on the page.
async fn time_texts(browser: &Client) -> Vec<String> {
    let mut texts = Vec::new();
    for time in browser.find_all(Locator::Css("time")).await.unwrap() {
        texts.push(time.text().await.unwrap());
    }
    texts
}

/// At the window's size: the text nodes of table cells that wrapped onto a second line,
/// the cells of the mismatch and upstream tables taller than one line, the document's width
/// and the viewport's.
pub(crate) async fn layout(browser: &Client) -> (Vec<String>, Vec<String>, u64, u64) {
    let found = browser
        .execute(
            "const wrapped = [];
             for (const cell of document.querySelectorAll('main td, main th')) {
               const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
               for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                 if (!node.textContent.trim()) continue;
                 const range = document.createRange();
                 range.selectNodeContents(node);
                 const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                 if (tops.size > 1) wrapped.push(node.textContent);
               }
             }
             const tall = [];
             for (const cell of document.querySelectorAll('#mismatches-table td, #mismatches-table th, \
                                                          #upstreams-table td, #upstreams-table th')) {
               const style = getComputedStyle(cell);
               const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.4;
               const inner = cell.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
               if (inner > line * 1.5) tall.push(cell.textContent + ' (' + inner + ' px)');
             }
             const clipped = [...document.querySelectorAll('main td, main th, main .sub, main .line, main .block')].filter((e) => e.scrollWidth > e.clientWidth + 1)
               .map((e) => e.textContent.trim() + ' +' + (e.scrollWidth - e.clientWidth) + '/' + e.clientWidth);
             console.log(clipped);
             return [wrapped, tall, document.documentElement.scrollWidth, window.innerWidth, clipped];",
            vec![],
        )
        .await
        .unwrap();
    let texts = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect()
    };
    let clipped: Vec<String> = texts(&found[4]);
    println!("cut with an ellipsis (full text in a tooltip): {clipped:?}");
    (
        texts(&found[0]),
        texts(&found[1]),
        found[2].as_u64().unwrap(),
        found[3].as_u64().unwrap(),
    )
}

/// The number of points of the polylines of a chart (`css`), each polyline's.
async fn polyline_points(browser: &Client, css: &str) -> Vec<usize> {
    let mut counts = Vec::new();
    for line in browser.find_all(Locator::Css(css)).await.unwrap() {
        let points = line.attr("points").await.unwrap().unwrap_or_default();
        counts.push(points.split_whitespace().count());
    }
    counts
}

/// The page against the real admin API: the shadowed route's row shows its stage, its
/// parity and its traffic; recent rates after a second refresh; no other origin touched.
async fn check_live_page(browser: &Client, admin: SocketAddr, shots: &std::path::Path) {
    browser.goto(&format!("http://{admin}/")).await.unwrap();
    let row = "tr[data-route='thoughts-api']";
    let found = browser.wait().at_most(PAGE_WITHIN).for_element(Locator::Css(row)).await;
    found.unwrap_or_else(|e| panic!("no row for thoughts-api within {PAGE_WITHIN:?}: {e}"));
    assert_eq!(browser.title().await.unwrap(), "strangler · migration dashboard");

    let stage = text_of(browser, &format!("{row} td.stage")).await;
    assert!(stage.starts_with("shadow\nsince "), "stage cell: {stage:?}");
    assert!(
        stage.ends_with(" s") || stage.ends_with(" min"),
        "the period's start and age: {stage:?}"
    );
    let since = element(browser, &format!("{row} td.stage .period-since time")).await;
    let datetime = since.attr("datetime").await.unwrap().unwrap();
    assert!(humantime::parse_rfc3339(&datetime).is_ok(), "{datetime}");
    let parity = text_of(browser, &format!("{row} td.parity")).await;
    assert!(parity.contains("⚠ 80.0 % match"), "parity cell: {parity:?}");
    assert!(parity.contains("below 99.9 %"), "parity cell: {parity:?}");
    assert!(
        parity.contains("50 compared") && parity.contains("10 mismatches"),
        "parity cell: {parity:?}"
    );
    let requests = text_of(browser, &format!("{row} td.requests")).await;
    assert!(requests.contains("legacy 50 · 5xx: 0"), "requests cell: {requests:?}");
    assert!(
        requests.contains("new 50 (copies) · 5xx: 0"),
        "requests cell: {requests:?}"
    );
    assert!(
        requests.contains("last minute: ") && requests.contains(" req/s"),
        "requests cell: {requests:?}"
    );
    assert_eq!(
        text_of(browser, &format!("{row} td.share")).await,
        "0.0 %\nlast minute: 0.0 %"
    );
    // Legacy and the timed copies, side by side.
    let latency = text_of(browser, &format!("{row} td.latency")).await;
    let lines: Vec<&str> = latency.lines().collect();
    assert_eq!(lines.len(), 2, "latency cell: {latency:?}");
    assert!(
        lines[0].starts_with("legacy ") && lines[0].contains(" / ") && lines[0].contains(" ms"),
        "latency cell: {latency:?}"
    );
    assert!(
        lines[1].starts_with("new (copies) ") && lines[1].contains(" / ") && !lines[1].contains('—'),
        "latency cell: {latency:?}"
    );
    let upstreams = text_of(browser, &format!("{row} td.upstreams")).await;
    // The real /admin/upstreams: neither upstream has a health check configured.
    assert_eq!(
        upstreams, "legacy: legacy · not checked\nnew: thoughts · not checked",
        "upstreams cell: {upstreams:?}"
    );

    let canary = "tr[data-route='users-api']";
    let canary_stage = text_of(browser, &format!("{canary} td.stage")).await;
    assert!(
        canary_stage.starts_with("canary\ncanary 50 % to new\nsince "),
        "{canary_stage:?}"
    );
    let share = text_of(browser, &format!("{canary} td.share")).await;
    assert!(
        share.ends_with(" %") && !share.starts_with("0.0 %") && share.contains("\nlast minute: "),
        "canary share: {share:?}"
    );
    let canary_stage = text_of(browser, &format!("{canary} td.stage .period-since")).await;
    assert!(canary_stage.starts_with("since "), "{canary_stage:?}");
    let pages = text_of(browser, "tr[data-route='pages'] td.stage").await;
    assert!(pages.starts_with("legacy\nsince "), "{pages:?}");

    // The last hour: after traffic, each chart of the canary and of the shadow has a line
    // of at least two points for legacy and for new (in shadow: the copies).
    for route in [canary, row] {
        for chart in ["spark-rps", "spark-5xx", "spark-p99"] {
            for side in ["legacy", "new"] {
                let css = format!("{route} td.history svg.{chart} polyline.spark-{side}");
                let points = polyline_points(browser, &css).await;
                assert!(points.iter().any(|n| *n >= 2), "{css}: {points:?}");
            }
        }
    }
    let label = element(browser, &format!("{canary} svg.spark-rps"))
        .await
        .attr("aria-label")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        label.starts_with("req/s, per minute since ") && label.contains(". legacy: now "),
        "{label}"
    );

    // Ten identical mismatches (same route, pointer and statuses): one row, counted 10.
    let groups = browser
        .find_all(Locator::Css("#mismatches-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(groups.len(), 1, "one row per group");
    assert_eq!(text_of(browser, "#mismatches-table tbody td.count").await, "10");
    assert_eq!(text_of(browser, "#mismatches-table tbody td.pointer").await, "/text");
    assert_eq!(text_of(browser, "#mismatches-table tbody td.status").await, "200 → 200");
    let example = text_of(browser, "#mismatches-table tbody td.example").await;
    assert!(
        example.starts_with("GET /api/thoughts/") && example.contains(" · /text: \"same\" → \"different\" · request "),
        "{example:?}"
    );
    // The proxy's own /admin/upstreams fills the upstreams table.
    let legacy_health = text_of(browser, "#upstreams-table tr[data-upstream='legacy'] td.health").await;
    assert_eq!(legacy_health, "not checked");
    let refreshed = text_of(browser, "#refresh").await;
    let stamp = refreshed
        .strip_prefix("Updated ")
        .and_then(|rest| rest.strip_suffix(" · every 5 s"));
    assert!(stamp.is_some_and(is_iso), "{refreshed:?}");
    assert!(!element(browser, "#auth").await.is_displayed().await.unwrap());

    // Every date on the page: ISO 8601, UTC.
    let times = time_texts(browser).await;
    assert!(times.len() >= 5, "{times:?}");
    assert!(times.iter().all(|t| is_iso(t)), "{times:?}");

    // Parity evidence of the current period, when the proxy reports its period.
    let reported = admin_json(admin, "/admin/parity").await;
    if reported["routes"]["thoughts-api"].get("evidence").is_some() {
        let parity = text_of(browser, &format!("{row} td.parity .evidence-since")).await;
        assert!(parity.starts_with("evidence "), "{parity:?}");
    }

    // At 1280×800: nothing wrapped, nothing wider than the window.
    let (wrapped, tall, width, viewport) = layout(browser).await;
    assert!((1200..=1280).contains(&viewport), "the viewport is {viewport} px wide");
    assert!(wrapped.is_empty(), "wrapped onto two lines: {wrapped:?}");
    assert!(tall.is_empty(), "cells taller than a line: {tall:?}");
    assert!(
        width <= viewport,
        "the document is {width} px wide in a {viewport} px window"
    );

    let (origin, urls) = loaded_urls(browser).await;
    assert_eq!(origin, format!("http://{admin}"));
    for url in &urls {
        assert!(
            url.starts_with(&format!("{origin}/")),
            "the page loaded {url} (origin {origin})"
        );
    }
    for endpoint in [
        "/admin/routes",
        "/admin/traffic",
        "/admin/parity",
        "/admin/upstreams",
        "/admin/history",
    ] {
        assert!(
            urls.iter().any(|u| u.ends_with(endpoint)),
            "{endpoint} not fetched: {urls:?}"
        );
    }
    let path = screenshot(browser, shots, "dashboard.png").await;
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 10_000, "{} is only {size} bytes: a blank page?", path.display());
}

/// The admin token the gate in front of the admin API wants.
const TOKEN: &str = "s3cret-token";

/// `/admin/upstreams` in the planned shape: one healthy, one ejected, one unchecked.
fn planned_upstreams() -> Value {
    let health = |checked: bool, healthy: Value, error: Value| {
        json!({"checked": checked, "healthy": healthy,
               "last_check": if checked { json!("2025-06-01T12:00:00Z") } else { Value::Null },
               "last_error": error})
    };
    json!({"upstreams": [
        {"name": "legacy", "url": "http://127.0.0.1:1", "health": health(true, json!(true), Value::Null),
         "ejected": false, "ejected_until": null, "consecutive_failures": 0},
        {"name": "thoughts", "url": "http://127.0.0.1:2", "health": health(true, json!(false), json!("connection refused")),
         "ejected": true, "ejected_until": "2025-06-01T12:00:10Z", "consecutive_failures": 5},
        {"name": "users", "url": "http://127.0.0.1:3", "health": health(false, Value::Null, Value::Null),
         "ejected": false, "ejected_until": null, "consecutive_failures": 0},
    ]})
}

/// A route of `/admin/parity` with the planned evidence periods: the current one since
/// 2025-06-01 12:00 UTC, and a previous one (195 comparisons in shadow).
fn with_planned_evidence(route: &mut Value) {
    let identity = |stage: &str| {
        json!({"since": "2025-06-01T12:00:00Z", "period": "0123456789ab", "stage": stage,
               "legacy": {"name": "legacy", "url": "http://127.0.0.1:1/"},
               "new": {"name": "thoughts", "url": "http://127.0.0.1:2/"}, "rules": "ba9876543210"})
    };
    route["evidence"] = identity("shadow");
    route["previous"] = json!({"match": 190, "noise": 2, "mismatch": 2, "error": 1, "dropped": 0, "skipped": 0,
                               "stage": "shadow", "evidence": identity("shadow")});
}

/// An admin API that wants a bearer token: serves the dashboard page, answers 401 to
/// admin requests without `Authorization: Bearer TOKEN`, forwards the others to the real
/// admin API, and answers `/admin/upstreams` (not on this branch's proxy) itself.
async fn token_gate(admin: SocketAddr) -> Upstream {
    upstream_with(move |request: Request<Incoming>| async move {
        let path = request.uri().path().to_owned();
        if path == "/" {
            let page = strangler::admin::dashboard::page();
            let (parts, body) = page.into_parts();
            use http_body_util::BodyExt;
            let body = body.collect().await.unwrap().to_bytes();
            return Response::from_parts(parts, full(body));
        }
        let authorized = request
            .headers()
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
        if !authorized {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("www-authenticate", "Bearer")
                .body(full("unauthorized\n"))
                .unwrap();
        }
        if path == "/admin/upstreams" {
            return Response::builder()
                .header("content-type", "application/json")
                .body(full(planned_upstreams().to_string()))
                .unwrap();
        }
        let answer = get(&format!("http://{admin}{path}")).await;
        if path == "/admin/parity" {
            let mut parity = answer.json();
            with_planned_evidence(&mut parity["routes"]["thoughts-api"]);
            return Response::builder()
                .header("content-type", "application/json")
                .body(full(parity.to_string()))
                .unwrap();
        }
        Response::builder()
            .status(answer.status)
            .header("content-type", "application/json")
            .body(full(answer.body))
            .unwrap()
    })
    .await
}

/// The page behind a token: a neutral sign-in form first (no error banner, no "Loading…"
/// left), one clear message for a wrong token, then the data once signed in; the token is
/// kept and sent, and the planned `/admin/upstreams` shape is rendered.
async fn check_token_form(browser: &Client, admin: SocketAddr, shots: &std::path::Path) {
    let gate = token_gate(admin).await;
    browser.goto(&format!("{}/", gate.url())).await.unwrap();
    let form = browser
        .wait()
        .at_most(PAGE_WITHIN)
        .for_element(Locator::Css("#auth:not([hidden]) #token"))
        .await;
    form.unwrap_or_else(|e| panic!("no sign-in form within {PAGE_WITHIN:?}: {e}"));
    let status = until_text(browser, "#refresh", |t| t == "Not signed in").await;
    assert!(!status.contains('⚠'), "{status:?}");
    assert!(
        browser.find_all(Locator::Css(".failed")).await.unwrap().is_empty(),
        "an error banner before any token was given"
    );
    assert!(!element(browser, "#auth-error").await.is_displayed().await.unwrap());
    let page = text_of(browser, "body").await;
    assert!(!page.contains("Loading"), "{page}");
    assert!(page.contains("Sign in to see the routes."), "{page}");
    assert!(
        browser
            .find_all(Locator::Css("tr[data-route]"))
            .await
            .unwrap()
            .is_empty()
    );
    screenshot(browser, shots, "dashboard-sign-in.png").await;

    // A wrong token is refused, said once, and forgotten.
    type_into(browser, "#token", "wrong").await;
    click(browser, "#auth-form button[type='submit']").await;
    let refused = until_text(browser, "#auth-error", |t| t.contains("refused that token")).await;
    assert_eq!(
        refused,
        "The admin API refused that token (401 Unauthorized). Check it and sign in again."
    );
    assert!(browser.find_all(Locator::Css(".failed")).await.unwrap().is_empty());
    let kept = browser
        .execute("return sessionStorage.getItem('strangler-admin-token');", vec![])
        .await
        .unwrap();
    assert_eq!(kept, Value::Null);

    type_into(browser, "#token", TOKEN).await;
    click(browser, "#auth-form button[type='submit']").await;
    until_text(browser, "tr[data-route='thoughts-api'] td.stage", |t| {
        t.starts_with("shadow\nsince ")
    })
    .await;
    assert!(!element(browser, "#auth").await.is_displayed().await.unwrap());
    assert!(element(browser, "#sign-out").await.is_displayed().await.unwrap());
    let kept = browser
        .execute("return sessionStorage.getItem('strangler-admin-token');", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(TOKEN));
    let sent: Vec<String> = gate
        .seen()
        .iter()
        .filter(|s| s.uri.path() == "/admin/traffic")
        .filter_map(|s| s.headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()))
        .collect();
    assert!(sent.contains(&format!("Bearer {TOKEN}")), "{sent:?}");

    // The planned parity evidence: the current period's start (ISO, UTC), its age, the
    // previous period.
    let since = text_of(browser, "tr[data-route='thoughts-api'] td.parity .evidence-since").await;
    assert_eq!(since, "evidence 2025-06-01 12:00:00Z");
    let parity = text_of(browser, "tr[data-route='thoughts-api'] td.parity").await;
    assert!(parity.contains("\nfor ") && parity.contains(" d "), "{parity:?}");
    let previous = text_of(browser, "tr[data-route='thoughts-api'] td.parity .evidence-previous").await;
    assert_eq!(previous, "previous period: 195 comparisons, stage shadow");
    let datetime = element(browser, "tr[data-route='thoughts-api'] td.parity .evidence-since time")
        .await
        .attr("datetime")
        .await
        .unwrap();
    assert_eq!(datetime.as_deref(), Some("2025-06-01T12:00:00Z"));

    // The planned /admin/upstreams shape, in the route rows and the upstreams table.
    let upstreams = text_of(browser, "tr[data-route='thoughts-api'] td.upstreams").await;
    assert_eq!(
        upstreams,
        "legacy: legacy · healthy\nnew: thoughts · ejected until 2025-06-01 12:00:10Z"
    );
    assert_eq!(
        text_of(browser, "tr[data-upstream='users'] td.health").await,
        "not checked"
    );
    let ejected = text_of(browser, "tr[data-upstream='thoughts']").await;
    assert!(
        ejected.contains("connection refused") && ejected.contains('5') && ejected.contains("2025-06-01 12:00:00Z"),
        "{ejected}"
    );
    let times = time_texts(browser).await;
    assert!(times.iter().all(|t| is_iso(t)), "{times:?}");
    screenshot(browser, shots, "dashboard-token.png").await;

    // Signing out forgets the token and shows the form again, without an error.
    click(browser, "#sign-out").await;
    until_text(browser, "#refresh", |t| t == "Not signed in").await;
    assert!(!element(browser, "#auth-error").await.is_displayed().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_shows_the_migration_of_a_shadowed_route() {
    let Some((chromium, chromedriver)) = browser_programs() else {
        return;
    };

    // The shadow's new upstream disagrees on every fifth answer: 40 of 50 match, and the
    // ten mismatches are alike.
    let legacy = json_upstream(0).await;
    let users = json_upstream(0).await;
    let thoughts = json_upstream(5).await;
    let proxy = TestProxy::start(&three_routes(&legacy, &users, &thoughts)).await;
    send_many(&proxy, "/api/thoughts/", 50, 200).await;
    send_many(&proxy, "/api/users/", 40, 200).await;
    send_many(&proxy, "/pages/", 8, 200).await;
    send_many(&proxy, "/", 4, 200).await;
    let parity = parity_when(proxy.admin, "thoughts-api", 50).await;
    assert_eq!(parity["routes"]["thoughts-api"]["mismatch"], 10, "{parity:#}");
    let traffic = traffic_when(proxy.admin, 102).await;
    assert_eq!(counted(&traffic), 102, "{traffic:#}");

    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("cannot create {}: {e}", shots.display()));
    let driver = ChromeDriver::start(&chromedriver, proxy.dir.path()).await;
    let browser = open_browser(&driver, &chromium, &proxy.dir.path().join("chromium-profile")).await;
    browser.set_window_size(1280, 800).await.unwrap();

    let session = async {
        check_live_page(&browser, proxy.admin, &shots).await;
        check_token_form(&browser, proxy.admin, &shots).await;
    };
    tokio::time::timeout(SESSION_WITHIN, session)
        .await
        .unwrap_or_else(|_| panic!("the browser session took longer than {SESSION_WITHIN:?}"));

    browser.close().await.unwrap();
    driver.stop().await;
    proxy.stop().await;
}

//! `/admin/traffic` counts windows, not lifetimes: a route's figures of its current
//! traffic period (a canary promoted from shadow shows its own split, not a mix with the
//! shadow's requests; a canary whose share changed shows the new share), its last minute,
//! and in shadow the copies sent to the new upstream, timed (in the route's new side and in
//! `strangler_shadow_duration_seconds`).

use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::Value;

use crate::support::*;

/// How long counted answers may take to show (an answer is counted when its body is
/// finished; a shadow copy when the new upstream has answered it).
const COUNTED_WITHIN: Duration = Duration::from_secs(10);

/// The routes.toml of one route `api` (`/api/`) at `stage` with `legacy` and `next`.
fn api_route(legacy: &Upstream, next: &Upstream, stage_lines: &str) -> String {
    routes_toml(
        &[("legacy", &legacy.url()), ("next", &next.url())],
        &format!("[[routes]]\nname = \"api\"\npath = \"/api/\"\nnew = \"next\"\n{stage_lines}\n"),
    )
}

/// The `api` route of `/admin/traffic`.
fn api(traffic: &Value) -> &Value {
    traffic["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "api")
        .unwrap_or_else(|| panic!("no route api in {traffic:#}"))
}

/// Requests of one side of a traffic object (`period`, `last_minute`, the route).
fn requests(figures: &Value, side: &str) -> u64 {
    figures[side]["requests"].as_u64().unwrap_or(0)
}

/// Polls `/admin/traffic` until `accept` likes the `api` route; returns the document.
async fn traffic_when(proxy: &TestProxy, accept: impl Fn(&Value) -> bool) -> Value {
    let traffic = poll(
        COUNTED_WITHIN,
        || admin_json(proxy.admin, "/admin/traffic"),
        |traffic| accept(api(traffic)),
    )
    .await;
    assert!(
        accept(api(&traffic)),
        "not counted within {COUNTED_WITHIN:?}: {traffic:#}"
    );
    traffic
}

/// Sends `count` GETs to `/api/N`; returns how many each upstream (`legacy`, `next`) served.
async fn send_api(proxy: &TestProxy, count: usize) -> (u64, u64) {
    let http = client();
    let (mut legacy, mut next) = (0, 0);
    for i in 0..count {
        let request = Request::get(proxy.url(&format!("/api/{i}"))).body(full("")).unwrap();
        let answer = send(&http, request).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        match answer.json()["upstream"].as_str() {
            Some("legacy") => legacy += 1,
            Some("next") => next += 1,
            other => panic!("answered by {other:?}"),
        }
    }
    (legacy, next)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_promoted_from_shadow_shows_its_own_split() {
    let legacy = echo_upstream("legacy").await;
    let next = echo_upstream("next").await;
    let proxy = TestProxy::start(&api_route(&legacy, &next, "stage = \"shadow\"")).await;
    send_api(&proxy, 30).await;
    let in_shadow = traffic_when(&proxy, |api| requests(&api["period"], "new") == 30).await;
    let shadow_since = api(&in_shadow)["period"]["since"].as_str().unwrap().to_owned();
    assert_eq!(api(&in_shadow)["new_share"], 0.0, "{in_shadow:#}");

    // 25 %, no sticky key: each request is placed on its own.
    let promoted = api_route(&legacy, &next, "stage = \"canary\"\ncanary = { percent = 25 }");
    proxy.write_config(&promoted);
    proxy.wait_for_version(&strangler::config::version_of(&promoted)).await;
    let (to_legacy, to_new) = send_api(&proxy, 400).await;
    let traffic = traffic_when(&proxy, |api| {
        requests(&api["period"], "legacy") + requests(&api["period"], "new") == 400
    })
    .await;
    let api = api(&traffic);
    let period = &api["period"];
    // The shadow's 30 requests (and their 30 copies) belong to the previous period.
    assert_eq!(requests(period, "legacy"), to_legacy, "{traffic:#}");
    assert_eq!(requests(period, "new"), to_new, "{traffic:#}");
    assert_eq!(period["new"].get("shadow"), None, "client requests: {traffic:#}");
    let share = api["new_share"].as_f64().unwrap();
    assert!((share - to_new as f64 / 400.0).abs() < 1e-9, "{share} vs {to_new}/400");
    assert!((0.15..0.35).contains(&share), "a 25 % canary at {share}");
    // Since the start the shadow's requests count on legacy: the lifetime share is lower.
    assert_eq!(requests(api, "legacy"), to_legacy + 30);
    let lifetime = api["lifetime_new_share"].as_f64().unwrap();
    assert!((lifetime - to_new as f64 / 430.0).abs() < 1e-9, "{lifetime}");
    let since = period["since"].as_str().unwrap();
    let (shadow_at, canary_at) = (
        humantime::parse_rfc3339(&shadow_since).unwrap(),
        humantime::parse_rfc3339(since).unwrap(),
    );
    assert!(canary_at >= shadow_at, "{since} before {shadow_since}");
    assert!(period["seconds"].as_f64().unwrap() < 60.0, "{period}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_minute_counts_what_was_just_sent() {
    let legacy = echo_upstream("legacy").await;
    let next = echo_upstream("next").await;
    let proxy = TestProxy::start(&api_route(&legacy, &next, "stage = \"new\"")).await;
    send_api(&proxy, 7).await;
    let traffic = traffic_when(&proxy, |api| requests(&api["last_minute"], "new") == 7).await;
    let recent = &api(&traffic)["last_minute"];
    assert_eq!(requests(recent, "legacy"), 0, "{recent:#}");
    assert_eq!(recent["new_share"], 1.0);
    let seconds = recent["seconds"].as_f64().unwrap();
    assert!(0.0 < seconds && seconds <= 60.0, "{seconds}");
    let rate = recent["new"]["requests_per_second"].as_f64().unwrap();
    assert!(
        (rate - 7.0 / seconds.max(1.0)).abs() < 1e-9,
        "{rate} req/s over {seconds} s"
    );
    assert!(recent["new"]["p50_seconds"].as_f64().is_some(), "{recent:#}");
    // The period counts them too; the lifetime count agrees.
    assert_eq!(requests(&api(&traffic)["period"], "new"), 7);
    assert_eq!(requests(api(&traffic), "new"), 7);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_copies_are_timed_on_the_new_side() {
    let legacy = echo_upstream("legacy").await;
    // The new upstream takes 30 ms: its copies are slower than legacy's answers.
    let next = upstream_with(|_request: Request<Incoming>| async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Response::builder()
            .header("content-type", "application/json")
            .body(full("{\"upstream\": \"next\"}"))
            .unwrap()
    })
    .await;
    let proxy = TestProxy::start(&api_route(&legacy, &next, "stage = \"shadow\"")).await;
    let (to_legacy, to_next) = send_api(&proxy, 12).await;
    assert_eq!((to_legacy, to_next), (12, 0), "clients are answered by legacy");
    let traffic = traffic_when(&proxy, |api| requests(&api["period"], "new") == 12).await;
    let api = api(&traffic);
    let copies = &api["period"]["new"];
    assert_eq!(copies["shadow"], true, "copies are marked: {traffic:#}");
    assert_eq!(copies["upstream"], "next");
    let copy_p50 = copies["p50_seconds"].as_f64().unwrap();
    let legacy_p50 = api["period"]["legacy"]["p50_seconds"].as_f64().unwrap();
    assert!(
        copy_p50 >= 0.025 && copy_p50 > legacy_p50,
        "new {copy_p50} s, legacy {legacy_p50} s"
    );
    assert!(copies["p99_seconds"].as_f64().unwrap() >= copy_p50);
    assert_eq!(api["last_minute"]["new"]["shadow"], true);
    assert_eq!(requests(&api["last_minute"], "new"), 12);
    // Copies are no client's traffic: not in the share, not in the lifetime counts.
    assert_eq!(api["new_share"], 0.0);
    assert_eq!(requests(api, "new"), 0);
    assert_eq!(api["new"].get("shadow"), None);

    let metrics = metrics_text(proxy.admin).await;
    let series = "strangler_shadow_duration_seconds_count{route=\"api\",upstream=\"next\"}";
    assert_eq!(sample(&metrics, series), Some(12.0), "{metrics}");
    let fast = "strangler_shadow_duration_seconds_bucket{route=\"api\",upstream=\"next\",le=\"0.025\"}";
    assert_eq!(sample(&metrics, fast), Some(0.0), "no copy under 25 ms: {metrics}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_share_change_starts_a_new_traffic_period_but_keeps_the_evidence() {
    let legacy = echo_upstream("legacy").await;
    let next = echo_upstream("next").await;
    let at_10 = api_route(&legacy, &next, "stage = \"canary\"\ncanary = { percent = 10 }");
    let proxy = TestProxy::start(&at_10).await;
    // Enough requests that some went to new (each is placed on its own: no sticky key).
    let (first_legacy, first_new) = send_api(&proxy, 200).await;
    assert!(first_new > 0 && first_legacy > 0, "{first_legacy} / {first_new}");
    traffic_when(&proxy, |api| {
        requests(&api["period"], "legacy") + requests(&api["period"], "new") == 200
    })
    .await;
    let evidence_before = admin_json(proxy.admin, "/admin/parity").await["routes"]["api"]["evidence"].clone();
    assert!(evidence_before["since"].is_string(), "{evidence_before:#}");

    let reloaded_at = std::time::Instant::now();
    let at_50 = api_route(&legacy, &next, "stage = \"canary\"\ncanary = { percent = 50 }");
    proxy.write_config(&at_50);
    proxy.wait_for_version(&strangler::config::version_of(&at_50)).await;
    let (to_legacy, to_new) = send_api(&proxy, 200).await;
    let traffic = traffic_when(&proxy, |api| requests(api, "legacy") + requests(api, "new") == 400).await;
    let api = api(&traffic);
    let period = &api["period"];
    // Only the 50 % canary's requests: the 10 % ones belong to the traffic period before.
    assert_eq!(
        (requests(period, "legacy"), requests(period, "new")),
        (to_legacy, to_new),
        "{traffic:#}"
    );
    let share = api["new_share"].as_f64().unwrap();
    assert!((share - to_new as f64 / 200.0).abs() < 1e-9, "{share} vs {to_new}/200");
    // The traffic period started with the reload; the lifetime counts keep both.
    let seconds = period["seconds"].as_f64().unwrap();
    assert!(
        seconds <= reloaded_at.elapsed().as_secs_f64(),
        "the period is {seconds} s old, the reload {:?}: {period:#}",
        reloaded_at.elapsed()
    );
    let since = humantime::parse_rfc3339(period["since"].as_str().unwrap()).unwrap();
    let evidence_since = humantime::parse_rfc3339(evidence_before["since"].as_str().unwrap()).unwrap();
    assert!(since >= evidence_since, "{period:#} vs {evidence_before:#}");
    assert_eq!(requests(api, "legacy"), first_legacy + to_legacy);
    // A share change is no new evidence: parity keeps its period and its start.
    let evidence_after = admin_json(proxy.admin, "/admin/parity").await["routes"]["api"]["evidence"].clone();
    assert_eq!(evidence_after, evidence_before);
    proxy.stop().await;
}

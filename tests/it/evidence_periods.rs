//! Evidence periods (issue 17): a shadowed route's parity evidence belongs to what it was
//! gathered against. A reload that points `new` elsewhere or changes the compare rules
//! starts a new period (the old one stays visible as `previous`); one that changes another
//! route keeps it. The Prometheus side: the `period` label and the info series.

use http::{Request, Response};
use hyper::body::Incoming;

use crate::support::*;

/// An upstream that always answers the same JSON, so that every comparison matches.
async fn fixed_upstream() -> Upstream {
    upstream_with(|_request: Request<Incoming>| async {
        Response::builder()
            .header("content-type", "application/json")
            .body(full("{\"id\": 1, \"text\": \"same\"}"))
            .unwrap()
    })
    .await
}

/// A table with a shadowed route `thoughts-api` (`new` is the `thoughts` upstream at
/// `new_url`, `compare` its compare rules line) and a route `other` at `other_stage`
/// (`canary` is a canary of 10 %).
fn table(legacy: &Upstream, new_url: &str, compare: &str, other_stage: &str) -> String {
    let other = match other_stage {
        "canary" => "stage = \"canary\"\ncanary = { percent = 10 }".to_owned(),
        stage => format!("stage = \"{stage}\""),
    };
    routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", new_url)],
        &format!(
            "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n\
             {compare}\n\n\
             [[routes]]\nname = \"other\"\npath = \"/other/\"\n{other}\nnew = \"thoughts\"\n"
        ),
    )
}

/// Installs `text` and waits until it is the table in force.
async fn reload(proxy: &TestProxy, text: &str) {
    proxy.write_config(text);
    proxy.wait_for_version(&strangler::config::version_of(text)).await;
}

/// Sends `n` shadowed requests and waits until `n` more comparisons are in (current period).
async fn gather(proxy: &TestProxy, n: u64) -> serde_json::Value {
    for _ in 0..n {
        assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 200);
    }
    parity_when(proxy.admin, "thoughts-api", n).await
}

/// The `period` of the route's current evidence.
fn period(parity: &serde_json::Value) -> String {
    parity["routes"]["thoughts-api"]["evidence"]["period"]
        .as_str()
        .unwrap_or_else(|| panic!("no evidence period: {parity}"))
        .to_owned()
}

/// The `(route, period)` of every `strangler_parity_period_info` series, and each line.
fn info_series(metrics: &str) -> Vec<(String, String, String)> {
    let label = |set: &str, name: &str| {
        let start = set.find(&format!("{name}=\""))? + name.len() + 2;
        set[start..].split('"').next().map(str::to_owned)
    };
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("strangler_parity_period_info{"))
        .map(|set| {
            let route = label(set, "route").unwrap_or_default();
            let period = label(set, "period").unwrap_or_default();
            (route, period, set.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointing_new_elsewhere_starts_a_new_period_and_keeps_the_old_one_as_previous() {
    let legacy = fixed_upstream().await;
    let (first, second, third) = (fixed_upstream().await, fixed_upstream().await, fixed_upstream().await);
    let compare = "";
    let proxy = TestProxy::start(&table(&legacy, &first.url(), compare, "legacy")).await;
    let before = gather(&proxy, 10).await;
    let old_period = period(&before);
    let old_since = before["routes"]["thoughts-api"]["evidence"]["since"].clone();
    assert_eq!(before["routes"]["thoughts-api"]["match"], 10, "{before}");

    reload(&proxy, &table(&legacy, &second.url(), compare, "legacy")).await;
    let parity = admin_json(proxy.admin, "/admin/parity").await;
    let route = &parity["routes"]["thoughts-api"];
    // The new period is empty at once, and says what it is gathered against.
    assert_eq!(
        (route["match"].as_u64(), route["match_rate"].is_null()),
        (Some(0), true),
        "{parity}"
    );
    let evidence = &route["evidence"];
    assert_eq!(evidence["new"]["url"], format!("{}/", second.url()), "{parity}");
    assert_eq!(
        (evidence["stage"].as_str(), evidence["legacy"]["name"].as_str()),
        (Some("shadow"), Some("legacy"))
    );
    assert_ne!(period(&parity), old_period);
    let since = humantime::parse_rfc3339(evidence["since"].as_str().unwrap()).unwrap();
    assert!(
        since >= humantime::parse_rfc3339(old_since.as_str().unwrap()).unwrap(),
        "{parity}"
    );
    // Nothing vanished: the old counts under `previous`, with the old address; all in `total`.
    let previous = &route["previous"];
    assert_eq!(previous["match"], 10, "{parity}");
    assert_eq!(previous["evidence"]["new"]["url"], format!("{}/", first.url()));
    assert_eq!(previous["evidence"]["period"].as_str(), Some(old_period.as_str()));
    assert_eq!(route["total"]["match"], 10, "{parity}");

    // New comparisons go to the new period, and the copies to the new address.
    let after = gather(&proxy, 3).await;
    assert_eq!(after["routes"]["thoughts-api"]["match"], 3, "{after}");
    assert_eq!(after["routes"]["thoughts-api"]["total"]["match"], 13, "{after}");
    assert_eq!(second.seen().len(), 3);

    // Prometheus: counts by period, and what each period stands for.
    let new_period = period(&after);
    let metrics = metrics_text(proxy.admin).await;
    let counted = |period: &str| {
        let series = format!(
            "strangler_shadow_comparisons_total{{period=\"{period}\",result=\"match\",route=\"thoughts-api\"}}"
        );
        sample(&metrics, &series)
    };
    assert_eq!(
        (counted(&old_period), counted(&new_period)),
        (Some(10.0), Some(3.0)),
        "{metrics}"
    );
    let info = info_series(&metrics);
    let of_route: Vec<&(String, String, String)> = info.iter().filter(|(r, _, _)| r == "thoughts-api").collect();
    assert_eq!(of_route.len(), 2, "current and previous: {metrics}");
    let current = of_route.iter().find(|(_, p, _)| *p == new_period).unwrap();
    for label in [
        "stage=\"shadow\"".to_owned(),
        "legacy=\"legacy\"".to_owned(),
        "new=\"thoughts\"".to_owned(),
        format!("new_url=\"{}/\"", second.url()),
        format!("legacy_url=\"{}/\"", legacy.url()),
    ] {
        assert!(current.2.contains(&label), "{label} missing in {}", current.2);
    }
    assert!(current.2.ends_with("} 1"), "{}", current.2);

    // A second change: the oldest period leaves the info series (they stay bounded).
    reload(&proxy, &table(&legacy, &third.url(), compare, "legacy")).await;
    let metrics = metrics_text(proxy.admin).await;
    let periods: Vec<String> = info_series(&metrics)
        .into_iter()
        .filter(|(r, _, _)| r == "thoughts-api")
        .map(|(_, p, _)| p)
        .collect();
    assert_eq!(periods.len(), 2, "{metrics}");
    assert!(periods.contains(&new_period), "{metrics}");
    assert!(
        !periods.contains(&old_period),
        "the oldest period is still listed: {metrics}"
    );
    let parity = admin_json(proxy.admin, "/admin/parity").await;
    let route = &parity["routes"]["thoughts-api"];
    assert_eq!(
        (route["previous"]["match"].as_u64(), route["total"]["match"].as_u64()),
        (Some(3), Some(13))
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_routes_change_keeps_the_period_and_new_compare_rules_start_one() {
    let legacy = fixed_upstream().await;
    let new = fixed_upstream().await;
    let proxy = TestProxy::start(&table(&legacy, &new.url(), "", "legacy")).await;
    // Listed, with its evidence, before any comparison.
    let empty = admin_json(proxy.admin, "/admin/parity").await;
    assert_eq!(empty["routes"]["thoughts-api"]["match"], 0, "{empty}");
    assert_eq!(
        empty["routes"]["thoughts-api"]["evidence"]["stage"], "shadow",
        "{empty}"
    );
    let before = gather(&proxy, 5).await;
    let evidence = before["routes"]["thoughts-api"]["evidence"].clone();

    // Only `other` changes: the shadowed route's period goes on.
    reload(&proxy, &table(&legacy, &new.url(), "", "canary")).await;
    let parity = admin_json(proxy.admin, "/admin/parity").await;
    let route = &parity["routes"]["thoughts-api"];
    assert_eq!(route["evidence"], evidence, "{parity}");
    assert_eq!(route["match"], 5, "{parity}");
    assert!(route.get("previous").is_none(), "{parity}");
    // `other` changed stage: its own period changed (empty, previous kept).
    assert_eq!(parity["routes"]["other"]["evidence"]["stage"], "canary", "{parity}");
    assert_eq!(
        parity["routes"]["other"]["previous"]["evidence"]["stage"], "legacy",
        "{parity}"
    );

    // New compare rules: evidence judged by the old ones is the previous period's.
    let rules = "compare = { ignore = [\"/id\"] }";
    reload(&proxy, &table(&legacy, &new.url(), rules, "canary")).await;
    let parity = admin_json(proxy.admin, "/admin/parity").await;
    let route = &parity["routes"]["thoughts-api"];
    assert_ne!(route["evidence"]["rules"], evidence["rules"], "{parity}");
    assert_ne!(route["evidence"]["period"], evidence["period"], "{parity}");
    assert_eq!(route["evidence"]["new"], evidence["new"], "{parity}");
    assert_eq!(route["match"], 0, "{parity}");
    assert_eq!(route["previous"]["match"], 5, "{parity}");
    assert_eq!(route["previous"]["evidence"], evidence, "{parity}");
    assert_eq!(route["total"]["match"], 5, "{parity}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_leaves_the_table_and_comes_back_starts_a_new_period_everywhere() {
    let legacy = fixed_upstream().await;
    let new = fixed_upstream().await;
    let full = table(&legacy, &new.url(), "", "legacy");
    let proxy = TestProxy::start(&full).await;
    let before = gather(&proxy, 4).await;
    let old_evidence = before["routes"]["thoughts-api"]["evidence"].clone();

    // Gone, then back with the same identity (same upstreams, stage and rules).
    let without = routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &new.url())],
        "[[routes]]\nname = \"other\"\npath = \"/other/\"\nstage = \"legacy\"\nnew = \"thoughts\"\n",
    );
    reload(&proxy, &without).await;
    reload(&proxy, &full).await;
    let parity = admin_json(proxy.admin, "/admin/parity").await;
    let route = &parity["routes"]["thoughts-api"];
    // The ledger agrees with /admin/traffic: a new period, the old one under `previous`.
    assert_eq!(route["match"], 0, "{parity}");
    assert_eq!(route["previous"]["match"], 4, "{parity}");
    assert_eq!(route["previous"]["evidence"], old_evidence, "{parity}");
    assert_eq!(
        route["evidence"]["period"], old_evidence["period"],
        "same identity: {parity}"
    );
    let traffic = admin_json(proxy.admin, "/admin/traffic").await;
    let traffic_route = traffic["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "thoughts-api")
        .unwrap();
    assert_eq!(
        traffic_route["period"]["since"], route["evidence"]["since"],
        "{traffic:#} vs {parity:#}"
    );
    assert_eq!(traffic_route["period"]["new"]["requests"], 0, "{traffic:#}");
    proxy.stop().await;
}

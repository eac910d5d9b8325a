//! Stage `shadow`: clients get legacy's answers; copies go to new and are compared.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Request, Response};
use hyper::body::Incoming;

use crate::support::*;

/// An upstream answering `{"id": 1, "text": TEXT, "n": <counter if noisy>}`; a noisy
/// one's counter starts at a different value per text, so two never agree on `n`.
async fn json_upstream(text: &'static str, noisy: bool) -> Upstream {
    let counter = Arc::new(AtomicU64::new(text.len() as u64 * 1000));
    upstream_with(move |_request: Request<Incoming>| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        async move {
            let body = if noisy {
                format!("{{\"id\": 1, \"text\": \"{text}\", \"n\": {n}}}")
            } else {
                format!("{{\"id\": 1, \"text\": \"{text}\"}}")
            };
            Response::builder()
                .header("content-type", "application/json")
                .body(full(body))
                .unwrap()
        }
    })
    .await
}

fn shadow_routes(legacy: &Upstream, new: &str, shadow: &str) -> String {
    routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", new)],
        &format!(
            "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n{shadow}\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_answers_match_and_clients_get_legacy() {
    let legacy = json_upstream("same", false).await;
    let new = json_upstream("same", false).await;
    let proxy = TestProxy::start(&shadow_routes(&legacy, &new.url(), "")).await;
    for _ in 0..20 {
        let answer = get(&proxy.url("/api/thoughts/1")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["text"], "same");
    }
    let parity = parity_when(proxy.admin, "thoughts-api", 20).await;
    let r = &parity["routes"]["thoughts-api"];
    assert_eq!(r["match"], 20, "{parity}");
    assert_eq!(r["stage"], "shadow");
    assert_eq!(r["match_rate"], 1.0);
    assert_eq!(new.seen().len(), 20);
    assert_eq!(new.seen()[0].headers["x-strangler-shadow"], "1");
    let period = r["evidence"]["period"].as_str().unwrap();
    let series =
        format!("strangler_shadow_comparisons_total{{period=\"{period}\",result=\"match\",route=\"thoughts-api\"}}");
    assert_eq!(metric(&proxy, &series).await, Some(20.0));
    // Writes are not mirrored unless the route opts in.
    assert_eq!(post(&proxy.url("/api/thoughts/"), "x").await.status, 200);
    assert_eq!(new.seen().len(), 20);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_divergent_new_answer_is_a_mismatch_naming_the_pointer() {
    let legacy = json_upstream("legacy text", false).await;
    let new = json_upstream("new text", false).await;
    let proxy = TestProxy::start(&shadow_routes(&legacy, &new.url(), "")).await;
    for _ in 0..3 {
        assert_eq!(
            get(&proxy.url("/api/thoughts/1?x=1")).await.json()["text"],
            "legacy text"
        );
    }
    let parity = parity_when(proxy.admin, "thoughts-api", 3).await;
    assert_eq!(parity["routes"]["thoughts-api"]["mismatch"], 3, "{parity}");
    let mismatch = &parity["mismatches"][0];
    assert_eq!(mismatch["route"], "thoughts-api");
    assert_eq!(mismatch["path"], "/api/thoughts/1?x=1");
    assert_eq!(mismatch["status"], serde_json::json!([200, 200]));
    assert_eq!(mismatch["diffs"][0]["pointer"], "/text");
    assert_eq!(mismatch["diffs"][0]["legacy"], "\"legacy text\"");
    assert_eq!(mismatch["diffs"][0]["new"], "\"new text\"");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noisy_fields_are_noise_not_mismatch() {
    let legacy = json_upstream("same", true).await;
    let new = json_upstream("same!", true).await;
    let proxy = TestProxy::start(&shadow_routes(&legacy, &new.url(), "shadow = { noise_sample = 1.0 }")).await;
    for _ in 0..5 {
        assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 200);
    }
    let parity = parity_when(proxy.admin, "thoughts-api", 5).await;
    let r = &parity["routes"]["thoughts-api"];
    // `text` differs for real ("same" vs "same!"): noise on `n` never hides it.
    assert_eq!(r["mismatch"], 5, "{parity}");
    let diffs = parity["mismatches"][0]["diffs"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{parity}");
    assert_eq!(diffs[0]["pointer"], "/text");
    proxy.stop().await;

    // With only the noisy field differing, the outcome is noise.
    let legacy = json_upstream("same", true).await;
    let new = json_upstream("xxxxxxxx", true).await;
    let proxy = TestProxy::start(&shadow_routes(
        &legacy,
        &new.url(),
        "shadow = { noise_sample = 1.0 }\ncompare = { ignore = [\"/text\"] }",
    ))
    .await;
    for _ in 0..5 {
        assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 200);
    }
    let parity = parity_when(proxy.admin, "thoughts-api", 5).await;
    let r = &parity["routes"]["thoughts-api"];
    assert_eq!(r["noise"], 5, "{parity}");
    assert_eq!(r["mismatch"], 0, "{parity}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_dead_new_upstream_does_not_delay_the_client() {
    let legacy = json_upstream("same", false).await;
    let slow = upstream_with(|_request: Request<Incoming>| async {
        std::future::pending::<()>().await;
        Response::new(full("never"))
    })
    .await;
    // The mirrors hang until their 2 s timeout: a client held up by its mirror would get
    // its answer only after that timeout, when the mirror is already counted as an error.
    let proxy = TestProxy::start(&shadow_routes(
        &legacy,
        &slow.url(),
        "shadow = { timeout = \"2s\", max_inflight = 2 }",
    ))
    .await;
    for _ in 0..5 {
        let answer = get(&proxy.url("/api/thoughts/1")).await;
        assert_eq!(answer.status, 200);
    }
    // Five answers straight from legacy while every admitted mirror is still hanging: none
    // has timed out yet, so none of the answers waited for one.
    let parity = admin_json(&proxy, "/admin/parity").await;
    let r = &parity["routes"]["thoughts-api"];
    assert_eq!(
        r["error"].as_u64().unwrap_or(0),
        0,
        "clients waited for the mirror: {parity}"
    );
    assert!(
        slow.seen().len() <= 2,
        "max_inflight = 2: {} mirrors sent",
        slow.seen().len()
    );
    let parity = parity_when(proxy.admin, "thoughts-api", 5).await;
    let r = &parity["routes"]["thoughts-api"];
    assert_eq!(
        r["error"].as_u64().unwrap() + r["dropped"].as_u64().unwrap(),
        5,
        "{parity}"
    );
    assert!(
        r["dropped"].as_u64().unwrap() >= 1,
        "max_inflight = 2 must drop some: {parity}"
    );
    proxy.stop().await;

    let dead = dead_url();
    let proxy = TestProxy::start(&shadow_routes(&legacy, &dead, "")).await;
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.status, 200);
    let parity = parity_when(proxy.admin, "thoughts-api", 1).await;
    assert_eq!(parity["routes"]["thoughts-api"]["error"], 1, "{parity}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_skipped_and_unsafe_methods_mirror_when_asked() {
    let legacy = echo_upstream("legacy").await;
    let new = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&shadow_routes(
        &legacy,
        &new.url(),
        "shadow = { unsafe_methods = true, max_body = 8 }",
    ))
    .await;
    assert_eq!(post(&proxy.url("/api/thoughts/"), "tiny").await.status, 200);
    assert_eq!(
        post(&proxy.url("/api/thoughts/"), "far too large for the cap")
            .await
            .status,
        200
    );
    let parity = parity_when(proxy.admin, "thoughts-api", 2).await;
    let r = &parity["routes"]["thoughts-api"];
    assert_eq!(r["skipped"], 1, "{parity}");
    assert_eq!(r["match"], 1, "{parity}");
    assert_eq!(new.seen().len(), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_forge_the_shadow_marker() {
    let legacy = json_upstream("same", false).await;
    let new = json_upstream("same", false).await;
    let proxy = TestProxy::start(&shadow_routes(&legacy, &new.url(), "")).await;
    let request = Request::get(proxy.url("/api/thoughts/1"))
        .header("x-strangler-shadow", "forged")
        .header("x-strangler-other", "forged")
        .body(full(""))
        .unwrap();
    let answer = send(&client(), request).await;
    assert_eq!(answer.status, 200);
    parity_when(proxy.admin, "thoughts-api", 1).await;

    let answered = &legacy.seen()[0].headers;
    assert!(!answered.contains_key("x-strangler-shadow"), "{answered:?}");
    assert!(!answered.contains_key("x-strangler-other"), "{answered:?}");
    let mirrored = &new.seen()[0].headers;
    assert_eq!(mirrored.get_all("x-strangler-shadow").iter().collect::<Vec<_>>(), ["1"]);
    assert!(!mirrored.contains_key("x-strangler-other"), "{mirrored:?}");
    proxy.stop().await;
}

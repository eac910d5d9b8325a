//! Stage `canary`: a share of the traffic goes to the new upstream, users stay on their side.

use http::Request;

use crate::support::*;

fn canary_routes(legacy: &Upstream, new: &Upstream, percent: f64, sticky: &str) -> String {
    let sticky = if sticky.is_empty() {
        String::new()
    } else {
        format!(", sticky = \"{sticky}\"")
    };
    routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &new.url())],
        &format!(
            "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"canary\"\nnew = \"thoughts\"\n\
             canary = {{ percent = {percent:.1}{sticky} }}\n"
        ),
    )
}

async fn side_of(proxy: &TestProxy, user: Option<&str>) -> String {
    let mut request = Request::get(proxy.url("/api/thoughts/1"));
    if let Some(user) = user {
        request = request.header("x-user", user);
    }
    let answer = send(&client(), request.body(full("")).unwrap()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["upstream"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_users_stay_on_their_side_and_the_share_holds() {
    let legacy = echo_upstream("legacy").await;
    let new = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&canary_routes(&legacy, &new, 30.0, "header:x-user")).await;

    // One user always lands on the same side.
    for user in ["alice", "bob", "carol"] {
        let first = side_of(&proxy, Some(user)).await;
        for _ in 0..20 {
            assert_eq!(side_of(&proxy, Some(user)).await, first, "{user} changed sides");
        }
    }
    // Across many users, about 30 % go to new.
    let mut to_new = 0;
    for i in 0..400 {
        if side_of(&proxy, Some(&format!("user-{i}"))).await == "thoughts" {
            to_new += 1;
        }
    }
    assert!((80..=160).contains(&to_new), "{to_new} of 400 went to new at 30 %");
    let counted = metric(
        &proxy,
        "strangler_canary_requests_total{route=\"thoughts-api\",side=\"new\"}",
    )
    .await;
    assert!(
        counted.unwrap_or(0.0) >= f64::from(to_new),
        "canary metric {counted:?} < {to_new}"
    );

    // Raising the share only moves users from legacy to new.
    let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    let mut before = Vec::new();
    for user in &users {
        before.push(side_of(&proxy, Some(user)).await);
    }
    let text = canary_routes(&legacy, &new, 70.0, "header:x-user");
    proxy.write_config(&text);
    proxy.wait_for_version(&strangler::config::version_of(&text)).await;
    for (user, was) in users.iter().zip(&before) {
        let now = side_of(&proxy, Some(user)).await;
        assert!(
            !(was == "thoughts" && now == "legacy"),
            "{user} moved back to legacy when the share grew"
        );
    }
    proxy.stop().await;
}

#[tokio::test]
async fn zero_and_hundred_percent_are_absolute() {
    let legacy = echo_upstream("legacy").await;
    let new = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&canary_routes(&legacy, &new, 0.0, "")).await;
    for _ in 0..50 {
        assert_eq!(side_of(&proxy, None).await, "legacy");
    }
    let text = canary_routes(&legacy, &new, 100.0, "");
    proxy.write_config(&text);
    proxy.wait_for_version(&strangler::config::version_of(&text)).await;
    for _ in 0..50 {
        assert_eq!(side_of(&proxy, None).await, "thoughts");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn without_a_sticky_key_requests_are_spread() {
    let legacy = echo_upstream("legacy").await;
    let new = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&canary_routes(&legacy, &new, 50.0, "")).await;
    let mut to_new = 0;
    for _ in 0..200 {
        if side_of(&proxy, None).await == "thoughts" {
            to_new += 1;
        }
    }
    assert!((60..=140).contains(&to_new), "{to_new} of 200 went to new at 50 %");
    let routes = get(&proxy.admin_url("/admin/routes")).await.json();
    assert_eq!(routes["routes"][0]["stage"], "canary");
    assert_eq!(routes["routes"][0]["canary"]["percent"], 50.0);
    proxy.stop().await;
}

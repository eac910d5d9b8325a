//! Hot reload: every way a new routes.toml reaches a running proxy (rename, in-place
//! write, Kubernetes-style symlink swap, `POST /admin/reload`), rejected tables, and
//! reloads under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use strangler::config::version_of;

use crate::support::files::InPlaceWriter;
use crate::support::*;

/// How soon a changed file must be in force.
const LIVE_WITHIN: Duration = Duration::from_secs(2);

const ERROR_SERIES: &str = "strangler_config_reloads_total{result=\"error\"}";
const OK_SERIES: &str = "strangler_config_reloads_total{result=\"ok\"}";

/// `legacy` (default) and `thoughts` upstreams; the route `thoughts-api` on the prefix
/// `/api/thoughts/` at `stage`.
fn thoughts_table(legacy: &Upstream, thoughts: &Upstream, stage: &str) -> String {
    routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
        &format!(
            "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"{stage}\"\nnew = \"thoughts\"\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rename_over_the_file_flips_a_route() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&thoughts_table(&legacy, &thoughts, "legacy")).await;
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "legacy");

    let flipped = thoughts_table(&legacy, &thoughts, "new");
    let version = version_of(&flipped);
    assert_ne!(version, proxy.version());
    proxy.write_config(&flipped);
    let status = proxy.wait_for_within(LIVE_WITHIN, |s| s.version == version).await;
    assert_eq!(status.last_error, None);

    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    assert_eq!(served_by(&proxy, "/api/other").await, "legacy");
    assert_eq!(thoughts.seen().len(), 1);
    assert_eq!(admin_json(&proxy, "/admin/routes").await["version"], version.as_str());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_place_write_is_picked_up() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&thoughts_table(&legacy, &thoughts, "legacy")).await;
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "legacy");

    let flipped = thoughts_table(&legacy, &thoughts, "new");
    let version = version_of(&flipped);
    std::fs::write(&proxy.config, &flipped).unwrap();
    proxy.wait_for_within(LIVE_WITHIN, |s| s.version == version).await;

    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    assert_eq!(proxy.state.last_error(), None);
    proxy.stop().await;
}

/// A ConfigMap volume: `routes.toml -> ..data/routes.toml`, `..data -> ..TIMESTAMP`; an
/// update writes a new timestamped dir and renames a fresh `..data` symlink over the old.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn kubernetes_configmap_symlink_swap_is_picked_up() {
    use std::os::unix::fs::symlink;

    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    std::fs::create_dir(base.join("..2026_11_27_01")).unwrap();
    std::fs::write(
        base.join("..2026_11_27_01/routes.toml"),
        thoughts_table(&legacy, &thoughts, "legacy"),
    )
    .unwrap();
    symlink("..2026_11_27_01", base.join("..data")).unwrap();
    symlink("..data/routes.toml", base.join("routes.toml")).unwrap();
    let proxy = TestProxy::start_at(dir, base.join("routes.toml")).await;
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "legacy");

    let flipped = thoughts_table(&legacy, &thoughts, "new");
    let version = version_of(&flipped);
    std::fs::create_dir(base.join("..2026_11_27_02")).unwrap();
    std::fs::write(base.join("..2026_11_27_02/routes.toml"), &flipped).unwrap();
    symlink("..2026_11_27_02", base.join("..data_tmp")).unwrap();
    std::fs::rename(base.join("..data_tmp"), base.join("..data")).unwrap();
    std::fs::remove_dir_all(base.join("..2026_11_27_01")).unwrap();

    let status = proxy.wait_for_within(LIVE_WITHIN, |s| s.version == version).await;
    assert_eq!(status.last_error, None);
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_table_keeps_the_old_one_and_says_where() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let good = thoughts_table(&legacy, &thoughts, "new");
    let proxy = TestProxy::start(&good).await;
    let version = version_of(&good);
    assert_eq!(proxy.version(), version);
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    assert_eq!(
        metric(&proxy, OK_SERIES).await,
        Some(1.0),
        "the first load counts as ok"
    );
    assert_eq!(metric(&proxy, ERROR_SERIES).await, Some(0.0));

    // 1. A route names an upstream that does not exist.
    let unknown = good.replace("new = \"thoughts\"", "new = \"nope\"");
    let (line, column) = position_of(&unknown, "\"nope\"");
    proxy.write_config(&unknown);
    let status = proxy
        .wait_for_within(LIVE_WITHIN, |s| {
            s.last_error
                .as_ref()
                .is_some_and(|e| e.iter().any(|e| e.contains("`nope`")))
        })
        .await;
    let errors = status.last_error.unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("unknown upstream `nope`"), "{errors:?}");
    assert_eq!(
        error_location(&errors[0], "routes.toml"),
        Some((line, column)),
        "{errors:?}"
    );
    assert_eq!(status.version, version);
    assert_eq!(proxy.version(), version);
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    assert!(metric(&proxy, ERROR_SERIES).await >= Some(1.0));
    let routes = admin_json(&proxy, "/admin/routes").await;
    assert_eq!(routes["version"], version.as_str());
    let shown = routes["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(
        shown.contains(&format!("routes.toml:{line}:{column}: unknown upstream `nope`")),
        "{routes}"
    );

    // 2. A TOML syntax error.
    let syntax = good.replace("stage = \"new\"", "stage \"new\"");
    let (line, _) = position_of(&syntax, "stage \"new\"");
    proxy.write_config(&syntax);
    let status = proxy
        .wait_for_within(LIVE_WITHIN, |s| {
            s.last_error
                .as_ref()
                .is_some_and(|e| e.iter().any(|e| e.contains("expected `=`")))
        })
        .await;
    let errors = status.last_error.unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        error_location(&errors[0], "routes.toml").map(|(l, _)| l),
        Some(line),
        "{errors:?}"
    );
    assert_eq!(proxy.version(), version);
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    assert!(
        admin_json(&proxy, "/admin/routes").await["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("routes.toml:{line}:")))
    );

    // 3. A good table clears the error.
    let fixed = thoughts_table(&legacy, &thoughts, "legacy");
    let fixed_version = version_of(&fixed);
    proxy.write_config(&fixed);
    let status = proxy.wait_for_within(LIVE_WITHIN, |s| s.version == fixed_version).await;
    assert_eq!(status.last_error, None);
    assert_eq!(
        admin_json(&proxy, "/admin/routes").await["last_error"],
        serde_json::Value::Null
    );
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "legacy");
    assert_eq!(metric(&proxy, OK_SERIES).await, Some(2.0));
    // Two bad files were written: two rejections, however many watcher events each save
    // gave (see `a_rejected_file_seen_again_by_the_watcher_is_not_rejected_again`).
    assert_eq!(metric(&proxy, ERROR_SERIES).await, Some(2.0));
    proxy.stop().await;
}

/// What src/reload.rs promises ("watcher events whose file content is unchanged
/// are ignored", and `LoadStatus::attempts` does not count unchanged files) for a file
/// that was rejected: a second watcher event on the same bad content (here the same bytes
/// renamed over it again) is not another load attempt, not another error counted and
/// logged.
#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_file_seen_again_by_the_watcher_is_not_rejected_again() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let good = thoughts_table(&legacy, &thoughts, "new");
    let proxy = TestProxy::start(&good).await;
    let bad = good.replace("new = \"thoughts\"", "new = \"nope\"");
    proxy.write_config(&bad);
    let rejected = proxy.wait_for_within(LIVE_WITHIN, |s| s.last_error.is_some()).await;

    // The same bytes again, renamed over the file (never a half-written file): the
    // watcher sees a change, the content is what was rejected.
    proxy.write_config(&bad);
    let mut status = proxy.state.subscribe();
    // Not a synchronisation: a bounded window in which no new attempt may happen (a
    // reload follows a watcher event within about 100 ms).
    let again = tokio::time::timeout(
        Duration::from_secs(1),
        status.wait_for(|s| s.attempts > rejected.attempts),
    )
    .await;
    assert!(
        again.is_err(),
        "the unchanged rejected file was loaded again: {:?}",
        proxy.state.subscribe().borrow()
    );
    assert_eq!(metric(&proxy, ERROR_SERIES).await, Some(1.0));
    proxy.stop().await;
}

/// A table rejected for another file it names (here a missing admin token file) is not
/// "the same bad bytes": once that file exists, saving the table again applies it, without
/// a SIGHUP.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_rejected_for_a_missing_file_applies_once_the_file_exists_and_the_table_is_saved() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&thoughts_table(&legacy, &thoughts, "legacy")).await;
    let with_token = thoughts_table(&legacy, &thoughts, "new").replacen(
        "[proxy]\n",
        "[proxy]\nadmin_token_file = \"admin-token\"\n",
        1,
    );
    proxy.write_config(&with_token);
    let rejected = proxy.wait_for_within(LIVE_WITHIN, |s| s.last_error.is_some()).await;
    let errors = rejected.last_error.unwrap_or_default().join("\n");
    assert!(errors.contains("admin_token_file"), "{errors}");

    std::fs::write(proxy.dir.path().join("admin-token"), "s3cret-token-for-the-test\n").unwrap();
    proxy.write_config(&with_token);
    let applied = proxy
        .wait_for_within(LIVE_WITHIN, |s| {
            s.last_error.is_none() && s.version == version_of(&with_token)
        })
        .await;
    assert_eq!(applied.version, version_of(&with_token));
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    proxy.stop().await;
}

/// The usual way out of a bad edit is to put the old file back (`git checkout`): the
/// table in force is then what the file says again, and the error must go away.
#[tokio::test(flavor = "multi_thread")]
async fn reverting_a_rejected_file_clears_the_error() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let good = thoughts_table(&legacy, &thoughts, "new");
    let proxy = TestProxy::start(&good).await;

    proxy.write_config(&good.replace("new = \"thoughts\"", "new = \"nope\""));
    proxy.wait_for(|s| s.last_error.is_some()).await;

    proxy.write_config(&good);
    let status = proxy.wait_for_within(LIVE_WITHIN, |s| s.last_error.is_none()).await;
    assert_eq!(status.version, version_of(&good));
    assert_eq!(
        admin_json(&proxy, "/admin/routes").await["last_error"],
        serde_json::Value::Null
    );
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    proxy.stop().await;
}

/// One request through the proxy that must not fail: `Ok(upstream name)` or why it failed.
async fn storm_request(
    client: &hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, BoxBody>,
    url: &str,
) -> Result<String, String> {
    let request = Request::get(url).body(full("")).map_err(|e| e.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("client error: {e:?}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body error: {e:?}"))?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if status != StatusCode::OK {
        return Err(format!("{status}: {body}"));
    }
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    Ok(json["upstream"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_storm_drops_no_request() {
    const REQUESTS: usize = 3000;
    const WORKERS: usize = 4;
    const MAX_RELOADS: usize = 200;

    let legacy = echo_upstream("legacy").await;
    let a = echo_upstream("a").await;
    let b = echo_upstream("b").await;
    let table = |stage: &str| {
        routes_toml(
            &[("legacy", &legacy.url()), ("a", &a.url()), ("b", &b.url())],
            &format!(
                "[[routes]]\nname = \"storm\"\npath = \"/storm/\"\nlegacy = \"a\"\nnew = \"b\"\nstage = \"{stage}\"\n"
            ),
        )
    };
    let tables = [table("new"), table("legacy")];
    let proxy = TestProxy::start(&tables[1]).await;

    let next = Arc::new(AtomicUsize::new(0));
    let clients_done = Arc::new(AtomicBool::new(false));
    let url = proxy.url("/storm/thing?x=1");
    let client = client();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (next, client, url) = (next.clone(), client.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let (mut by_a, mut by_b, mut failures) = (0usize, 0usize, Vec::new());
            while next.fetch_add(1, Ordering::Relaxed) < REQUESTS {
                match storm_request(&client, &url).await.as_deref() {
                    Ok("a") => by_a += 1,
                    Ok("b") => by_b += 1,
                    Ok(other) => failures.push(format!("answered by `{other}`")),
                    Err(e) => failures.push(e.to_owned()),
                }
            }
            (by_a, by_b, failures)
        }));
    }

    let writer = {
        let (config, reload_url, done) = (
            proxy.config.clone(),
            proxy.admin_url("/admin/reload"),
            clients_done.clone(),
        );
        let tables = tables.clone();
        tokio::spawn(async move {
            let tmp = config.with_file_name(".storm.tmp");
            let admin = crate::support::client();
            let mut reloads = 0;
            while reloads < MAX_RELOADS && !done.load(Ordering::Relaxed) {
                std::fs::write(&tmp, &tables[reloads % 2]).unwrap();
                std::fs::rename(&tmp, &config).unwrap();
                let answer = send(&admin, Request::post(&reload_url).body(full("")).unwrap()).await;
                assert_eq!(answer.status, 200, "reload {reloads}: {}", answer.body);
                assert_eq!(answer.json()["version"], version_of(&tables[reloads % 2]).as_str());
                reloads += 1;
            }
            reloads
        })
    };

    let (mut by_a, mut by_b, mut failures) = (0, 0, Vec::new());
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        for worker in workers {
            let (a, b, f) = worker.await.unwrap();
            by_a += a;
            by_b += b;
            failures.extend(f);
        }
        clients_done.store(true, Ordering::Relaxed);
        writer.await.unwrap()
    })
    .await;
    let reloads = outcome.expect("the storm did not finish within 60 s");

    assert!(
        failures.is_empty(),
        "{} failed requests, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(by_a + by_b, REQUESTS);
    assert!(
        by_a > 0 && by_b > 0,
        "a answered {by_a}, b answered {by_b} (after {reloads} reloads)"
    );
    assert!(reloads >= 10, "only {reloads} reloads happened during the storm");
    assert_eq!(
        legacy.seen().len(),
        0,
        "no storm request may reach the default upstream"
    );
    assert_eq!(proxy.state.last_error(), None);
    assert_eq!(metric(&proxy, ERROR_SERIES).await, Some(0.0));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_reload_answers_ok_or_422_and_keeps_serving() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&thoughts_table(&legacy, &thoughts, "legacy")).await;

    let flipped = thoughts_table(&legacy, &thoughts, "new");
    let version = version_of(&flipped);
    proxy.write_config(&flipped);
    let answer = post(&proxy.admin_url("/admin/reload"), "").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers["content-type"], "application/json");
    let json = answer.json();
    assert_eq!(
        (&json["result"], &json["version"]),
        (&"ok".into(), &version.as_str().into())
    );
    // What changed against the table the reload replaced: the watcher may have applied
    // the renamed file first (then nothing), see `a_reload_that_removes_routes_says_so`.
    let changed = json["changes"]["changed"].as_array().cloned().unwrap_or_default();
    assert!(changed.is_empty() || changed == ["thoughts-api"], "{json}");
    assert_eq!(
        (
            json["changes"]["added"].as_array().map(Vec::len),
            json["changes"]["removed"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0)),
        "{json}"
    );
    // The reload is done when the answer comes: no waiting needed.
    assert_eq!(proxy.version(), version);
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");

    let broken = flipped.replace("path = \"/api/thoughts/\"", "path = \"api/thoughts\"");
    let (line, column) = position_of(&broken, "\"api/thoughts\"");
    proxy.write_config(&broken);
    let answer = post(&proxy.admin_url("/admin/reload"), "").await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json["result"], "error", "{json}");
    let errors = json["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{json}");
    let error = errors[0].as_str().unwrap_or_default();
    assert_eq!(error_location(error, "routes.toml"), Some((line, column)), "{error}");
    assert!(error.contains("must start with `/`"), "{error}");
    assert_eq!(proxy.version(), version);
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_address_change_applies_routes_and_keeps_the_old_listeners() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&thoughts_table(&legacy, &thoughts, "legacy")).await;
    let (addr, admin) = (proxy.addr, proxy.admin);

    let moved = thoughts_table(&legacy, &thoughts, "new")
        .replace("\nlisten = \"127.0.0.1:0\"", "\nlisten = \"127.0.0.1:1\"")
        .replace("admin_listen = \"127.0.0.1:0\"", "admin_listen = \"127.0.0.1:2\"");
    assert!(moved.contains("127.0.0.1:1\"") && moved.contains("127.0.0.1:2\""));
    let version = version_of(&moved);
    proxy.write_config(&moved);
    proxy.wait_for_version(&version).await;
    assert_eq!(proxy.state.last_error(), None);

    // Same listeners as before, new routes.
    assert_eq!((proxy.addr, proxy.admin), (addr, admin));
    assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    let routes = admin_json(&proxy, "/admin/routes").await;
    assert_eq!(routes["version"], version.as_str());
    assert_eq!(metric(&proxy, OK_SERIES).await, Some(2.0));
    proxy.stop().await;
}

/// Proves: a reload that leaves an upstream's settings as they were keeps its pooled
/// connections (the request after the reload reuses the connection of the one before),
/// and one that changes them starts afresh.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_pools_survive_reloads_that_do_not_change_them() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    // One worker and one client connection: every request goes through the same pool.
    let table = |stage: &str, legacy_extra: &str| {
        routes_toml_with(
            "workers = 1",
            &[
                ("legacy", &legacy.url(), legacy_extra),
                ("thoughts", &thoughts.url(), ""),
            ],
            &format!(
                "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"{stage}\"\nnew = \"thoughts\"\n"
            ),
        )
    };
    let proxy = TestProxy::start(&table("legacy", "")).await;
    let client = client();
    let served_by = |path: &str| {
        let request = Request::get(proxy.url(path)).body(full("")).unwrap();
        let client = &client;
        async move {
            let answer = send(client, request).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            answer.json()["upstream"].as_str().unwrap_or_default().to_owned()
        }
    };
    assert_eq!(served_by("/api/thoughts/1").await, "legacy");
    assert_eq!(served_by("/other").await, "legacy");
    assert_eq!(legacy.connections(), 1, "not pooled to begin with");

    // The route moves; `legacy` is configured as before.
    let moved = table("new", "");
    proxy.write_config(&moved);
    proxy.wait_for_version(&version_of(&moved)).await;
    assert_eq!(served_by("/api/thoughts/1").await, "thoughts");
    assert_eq!(served_by("/other").await, "legacy");
    assert_eq!(
        legacy.connections(),
        1,
        "the reload dropped the pool of an upstream it did not change"
    );

    // `legacy` itself changes: its requests go through a new pool.
    let changed = table("new", "request_timeout = \"20s\"");
    proxy.write_config(&changed);
    proxy.wait_for_version(&version_of(&changed)).await;
    assert_eq!(served_by("/other").await, "legacy");
    assert_eq!(legacy.connections(), 2, "a changed upstream kept its old pool");
    proxy.stop().await;
}

/// Proves: a request routed before a reload finishes on the table it started with: held
/// at the old upstream while a reload moves its route elsewhere and removes that upstream,
/// it still gets the old upstream's answer, while new requests take the new route.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_finishes_on_the_table_it_started_with() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let mut old = HeldUpstream::start("from the old table").await;
    let before = routes_toml(
        &[
            ("legacy", &legacy.url()),
            ("old", &old.upstream.url()),
            ("thoughts", &thoughts.url()),
        ],
        "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"legacy\"\nlegacy = \"old\"\nnew = \"thoughts\"\n",
    );
    let proxy = TestProxy::start(&before).await;
    let url = proxy.url("/api/thoughts/1");
    let in_flight = tokio::spawn(async move { get(&url).await });
    assert_eq!(old.arrived().await, "/api/thoughts/1");

    let after = thoughts_table(&legacy, &thoughts, "new");
    proxy.write_config(&after);
    let status = proxy
        .wait_for_within(LIVE_WITHIN, |s| s.version == version_of(&after))
        .await;
    assert_eq!(status.last_error, None);
    assert_eq!(served_by(&proxy, "/api/thoughts/2").await, "thoughts");
    assert!(
        !in_flight.is_finished(),
        "the request in flight ended before its answer"
    );

    old.release();
    let answer = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the request in flight did not finish")
        .unwrap();
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, "from the old table")
    );
    assert_eq!(
        old.upstream.seen().len(),
        1,
        "only the request routed before the reload"
    );
    proxy.stop().await;
}

/// The table of [`a_reload_that_removes_routes_says_so`]: `thoughts-api` at `stage`, and
/// the routes `extra` names (each on `/NAME/`, to legacy).
fn table_with(legacy: &Upstream, thoughts: &Upstream, stage: &str, extra: &[&str]) -> String {
    let mut text = thoughts_table(legacy, thoughts, stage);
    for name in extra {
        text.push_str(&format!("\n[[routes]]\nname = \"{name}\"\npath = \"/{name}/\"\n"));
    }
    text
}

/// Issue 17: a reload that removes routes is visible in its answer and in
/// `strangler_config_routes`; an unchanged file's answer has empty changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_removes_routes_says_so() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let before = table_with(&legacy, &thoughts, "legacy", &["about", "help", "login"]);
    let proxy = TestProxy::start(&before).await;
    assert_eq!(metric(&proxy, "strangler_config_routes").await, Some(4.0));

    // Written in place and held open: the watcher waits for the close, so this reload
    // is the one that applies the file.
    let mut writer = InPlaceWriter::open(&proxy.config);
    writer.write(&table_with(&legacy, &thoughts, "new", &["about", "signup"]));
    let answer = post(&proxy.admin_url("/admin/reload"), "").await;
    writer.close();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json()["changes"],
        serde_json::json!({"added": ["signup"], "removed": ["help", "login"], "changed": ["thoughts-api"]})
    );
    assert_eq!(metric(&proxy, "strangler_config_routes").await, Some(3.0));

    let again = post(&proxy.admin_url("/admin/reload"), "").await;
    assert_eq!(
        again.json()["changes"],
        serde_json::json!({"added": [], "removed": [], "changed": []})
    );
    proxy.stop().await;
}

/// The log line of a reload names what it changed, at warn when it removed routes.
#[tokio::test(flavor = "multi_thread")]
async fn the_reload_log_line_names_the_changes() {
    use crate::support::binary::{BinaryProxy, ServeOptions, Stderr};
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let before = table_with(&legacy, &thoughts, "legacy", &["about", "help"]);
    let mut proxy = BinaryProxy::start_with(
        &before,
        ServeOptions {
            global_args: &["--log-format", "json"],
            rust_log: "info",
            stderr: Stderr::Lines,
        },
    )
    .await;
    let reloaded = |line: &str| line.contains("routing table reloaded");

    let added = table_with(&legacy, &thoughts, "new", &["about", "help", "signup"]);
    proxy.write_config(&added);
    let line: serde_json::Value =
        serde_json::from_str(&proxy.stderr_until(Duration::from_secs(5), reloaded).await).unwrap();
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["changes"], "+1 -0 ~1", "{line}");
    assert_eq!(
        (line["added"].as_str(), line["changed"].as_str()),
        (Some("signup"), Some("thoughts-api"))
    );

    proxy.write_config(&table_with(&legacy, &thoughts, "new", &["signup"]));
    let line: serde_json::Value =
        serde_json::from_str(&proxy.stderr_until(Duration::from_secs(5), reloaded).await).unwrap();
    assert_eq!(line["level"], "WARN", "a removal logs at warn: {line}");
    assert_eq!(line["changes"], "+0 -2 ~0", "{line}");
    assert_eq!(line["removed"], "about,help", "{line}");
    assert_eq!(line["routes"], 2, "{line}");
    proxy.kill().await;
}

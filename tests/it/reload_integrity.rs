//! Reload integrity: a routes.toml written in place, in parts, is loaded once and whole,
//! after its writer closed it and it stayed unchanged for `[proxy] reload_settle`; never
//! half-written (issue 17: a slow in-place save loaded a table with no routes).

use std::sync::Arc;
use std::time::Duration;

use strangler::config::version_of;
use strangler::reload::{Backend, Reloader, watch_with};
use tokio::time::Instant;

use crate::support::files::InPlaceWriter;
use crate::support::*;

const OK_SERIES: &str = "strangler_config_reloads_total{result=\"ok\"}";
const ERROR_SERIES: &str = "strangler_config_reloads_total{result=\"error\"}";

/// `legacy` (default) and `thoughts`; `thoughts-api` at stage new, and with `more` also
/// `other-api` (stage new) on `/api/other/`. `proxy_extra` goes into `[proxy]`.
fn table(legacy: &Upstream, thoughts: &Upstream, proxy_extra: &str, more: bool) -> String {
    let mut routes = String::from(
        "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n",
    );
    if more {
        routes.push_str(
            "\n[[routes]]\nname = \"other-api\"\npath = \"/api/other/\"\nstage = \"new\"\nnew = \"thoughts\"\n",
        );
    }
    routes_toml_with(
        proxy_extra,
        &[("legacy", &legacy.url(), ""), ("thoughts", &thoughts.url(), "")],
        &routes,
    )
}

/// `text` cut where its routes begin: a valid table with no routes, the worst half a
/// save can leave (every request would go to the default upstream).
fn split_before_routes(text: &str) -> (&str, &str) {
    let at = text.find("[[routes]]").unwrap();
    text.split_at(at)
}

/// Load attempts so far (applied or rejected; unchanged files do not count).
fn attempts(proxy: &TestProxy) -> u64 {
    proxy.state.subscribe().borrow().attempts
}

/// Half a table written in place and left open for a second while requests run: every
/// request is routed by the old table; the rest written and the file closed, the new table
/// is live within 2 s. On the default `reload_settle`.
#[tokio::test(flavor = "multi_thread")]
async fn a_half_written_file_is_not_loaded_until_its_writer_closes_it() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let proxy = TestProxy::start(&table(&legacy, &thoughts, "", false)).await;
    let old_version = proxy.version();
    let new = table(&legacy, &thoughts, "", true);
    let (first, rest) = split_before_routes(&new);

    let mut writer = InPlaceWriter::open(&proxy.config);
    writer.write(first);
    let requests = old_table_serves_for(&proxy, Duration::from_secs(1)).await;
    assert!(requests >= 10, "only {requests} requests in a second");
    assert_eq!(proxy.version(), old_version);
    assert_eq!(attempts(&proxy), 1, "the half-written file was loaded");
    assert_eq!(metric(&proxy, OK_SERIES).await, Some(1.0));

    writer.write(rest);
    writer.close();
    let version = version_of(&new);
    let live = poll(
        Duration::from_secs(2),
        || async { admin_json(&proxy, "/admin/routes").await["version"].clone() },
        |v| v == version.as_str(),
    )
    .await;
    assert_eq!(live, version.as_str(), "the whole file was not live within 2 s");
    assert_eq!(served_by(&proxy, "/api/other/1").await, "thoughts");
    assert_eq!(metric(&proxy, OK_SERIES).await, Some(2.0), "one reload");
    assert_eq!(metric(&proxy, ERROR_SERIES).await, Some(0.0));
    proxy.stop().await;
}

/// `echo a > f; sleep 0.1; echo b >> f`: two writers, each closing the file; one reload,
/// of the whole file, and no error.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_written_by_two_writers_in_a_row_reloads_once() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    // More than the 100 ms pause, with room for a busy machine.
    let settle = "reload_settle = \"500ms\"";
    let proxy = TestProxy::start(&table(&legacy, &thoughts, settle, false)).await;
    let new = table(&legacy, &thoughts, settle, true);
    let (first, rest) = split_before_routes(&new);

    let mut writer = InPlaceWriter::open(&proxy.config);
    writer.write(first);
    writer.close();
    // The scenario's pause between the two writers (not a synchronisation).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut writer = InPlaceWriter::append(&proxy.config);
    writer.write(rest);
    writer.close();

    let applied = proxy
        .wait_for_within(Duration::from_secs(2), |s| s.version == version_of(&new))
        .await;
    assert_eq!(applied.last_error, None);
    assert_eq!(applied.attempts, 2, "the first writer's half was loaded as well");
    // Not a synchronisation: a bounded window in which no further load may happen.
    let mut status = proxy.state.subscribe();
    let again = tokio::time::timeout(Duration::from_secs(1), status.wait_for(|s| s.attempts > 2)).await;
    assert!(again.is_err(), "loaded again: {:?}", proxy.state.subscribe().borrow());
    assert_eq!(metric(&proxy, OK_SERIES).await, Some(2.0));
    assert_eq!(metric(&proxy, ERROR_SERIES).await, Some(0.0));
    assert_eq!(served_by(&proxy, "/api/other/1").await, "thoughts");
    proxy.stop().await;
}

/// The poll watcher reports no closes: a file changed twice, 100 ms apart, loads once,
/// after it has been unchanged for the settle interval.
#[tokio::test(flavor = "multi_thread")]
async fn with_the_poll_watcher_a_file_loads_once_it_is_unchanged_for_the_settle_interval() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let settle = "reload_settle = \"500ms\"";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, table(&legacy, &thoughts, settle, false)).unwrap();
    let app = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || strangler::App::load(config))
            .await
            .unwrap()
            .unwrap()
    };
    let state = app.state().clone();
    let reloader = Arc::new(Reloader::new(state.clone()));
    let _watch = watch_with(reloader, &config, Backend::Poll(Duration::from_millis(20))).unwrap();

    let new = table(&legacy, &thoughts, settle, true);
    let (first, rest) = split_before_routes(&new);
    let mut writer = InPlaceWriter::open(&config);
    writer.write(first);
    // The scenario's pause between the two parts (not a synchronisation).
    tokio::time::sleep(Duration::from_millis(100)).await;
    writer.write(rest);
    writer.close();

    let mut status = state.subscribe();
    let applied = tokio::time::timeout(Duration::from_secs(3), status.wait_for(|s| s.attempts > 1))
        .await
        .expect("the file was not loaded within 3 s")
        .unwrap()
        .clone();
    assert_eq!(
        applied.version,
        version_of(&new),
        "the first load was not the whole file"
    );
    assert_eq!(applied.attempts, 2);
    assert_eq!(applied.last_error, None);
    assert_eq!(state.snapshot().routes.len(), 2);
}

/// A FIFO put at the config path (`rm routes.toml; mkfifo routes.toml`): reading it would
/// wait for a writer for ever, under the reload lock. It is refused at once, saying what it
/// is; the old table keeps serving, `POST /admin/reload` keeps answering, SIGTERM still
/// stops the process.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_at_the_config_path_is_refused_at_once_and_the_old_table_keeps_serving() {
    use crate::support::binary::BinaryProxy;
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let mut proxy = BinaryProxy::start(&table(&legacy, &thoughts, "", false)).await;
    std::fs::remove_file(&proxy.config).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&proxy.config)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo failed");

    let reload_url = format!("http://{}/admin/reload", proxy.admin);
    for attempt in 0..2 {
        let reload = post(&reload_url, "");
        let answer = tokio::time::timeout(Duration::from_secs(3), reload)
            .await
            .unwrap_or_else(|_| panic!("POST /admin/reload {attempt} did not answer within 3 s"));
        assert_eq!(answer.status, 422, "{}", answer.body);
        assert!(
            answer.body.contains("FIFO") && answer.body.contains("not a regular file"),
            "{}",
            answer.body
        );
        assert_eq!(served_by(&proxy, "/api/thoughts/5").await, "thoughts");
    }
    proxy.signal("TERM");
    assert!(proxy.exit_within(Duration::from_secs(10)).await.success());
}

/// Runs requests for `how_long` (the scenario's pause, not a synchronisation), asserting
/// each is routed by the old table (`/api/thoughts/` to `thoughts`); returns how many ran.
async fn old_table_serves_for(proxy: &TestProxy, how_long: Duration) -> usize {
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < how_long {
        assert_eq!(
            served_by(proxy, "/api/thoughts/5").await,
            "thoughts",
            "request {requests} was not routed by the old table"
        );
        requests += 1;
    }
    requests
}

/// A writer that holds the file open with half a table well past the longest wait (ten
/// settle intervals: 1 s at 100 ms): the half would remove routes, so it is held back
/// (issue 17 attack #7: it was loaded at the longest wait, `routes=0`); the writer's close
/// loads the whole file.
#[tokio::test(flavor = "multi_thread")]
async fn a_half_table_that_removes_routes_waits_for_its_writer_past_the_longest_wait() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let settle = "reload_settle = \"100ms\"";
    let proxy = TestProxy::start(&table(&legacy, &thoughts, settle, false)).await;
    let old_version = proxy.version();
    let new = table(&legacy, &thoughts, settle, true);
    let (first, rest) = split_before_routes(&new);

    let mut writer = InPlaceWriter::open(&proxy.config);
    writer.write(first);
    old_table_serves_for(&proxy, Duration::from_millis(2500)).await;
    assert_eq!(proxy.version(), old_version, "the half table was loaded");
    assert_eq!(attempts(&proxy), 1, "the half-written file was loaded");

    writer.write(rest);
    writer.close();
    let applied = proxy
        .wait_for_within(Duration::from_secs(2), |s| s.version == version_of(&new))
        .await;
    assert_eq!(applied.attempts, 2, "one reload");
    assert_eq!(applied.last_error, None);
    assert_eq!(served_by(&proxy, "/api/other/1").await, "thoughts");
    assert_eq!(metric(&proxy, OK_SERIES).await, Some(2.0));
    proxy.stop().await;
}

/// A writer that holds the file open past the longest wait with a table that removes no
/// route (here: the old table and one more route, complete): loaded at the longest wait,
/// as a crashed editor's file is.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_that_removes_nothing_loads_at_the_longest_wait_while_its_writer_is_open() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let settle = "reload_settle = \"100ms\"";
    let proxy = TestProxy::start(&table(&legacy, &thoughts, settle, false)).await;
    let new = table(&legacy, &thoughts, settle, true);

    let mut writer = InPlaceWriter::open(&proxy.config);
    writer.write(&new);
    let applied = proxy
        .wait_for_within(Duration::from_secs(3), |s| s.version == version_of(&new))
        .await;
    assert_eq!(applied.attempts, 2);
    assert_eq!(served_by(&proxy, "/api/other/1").await, "thoughts");
    writer.close();
    proxy.stop().await;
}

/// Writer A holds the file open with half a table; meanwhile another process opens the
/// file for appending and closes it without writing (`: >> routes.toml`, a script's
/// "make sure it exists"). That close is not A's: nothing loads until A closes (issue 17
/// attack #10: the half table loaded a settle interval after the other close).
#[tokio::test(flavor = "multi_thread")]
async fn another_process_opening_and_closing_the_file_does_not_end_the_writers_save() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let settle = "reload_settle = \"200ms\"";
    let proxy = TestProxy::start(&table(&legacy, &thoughts, settle, false)).await;
    let old_version = proxy.version();
    let new = table(&legacy, &thoughts, settle, true);
    let (first, rest) = split_before_routes(&new);

    let mut writer = InPlaceWriter::open(&proxy.config);
    writer.write(first);
    old_table_serves_for(&proxy, Duration::from_millis(300)).await;
    InPlaceWriter::append(&proxy.config).close();
    // Past the other close's settle interval, short of the longest wait (2 s).
    old_table_serves_for(&proxy, Duration::from_millis(1000)).await;
    assert_eq!(proxy.version(), old_version, "the half table was loaded");
    assert_eq!(attempts(&proxy), 1, "the half-written file was loaded");

    writer.write(rest);
    writer.close();
    let applied = proxy
        .wait_for_within(Duration::from_secs(2), |s| s.version == version_of(&new))
        .await;
    assert_eq!(applied.attempts, 2, "one reload");
    assert_eq!(applied.last_error, None);
    proxy.stop().await;
}

/// Every reload counts the routes it removed, and a reload that removed at least half of
/// the routes in force counts as a drop (the StranglerRoutesDropped alert reads it, so a
/// half table served for less than a scrape interval is seen; issue 17 attack #18).
#[tokio::test(flavor = "multi_thread")]
async fn reloads_count_removed_routes_and_drops() {
    const REMOVED: &str = "strangler_config_routes_removed_total";
    const DROPS: &str = "strangler_config_route_drops_total";
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let two = table(&legacy, &thoughts, "", true);
    let one = table(&legacy, &thoughts, "", false);
    let three = two.clone() + "\n[[routes]]\nname = \"third\"\npath = \"/third/\"\n";
    let proxy = TestProxy::start(&three).await;
    assert_eq!(metric(&proxy, REMOVED).await, Some(0.0));
    assert_eq!(metric(&proxy, DROPS).await, Some(0.0));

    // 3 -> 2: one removed, less than half.
    proxy.write_config(&two);
    proxy.wait_for_version(&version_of(&two)).await;
    assert_eq!(metric(&proxy, REMOVED).await, Some(1.0));
    assert_eq!(metric(&proxy, DROPS).await, Some(0.0));
    // 2 -> 1: half of them.
    proxy.write_config(&one);
    proxy.wait_for_version(&version_of(&one)).await;
    assert_eq!(metric(&proxy, REMOVED).await, Some(2.0));
    assert_eq!(metric(&proxy, DROPS).await, Some(1.0));
    // Put back right away: the gauge shows nothing happened, the counters still do.
    proxy.write_config(&three);
    proxy.wait_for_version(&version_of(&three)).await;
    assert_eq!(metric(&proxy, "strangler_config_routes").await, Some(3.0));
    assert_eq!(metric(&proxy, REMOVED).await, Some(2.0));
    assert_eq!(metric(&proxy, DROPS).await, Some(1.0));
    proxy.stop().await;
}

//! `strangler parity` against a legacy that is not ours (issue 19): writes replayed in
//! corpus order, `--setup`, `${NAME}` placeholders, named requests, runs without a
//! routes.toml, and recorded answers (`[record] responses = true`, `--legacy-from` with
//! JSON Lines and with a HAR in the shape of the book's recording). The real binary, tiny
//! upstreams on 127.0.0.1:0, no sleeps.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::*;

/// What a store upstream saw: the bodies of its writes in arrival order, whether a write
/// arrived while `/slow` was being answered, and whether `marker` existed when its first
/// request arrived.
#[derive(Default)]
struct StoreLog {
    writes: Mutex<Vec<String>>,
    overlapped: AtomicBool,
    slow_in_flight: AtomicUsize,
    marker_at_first: Mutex<Option<bool>>,
    wrote: Notify,
}

/// An upstream with state: `POST /items` appends its body, `GET /items` lists them,
/// `GET /slow` answers once a write arrives or after a while (a write that arrives while
/// it waits is a write replayed out of order).
async fn store_upstream(marker: Option<std::path::PathBuf>) -> (Upstream, Arc<StoreLog>) {
    let log = Arc::new(StoreLog::default());
    let shared = log.clone();
    let upstream = upstream_with(move |request: Request<Incoming>| {
        let log = shared.clone();
        let marker = marker.clone();
        async move {
            if let Some(marker) = &marker {
                log.marker_at_first.lock().unwrap().get_or_insert(marker.exists());
            }
            let (parts, body) = request.into_parts();
            let body = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
            let answer = match (parts.method.as_str(), parts.uri.path()) {
                ("POST", "/items") => {
                    if log.slow_in_flight.load(Ordering::SeqCst) > 0 {
                        log.overlapped.store(true, Ordering::SeqCst);
                    }
                    let mut writes = log.writes.lock().unwrap();
                    writes.push(body);
                    log.wrote.notify_waiters();
                    json!({"count": writes.len()})
                }
                ("GET", "/items") => json!(*log.writes.lock().unwrap()),
                ("GET", "/slow") => {
                    log.slow_in_flight.fetch_add(1, Ordering::SeqCst);
                    // Not synchronisation: a bound on how long an out-of-order write has
                    // to show itself. In order, no write comes while this waits.
                    let _ = tokio::time::timeout(Duration::from_millis(300), log.wrote.notified()).await;
                    log.slow_in_flight.fetch_sub(1, Ordering::SeqCst);
                    json!("slow")
                }
                _ => json!({"auth": parts.headers.get("authorization").map(|v| v.to_str().unwrap().to_owned())}),
            };
            Response::builder()
                .header("content-type", "application/json")
                .body(full(answer.to_string()))
                .unwrap()
        }
    })
    .await;
    (upstream, log)
}

/// `strangler parity ARGS` in `dir` (no routes.toml there unless the test writes one),
/// with `env` set.
async fn parity_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec!["parity"];
    all.extend_from_slice(args);
    let mut command = strangler_command(&all);
    command.current_dir(dir);
    for (name, value) in env {
        command.env(name, value);
    }
    output(&mut command).await
}

/// Proves A6 and A10: under `--concurrency 8`, with no routes.toml, every write reaches
/// both sides in corpus order, after every earlier request has finished and before any
/// later one starts, so the reads between them agree.
#[tokio::test(flavor = "multi_thread")]
async fn writes_are_replayed_in_corpus_order_under_concurrency() {
    let (legacy, legacy_log) = store_upstream(None).await;
    let (new, new_log) = store_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = String::from("{\"method\": \"GET\", \"path\": \"/slow\"}\n");
    for i in 1..=12 {
        corpus.push_str(&format!(
            "{{\"method\": \"POST\", \"path\": \"/items\", \"body\": \"{i}\"}}\n"
        ));
        corpus.push_str("{\"method\": \"GET\", \"path\": \"/items\"}\n{\"method\": \"GET\", \"path\": \"/items\"}\n");
    }
    std::fs::write(dir.path().join("writes.jsonl"), corpus).unwrap();
    let output = parity_in(
        dir.path(),
        &[
            "--legacy",
            &legacy.url(),
            "--new",
            &new.url(),
            "--requests",
            "writes.jsonl",
            "--concurrency",
            "8",
            "--json",
            "report.json",
        ],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let want: Vec<String> = (1..=12).map(|i| i.to_string()).collect();
    for log in [&legacy_log, &new_log] {
        assert_eq!(*log.writes.lock().unwrap(), want);
        assert!(
            !log.overlapped.load(Ordering::SeqCst),
            "a write ran while /slow was answered"
        );
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["routes"]["default"]["match"], 37, "{report}");
    assert!(stdout(&output).contains("37 match"), "{}", both(&output));
}

/// Proves A10's refusal: without a routes.toml, both sides must be given.
#[tokio::test]
async fn without_a_table_both_sides_are_needed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.jsonl"), "{\"method\": \"GET\", \"path\": \"/\"}\n").unwrap();
    let output = parity_in(
        dir.path(),
        &["--legacy", "http://127.0.0.1:9", "--requests", "c.jsonl"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(stderr(&output).contains("no routes.toml here"), "{}", both(&output));
}

/// Proves A10 with a table: a parity-only routes.toml without `[proxy]` (no `listen`,
/// no `admin_listen`) is enough.
#[tokio::test(flavor = "multi_thread")]
async fn a_parity_only_table_needs_no_proxy_section() {
    let (legacy, _) = store_upstream(None).await;
    let (new, _) = store_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    let table = format!(
        "[upstreams.legacy]\nurl = \"{}\"\n\n[upstreams.items]\nurl = \"{}\"\n\n[[routes]]\nname = \"items\"\npath = \"/items\"\nnew = \"items\"\n",
        legacy.url(),
        new.url()
    );
    std::fs::write(dir.path().join("routes.toml"), table).unwrap();
    std::fs::write(
        dir.path().join("c.jsonl"),
        "{\"method\": \"GET\", \"path\": \"/items\"}\n",
    )
    .unwrap();
    let output = parity_in(dir.path(), &["--requests", "c.jsonl"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(stdout(&output).contains("items"), "{}", both(&output));
    assert!(stdout(&output).contains("1 match"), "{}", both(&output));
}

/// Proves A6's `--setup`: it runs before the first request; when it fails, nothing is
/// replayed and the exit code is 2.
#[tokio::test(flavor = "multi_thread")]
async fn setup_runs_before_the_replay_and_a_failure_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("reset-done");
    let (legacy, legacy_log) = store_upstream(Some(marker.clone())).await;
    let (new, _) = store_upstream(None).await;
    std::fs::write(
        dir.path().join("c.jsonl"),
        "{\"method\": \"GET\", \"path\": \"/items\"}\n",
    )
    .unwrap();
    let sides = ["--legacy", &legacy.url(), "--new", &new.url(), "--requests", "c.jsonl"];

    let mut args = sides.to_vec();
    args.extend(["--setup", "exit 3"]);
    let failed = parity_in(dir.path(), &args, &[]).await;
    assert_eq!(failed.status.code(), Some(2), "{}", both(&failed));
    assert!(
        stderr(&failed).contains("--setup `exit 3` exited with 3"),
        "{}",
        both(&failed)
    );
    assert!(
        legacy.seen().is_empty() && new.seen().is_empty(),
        "replayed after a failed setup"
    );

    let mut args = sides.to_vec();
    args.extend(["--setup", "echo resetting; touch reset-done"]);
    let ran = parity_in(dir.path(), &args, &[]).await;
    assert_eq!(ran.status.code(), Some(0), "{}", both(&ran));
    assert_eq!(
        *legacy_log.marker_at_first.lock().unwrap(),
        Some(true),
        "setup ran after a request"
    );
    assert!(
        stderr(&ran).contains("resetting") && !stdout(&ran).contains("resetting"),
        "{}",
        both(&ran)
    );
}

/// Proves A7: `${NAME}` is read from the environment at load time (both sides get the
/// value, `$${` stays literal); a missing variable stops the run with exit 2 naming it
/// and its line.
#[tokio::test(flavor = "multi_thread")]
async fn placeholders_come_from_the_environment() {
    let (legacy, _) = store_upstream(None).await;
    let (new, _) = store_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.jsonl"),
        "# tokens expire: minted at replay time\n{\"method\": \"GET\", \"path\": \"/me\", \"headers\": {\"authorization\": \"Bearer ${PARITY_TOKEN} $${x}\"}}\n",
    )
    .unwrap();
    let sides = ["--legacy", &legacy.url(), "--new", &new.url(), "--requests", "c.jsonl"];
    let ran = parity_in(dir.path(), &sides, &[("PARITY_TOKEN", "fresh-token")]).await;
    assert_eq!(ran.status.code(), Some(0), "{}", both(&ran));
    for side in [&legacy, &new] {
        assert_eq!(side.seen()[0].headers["authorization"], "Bearer fresh-token ${x}");
    }
    let missing = parity_in(dir.path(), &sides, &[]).await;
    assert_eq!(missing.status.code(), Some(2), "{}", both(&missing));
    assert!(
        stderr(&missing).contains("c.jsonl:2: ${PARITY_TOKEN} is not set"),
        "{}",
        both(&missing)
    );
    assert_eq!(legacy.seen().len(), 1, "nothing is replayed with a missing variable");
}

/// Attacker pass: a placeholder's value (a token from the CI environment) is never
/// printed: the terminal, JUnit and JSON reports show `${NAME}` where it was used (here in
/// the path, so also in the default name). A header recorded as `[redacted]` is not sent
/// as that text: the request goes without it, so `--header` gives the real value.
#[tokio::test(flavor = "multi_thread")]
async fn placeholder_values_stay_out_of_reports_and_redacted_headers_are_filled() {
    let (legacy, _) = store_upstream(None).await;
    let (new, _) = store_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.jsonl"),
        "{\"method\": \"GET\", \"path\": \"/me?access_token=${KEY}\", \"headers\": {\"x-api-key\": \"${KEY}\", \"authorization\": \"[redacted]\"}}\n",
    )
    .unwrap();
    let args = [
        "--legacy",
        &legacy.url(),
        "--new",
        &new.url(),
        "--requests",
        "c.jsonl",
        "--header",
        "Authorization: Bearer real",
        "--junit",
        "p.xml",
        "--json",
        "p.json",
    ];
    let ran = parity_in(dir.path(), &args, &[("KEY", "TOPSECRET1234")]).await;
    assert_eq!(ran.status.code(), Some(0), "{}", both(&ran));
    for side in [&legacy, &new] {
        let seen = &side.seen()[0];
        assert_eq!(seen.headers["authorization"], "Bearer real");
        assert_eq!(seen.headers["x-api-key"], "TOPSECRET1234");
    }
    let json = std::fs::read_to_string(dir.path().join("p.json")).unwrap();
    let xml = std::fs::read_to_string(dir.path().join("p.xml")).unwrap();
    for (what, text) in [("terminal", both(&ran)), ("json", json.clone()), ("junit", xml.clone())] {
        assert!(!text.contains("TOPSECRET1234"), "{what}: {text}");
    }
    assert!(json.contains("/me?access_token=${KEY}"), "{json}");
    assert!(xml.contains("GET /me?access_token=${KEY} (line 1)"), "{xml}");
}

/// Newcomer pass: `--legacy-from` a file without answers is one refusal (exit 2) saying
/// how to record them, not an error per request.
#[tokio::test(flavor = "multi_thread")]
async fn legacy_from_a_file_without_answers_is_refused_once() {
    let (new, _) = store_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.jsonl"),
        "{\"method\": \"GET\", \"path\": \"/a\"}\n{\"method\": \"GET\", \"path\": \"/b\"}\n",
    )
    .unwrap();
    let ran = parity_in(dir.path(), &["--legacy-from", "c.jsonl", "--new", &new.url()], &[]).await;
    assert_eq!(ran.status.code(), Some(2), "{}", both(&ran));
    assert!(
        stderr(&ran).contains("--legacy-from c.jsonl: the file holds no recorded answers"),
        "{}",
        both(&ran)
    );
    assert!(stderr(&ran).contains("[record] responses = true"), "{}", both(&ran));
    assert!(new.seen().is_empty(), "nothing is replayed");
}

/// Proves A8: a corpus line's `name` is its JUnit case's name, the others are
/// `METHOD path (line N)`; the JSON report lists every request with its line and name.
#[tokio::test(flavor = "multi_thread")]
async fn named_requests_in_junit_and_json() {
    let (legacy, _) = store_upstream(None).await;
    let (new, _) = store_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.jsonl"),
        "{\"method\": \"POST\", \"path\": \"/items\", \"body\": \"a\", \"name\": \"create <an> item\"}\n\n{\"method\": \"GET\", \"path\": \"/items\"}\n{\"method\": \"GET\", \"path\": \"/items\"}\n",
    )
    .unwrap();
    let args = [
        "--legacy",
        &legacy.url(),
        "--new",
        &new.url(),
        "--requests",
        "c.jsonl",
        "--junit",
        "p.xml",
        "--json",
        "p.json",
    ];
    let ran = parity_in(dir.path(), &args, &[]).await;
    assert_eq!(ran.status.code(), Some(0), "{}", both(&ran));
    let xml = std::fs::read_to_string(dir.path().join("p.xml")).unwrap();
    assert!(xml.contains("name=\"create &lt;an&gt; item\""), "{xml}");
    assert!(xml.contains("name=\"GET /items (line 3)\""), "{xml}");
    assert!(xml.contains("name=\"GET /items (line 4)\""), "{xml}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("p.json")).unwrap()).unwrap();
    let requests: Vec<(u64, &str, &str)> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["name"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        requests,
        [
            (1, "create <an> item", "match"),
            (3, "GET /items (line 3)", "match"),
            (4, "GET /items (line 4)", "match")
        ]
    );
}

/// An upstream that answers `GET /api/thoughts/N/` with thought N, in the book's shape;
/// `changed` changes thought 2's text.
async fn thoughts_upstream(changed: bool) -> Upstream {
    upstream_with(move |request: Request<Incoming>| async move {
        let id: u64 = request
            .uri()
            .path()
            .trim_start_matches("/api/thoughts/")
            .trim_end_matches('/')
            .parse()
            .unwrap_or(0);
        let text = if changed && id == 2 { "changed" } else { "a thought" };
        let (status, body) = match id {
            0 => (404, json!({"id": null})),
            id => (200, json!({"id": id, "text": text})),
        };
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("set-cookie", "session=legacy-secret")
            .body(full(body.to_string()))
            .unwrap()
    })
    .await
}

/// Proves A11 end to end: a proxy with `[record] responses = true` keeps each answer
/// (status, headers with secrets redacted, body); `--legacy-from` that file replays only
/// the new side and compares with the recorded answers: all match against an equal new
/// side, and a changed field fails the run, legacy never asked.
#[tokio::test(flavor = "multi_thread")]
async fn recorded_answers_round_trip_through_legacy_from() {
    let legacy = thoughts_upstream(false).await;
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "{}\n[record]\npath = \"golden.jsonl\"\nsample = 1.0\nresponses = true\n",
        routes_toml(&[("legacy", &legacy.url())], "")
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let proxy = TestProxy::start_at(dir, config).await;
    for id in [1, 2, 0] {
        let request = Request::get(proxy.url(&format!("/api/thoughts/{id}/")))
            .header("authorization", "Bearer top-secret")
            .body(full(""))
            .unwrap();
        send(&client(), request).await;
    }
    let recorded = "strangler_recorded_requests_total{result=\"recorded\"}";
    assert_eq!(wait_metric(&proxy, recorded, |v| v == Some(3.0)).await, Some(3.0));
    let golden = proxy.dir.path().join("golden.jsonl");
    let text = wait_for_lines(&golden, 3).await;
    assert!(!text.contains("secret"), "{text}");
    // Each line is written once its answer is complete: in any order.
    let mut lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    lines.sort_by_key(|l| l["path"].as_str().unwrap().to_owned());
    let statuses: Vec<(&str, u64)> = lines
        .iter()
        .map(|l| (l["path"].as_str().unwrap(), l["response"]["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("/api/thoughts/0/", 404),
            ("/api/thoughts/1/", 200),
            ("/api/thoughts/2/", 200)
        ]
    );
    assert_eq!(
        lines[1]["response"]["body"],
        json!({"id": 1, "text": "a thought"}).to_string()
    );
    assert_eq!(lines[1]["response"]["headers"]["content-type"], "application/json");
    assert_eq!(lines[1]["response"]["headers"]["set-cookie"], "[redacted]");
    assert_eq!(lines[1]["headers"]["authorization"], "[redacted]");
    let asked = legacy.seen().len();

    let work = tempfile::tempdir().unwrap();
    let golden = golden.display().to_string();
    let same = thoughts_upstream(false).await;
    let ran = parity_in(work.path(), &["--legacy-from", &golden, "--new", &same.url()], &[]).await;
    assert_eq!(ran.status.code(), Some(0), "{}", both(&ran));
    assert!(stdout(&ran).contains("3 match"), "{}", both(&ran));
    assert_eq!(same.seen().len(), 3);

    let changed = thoughts_upstream(true).await;
    let ran = parity_in(work.path(), &["--legacy-from", &golden, "--new", &changed.url()], &[]).await;
    assert_eq!(ran.status.code(), Some(1), "{}", both(&ran));
    let out = stdout(&ran);
    assert!(out.contains("MISMATCH GET /api/thoughts/2/"), "{out}");
    assert!(out.contains("/text: legacy \"a thought\" new \"changed\""), "{out}");
    assert_eq!(legacy.seen().len(), asked, "legacy was asked during --legacy-from");
    proxy.stop().await;
}

/// Proves A11's HAR form: with `path = "golden.har"` the recording is a HAR 1.2 document
/// (after every write) whose entries carry real responses, and `--legacy-from` replays
/// the new side against it.
#[tokio::test(flavor = "multi_thread")]
async fn a_har_recording_with_responses_is_a_golden_corpus() {
    let legacy = thoughts_upstream(false).await;
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "{}\n[record]\npath = \"golden.har\"\nresponses = true\n",
        routes_toml(&[("legacy", &legacy.url())], "")
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let proxy = TestProxy::start_at(dir, config).await;
    for id in [1, 0] {
        send(
            &client(),
            Request::get(proxy.url(&format!("/api/thoughts/{id}/")))
                .body(full(""))
                .unwrap(),
        )
        .await;
    }
    let recorded = "strangler_recorded_requests_total{result=\"recorded\"}";
    assert_eq!(wait_metric(&proxy, recorded, |v| v == Some(2.0)).await, Some(2.0));
    let golden = proxy.dir.path().join("golden.har");
    let har = wait_for_har(&golden, 2).await;
    assert_eq!(har["log"]["version"], "1.2");
    // Each entry is written once its answer is complete: in any order.
    let mut entries = har["log"]["entries"].as_array().unwrap().clone();
    entries.sort_by_key(|e| e["request"]["url"].as_str().unwrap().to_owned());
    assert!(
        entries[1]["request"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/api/thoughts/1/")
    );
    assert_eq!(entries[1]["response"]["status"], 200);
    assert_eq!(entries[1]["response"]["content"]["mimeType"], "application/json");
    assert_eq!(entries[0]["response"]["status"], 404);
    assert_eq!(entries[0]["response"]["statusText"], "Not Found");

    let work = tempfile::tempdir().unwrap();
    let golden = golden.display().to_string();
    let changed = thoughts_upstream(true).await;
    let same = thoughts_upstream(false).await;
    let ran = parity_in(work.path(), &["--legacy-from", &golden, "--new", &same.url()], &[]).await;
    assert_eq!(ran.status.code(), Some(0), "{}", both(&ran));
    assert!(stdout(&ran).contains("2 match"), "{}", both(&ran));
    let ran = parity_in(work.path(), &["--legacy-from", &golden, "--new", &changed.url()], &[]).await;
    assert_eq!(
        ran.status.code(),
        Some(0),
        "thought 2 is not in the recording: {}",
        both(&ran)
    );
    proxy.stop().await;
}

/// Proves that a shadowed answer is both compared and recorded: the recording reads the
/// copy the shadow comparison reads ([`strangler::migration::shadow::Capture::also`]).
#[tokio::test(flavor = "multi_thread")]
async fn a_shadowed_answer_is_compared_and_recorded() {
    let legacy = thoughts_upstream(false).await;
    let new = thoughts_upstream(true).await;
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "{}\n[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n\n[record]\npath = \"golden.jsonl\"\nresponses = true\n",
        routes_toml(&[("legacy", &legacy.url()), ("thoughts", &new.url())], "")
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let proxy = TestProxy::start_at(dir, config).await;
    for id in [1, 2] {
        assert_eq!(get(&proxy.url(&format!("/api/thoughts/{id}/"))).await.status, 200);
    }
    let parity = parity_when(proxy.admin, "thoughts-api", 2).await;
    let route = &parity["routes"]["thoughts-api"];
    assert_eq!(
        (route["match"].as_u64(), route["mismatch"].as_u64()),
        (Some(1), Some(1)),
        "{parity}"
    );
    let recorded = "strangler_recorded_requests_total{result=\"recorded\"}";
    assert_eq!(wait_metric(&proxy, recorded, |v| v == Some(2.0)).await, Some(2.0));
    let text = wait_for_lines(&proxy.dir.path().join("golden.jsonl"), 2).await;
    // Each line is written once its answer is complete: in any order.
    let mut bodies: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["response"]["body"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            json!({"id": 1, "text": "a thought"}).to_string(),
            json!({"id": 2, "text": "a thought"}).to_string()
        ],
        "legacy's answers, as the client got them"
    );
    proxy.stop().await;
}

/// The HAR document at `path` once it holds `entries` entries (or what it holds after 5 s).
async fn wait_for_har(path: &Path, entries: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let doc = serde_json::from_str::<Value>(&text).ok();
        let count = doc
            .as_ref()
            .map_or(0, |d| d["log"]["entries"].as_array().map_or(0, Vec::len));
        if count >= entries || tokio::time::Instant::now() >= deadline {
            return doc.unwrap_or_else(|| panic!("{} is not a HAR document: {text}", path.display()));
        }
        backoff.pause().await;
    }
}

/// The text of `path` once it has `lines` lines (the recorder writes on its own thread).
async fn wait_for_lines(path: &Path, lines: usize) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= lines || tokio::time::Instant::now() >= deadline {
            return text;
        }
        backoff.pause().await;
    }
}

const BOOK_SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parity/book-sample.har");

/// Proves A11 with a HAR in the book's shape (entries copied from
/// ../shared/parity/book-chapter11.har, tokens as `${TOKEN_BRUCE}`): a new side that
/// answers what the book answered matches every entry, with the placeholder expanded;
/// one that answers one entry otherwise fails on that entry alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_har_with_responses_is_the_legacy_side() {
    let har: Value = serde_json::from_str(&std::fs::read_to_string(BOOK_SAMPLE).unwrap()).unwrap();
    // The book's answers by path and Authorization (the placeholder as the replay sends it).
    let mut answers = HashMap::new();
    for entry in har["log"]["entries"].as_array().unwrap() {
        let url = entry["request"]["url"].as_str().unwrap();
        let path = url.trim_start_matches("http://legacy").to_owned();
        let auth = entry["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"].as_str().unwrap().eq_ignore_ascii_case("authorization"))
            .map(|h| h["value"].as_str().unwrap().replace("${TOKEN_BRUCE}", "minted"));
        let response = &entry["response"];
        let answer = (
            response["status"].as_u64().unwrap() as u16,
            response["content"]["mimeType"].as_str().unwrap().to_owned(),
            response["content"]["text"].as_str().unwrap().to_owned(),
        );
        answers.insert((path, auth), answer);
    }
    let answers = Arc::new(answers);
    let book_like = |break_one: bool| {
        let answers = answers.clone();
        upstream_with(move |request: Request<Incoming>| {
            let answers = answers.clone();
            async move {
                let auth = request
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                let key = (request.uri().path_and_query().unwrap().to_string(), auth);
                let (status, mime, mut text) =
                    answers
                        .get(&key)
                        .cloned()
                        .unwrap_or((500, "text/plain".into(), "?".into()));
                if break_one && key.0 == "/api/thoughts/1/" {
                    text = text.replace("Gamma", "Delta");
                }
                Response::builder()
                    .status(status)
                    .header("content-type", mime)
                    .body(full(text))
                    .unwrap()
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let env = [("TOKEN_BRUCE", "minted")];
    let faithful = book_like(false).await;
    let ran = parity_in(
        dir.path(),
        &["--legacy-from", BOOK_SAMPLE, "--new", &faithful.url()],
        &env,
    )
    .await;
    assert_eq!(ran.status.code(), Some(0), "{}", both(&ran));
    assert!(
        stdout(&ran).contains("5 match, 0 expected, 0 noise, 0 mismatch, 0 resolved, 0 skipped, 0 error"),
        "{}",
        both(&ran)
    );

    let unfaithful = book_like(true).await;
    let ran = parity_in(
        dir.path(),
        &["--legacy-from", BOOK_SAMPLE, "--new", &unfaithful.url()],
        &env,
    )
    .await;
    assert_eq!(ran.status.code(), Some(1), "{}", both(&ran));
    let out = stdout(&ran);
    assert!(out.contains("4 match, 0 expected, 0 noise, 1 mismatch"), "{out}");
    assert!(out.contains("MISMATCH GET /api/thoughts/1/"), "{out}");

    // The same requests from a JSON Lines corpus that names them and states the difference
    // on purpose: each takes the recorded answer of its method and path, in order.
    let corpus = r#"{"method": "GET", "path": "/api/thoughts/", "name": "all thoughts"}
{"method": "GET", "path": "/api/thoughts/1/", "name": "thought 1", "expect": {"reason": "we renamed the ray", "pointers": {"/text": {"legacy": "*", "new": "*"}}}}
{"method": "GET", "path": "/api/thoughts/0/"}
{"method": "GET", "path": "/api/me/thoughts/", "headers": {"authorization": "Bearer ${TOKEN_BRUCE}"}}
{"method": "GET", "path": "/api/me/thoughts/"}
{"method": "GET", "path": "/api/thoughts/5/", "name": "not recorded"}
"#;
    std::fs::write(dir.path().join("book.jsonl"), corpus).unwrap();
    let args = [
        "--requests",
        "book.jsonl",
        "--legacy-from",
        BOOK_SAMPLE,
        "--new",
        &unfaithful.url(),
        "--junit",
        "book.xml",
    ];
    let ran = parity_in(dir.path(), &args, &env).await;
    assert_eq!(ran.status.code(), Some(1), "{}", both(&ran));
    let out = stdout(&ran);
    assert!(
        out.contains("4 match, 1 expected, 0 noise, 0 mismatch, 0 resolved, 0 skipped, 1 error"),
        "{out}"
    );
    assert!(out.contains("EXPECTED thought 1: GET /api/thoughts/1/"), "{out}");
    assert!(out.contains("ERROR not recorded: GET /api/thoughts/5/"), "{out}");
    assert!(out.contains("no recorded answer for it in"), "{out}");
    let xml = std::fs::read_to_string(dir.path().join("book.xml")).unwrap();
    assert!(
        xml.contains("name=\"all thoughts\"") && xml.contains("name=\"GET /api/thoughts/0/ (line 3)\""),
        "{xml}"
    );
}

//! `[record]`: sampled real traffic written as a parity corpus, secrets redacted.

use std::time::Duration;

use http::Request;

use crate::support::*;

#[tokio::test]
async fn sampled_requests_become_corpus_lines_with_secrets_redacted() {
    let legacy = echo_upstream("legacy").await;
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "{}\n[record]\npath = \"traffic.jsonl\"\nsample = 1.0\nredact_headers = [\"x-api-key\"]\n",
        routes_toml(&[("legacy", &legacy.url())], "")
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let proxy = TestProxy::start_at(dir, config).await;

    for i in 0..3 {
        let request = Request::get(proxy.url(&format!("/api/thoughts/?search=x{i}")))
            .header("authorization", "Bearer top-secret")
            .header("x-api-key", "also-secret")
            .header("accept", "application/json")
            .body(full(""))
            .unwrap();
        assert_eq!(send(&client(), request).await.status, 200);
    }
    // A request with a body is not recorded (its body is streamed, never held).
    assert_eq!(post(&proxy.url("/api/thoughts/"), "text=hi").await.status, 200);

    let recorded = "strangler_recorded_requests_total{result=\"recorded\"}";
    assert_eq!(wait_metric(&proxy, recorded, |v| v == Some(3.0)).await, Some(3.0));
    assert_eq!(
        metric(&proxy, "strangler_recorded_requests_total{result=\"skipped\"}").await,
        Some(1.0)
    );
    let path = proxy.dir.path().join("traffic.jsonl");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    let text = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= 3 || tokio::time::Instant::now() >= deadline {
            break text;
        }
        backoff.pause().await;
    };
    assert!(!text.contains("secret"), "{text}");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["method"], "GET");
    assert_eq!(lines[0]["path"], "/api/thoughts/?search=x0");
    assert_eq!(lines[0]["headers"]["authorization"], "[redacted]");
    assert_eq!(lines[0]["headers"]["x-api-key"], "[redacted]");
    assert_eq!(lines[0]["headers"]["accept"], "application/json");
    proxy.stop().await;
}

#[tokio::test]
async fn record_settings_are_validated() {
    for (record, what) in [
        ("path = \"t.jsonl\"\nsample = 3.0", "`record.sample`"),
        ("path = \"t.jsonl\"\nmax_bytes = 10", "`record.max_bytes`"),
        ("sample = 1.0", "path"),
        (
            "path = \"t.jsonl\"\nredact_headers = [\"bad header\"]",
            "bad header name",
        ),
    ] {
        let text = format!(
            "{}\n[record]\n{record}\n",
            routes_toml(&[("legacy", "http://127.0.0.1:1")], "")
        );
        let errors = strangler::table::Table::parse("routes.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(errors.contains(what), "{record}: {errors}");
    }
}

/// Proves: recording never holds a request up, even when its writer cannot keep up: with
/// the writer stuck (the recording is a FIFO nobody reads) the bounded queue fills, every
/// request is still answered, and the lines that no longer fit are counted as `dropped`.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_recording_queue_drops_lines_and_counts_them() {
    /// The recorder's queue (`QUEUE` in src/migration/record.rs).
    const QUEUE: usize = 4096;
    /// Requests sent beyond the queue at a time, until one is dropped (the FIFO's buffer
    /// takes some lines first: about sixty of these 1 KiB lines in 64 KiB).
    const BATCH: usize = 200;
    /// Where the test gives up: a queue that never fills is not bounded.
    const AT_MOST: usize = QUEUE + 20 * BATCH;
    let legacy = echo_upstream("legacy").await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("traffic.jsonl");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    // Opened read-write, which on Linux does not wait for a writer: the recorder can open
    // it, and nobody ever reads it.
    let stuck = std::fs::OpenOptions::new().read(true).write(true).open(&fifo).unwrap();
    let routes = format!(
        "{}\n[record]\npath = \"traffic.jsonl\"\nsample = 1.0\n",
        routes_toml(&[("legacy", &legacy.url())], "")
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let proxy = TestProxy::start_at(dir, config).await;

    let recorded_series = |text: &str, result: &str| {
        sample(
            text,
            &format!("strangler_recorded_requests_total{{result=\"{result}\"}}"),
        )
        .unwrap_or(0.0)
    };
    let mut sent = 0;
    let (recorded, dropped) = loop {
        let batch = if sent == 0 { QUEUE + BATCH } else { BATCH };
        send_many(&proxy.url("/recorded"), batch).await;
        sent += batch;
        let text = metrics_text(&proxy).await;
        let (recorded, dropped) = (recorded_series(&text, "recorded"), recorded_series(&text, "dropped"));
        if dropped >= 1.0 || sent >= AT_MOST {
            break (recorded, dropped);
        }
    };
    println!("figure: recording stuck, {sent} requests answered: {recorded} queued, {dropped} dropped");
    assert!(
        dropped >= 1.0,
        "{sent} requests and none dropped: the queue is not bounded"
    );
    assert_eq!(recorded + dropped, sent as f64, "every sampled request counted once");
    assert!(
        recorded >= QUEUE as f64,
        "the queue holds {QUEUE} lines: {recorded} recorded"
    );
    drop(stuck);
    proxy.stop().await;
}

/// Sends `count` GETs with a 1 KiB header to `url` over 16 keep-alive connections; each
/// must be answered 200 within 10 s.
async fn send_many(url: &str, count: usize) {
    const CLIENTS: usize = 16;
    let padding = "p".repeat(1024);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, padding) = (url.to_owned(), padding.clone());
            tokio::spawn(async move {
                let client = client();
                for _ in (c..count).step_by(CLIENTS) {
                    let request = Request::get(&url).header("x-padding", &padding).body(full("")).unwrap();
                    let answer = tokio::time::timeout(Duration::from_secs(10), send(&client, request))
                        .await
                        .expect("a request waited for the recorder");
                    assert_eq!(answer.status, 200);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
}

/// A table recording every request with its answer to `file`, with `redact` redacted
/// (a setting a reload can change without changing what is recorded).
fn recording_table(legacy: &str, file: &str, redact: &str) -> String {
    format!(
        "{}\n[record]\npath = \"{file}\"\nsample = 1.0\nresponses = true\nredact_headers = [\"{redact}\"]\n",
        routes_toml(&[("legacy", legacy)], "")
    )
}

/// Sends a GET for each of `paths` at once, each answered later; returns once every one
/// has reached `legacy` (held there until [`HeldUpstream::release`]).
async fn in_flight(
    proxy: &TestProxy,
    legacy: &mut HeldUpstream,
    paths: &[&str],
) -> Vec<tokio::task::JoinHandle<Answer>> {
    let sent: Vec<_> = paths
        .iter()
        .map(|path| tokio::spawn(get_owned(proxy.url(path))))
        .collect();
    for _ in paths {
        legacy.arrived().await;
    }
    sent
}

async fn get_owned(url: String) -> Answer {
    get(&url).await
}

/// Reloads `text` into `proxy` (written as editors do) and waits until it is in force.
async fn reload(proxy: &TestProxy, text: &str) {
    proxy.write_config(text);
    proxy.wait_for_version(&strangler::config::version_of(text)).await;
}

/// The request paths a recording at `path` holds (a HAR document's entries, or JSON
/// Lines), once it holds `count` of them or 5 s have passed; panics if the file is not
/// a whole document (HAR) or holds a line that is not JSON.
async fn recorded_paths(path: &std::path::Path, count: usize) -> Vec<String> {
    let read = || {
        let bytes = std::fs::read(path).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let paths: Option<Vec<String>> = if strangler::migration::record::is_har(path) {
            serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|doc| {
                doc["log"]["entries"].as_array().map(|entries| {
                    entries
                        .iter()
                        .map(|e| {
                            let url = e["request"]["url"].as_str().unwrap_or_default();
                            url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default()
                        })
                        .collect()
                })
            })
        } else {
            text.lines()
                .map(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v["path"].as_str().map(str::to_owned))
                })
                .collect()
        };
        (text, paths)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut backoff = Backoff::default();
    loop {
        let (text, paths) = read();
        match paths {
            Some(mut paths) if paths.len() >= count => {
                paths.sort();
                return paths;
            }
            _ if tokio::time::Instant::now() >= deadline => {
                let nul = text.matches('\0').count();
                panic!(
                    "{}: not {count} whole entries within 5 s ({nul} NUL bytes, {:?}):\n{text}",
                    path.display(),
                    paths.map(|p| p.len())
                );
            }
            _ => backoff.pause().await,
        }
    }
}

fn sorted(paths: &[&str]) -> Vec<String> {
    let mut paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
    paths.sort();
    paths
}

/// Proves: a reload that changes `[record]` (not its path) while recorded answers are
/// still in flight loses no entry and never corrupts the file. Two requests wait at the
/// upstream, the table is reloaded, three more requests arrive under the new table, then
/// every answer is released at once: the HAR recording is one valid document with all
/// five entries, and the JSON Lines recording has all five lines. (Before the fix the
/// reload opened a second writer on the same file next to the one the waiting answers
/// still held: the HAR file got NUL bytes or lost entries.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_answers_in_flight_keeps_every_recorded_entry() {
    for file in ["golden.har", "golden.jsonl"] {
        let mut legacy = HeldUpstream::start("held answer").await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("routes.toml");
        std::fs::write(&config, recording_table(&legacy.upstream.url(), file, "x-first")).unwrap();
        let proxy = TestProxy::start_at(dir, config).await;

        let before = ["/before/0", "/before/1"];
        let mut answers = in_flight(&proxy, &mut legacy, &before).await;
        reload(&proxy, &recording_table(&legacy.upstream.url(), file, "x-second")).await;
        let after = ["/after/0", "/after/1", "/after/2"];
        answers.extend(in_flight(&proxy, &mut legacy, &after).await);
        legacy.release();
        for answer in answers {
            let answer = answer.await.unwrap();
            assert_eq!(answer.status, 200);
            assert_eq!(answer.body, "held answer");
        }
        let recorded = "strangler_recorded_requests_total{result=\"recorded\"}";
        assert_eq!(
            wait_metric(&proxy, recorded, |v| v == Some(5.0)).await,
            Some(5.0),
            "{file}"
        );

        let all: Vec<&str> = before.iter().chain(&after).copied().collect();
        let path = proxy.dir.path().join(file);
        assert_eq!(recorded_paths(&path, all.len()).await, sorted(&all), "{file}");
        proxy.stop().await;
    }
}

/// Proves: a reload that moves the recording to another file while answers are in
/// flight hands over cleanly, and moving it back while the first file's answers are
/// still in flight reuses that file's writer: each file ends valid with exactly the
/// entries recorded to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_moved_and_moved_back_with_answers_in_flight_keeps_both_files_whole() {
    for (first, second) in [("a.har", "b.har"), ("a.jsonl", "b.jsonl")] {
        let mut legacy = HeldUpstream::start("held answer").await;
        let url = legacy.upstream.url();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("routes.toml");
        std::fs::write(&config, recording_table(&url, first, "x-first")).unwrap();
        let proxy = TestProxy::start_at(dir, config).await;

        let mut answers = in_flight(&proxy, &mut legacy, &["/a/0", "/a/1"]).await;
        reload(&proxy, &recording_table(&url, second, "x-first")).await;
        answers.extend(in_flight(&proxy, &mut legacy, &["/b/0"]).await);
        reload(&proxy, &recording_table(&url, first, "x-back")).await;
        answers.extend(in_flight(&proxy, &mut legacy, &["/a/2", "/a/3"]).await);
        legacy.release();
        for answer in answers {
            assert_eq!(answer.await.unwrap().status, 200);
        }
        let recorded = "strangler_recorded_requests_total{result=\"recorded\"}";
        assert_eq!(wait_metric(&proxy, recorded, |v| v == Some(5.0)).await, Some(5.0));

        let (a, b) = (proxy.dir.path().join(first), proxy.dir.path().join(second));
        assert_eq!(
            recorded_paths(&a, 4).await,
            sorted(&["/a/0", "/a/1", "/a/2", "/a/3"]),
            "{first}"
        );
        assert_eq!(recorded_paths(&b, 1).await, sorted(&["/b/0"]), "{second}");
        proxy.stop().await;
    }
}

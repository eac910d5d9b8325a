//! The `strangler` binary: `check`, `explain`, `serve` (ready line, SIGHUP, SIGTERM with a
//! request in flight, JSON access log) and `--help`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use http::Request;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::binary::{BinaryProxy, ServeOptions, Stderr};
use crate::support::*;

/// A table on fixed (never bound) addresses for `check` and `explain`.
const TABLE: &str = r#"[proxy]
listen = "127.0.0.1:8000"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:8001"

[upstreams.thoughts]
url = "http://127.0.0.1:8002"

[[routes]]
name = "api"
path = "/api/"

[[routes]]
name = "thoughts-api"
path = "/api/thoughts/"
stage = "new"
new = "thoughts"
"#;

/// Three errors, on lines 8 (bad duration), 16 (unknown key) and 22 (unknown upstream).
const BROKEN: &str = r#"[proxy]
listen = "127.0.0.1:8000"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:8001"
request_timeout = "5 parsecs"

[upstreams.thoughts]
url = "http://127.0.0.1:8002"

[[routes]]
name = "api"
path = "/api/"
colour = "blue"

[[routes]]
name = "thoughts-api"
path = "/api/thoughts/"
stage = "new"
new = "thoughtz"
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn check_accepts_a_good_table_with_a_one_line_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "good.toml", TABLE);
    let output = strangler(&["check", file.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with(&format!("{}: ok", file.display())), "{out}");
    assert!(out.contains(&strangler::config::version_of(TABLE)), "{out}");
    assert!(out.contains("2 routes"), "{out}");
}

#[tokio::test]
async fn check_reports_every_error_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.toml", BROKEN);
    let name = file.to_str().unwrap();
    let output = strangler(&["check", name]).await;
    assert_eq!(output.status.code(), Some(1), "{}{}", stdout(&output), stderr(&output));
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let expected = [
        (position_of(BROKEN, "\"5 parsecs\""), "bad duration `5 parsecs`"),
        (position_of(BROKEN, "colour"), "unknown field `colour`"),
        (position_of(BROKEN, "\"thoughtz\""), "unknown upstream `thoughtz`"),
    ];
    assert_eq!(
        expected.map(|((line, _), _)| line),
        [8, 16, 22],
        "the fixture's errors moved"
    );
    for (printed, ((line, column), message)) in lines.iter().zip(expected) {
        let prefix = format!("{name}:{line}:{column}: ");
        assert!(printed.starts_with(&prefix), "expected `{prefix}…`, got `{printed}`");
        assert!(printed.contains(message), "expected `{message}` in `{printed}`");
    }
    assert!(stderr(&output).contains("3 error(s)"), "{}", stderr(&output));
}

#[tokio::test]
async fn check_fails_on_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let output = strangler(&["check", missing.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(1));
    let all = stdout(&output) + &stderr(&output);
    assert!(all.contains("missing.toml") && all.contains("cannot read"), "{all}");
}

#[tokio::test]
async fn explain_names_route_stage_and_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "routes.toml", TABLE);
    let config = file.to_str().unwrap();

    let output = strangler(&["explain", "--config", config, "GET", "/api/thoughts/5"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    let first = out.lines().next().unwrap_or_default();
    for part in [
        "route `thoughts-api`",
        "stage new",
        "upstream `thoughts`",
        "http://127.0.0.1:8002",
    ] {
        assert!(first.contains(part), "`{part}` not in `{first}`");
    }
    assert!(out.contains("also matched: route `api`"), "{out}");

    let output = strangler(&["explain", "--config", config, "--json", "GET", "/api/thoughts/5"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["route"], "thoughts-api", "{json}");
    assert_eq!(json["upstream"], "thoughts", "{json}");
    assert_eq!(json["kind"], "prefix", "{json}");
    assert_eq!(json["stage"], "new", "{json}");
    assert!(json["reason"].as_str().is_some_and(|r| !r.is_empty()), "{json}");
    let also = json["also_matched"].as_array().unwrap();
    assert_eq!(also.len(), 1, "{json}");
    assert_eq!(also[0]["route"], "api", "{json}");

    let output = strangler(&["explain", "--config", config, "--json", "GET", "/elsewhere"]).await;
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["route"], serde_json::Value::Null, "{json}");
    assert_eq!(
        (json["kind"].as_str(), json["upstream"].as_str()),
        (Some("default"), Some("legacy"))
    );
}

#[tokio::test]
async fn explain_refuses_a_path_attack() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "routes.toml", TABLE);
    for path in ["/api/..%2f..%2fadmin", "/api/%2e%2e/%2e%2e/etc/passwd%00"] {
        let output = strangler(&["explain", "--config", file.to_str().unwrap(), "GET", path]).await;
        assert_ne!(output.status.code(), Some(0), "{path}: {}", stdout(&output));
        assert!(stderr(&output).contains("refuses"), "{path}: {}", stderr(&output));
        assert_eq!(stdout(&output), "", "{path}");
    }
}

#[tokio::test]
async fn help_exits_zero() {
    let output = strangler(&["--help"]).await;
    assert_eq!(output.status.code(), Some(0));
    let out = stdout(&output);
    for word in ["serve", "check", "explain", "--log-format"] {
        assert!(out.contains(word), "`{word}` not in --help:\n{out}");
    }
    let output = strangler(&["serve", "--help"]).await;
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("--config"), "{}", stdout(&output));
}

/// Issue 20's papercuts: `--log-format` is one line of every subcommand's help (its
/// details are in `strangler --help` only), and every subcommand's help ends with examples.
#[tokio::test]
async fn every_help_has_examples_and_a_one_line_log_format() {
    let top = stdout(&strangler(&["--help"]).await);
    assert!(top.contains("RUST_LOG=info,strangler::access=off"), "{top}");
    for command in [
        "serve",
        "check",
        "explain",
        "flip",
        "status",
        "parity",
        "init",
        "completions",
        "man",
        "schema",
    ] {
        for flag in ["--help", "-h"] {
            let output = strangler(&[command, flag]).await;
            assert_eq!(output.status.code(), Some(0), "{command} {flag}");
            let help = stdout(&output);
            let examples = help
                .split_once("\nExamples:\n")
                .map(|(_, examples)| examples)
                .unwrap_or_else(|| panic!("no examples in `{command} {flag}`:\n{help}"));
            let count = examples.lines().filter(|l| l.starts_with("  strangler ")).count();
            assert!((1..=3).contains(&count), "{command} {flag}: {count} examples:\n{help}");
            assert!(!help.contains("- human"), "{command} {flag}:\n{help}");
            assert!(
                !help.contains("JSON lines for log pipelines"),
                "{command} {flag}:\n{help}"
            );
            let log_format = help
                .lines()
                .filter(|l| l.contains("log-format") || l.contains("log pipelines"))
                .count();
            assert_eq!(log_format, 1, "{command} {flag}:\n{help}");
        }
    }
}

/// A `strangler serve` child process on `table` (in a temp dir), its stderr read line by
/// line; checks that the ready line names two loopback addresses with real ports.
async fn serve(table: &str, global_args: &'static [&'static str]) -> BinaryProxy {
    let served = BinaryProxy::start_with(
        table,
        ServeOptions {
            global_args,
            rust_log: "info",
            stderr: Stderr::Lines,
        },
    )
    .await;
    let first = &served.ready_line;
    assert_eq!(
        *first,
        format!(
            "strangler ready: proxy http://{} admin http://{}",
            served.addr, served.admin
        )
    );
    assert!(
        [served.addr, served.admin]
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() != 0),
        "{first}"
    );
    served
}

/// A table for `serve`: listeners on port 0, the given upstreams and routes.
fn serve_table(upstreams: &[(&str, &str)], routes: &str) -> String {
    routes_toml(upstreams, routes).replacen(
        "default_upstream = \"legacy\"\n",
        "default_upstream = \"legacy\"\ndrain_timeout = \"3s\"\n",
        1,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_proxies_and_sighup_reloads() {
    let legacy = echo_upstream("legacy").await;
    let mut served = serve(&serve_table(&[("legacy", &legacy.url())], ""), &[]).await;

    let answer = get(&format!("http://{}/hello", served.addr)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["upstream"], "legacy");
    let metrics = metrics_text(&served).await;
    assert_eq!(
        sample(&metrics, "strangler_config_reloads_total{result=\"ok\"}"),
        Some(1.0)
    );

    // The file is unchanged, so the watcher stays quiet: only SIGHUP can cause this reload,
    // and an explicit reload counts even when the content is the same.
    served.signal("HUP");
    served
        .stderr_until(Duration::from_secs(5), |l| {
            l.contains("routing table reloaded") && l.contains("Signal")
        })
        .await;
    let metrics = metrics_text(&served).await;
    assert_eq!(
        sample(&metrics, "strangler_config_reloads_total{result=\"ok\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&metrics, "strangler_config_reloads_total{result=\"error\"}"),
        Some(0.0)
    );
    assert!(served.try_wait().is_none(), "SIGHUP must not end the process");
    assert_eq!(get(&format!("http://{}/again", served.addr)).await.status, 200);

    served.signal("TERM");
    assert_eq!(served.exit_within(Duration::from_secs(10)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_format_writes_parseable_access_lines() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let table = serve_table(
        &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
        "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n",
    );
    let mut served = serve(&table, &["--log-format", "json"]).await;

    let request = Request::get(format!("http://{}/api//thoughts/5?q=1", served.addr))
        .header("x-request-id", "cli-json-log-1")
        .body(full(""))
        .unwrap();
    let answer = send(&client(), request).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["upstream"], "thoughts");

    let line = served
        .stderr_until(Duration::from_secs(5), |l| l.contains("cli-json-log-1"))
        .await;
    let entry: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("access log line is not JSON ({e}): {line}"));
    assert_eq!(entry["request_id"], "cli-json-log-1", "{entry}");
    assert_eq!(entry["method"], "GET", "{entry}");
    assert_eq!(entry["path"], "/api/thoughts/5", "{entry}");
    assert_eq!(entry["route"], "thoughts-api", "{entry}");
    assert_eq!(entry["upstream"], "thoughts", "{entry}");
    assert_eq!(entry["status"], 200, "{entry}");
    for line in &served.stderr_seen {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "stderr line is not JSON: {line}"
        );
    }
    served.signal("TERM");
    assert_eq!(served.exit_within(Duration::from_secs(10)).await.code(), Some(0));
}

/// Proves: `RUST_LOG=info,strangler::access=off` silences the access log and only it: a
/// request served and counted leaves no line of target `strangler::access` (nor its request
/// id) on stderr, while the other `info` lines (a reload, the stop) still come. The access
/// line this filter removes is the one `json_log_format_writes_parseable_access_lines`
/// finds at the default level.
#[tokio::test(flavor = "multi_thread")]
async fn rust_log_access_off_silences_only_the_access_log() {
    let legacy = echo_upstream("legacy").await;
    let mut served = BinaryProxy::start_with(
        &serve_table(&[("legacy", &legacy.url())], ""),
        ServeOptions {
            global_args: &["--log-format", "json"],
            rust_log: "info,strangler::access=off",
            stderr: Stderr::Lines,
        },
    )
    .await;
    let request = Request::get(format!("http://{}/logged", served.addr))
        .header("x-request-id", "access-off-1")
        .body(full(""))
        .unwrap();
    assert_eq!(send(&client(), request).await.status, 200);
    // Counted when its response finished, which is when its access line would be written.
    assert_eq!(
        wait_requests_total(&served, &[("route", "default")], |n| n >= 1.0).await,
        1.0
    );

    served.signal("HUP");
    served
        .stderr_until(Duration::from_secs(5), |l| l.contains("routing table reloaded"))
        .await;
    served.signal("TERM");
    assert_eq!(served.exit_within(Duration::from_secs(10)).await.code(), Some(0));
    served
        .stderr_until(Duration::from_secs(5), |l| l.contains("\"stopped\""))
        .await;
    let access: Vec<&String> = served
        .stderr_seen
        .iter()
        .filter(|line| line.contains("strangler::access") || line.contains("access-off-1"))
        .collect();
    assert!(access.is_empty(), "access lines with strangler::access=off: {access:?}");
}

/// A shell started in advance whose builtin `kill` signals a process as soon as it is told
/// to: microseconds after the test reads a line, where spawning `kill` takes milliseconds.
struct QuickKill {
    _shell: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    acks: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl QuickKill {
    fn start() -> QuickKill {
        let mut shell = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(r#"while read sig pid; do kill -s "$sig" "$pid"; echo "sent $?"; done"#)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        QuickKill {
            stdin: shell.stdin.take().unwrap(),
            acks: BufReader::new(shell.stdout.take().unwrap()).lines(),
            _shell: shell,
        }
    }

    async fn signal(&mut self, signal: &str, pid: u32) {
        self.stdin
            .write_all(format!("{signal} {pid}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        let ack = tokio::time::timeout(Duration::from_secs(5), self.acks.next_line())
            .await
            .expect("the signalling shell did not answer")
            .unwrap();
        assert_eq!(ack.as_deref(), Some("sent 0"), "kill -s {signal} {pid}");
    }
}

/// "ready" is a promise to scripts and supervisors: from that line on, SIGHUP reloads (it
/// must not kill the process, which is SIGHUP's default action) and SIGTERM drains and
/// exits with status 0.
#[tokio::test(flavor = "multi_thread")]
async fn signals_are_handled_as_soon_as_ready_is_printed() {
    let legacy = echo_upstream("legacy").await;
    let table = serve_table(&[("legacy", &legacy.url())], "");
    let mut quick = QuickKill::start();

    let mut served = serve(&table, &[]).await;
    quick.signal("HUP", served.pid).await;
    served
        .stderr_until(Duration::from_secs(5), |l| {
            l.contains("routing table reloaded") && l.contains("Signal")
        })
        .await;
    assert!(served.try_wait().is_none(), "SIGHUP ended the process");
    served.signal("TERM");
    assert_eq!(served.exit_within(Duration::from_secs(10)).await.code(), Some(0));

    let mut served = serve(&table, &[]).await;
    quick.signal("TERM", served.pid).await;
    let status = served.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "SIGTERM right after the ready line: {status:?}");
}

/// `strangler … | head` closes the pipe before the command is done: the output ends there,
/// the command does not fail (it exited 1 with "Broken pipe", or panicked in `explain`).
#[test]
fn a_reader_that_went_away_ends_the_output_not_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "good.toml", TABLE);
    let file = file.to_str().unwrap();
    for args in [
        vec!["check", file],
        vec!["explain", "--config", file, "GET", "/api/thoughts/1"],
        vec!["explain", "--config", file, "--json", "GET", "/api/thoughts/1"],
    ] {
        // The read end is closed before the command starts: its first write meets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = std::process::Command::new(super::support::command::STRANGLER)
            .args(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

/// `strangler man --dir DIR`: a page per subcommand, each valid roff naming its own
/// options (checked with `man -l` where man is installed, on the roff source otherwise).
#[tokio::test]
async fn man_dir_writes_a_page_per_subcommand_with_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let man1 = dir.path().join("man1");
    let written_pages = strangler(&["man", "--dir", man1.to_str().unwrap()]).await;
    assert!(written_pages.status.success(), "{}", both(&written_pages));
    let mut written: Vec<String> = std::fs::read_dir(&man1)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let subcommands = [
        "check",
        "completions",
        "explain",
        "flip",
        "init",
        "man",
        "parity",
        "schema",
        "serve",
        "status",
    ];
    let mut expected: Vec<String> = subcommands.iter().map(|s| format!("strangler-{s}.1")).collect();
    expected.push("strangler.1".to_owned());
    expected.sort();
    assert_eq!(written, expected);
    let listed: Vec<String> = stdout(&written_pages).lines().map(str::to_owned).collect();
    assert_eq!(listed.len(), expected.len(), "each page named on stdout: {listed:?}");

    // Each page's title and a few of its own options (roff escapes `-` as `\-`).
    for (page, title, options) in [
        ("strangler.1", "strangler", &["log\\-format"][..]),
        ("strangler-serve.1", "strangler-serve", &["config"][..]),
        (
            "strangler-check.1",
            "strangler-check",
            &["against", "admin\\-token\\-file"][..],
        ),
        (
            "strangler-flip.1",
            "strangler-flip",
            &["percent", "parity\\-report", "dry\\-run"][..],
        ),
        ("strangler-init.1", "strangler-init", &["legacy", "force"][..]),
        ("strangler-man.1", "strangler-man", &["dir"][..]),
    ] {
        let roff = std::fs::read_to_string(man1.join(page)).unwrap();
        assert!(roff.contains(&format!("\n.TH {title} 1 ")), "{page}:\n{roff}");
        for option in options {
            assert!(
                roff.contains(&format!("\\-\\-{option}")),
                "{page} lacks --{option}:\n{roff}"
            );
        }
    }

    let man_installed = std::process::Command::new("man")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !man_installed {
        eprintln!("man is not installed: the pages' roff was checked as text only");
        return;
    }
    for page in &expected {
        let mut command = tokio::process::Command::new("man");
        command
            .arg("-l")
            .arg(man1.join(page))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100");
        let rendered = output(command.env("PAGER", "cat")).await;
        assert!(rendered.status.success(), "man -l {page}: {}", both(&rendered));
        let text = stdout(&rendered);
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "man -l {page}:\n{text}"
        );
        assert!(
            !stderr(&rendered).contains("warning"),
            "man -l {page}: {}",
            stderr(&rendered)
        );
    }
    let serve = output(
        tokio::process::Command::new("man")
            .arg("-l")
            .arg(man1.join("strangler-serve.1"))
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"),
    )
    .await;
    assert!(stdout(&serve).contains("--config"), "{}", both(&serve));
}

/// A page that is a symbolic link is refused and the file it points at left alone
/// (attacker pass: `sudo strangler man --dir` into a shared directory wrote through a link).
#[tokio::test]
async fn man_dir_refuses_to_write_through_a_symbolic_link() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    let man1 = dir.path().join("man1");
    std::fs::create_dir(&man1).unwrap();
    std::os::unix::fs::symlink(&victim, man1.join("strangler-flip.1")).unwrap();
    let refused = strangler(&["man", "--dir", man1.to_str().unwrap()]).await;
    assert!(!refused.status.success(), "{}", both(&refused));
    assert!(
        both(&refused).contains("strangler-flip.1 is a symbolic link"),
        "{}",
        both(&refused)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(!man1.join("strangler.1").exists());
}

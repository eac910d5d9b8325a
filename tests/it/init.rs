//! Issue 20's first table: `strangler init` writes a table that `check` accepts and `serve`
//! serves, and refuses to overwrite; a table of one upstream alone routes everything to it;
//! `completions`, `man` and `--version`.

use std::path::Path;

use crate::support::binary::{BinaryProxy, ServeOptions};
use crate::support::*;

/// `strangler init` for the monolith at `legacy`, into `out`, on ephemeral ports.
async fn init(legacy: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "init",
        "--legacy",
        legacy,
        "--out",
        out.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    strangler(&args).await
}

#[tokio::test(flavor = "multi_thread")]
async fn init_writes_a_table_that_check_accepts_and_serve_serves() {
    let legacy = echo_upstream("legacy").await;
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("routes.toml");
    let output = init(&legacy.url(), &table, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let said = stdout(&output);
    assert!(
        said.contains(": ok: 1 upstreams, 0 routes, default upstream `legacy`"),
        "{said}"
    );
    assert!(said.contains("defaults: default_upstream `legacy`"), "{said}");
    let path = table.display().to_string();
    for next in [
        format!("strangler check {path}"),
        format!("strangler serve --config {path}"),
        format!("strangler explain --config {path} GET /"),
    ] {
        assert!(said.contains(&next), "`{next}` not in:\n{said}");
    }
    let text = std::fs::read_to_string(&table).unwrap();
    assert!(text.contains("docs/routes-toml.md"), "{text}");
    assert!(text.contains("# [[routes]]"), "{text}");

    let check = strangler(&["check", &path]).await;
    assert_eq!(check.status.code(), Some(0), "{}", both(&check));

    let served = BinaryProxy::serve(table.clone(), ServeOptions::default()).await;
    let answer = get(&format!("http://{}/any/path?x=1", served.addr)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["upstream"], "legacy");
}

#[tokio::test]
async fn init_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("routes.toml");
    std::fs::write(&table, "# mine\n").unwrap();
    let output = init("http://127.0.0.1:3000", &table, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let said = stderr(&output);
    assert!(said.contains("already exists") && said.contains("--force"), "{said}");
    assert_eq!(std::fs::read_to_string(&table).unwrap(), "# mine\n");

    let output = init("http://127.0.0.1:3000", &table, &["--force"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(std::fs::read_to_string(&table).unwrap().contains("[upstreams.legacy]"));
}

#[tokio::test]
async fn init_with_a_bad_url_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("routes.toml");
    let output = init("ftp://legacy", &table, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(stderr(&output).contains("ftp://legacy"), "{}", both(&output));
    assert!(!table.exists());
}

/// The three lines of issue 20 are a valid table, `check` names the defaults it takes,
/// and a proxy serving it sends every request to `legacy`. (TestProxy binds its own
/// ephemeral listeners: the default 0.0.0.0:8000 is never bound by a test.)
#[tokio::test(flavor = "multi_thread")]
async fn a_table_of_one_upstream_routes_everything_to_it() {
    let legacy = echo_upstream("legacy").await;
    let table = format!("[upstreams.legacy]\nurl = \"{}\"\n", legacy.url());
    assert_eq!(table.lines().count(), 2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.toml");
    std::fs::write(&file, &table).unwrap();
    let check = strangler(&["check", file.to_str().unwrap()]).await;
    assert_eq!(check.status.code(), Some(0), "{}", both(&check));
    assert!(
        stdout(&check).contains(
            "defaults: listen 0.0.0.0:8000, admin_listen 127.0.0.1:9100, default_upstream `legacy` (not set in the file)"
        ),
        "{}",
        both(&check)
    );

    let proxy = TestProxy::start(&table).await;
    for path in ["/", "/api/users/42", "/static/app.js?v=3"] {
        let answer = get(&proxy.url(path)).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.json()["upstream"], "legacy", "{path}");
    }
}

#[tokio::test]
async fn completions_for_each_shell_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let output = strangler(&["completions", shell]).await;
        assert_eq!(output.status.code(), Some(0), "{shell}: {}", both(&output));
        let script = stdout(&output);
        for word in ["flip", "init", "log-format"] {
            assert!(script.contains(word), "{shell}: `{word}` not in the script");
        }
    }
    let refused = strangler(&["completions", "cmd.exe"]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", both(&refused));
}

#[tokio::test]
async fn man_prints_a_roff_page() {
    let output = strangler(&["man"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let page = stdout(&output);
    // clap_mangen opens with roff's two-line quote-string preamble, then the title.
    let first_macro = page
        .lines()
        .find(|line| !line.starts_with(".ie") && !line.starts_with(".el"))
        .unwrap();
    assert!(first_macro.starts_with(".TH strangler 1"), "{first_macro}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS", "strangler\\-init"] {
        assert!(page.contains(section), "`{section}` not in:\n{page}");
    }
}

#[tokio::test]
async fn version_names_the_commit() {
    let output = strangler(&["--version"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let line = stdout(&output);
    let line = line.trim_end();
    let rest = line
        .strip_prefix(&format!("strangler {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line}"));
    let is_commit = rest.len() >= 7 && rest.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(is_commit || rest == "unknown commit", "{line}");
    // Built in a git checkout, the commit is the checkout's.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(head) = head
        && head.status.success()
    {
        assert!(String::from_utf8_lossy(&head.stdout).starts_with(rest), "{line}");
    }
}

/// `strangler check` reports every error of a file at once: an unknown key no longer hides
/// an unclosed `{id` beside it, nor a bad duration elsewhere (issue 20's papercut).
#[tokio::test]
async fn check_reports_an_unknown_key_a_bad_template_and_a_bad_duration_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.toml");
    std::fs::write(
        &file,
        r#"[upstreams.legacy]
url = "http://127.0.0.1:3000"
connect_timeout = "fast"

[[routes]]
name = "users"
path = "/api/users/{id"
colour = "blue"
"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let output = strangler(&["check", path]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let said = stdout(&output);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 3, "{said}");
    for (line, (at, what)) in lines.iter().zip([
        ("3:19", "bad duration `fast`"),
        ("7:8", "{id"),
        ("8:1", "unknown field `colour`"),
    ]) {
        assert!(line.starts_with(&format!("{path}:{at}: ")), "{line} should be at {at}");
        assert!(line.contains(what), "{line} should say {what}");
    }
    assert!(stderr(&output).contains("3 error(s)"), "{}", both(&output));
}

//! README's guided tour, steps 3 and 4, run as written against the whole demo: the shell
//! block that moves `my-thoughts-api` to shadow, sends it 100 requests and flips it to new
//! on the evidence, then the `strangler parity` line with the repository's corpus. What
//! README's comments say a command prints (`# my-thoughts-api  shadow  0 % …`) must be
//! what it prints, and the figures in the text (22 requests match, 1 skipped) must hold.
//!
//! Substitutions, because a test never uses fixed ports: the demo runs on ephemeral
//! ports (README's 127.0.0.1:8000 and :9100 become the demo's proxy and admin listeners),
//! and `flip`/`status` are told the admin listener with `--admin` (the demo's routes
//! file still names README's 127.0.0.1:9100, where nothing of this test listens). And
//! where a reader waits a moment after a flip before typing on, the script waits until
//! the admin API reports the flipped table's version (polled, with a deadline).

use std::path::Path;

use crate::support::demo::start_demo;
use crate::support::*;

const README: &str = include_str!("../../README.md");

/// The tour's section of README.
fn tour() -> &'static str {
    let start = README.find("## A guided tour of the demo").expect("README has no tour");
    let rest = &README[start..];
    &rest[..rest[3..].find("\n## ").map_or(rest.len(), |end| end + 3)]
}

/// The tour's shell block that contains `needle`, with its lines de-indented.
fn shell_block(needle: &str) -> String {
    let tour = tour();
    let at = tour
        .find(needle)
        .unwrap_or_else(|| panic!("the tour has no `{needle}`"));
    let start = tour[..at].rfind("```sh\n").expect("not in a ```sh block") + "```sh\n".len();
    let end = start + tour[start..].find("```").expect("an unclosed block");
    tour[start..end]
        .lines()
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What README's comment on the line of `command` says it prints (after `# `).
fn comment_on(script: &str, command: &str) -> String {
    let line = script
        .lines()
        .find(|line| line.starts_with(command))
        .unwrap_or_else(|| panic!("no `{command}` line in:\n{script}"));
    line.split_once("# ")
        .map(|(_, said)| said.trim().to_owned())
        .unwrap_or_default()
}

/// Runs `script` with bash (`set -euo pipefail`) in `dir`, with `strangler` on the PATH.
async fn bash(dir: &Path, script: &str) -> std::process::Output {
    let bin = Path::new(STRANGLER).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(dir)
        .env("PATH", path);
    output(&mut command).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tour_moves_a_route_on_evidence_as_readme_says() {
    if !tool("curl", "curl") {
        return;
    }
    let (_dir, demo) = start_demo().await;
    let (proxy, admin) = (demo.proxy.to_string(), format!("http://{}", demo.admin));
    let script = shell_block("strangler flip my-thoughts-api shadow");
    let status_says = comment_on(&script, "strangler status");
    let flip_says = comment_on(&script, "strangler flip my-thoughts-api new");
    let wait_for_table = format!(
        "wait_for_table() {{\n  local version\n  version=$(strangler check routes.toml | sed -n 's/.*, version \\([0-9a-f]*\\)$/\\1/p')\n  \
         for _ in $(seq 100); do curl -s {admin}/admin/routes | grep -q \"$version\" && return 0; sleep 0.1; done\n  \
         echo \"version $version not in force within 10 s\" >&2; return 1\n}}\n\
         wait_for_comparisons() {{\n  \
         for _ in $(seq 100); do strangler status --admin {admin} | grep -q '(100 compared' && return 0; sleep 0.1; done\n  \
         echo \"100 comparisons not counted within 10 s\" >&2; return 1\n}}\n"
    );
    let steps: Vec<String> = script
        .lines()
        .map(|line| {
            if line.starts_with("strangler flip ") {
                format!("{}\nwait_for_table", line.split(" #").next().unwrap_or(line))
            } else if line.starts_with("for i in $(seq 100)") {
                // A shadow copy is compared after its primary has answered: the last
                // comparison may be counted a moment after curl's last request returns.
                format!("{line}\nwait_for_comparisons")
            } else {
                line.to_owned()
            }
        })
        .collect();
    let run = format!("{wait_for_table}{}", steps.join("\n"))
        .replace("127.0.0.1:8000", &proxy)
        .replace("strangler flip ", &format!("strangler flip --admin {admin} "))
        .replace("strangler status", &format!("strangler status --admin {admin}"));
    let table_dir = demo.routes.parent().unwrap();
    let out = bash(table_dir, &run).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "the tour's block failed:\n{run}\n{}",
        both(&out)
    );
    let printed = stdout(&out);
    let squeezed = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        squeezed(&printed).contains(&squeezed(&status_says)),
        "README says status prints `{status_says}`; it printed:\n{printed}"
    );
    let (compared, rate) = ("100 comparisons (>= 100)", "match rate 1.0000");
    assert!(
        flip_says.contains(compared) && flip_says.contains(rate),
        "README: {flip_says}"
    );
    assert!(printed.contains(compared) && printed.contains(rate), "{printed}");
    assert!(printed.contains("route `my-thoughts-api`: shadow -> new"), "{printed}");

    let explain = output(strangler_command(&["explain", "GET", "/api/me/thoughts/"]).current_dir(table_dir)).await;
    assert!(stdout(&explain).contains("upstream `thoughts`"), "{}", both(&explain));

    let parity_line = tour()
        .lines()
        .find_map(|line| line.trim().strip_prefix("`strangler parity --requests "))
        .expect("the tour shows no `strangler parity` line");
    let corpus_and_flags = parity_line.trim_end_matches('`');
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reports = tempfile::tempdir().unwrap();
    let parity = format!(
        "strangler parity --config {} --requests {}",
        demo.routes.display(),
        corpus_and_flags.replacen("tests/", &format!("{}/tests/", repo.display()), 1)
    );
    let out = bash(reports.path(), &parity).await;
    assert_eq!(out.status.code(), Some(0), "{parity}\n{}", both(&out));
    let said = stdout(&out);
    assert!(
        said.contains(": 22 match, 0 expected, 0 noise, 0 mismatch, 0 resolved, 1 skipped, 0 error: ok"),
        "{said}"
    );
    assert!(
        tour().contains("22 requests match and 1, which no route takes, is"),
        "README's figure changed"
    );
    assert!(reports.path().join("parity.json").exists() && reports.path().join("parity.xml").exists());
    demo.shutdown().await;
}

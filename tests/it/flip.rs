//! `strangler flip` and `strangler status`, run as the real binary against real servers:
//! fake admin APIs (hyper, canned `/admin/parity`) and in-process proxies, all on
//! ephemeral loopback ports.

use std::path::{Path, PathBuf};

use serde_json::json;
use strangler::config::{Stage, version_of};
use strangler::table::Table;

use crate::support::fake_admin::{FakeAdmin, with_evidence};
use crate::support::*;

/// A table with comments, odd spacing and a trailing comment on a stage, whose
/// `admin_listen` is `admin` (where a forward flip reads its evidence by default).
fn table(admin: &str) -> String {
    format!(
        r#"# Migration table for the flip tests: comments and spacing must survive a flip.
[proxy]
listen = "127.0.0.1:8000"
admin_listen = "{admin}"    # evidence comes from here
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:8001"

[upstreams.thoughts]
url = "http://127.0.0.1:8002"

# Done: moved last week.
[[routes]]
name = "thoughts-api"
path = "/api/thoughts/"
methods = ["GET", "HEAD"]
stage   = "new"      # flipped on Monday
new = "thoughts"

# Next: the user's own thoughts.
[[routes]]
name = "my-thoughts"
path = "/api/me/thoughts/"
stage = "legacy"
new = "thoughts"

[[routes]]
name = "search"
exact = "/search"
new = "thoughts"
canary = {{ percent = 5, sticky = "cookie:session" }}   # sticky users

# No new upstream yet: this one cannot move.
[[routes]]
name = "login"
exact = "/api/login/"
"#
    )
}

fn write_table(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn parity(route: &str, matched: u64, noise: u64, mismatch: u64, error: u64) -> serde_json::Value {
    let total = (matched + noise + mismatch + error) as f64;
    let rate = (matched + noise) as f64 / total;
    json!({
        "routes": {
            route: {
                "stage": "shadow", "match": matched, "noise": noise, "mismatch": mismatch,
                "error": error, "dropped": 1, "skipped": 4, "match_rate": rate, "window_match_rate": rate,
            }
        },
        "mismatches": [{"route": route, "method": "GET", "path": "/api/me/thoughts/", "diff": "body differs"}],
    })
}

/// Thin evidence for `my-thoughts`: 37 compared, 3 of them mismatched.
fn thin() -> serde_json::Value {
    parity("my-thoughts", 33, 1, 3, 0)
}

/// Plenty of clean evidence for `route`.
fn good(route: &str) -> serde_json::Value {
    parity(route, 150, 10, 0, 0)
}

/// A fake admin API: `/admin/parity` answers `parity` (404 without one), with the
/// evidence identity of the table it is told to serve ([`FakeAdmin::serve_table`]).
async fn fake_admin(parity: Option<serde_json::Value>) -> FakeAdmin {
    FakeAdmin::start(parity).await
}

fn stage_of(text: &str, route: &str) -> (Stage, Option<u32>) {
    let table = Table::parse("routes.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let route = table.config.routes.iter().find(|r| r.name == route).unwrap();
    (route.stage, route.canary.as_ref().map(|c| c.basis_points))
}

#[tokio::test]
async fn flip_to_legacy_changes_only_that_value() {
    let before = table(&closed_addr().to_string());
    let (_dir, path) = write_table(&before);
    let config = path.to_str().unwrap();

    let output = strangler(&["flip", "--config", config, "thoughts-api", "legacy"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let expected = before.replacen(
        "stage   = \"new\"      # flipped on Monday",
        "stage   = \"legacy\"      # flipped on Monday",
        1,
    );
    assert_ne!(expected, before);
    assert_eq!(read(&path), expected, "only the stage value may change");
    let diff = stdout(&output);
    assert!(diff.contains(&format!("--- {config}\n+++ {config}\n")), "{diff}");
    assert!(
        diff.contains("-stage   = \"new\"      # flipped on Monday\n+stage   = \"legacy\"      # flipped on Monday\n"),
        "{diff}"
    );
    assert!(diff.contains("new -> legacy"), "{diff}");
    assert!(
        diff.contains(&format!("version {} -> {}", version_of(&before), version_of(&expected))),
        "{diff}"
    );
    assert!(
        !std::fs::read_dir(path.parent().unwrap()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "a temp file was left behind"
    );

    // Again: nothing to do, nothing written.
    let output = strangler(&["flip", "--config", config, "thoughts-api", "legacy"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(stdout(&output).contains("already at legacy"), "{}", both(&output));
    assert_eq!(read(&path), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flip_back_is_picked_up_by_a_watching_proxy() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let text = routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
        "# moved\n[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"  # was legacy\nnew = \"thoughts\"\n",
    );
    let proxy = TestProxy::start(&text).await;
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.json()["upstream"], "thoughts");

    let config = proxy.config.to_str().unwrap();
    let output = strangler(&["flip", "--config", config, "thoughts-api", "legacy"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let flipped = read(&proxy.config);
    assert_eq!(
        flipped,
        text.replacen("stage = \"new\"  # was legacy", "stage = \"legacy\"  # was legacy", 1)
    );
    proxy.wait_for_version(&version_of(&flipped)).await;
    assert_eq!(get(&proxy.url("/api/thoughts/1")).await.json()["upstream"], "legacy");
}

#[tokio::test]
async fn flip_forward_without_enough_evidence_is_refused() {
    let admin = fake_admin(Some(thin())).await;
    let before = table(&admin.addr().to_string());
    admin.serve_table(&before);
    let (_dir, path) = write_table(&before);
    let config = path.to_str().unwrap();

    // Evidence from the table's admin_listen by default.
    let output = strangler(&["flip", "--config", config, "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let said = stderr(&output);
    assert!(
        said.contains(
            "refused: 37 of 100 required comparisons; match rate 0.9189 < 0.9990 (3 mismatches, 0 errors); \
             see GET http://"
        ),
        "{}",
        both(&output)
    );
    assert!(said.contains("/admin/parity"), "{said}");
    assert_eq!(read(&path), before, "a refused flip must not touch the file");
    assert!(admin.seen().iter().any(|s| s.uri.path() == "/admin/parity"));

    // The same through --admin, and with a lower bar on the count but not on the rate.
    let other = fake_admin(Some(thin())).await;
    other.serve_table(&before);
    let output = strangler(&[
        "flip",
        "--config",
        config,
        "--admin",
        &other.url(),
        "--min-requests",
        "10",
        "my-thoughts",
        "new",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("refused: match rate 0.9189 < 0.9990 (3 mismatches, 0 errors)"),
        "{}",
        both(&output)
    );
    // One GET for the running version, one for the evidence.
    assert_eq!(other.seen().len(), 2);

    // A route the report does not mention, and a proxy without a parity endpoint.
    let elsewhere = fake_admin(Some(good("thoughts-api"))).await;
    elsewhere.serve_table(&before);
    let output = strangler(&["flip", "-c", config, "--admin", &elsewhere.url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(stderr(&output).contains("no parity counts"), "{}", both(&output));
    let old_build = fake_admin(None).await;
    old_build.serve_table(&before);
    let output = strangler(&["flip", "-c", config, "--admin", &old_build.url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(stderr(&output).contains("404"), "{}", both(&output));
    // Nobody listening.
    let output = strangler(&[
        "flip",
        "-c",
        config,
        "--admin",
        &closed_addr().to_string(),
        "my-thoughts",
        "new",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(stderr(&output).contains("no parity evidence"), "{}", both(&output));
    assert_eq!(read(&path), before);
}

#[tokio::test]
async fn flip_forward_with_good_evidence_is_written() {
    let admin = fake_admin(Some(good("my-thoughts"))).await;
    let before = table(&admin.addr().to_string());
    admin.serve_table(&before);
    let (_dir, path) = write_table(&before);
    let config = path.to_str().unwrap();

    let output = strangler(&["flip", "--config", config, "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let after = read(&path);
    assert_eq!(
        after,
        before.replacen(
            "name = \"my-thoughts\"\npath = \"/api/me/thoughts/\"\nstage = \"legacy\"",
            "name = \"my-thoughts\"\npath = \"/api/me/thoughts/\"\nstage = \"new\"",
            1
        )
    );
    assert_eq!(stage_of(&after, "my-thoughts").0, Stage::New);
    assert!(
        stdout(&output).contains("160 comparisons (>= 100), match rate 1.0000"),
        "{}",
        both(&output)
    );
}

#[tokio::test]
async fn a_parity_report_file_is_evidence_too() {
    // admin_listen points nowhere: the report is the only evidence.
    let before = table(&closed_addr().to_string());
    let (dir, path) = write_table(&before);
    let config = path.to_str().unwrap();
    let report = dir.path().join("parity.json");

    let mut thin = thin();
    thin["routes"]["my-thoughts"]["requests"] = json!(45);
    std::fs::write(&report, with_evidence(thin, &before).to_string()).unwrap();
    let output = strangler(&[
        "flip",
        "-c",
        config,
        "--parity-report",
        report.to_str().unwrap(),
        "my-thoughts",
        "new",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("37 of 100 required comparisons; match rate 0.9189 < 0.9990"),
        "{}",
        both(&output)
    );
    assert!(stderr(&output).contains("parity.json"), "{}", both(&output));
    assert_eq!(read(&path), before);

    let mut good = good("my-thoughts");
    good["routes"]["my-thoughts"]["requests"] = json!(170);
    std::fs::write(&report, with_evidence(good, &before).to_string()).unwrap();
    let output = strangler(&[
        "flip",
        "-c",
        config,
        "--parity-report",
        report.to_str().unwrap(),
        "my-thoughts",
        "new",
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(stage_of(&read(&path), "my-thoughts").0, Stage::New);
}

#[tokio::test]
async fn force_overrides_missing_evidence_loudly() {
    let admin = fake_admin(Some(thin())).await;
    let before = table(&admin.addr().to_string());
    admin.serve_table(&before);
    let (_dir, path) = write_table(&before);
    let config = path.to_str().unwrap();

    let output = strangler(&["flip", "-c", config, "--force", "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let said = stderr(&output);
    assert!(said.contains("WARNING: --force"), "{said}");
    assert!(said.contains("37 of 100 required comparisons"), "{said}");
    assert_eq!(stage_of(&read(&path), "my-thoughts").0, Stage::New);
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let admin = fake_admin(Some(good("my-thoughts"))).await;
    let before = table(&admin.addr().to_string());
    admin.serve_table(&before);
    let (_dir, path) = write_table(&before);
    let config = path.to_str().unwrap();

    let output = strangler(&["flip", "-c", config, "--dry-run", "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let said = stdout(&output);
    assert!(said.contains("-stage = \"legacy\"\n+stage = \"new\"\n"), "{said}");
    assert!(said.contains("dry run: would write"), "{said}");
    assert_eq!(read(&path), before);

    // A dry run of a flip that would be refused says so, and fails.
    let thin_admin = fake_admin(Some(thin())).await;
    thin_admin.serve_table(&before);
    let output = strangler(&[
        "flip",
        "-c",
        config,
        "--admin",
        &thin_admin.url(),
        "--dry-run",
        "my-thoughts",
        "new",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("dry run: would be refused"),
        "{}",
        both(&output)
    );
    assert_eq!(read(&path), before);
}

#[tokio::test]
async fn canary_percent_is_set_inline_and_lowering_needs_no_evidence() {
    let admin = fake_admin(Some(json!({
        "routes": {
            "search": good("search")["routes"]["search"],
            "my-thoughts": good("my-thoughts")["routes"]["my-thoughts"],
        }
    })))
    .await;
    let before = table(&admin.addr().to_string());
    admin.serve_table(&before);
    let (_dir, path) = write_table(&before);
    let config = path.to_str().unwrap();

    // An existing canary table: the share changes, sticky and the comment stay; the
    // missing stage key is added at the end of the route.
    let output = strangler(&["flip", "-c", config, "search", "canary", "--percent", "20"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let at_20 = read(&path);
    assert_eq!(
        at_20,
        before.replacen(
            "canary = { percent = 5, sticky = \"cookie:session\" }   # sticky users\n",
            "canary = { percent = 20, sticky = \"cookie:session\" }   # sticky users\nstage = \"canary\"\n",
            1
        )
    );
    assert_eq!(stage_of(&at_20, "search"), (Stage::Canary, Some(2000)));

    // Lowering the share: no evidence asked for (this admin would refuse, and is not asked).
    let thin_admin = fake_admin(Some(thin())).await;
    thin_admin.serve_table(&at_20);
    let output = strangler(&[
        "flip",
        "-c",
        config,
        "--admin",
        &thin_admin.url(),
        "search",
        "canary",
        "--percent",
        "12.5",
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        stdout(&output).contains("canary (20 %) -> canary (12.5 %)"),
        "{}",
        both(&output)
    );
    // A step back reads the running version (to warn if it differs), never the evidence.
    assert!(!thin_admin.asked_parity(), "a step back asked for evidence");
    let at_12 = read(&path);
    assert_eq!(
        at_12,
        at_20.replacen("{ percent = 20, sticky", "{ percent = 12.5, sticky", 1)
    );
    assert_eq!(stage_of(&at_12, "search"), (Stage::Canary, Some(1250)));

    // Raising it again is a step forward: refused, this admin has no counts for `search`.
    thin_admin.serve_table(&at_12);
    let output = strangler(&[
        "flip",
        "-c",
        config,
        "--admin",
        &thin_admin.url(),
        "search",
        "canary",
        "--percent",
        "50",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("refused: the route has no parity counts"),
        "{}",
        both(&output)
    );
    assert_eq!(read(&path), at_12);

    // A route without a canary table gets one (the table's admin runs the file as it is now).
    admin.serve_table(&at_12);
    let output = strangler(&["flip", "-c", config, "my-thoughts", "canary", "--percent", "10"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let with_canary = read(&path);
    assert_eq!(
        with_canary,
        at_12.replacen(
            "stage = \"legacy\"\nnew = \"thoughts\"\n",
            "stage = \"canary\"\nnew = \"thoughts\"\ncanary = { percent = 10 }\n",
            1
        )
    );
    assert_eq!(stage_of(&with_canary, "my-thoughts"), (Stage::Canary, Some(1000)));

    // Canary without a share to use, and --percent on another stage: usage errors.
    let output = strangler(&["flip", "-c", config, "thoughts-api", "canary"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("hint: give the canary its share with --percent N"),
        "{}",
        both(&output)
    );
    let output = strangler(&["flip", "-c", config, "thoughts-api", "legacy", "--percent", "5"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert_eq!(read(&path), with_canary);
}

#[tokio::test]
async fn a_flip_to_an_invalid_table_is_refused_with_its_location() {
    let admin = fake_admin(Some(good("login"))).await;
    let before = table(&admin.addr().to_string());
    admin.serve_table(&before);
    let (_dir, path) = write_table(&before);
    let config = path.to_str().unwrap();

    // `login` names no new upstream: at stage new the table is invalid. The stage key is
    // added as the route's last line, which is the file's last line.
    let output = strangler(&["flip", "-c", config, "login", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let line = before.lines().count() + 1;
    let said = stderr(&output);
    assert!(
        said.contains(&format!("{config}:{line}:")),
        "expected line {line}: {said}"
    );
    assert!(said.contains("`new`"), "{said}");
    assert!(said.contains("nothing written"), "{said}");
    assert!(admin.seen().is_empty(), "validation comes before evidence");
    assert_eq!(read(&path), before);
}

#[tokio::test]
async fn an_unknown_route_exits_2_and_lists_the_routes() {
    let before = table(&closed_addr().to_string());
    let (_dir, path) = write_table(&before);
    let output = strangler(&["flip", "-c", path.to_str().unwrap(), "my-thougts", "new"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        stderr(&output).contains("no route named `my-thougts`; routes: thoughts-api, my-thoughts, search, login"),
        "{}",
        both(&output)
    );
    assert_eq!(read(&path), before);
}

/// Routes for the status tests: one route per stage.
fn status_table(legacy: &Upstream, thoughts: &Upstream, my_thoughts_stage: &str) -> String {
    routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
        &format!(
            "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n\n\
             [[routes]]\nname = \"my-thoughts\"\npath = \"/api/me/thoughts/\"\nstage = \"{my_thoughts_stage}\"\n\
             new = \"thoughts\"\ncanary = {{ percent = 25 }}\n\n\
             [[routes]]\nname = \"search\"\nexact = \"/search\"\nnew = \"thoughts\"\n"
        ),
    )
}

/// The words of the board row of `route`.
fn row(board: &str, route: &str) -> Vec<String> {
    board
        .lines()
        .find(|l| l.split_whitespace().next() == Some(route))
        .unwrap_or_else(|| panic!("no row for {route}:\n{board}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_replicas_with_the_same_table() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let text = status_table(&legacy, &thoughts, "canary");
    let a = TestProxy::start(&text).await;
    let b = TestProxy::start(&text).await;
    let (admin_a, admin_b) = (a.admin_url(""), b.admin_url(""));

    let output = strangler(&["status", "--admin", &admin_a, "--admin", &admin_b]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let board = stdout(&output);
    assert!(
        board.contains(&format!("versions: all 2 answering replica(s) run {}", a.version())),
        "{board}"
    );
    assert_eq!(row(&board, "thoughts-api")[1..4], ["new", "100", "%"], "{board}");
    assert_eq!(row(&board, "my-thoughts")[1..4], ["canary", "25", "%"], "{board}");
    assert_eq!(row(&board, "search")[1..4], ["legacy", "0", "%"], "{board}");

    let output = strangler(&["status", "--admin", &admin_a, "--admin", &admin_b, "--json"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["same_version"], true, "{json}");
    assert_eq!(json["all_up"], true, "{json}");
    assert_eq!(json["replicas"][1]["version"], b.version().as_str(), "{json}");
    assert_eq!(json["routes"][1]["name"], "my-thoughts", "{json}");
    assert_eq!(json["routes"][1]["new_share_percent"], 25.0, "{json}");
    assert_eq!(json["routes"][1]["differs"], false, "{json}");

    // Without --admin: the admin_listen of --config.
    let (_dir, path) = write_table(&text.replacen(
        "admin_listen = \"127.0.0.1:0\"",
        &format!("admin_listen = \"{}\"", a.admin),
        1,
    ));
    let output = strangler(&["status", "--config", path.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(stdout(&output).contains(&admin_a), "{}", both(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_replicas_that_disagree_or_are_down() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let a = TestProxy::start(&status_table(&legacy, &thoughts, "canary")).await;
    let b = TestProxy::start(&status_table(&legacy, &thoughts, "new")).await;
    let (admin_a, admin_b) = (a.admin_url(""), b.admin_url(""));
    assert_ne!(a.version(), b.version());

    let output = strangler(&["status", "--admin", &admin_a, "--admin", &admin_b]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let board = stdout(&output);
    assert!(
        board.contains(&format!(
            "versions DIFFER: {admin_a} runs {}; {admin_b} runs {}",
            a.version(),
            b.version()
        )),
        "{board}"
    );
    assert!(
        board.contains(&format!(
            "* `my-thoughts` differs: {admin_a}: canary 25 %; {admin_b}: new 100 %"
        )),
        "{board}"
    );
    assert_eq!(row(&board, "thoughts-api")[1..4], ["new", "100", "%"], "{board}");

    let down = dead_url();
    let output = strangler(&["status", "--admin", &admin_a, "--admin", &down, "--json"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["all_up"], false, "{json}");
    assert_eq!(json["replicas"][1]["admin"], down.as_str(), "{json}");
    assert_eq!(json["replicas"][1]["up"], false, "{json}");
    let output = strangler(&["status", "--admin", &admin_a, "--admin", &down]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(stdout(&output).contains(&format!("{down}  DOWN")), "{}", both(&output));
}

//! `strangler flip` counts only evidence that belongs to the table it edits (issue 17): the
//! evidence identity (upstream names and URLs, compare rules) must match the edited route,
//! the replicas must run the file's version, and a fleet's evidence is summed over the
//! replicas that do (`--admin` repeated, `--admin-dns`). Each refusal here was accepted
//! before. Fake admin APIs and a fake Prometheus on ephemeral loopback ports; the real
//! Prometheus is in `flip_prometheus.rs`.

use std::path::{Path, PathBuf};

use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};
use strangler::config::version_of;

use crate::support::fake_admin::{FakeAdmin, evidence_json, with_evidence};
use crate::support::*;

/// A table whose `my-thoughts` route (stage shadow) has `new = "thoughts"` at `new_url`,
/// with `compare` lines, and whose admin_listen is `admin`.
fn table(admin: &str, new_url: &str, compare: &str) -> String {
    format!(
        "[proxy]\nlisten = \"127.0.0.1:8000\"\nadmin_listen = \"{admin}\"\ndefault_upstream = \"legacy\"\n\n\
         [upstreams.legacy]\nurl = \"http://127.0.0.1:8001\"\n\n\
         [upstreams.thoughts]\nurl = \"{new_url}\"\n\n\
         # the route being moved\n[[routes]]\nname = \"my-thoughts\"\npath = \"/api/me/thoughts/\"\n\
         stage = \"shadow\"\nnew = \"thoughts\"\n{compare}\n"
    )
}

const NEW: &str = "http://127.0.0.1:8002";

fn write_table(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `/admin/parity` with `matched` clean comparisons for `my-thoughts`.
fn counts(matched: u64) -> Value {
    json!({"routes": {"my-thoughts": {"stage": "shadow", "match": matched, "noise": 0, "mismatch": 0, "error": 0}}})
}

/// Clean counts whose evidence is that of `text` (another table than the one served).
fn counts_of(matched: u64, text: &str) -> Value {
    let mut report = counts(matched);
    report["routes"]["my-thoughts"]["evidence"] = evidence_json(text, "my-thoughts");
    report
}

/// A fake admin serving `text`, answering `parity`.
async fn admin_running(text: &str, parity: Value) -> FakeAdmin {
    let admin = FakeAdmin::start(Some(parity)).await;
    admin.serve_table(text);
    admin
}

/// A table file whose admin_listen is a fake admin running that same file with `parity`.
async fn table_and_admin(
    new_url: &str,
    compare: &str,
    parity: Value,
) -> (FakeAdmin, String, tempfile::TempDir, PathBuf) {
    let admin = FakeAdmin::start(Some(parity)).await;
    let text = table(&admin.addr().to_string(), new_url, compare);
    admin.serve_table(&text);
    let (dir, path) = write_table(&text);
    (admin, text, dir, path)
}

async fn flip(config: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["flip", "-c", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    strangler(&args).await
}

#[tokio::test]
async fn evidence_of_another_new_url_is_refused_naming_what_it_measured() {
    // The proxy runs the file; its counts, though, were gathered while `new` pointed
    // elsewhere (the old build kept them across the change).
    let (admin, text, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    let elsewhere = table(&admin.addr().to_string(), "http://127.0.0.1:9999", "");
    let admin = admin_running(&text, counts_of(500, &elsewhere)).await;
    let output = flip(&path, &["--admin", &admin.url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let said = stderr(&output);
    assert!(
        said.contains("refused: http://127.0.0.1:")
            && said.contains(
                ": the parity evidence was gathered against other upstreams or compare rules: new thoughts URL \
                 http://127.0.0.1:9999/ (evidence) vs http://127.0.0.1:8002/ (table); in full: gathered against \
                 stage shadow, legacy legacy (http://127.0.0.1:8001/), new thoughts (http://127.0.0.1:9999/), rules "
            ),
        "{said}"
    );
    assert!(
        said.contains("; the edited table has stage new, legacy legacy (http://127.0.0.1:8001/), new thoughts (http://127.0.0.1:8002/), rules "),
        "{said}"
    );
    assert_eq!(read(&path), text, "a refused flip writes nothing");
}

#[tokio::test]
async fn editing_the_new_url_and_flipping_is_refused_by_the_version_check() {
    // Issue 17's report: `new` changed in the file, the proxy still runs (and measured) the
    // old one: it does not run the file, so none of its 195 comparisons count.
    let (_admin, running, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    let admin = admin_running(&running, counts_of(195, &running)).await;
    let edited = running.replace(NEW, "http://127.0.0.1:9999");
    std::fs::write(&path, &edited).unwrap();
    let output = flip(&path, &["--admin", &admin.url(), "--dry-run", "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let said = stderr(&output);
    assert!(
        said.contains(&format!(
            "dry run: would be refused: the running proxy does not run the file being edited: {} is version {}, \
             but {} runs {}",
            path.display(),
            version_of(&edited),
            admin.url(),
            version_of(&running)
        )),
        "{said}"
    );
    assert!(!said.contains("195 comparisons"), "{said}");
    assert_eq!(read(&path), edited);
}

#[tokio::test]
async fn evidence_judged_by_other_compare_rules_is_refused() {
    let looser = "compare = { ignore = [\"/updated_at\"] }";
    let (admin, text, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    let judged_loosely = table(&admin.addr().to_string(), NEW, looser);
    let admin = admin_running(&text, counts_of(500, &judged_loosely)).await;
    let output = flip(
        &path,
        &["--admin", &admin.url(), "my-thoughts", "canary", "--percent", "10"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let said = stderr(&output);
    let rules = |text: &str| evidence_json(text, "my-thoughts")["rules"].as_str().unwrap().to_owned();
    assert_ne!(rules(&text), rules(&judged_loosely));
    assert!(
        said.contains(&format!("rules {}; the edited table has", rules(&judged_loosely))),
        "{said}"
    );
    assert!(
        said.ends_with(&format!(
            "rules {}\nnothing written; --force overrides (at your own risk)\n",
            rules(&text)
        )),
        "{said}"
    );

    // --force writes anyway, saying what it overrode.
    let output = flip(
        &path,
        &[
            "--admin",
            &admin.url(),
            "--force",
            "my-thoughts",
            "canary",
            "--percent",
            "10",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(stderr(&output).contains("WARNING: --force"), "{}", both(&output));
    assert!(read(&path).contains("stage = \"canary\""));
}

#[tokio::test]
async fn counts_without_an_identity_are_refused_from_a_proxy_and_from_a_report() {
    let mut old_build = counts(500);
    old_build["routes"]["my-thoughts"]["evidence"] = Value::Null;
    let (admin, text, dir, path) = table_and_admin(NEW, "", old_build.clone()).await;
    let output = flip(&path, &["my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains(&format!(
            "refused: {}: the parity counts carry no evidence identity (a proxy or report of a build before \
             evidence periods)",
            admin.url()
        )),
        "{}",
        both(&output)
    );

    let report = dir.path().join("parity.json");
    std::fs::write(&report, counts(500).to_string()).unwrap();
    let output = flip(
        &path,
        &["--parity-report", report.to_str().unwrap(), "my-thoughts", "new"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("parity.json: the parity counts carry no evidence identity"),
        "{}",
        both(&output)
    );

    // The same report with the identity of the edited route is accepted.
    std::fs::write(&report, with_evidence(counts(500), &text).to_string()).unwrap();
    let output = flip(
        &path,
        &[
            "--parity-report",
            report.to_str().unwrap(),
            "--dry-run",
            "my-thoughts",
            "new",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        stdout(&output).contains("500 comparisons (>= 100)"),
        "{}",
        both(&output)
    );
    assert_eq!(read(&path), text);
}

#[tokio::test]
async fn a_proxy_on_another_version_refuses_a_step_forward_but_not_a_step_back() {
    let (_admin, text, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    // The proxy runs the same routes with another comment: same identity, other version.
    let running = text.replace("# the route being moved", "# deployed yesterday");
    let admin = admin_running(&running, with_evidence(counts(500), &running)).await;
    let output = flip(&path, &["--admin", &admin.url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains(&format!(
            "refused: the running proxy does not run the file being edited: {} is version {}, but {} runs {}",
            path.display(),
            version_of(&text),
            admin.url(),
            version_of(&running)
        )),
        "{}",
        both(&output)
    );
    assert!(!stdout(&output).contains("comparisons"), "{}", both(&output));
    assert_eq!(read(&path), text);

    // A step back is always allowed: it warns.
    let output = flip(&path, &["--admin", &admin.url(), "my-thoughts", "legacy"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        stderr(&output).contains("WARNING: the running proxy does not run the file being edited"),
        "{}",
        both(&output)
    );
    assert!(read(&path).contains("stage = \"legacy\""));
}

#[tokio::test]
async fn a_fleet_sums_the_replicas_on_the_files_version_and_names_the_others() {
    let (_admin, text, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    let a = admin_running(&text, with_evidence(counts(60), &text)).await;
    let b = admin_running(&text, with_evidence(counts(70), &text)).await;
    let running = text.replace("# the route being moved", "# another table");
    let c = admin_running(&running, with_evidence(counts(1000), &running)).await;

    let output = flip(
        &path,
        &[
            "--admin",
            &a.url(),
            "--admin",
            &b.url(),
            "--admin",
            &c.url(),
            "--dry-run",
            "my-thoughts",
            "new",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let said = stdout(&output);
    assert!(
        said.contains(&format!(
            "parity evidence from GET {}/admin/parity, GET {}/admin/parity: 130 comparisons (>= 100)",
            a.url(),
            b.url()
        )),
        "{}",
        both(&output)
    );
    assert!(
        stderr(&output).contains(&format!(
            "WARNING: not counted: {} runs {}, not version {} of",
            c.url(),
            version_of(&running),
            version_of(&text)
        )),
        "{}",
        both(&output)
    );
    assert!(!said.contains("1130"), "{said}");

    // 130 is not enough for 200: the sum is what is judged.
    let output = flip(
        &path,
        &[
            "--admin",
            &a.url(),
            "--admin",
            &b.url(),
            "--min-requests",
            "200",
            "my-thoughts",
            "new",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("130 of 200 required comparisons"),
        "{}",
        both(&output)
    );

    // One replica that does not answer: its evidence could hold the mismatches.
    let down = closed_addr();
    let output = flip(
        &path,
        &[
            "--admin",
            &a.url(),
            "--admin",
            &b.url(),
            "--admin",
            &down.to_string(),
            "my-thoughts",
            "new",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains(&format!("refused: no parity evidence from http://{down}: ")),
        "{}",
        both(&output)
    );
    assert!(
        stderr(&output).contains("(a step forward needs the evidence of every replica)"),
        "{}",
        both(&output)
    );

    // No replica on the file's version: refused, naming what they run.
    let output = flip(&path, &["--admin", &c.url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains(&format!("but {} runs {}", c.url(), version_of(&running))),
        "{}",
        both(&output)
    );
    assert_eq!(read(&path), text);

    // --admin-dns: every address of the name (here a literal one) is a replica.
    let output = flip(
        &path,
        &[
            "--admin",
            &a.url(),
            "--admin-dns",
            &b.addr().to_string(),
            "--dry-run",
            "my-thoughts",
            "new",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(stdout(&output).contains("130 comparisons"), "{}", both(&output));
    let output = flip(
        &path,
        &["--admin-dns", "no-such-replica.invalid:9100", "my-thoughts", "new"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("refused: no parity evidence from dns:no-such-replica.invalid:9100: --admin-dns"),
        "{}",
        both(&output)
    );
}

#[tokio::test]
async fn a_shadow_then_canary_period_with_the_same_sides_count_together() {
    let (_admin, text, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    let at_canary = text.replace("stage = \"shadow\"", "stage = \"canary\"\ncanary = { percent = 10 }");
    std::fs::write(&path, &at_canary).unwrap();
    let other_url = text.replace(NEW, "http://127.0.0.1:9999");
    let mut parity = counts_of(4, &at_canary);
    let previous = counts_of(120, &text)["routes"]["my-thoughts"].clone();
    parity["routes"]["my-thoughts"]["previous"] = previous;
    let admin = admin_running(&at_canary, parity.clone()).await;
    let output = flip(&path, &["--admin", &admin.url(), "--dry-run", "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        stdout(&output).contains("124 comparisons (>= 100)"),
        "{}",
        both(&output)
    );
    assert!(stdout(&output).contains("periods "), "{}", both(&output));

    // A previous period against another upstream is left out, and said so.
    parity["routes"]["my-thoughts"]["previous"] = counts_of(120, &other_url)["routes"]["my-thoughts"].clone();
    let admin = admin_running(&at_canary, parity).await;
    let output = flip(&path, &["--admin", &admin.url(), "--dry-run", "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let said = stderr(&output);
    assert!(
        said.contains(
            "WARNING: not counted: evidence gathered against other upstreams or compare rules (new thoughts URL \
             http://127.0.0.1:9999/ (evidence) vs http://127.0.0.1:8002/ (table)): stage shadow"
        ),
        "{said}"
    );
    assert!(said.contains("new thoughts (http://127.0.0.1:9999/)"), "{said}");
    assert!(said.contains("4 of 100 required comparisons"), "{said}");
}

/// A fake Prometheus whose one instance runs `version`, answering every other query with
/// `answer` (status `code`).
async fn fake_prometheus(version: &str, code: u16, answer: Value) -> Upstream {
    let versions = json!({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"instance": "127.0.0.1:9100", "version": version}, "value": [1700000000.0, "1"]}
    ]}});
    upstream_with(move |request: Request<Incoming>| {
        let asks_versions = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("strangler_config_info%20%3D%3D"));
        let (code, answer) = if asks_versions {
            (200, versions.clone())
        } else {
            (code, answer.clone())
        };
        async move {
            Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(full(answer.to_string()))
                .unwrap()
        }
    })
    .await
}

#[tokio::test]
async fn prometheus_errors_are_clear() {
    let (_admin, text, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    let version = version_of(&text);
    let empty = fake_prometheus(
        &version,
        200,
        json!({"status": "success", "data": {"resultType": "vector", "result": []}}),
    )
    .await;
    let output = flip(&path, &["--prometheus", &empty.url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains(&format!(
            "refused: no parity evidence: Prometheus at {} has no series for `sum by (period, result) \
             (max by (instance, period, result) (strangler_shadow_comparisons_total{{route=\"my-thoughts\"}} \
             and on (instance) (strangler_config_info{{version=\"{version}\"}} == 1)))`",
            empty.url()
        )),
        "{}",
        both(&output)
    );
    let seen = empty.seen();
    assert_eq!(seen[0].uri.path(), "/api/v1/query");
    assert!(
        seen[0]
            .uri
            .query()
            .unwrap()
            .starts_with("query=max%20by%20%28instance%2C%20version"),
        "{:?}",
        seen[0].uri
    );
    assert!(
        seen[1].uri.query().unwrap().starts_with("query=sum%20by%20%28period"),
        "{:?}",
        seen[1].uri
    );

    // No instance runs the edited file's version: refused, naming what runs.
    let other = fake_prometheus("0123456789ab", 200, json!({})).await;
    let output = flip(&path, &["--prometheus", &other.url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains(&format!(
            "refused: no parity evidence: no instance Prometheus at {} scrapes runs version {version}, that of the \
             file being edited: 127.0.0.1:9100 runs 0123456789ab",
            other.url()
        )),
        "{}",
        both(&output)
    );

    let bad = fake_prometheus(
        &version,
        400,
        json!({"status": "error", "errorType": "bad_data", "error": "parse error"}),
    )
    .await;
    let output = flip(&path, &["--prometheus", &bad.url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(stderr(&output).contains("answered 400 to `sum by"), "{}", both(&output));
    assert!(stderr(&output).contains("bad_data: parse error"), "{}", both(&output));

    // Counts without an info series (a fleet of a build before evidence periods).
    let unnamed = fake_prometheus(
        &version,
        200,
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"result": "match"}, "value": [1700000000.0, "500"]}
        ]}}),
    )
    .await;
    let output = flip(&path, &["--prometheus", &unnamed.url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("(some counts carry no `period` label)"),
        "{}",
        both(&output)
    );

    let output = flip(&path, &["--prometheus", &dead_url(), "my-thoughts", "new"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("no parity evidence: cannot reach Prometheus: GET "),
        "{}",
        both(&output)
    );
}

#[tokio::test]
async fn mismatches_on_a_replica_of_another_version_count_against_the_flip() {
    let (_admin, text, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    let a = admin_running(&text, with_evidence(counts(150), &text)).await;
    // Another version of the file (a comment differs), the same upstreams and rules.
    let running = text.replace("# the route being moved", "# another table");
    let mut failing = counts(10);
    failing["routes"]["my-thoughts"]["mismatch"] = json!(900);
    failing["routes"]["my-thoughts"]["error"] = json!(3);
    let c = admin_running(&running, with_evidence(failing, &running)).await;
    let output = flip(
        &path,
        &[
            "--admin",
            &a.url(),
            "--admin",
            &c.url(),
            "--dry-run",
            "my-thoughts",
            "new",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let said = stderr(&output);
    assert!(
        said.contains(&format!(
            "WARNING: counted from {} (another table version, the same upstreams and compare rules): 900 \
             mismatches, 3 errors; their matches are not counted",
            c.url()
        )),
        "{said}"
    );
    assert!(said.contains("(900 mismatches, 3 errors)"), "{said}");
}

#[tokio::test]
async fn admin_urls_with_a_path_query_fragment_or_password_are_usage_errors() {
    let (admin, _text, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    for bad in [
        format!("{}/admin", admin.url()),
        format!("{}?x=1", admin.url()),
        format!("{}#frag", admin.url()),
        format!("http://ops:s3cret@{}", admin.addr()),
    ] {
        let output = flip(&path, &["--admin", &bad, "--dry-run", "my-thoughts", "new"]).await;
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", both(&output));
        assert!(stderr(&output).contains("give"), "{}", both(&output));
        assert!(!both(&output).contains("s3cret"), "{}", both(&output));
        let output = strangler(&["status", "--admin", &bad]).await;
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", both(&output));
        assert!(!both(&output).contains("s3cret"), "{}", both(&output));
    }
    assert!(!admin.asked_parity());
}

#[tokio::test]
async fn one_replica_behind_two_urls_is_counted_once() {
    let (_admin, text, _dir, path) = table_and_admin(NEW, "", json!({})).await;
    let a = admin_running(&text, with_evidence(counts(60), &text)).await;
    a.serve_instance("0123456789abcdef");
    let by_name = format!("http://localhost:{}", a.addr().port());
    let output = flip(
        &path,
        &[
            "--admin",
            &a.url(),
            "--admin",
            &by_name,
            "--dry-run",
            "my-thoughts",
            "new",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stdout(&output).contains(&format!("{by_name} is the same process as {}: counted once", a.url())),
        "{}",
        both(&output)
    );
    assert!(
        stderr(&output).contains("60 of 100 required comparisons"),
        "{}",
        both(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_a_proxy_behind_two_urls_once() {
    let legacy = echo_upstream("legacy").await;
    let text = routes_toml(&[("legacy", &legacy.url())], "");
    let proxy = TestProxy::start(&text).await;
    let by_name = format!("http://localhost:{}", proxy.admin.port());
    let output = strangler(&["status", "--admin", &proxy.admin_url(""), "--admin", &by_name, "--json"]).await;
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&output)));
    assert_eq!(json["replicas"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(
        json["same_process"][0],
        format!("{by_name} is the same process as {}: counted once", proxy.admin_url("")).as_str(),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_takes_admin_dns_and_shows_the_evidence_period() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let text = routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
        "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n",
    );
    let proxy = TestProxy::start(&text).await;
    let dns = format!("localhost:{}", proxy.admin.port());
    let output = strangler(&["status", "--admin-dns", &dns, "--json"]).await;
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&output)));
    let replicas = json["replicas"].as_array().unwrap();
    let v4 = replicas
        .iter()
        .find(|r| r["admin"] == proxy.admin_url("").as_str())
        .unwrap_or_else(|| panic!("localhost did not resolve to 127.0.0.1: {json}"));
    assert_eq!(v4["up"], true, "{json}");
    assert_eq!(v4["version"], proxy.version().as_str(), "{json}");
    // localhost may also resolve to ::1, where nothing listens: named, DOWN, exit 1.
    let healthy = replicas.iter().all(|r| r["up"] == true);
    assert_eq!(
        output.status.code(),
        Some(if healthy { 0 } else { 1 }),
        "{}",
        both(&output)
    );
    let route = &json["routes"][0];
    assert_eq!(route["name"], "thoughts-api", "{json}");
    if let Some(period) = route["evidence"]["period"].as_str() {
        // A proxy with evidence periods (issue 17's ledger): the board names the period.
        assert_eq!(route["per_replica"][0]["period"], period, "{json}");
        let output = strangler(&["status", "--admin", &proxy.admin_url("")]).await;
        assert!(
            stdout(&output).contains(&format!("period {period} since ")),
            "{}",
            both(&output)
        );
    }
}

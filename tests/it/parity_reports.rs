//! How `strangler parity` shows what it found (issue 19, A1–A3, A9, A12), run as the real
//! binary against two small upstreams on ephemeral loopback ports whose answers differ on
//! purpose: a difference late in a long value, JSON keys in wire order, the status said
//! once per mismatch, skipped requests with their reasons, and a JUnit file that the
//! JUnit schema CI servers read accepts, whatever characters the names hold.

use std::path::Path;

use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::Value;

use crate::support::*;

/// An upstream answering every request with `answer(path and query)`: status, content
/// type, body.
async fn scripted(answer: fn(&str) -> (u16, &'static str, Vec<u8>)) -> Upstream {
    upstream_with(move |request: Request<Incoming>| async move {
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let (status, content_type, body) = answer(&target);
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(full(body))
            .unwrap()
    })
    .await
}

/// A directory for a run's table, corpus and reports.
struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Run {
        Run {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// Runs `strangler parity` with `table` and `corpus` (corpus lines), writing
    /// `parity.xml` and `parity.json`; returns its stdout after checking the exit code.
    async fn parity(&self, table: &str, corpus: &str, code: i32) -> String {
        let table = self.write("routes.toml", table);
        let corpus = self.write("corpus.jsonl", corpus);
        let output = strangler(&[
            "parity",
            "--config",
            &table,
            "--requests",
            &corpus,
            "--junit",
            &self.path("parity.xml"),
            "--json",
            &self.path("parity.json"),
        ])
        .await;
        assert_eq!(output.status.code(), Some(code), "{}", both(&output));
        stdout(&output)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.read("parity.json")).unwrap()
    }

    /// The text of every `<failure>` of the JUnit file, read with an XML parser.
    fn junit_failures(&self) -> Vec<String> {
        use quick_xml::events::Event;
        let xml = self.read("parity.xml");
        let mut reader = quick_xml::Reader::from_str(&xml);
        let (mut failures, mut inside) = (Vec::new(), false);
        loop {
            match reader.read_event().unwrap_or_else(|e| panic!("{e}:\n{xml}")) {
                Event::Eof => break,
                Event::Start(e) if e.name().as_ref() == "failure" => {
                    inside = true;
                    failures.push(String::new());
                }
                Event::End(e) if e.name().as_ref() == "failure" => inside = false,
                Event::Text(text) if inside => {
                    failures.last_mut().unwrap().push_str(&text.xml10_content());
                }
                Event::GeneralRef(reference) if inside => {
                    let resolved = match reference.resolve_char_ref().unwrap() {
                        Some(c) => c.to_string(),
                        None => quick_xml::escape::resolve_predefined_entity(&reference)
                            .unwrap()
                            .to_owned(),
                    };
                    failures.last_mut().unwrap().push_str(&resolved);
                }
                _ => {}
            }
        }
        failures
    }
}

/// A table with one route `api` (`/api/`) from `legacy` to `new`.
fn api_table(legacy: &Upstream, new: &Upstream) -> String {
    routes_toml(
        &[("legacy", &legacy.url()), ("new", &new.url())],
        "[[routes]]\nname = \"api\"\npath = \"/api/\"\nnew = \"new\"\n",
    )
}

/// 1575 characters both sides share before they differ.
fn common() -> String {
    "the same words again ".repeat(75)
}

/// A1: the two texts differ after 1575 equal characters; the terminal, the JSON and the
/// JUnit report all show a window around the difference, with its offset, not the
/// first 200 characters of each (which were the same).
#[tokio::test(flavor = "multi_thread")]
async fn a_late_difference_is_shown_with_its_offset_everywhere() {
    let legacy = scripted(|_| {
        (
            200,
            "application/json",
            format!(r#"{{"text":"{}legacy end"}}"#, common()).into(),
        )
    })
    .await;
    let new = scripted(|_| {
        (
            200,
            "application/json",
            format!(r#"{{"text":"{}new end"}}"#, common()).into(),
        )
    })
    .await;
    let run = Run::new();
    let text = run
        .parity(
            &api_table(&legacy, &new),
            "{\"method\": \"GET\", \"path\": \"/api/long\"}\n",
            1,
        )
        .await;
    // Character 0 is the opening quote of the JSON string; the window opens 40 characters
    // before the first difference.
    let common = common();
    let before = &common[common.len() - 40..];
    let offset = common.len() + 1;
    let legacy_shown = format!("[offset {offset}] …{before}legacy end\"");
    let new_shown = format!("[offset {offset}] …{before}new end\"");
    assert!(
        text.contains(&format!("  /text: legacy {legacy_shown} new {new_shown}\n")),
        "{text}"
    );
    let diff = &run.json()["mismatches"][0]["diffs"][0];
    assert_eq!(diff["pointer"], "/text");
    assert_eq!(diff["legacy"], legacy_shown.as_str(), "{diff}");
    assert_eq!(diff["new"], new_shown.as_str(), "{diff}");
    let failures = run.junit_failures();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].contains(&format!("/text: legacy {legacy_shown} new {new_shown}\n")),
        "{}",
        failures[0]
    );
}

/// A2: JSON values are shown as the sides sent them: an object's keys in wire order, not
/// sorted, in the terminal, the JSON and the JUnit report.
#[tokio::test(flavor = "multi_thread")]
async fn json_values_are_shown_in_wire_order() {
    let legacy = scripted(|_| {
        (
            200,
            "application/json",
            br#"{"id":7,"owner":{"username":"bruce","id":1,"admin":false}}"#.to_vec(),
        )
    })
    .await;
    let new = scripted(|_| (200, "application/json", br#"{"owner":"bruce","id":7}"#.to_vec())).await;
    let run = Run::new();
    let text = run
        .parity(
            &api_table(&legacy, &new),
            "{\"method\": \"GET\", \"path\": \"/api/thoughts/7/\"}\n",
            1,
        )
        .await;
    let shown = r#"/owner: legacy {"username":"bruce","id":1,"admin":false} new "bruce""#;
    assert!(text.contains(&format!("  {shown}\n")), "{text}");
    let diff = &run.json()["mismatches"][0]["diffs"][0];
    assert_eq!(diff["legacy"], r#"{"username":"bruce","id":1,"admin":false}"#, "{diff}");
    assert!(run.junit_failures()[0].contains(shown), "{:?}", run.junit_failures());
}

/// A2: `compare.key_order = true` reports an object whose keys come in another order (a
/// positional client breaks on it), which the default comparison treats as equal.
#[tokio::test(flavor = "multi_thread")]
async fn key_order_reports_a_reordered_object() {
    let legacy = scripted(|_| {
        (
            200,
            "application/json",
            br#"{"id":7,"text":"hi","owner":{"id":1,"name":"b"}}"#.to_vec(),
        )
    })
    .await;
    let new = scripted(|_| {
        (
            200,
            "application/json",
            br#"{"text":"hi","id":7,"owner":{"name":"b","id":1}}"#.to_vec(),
        )
    })
    .await;
    let corpus = "{\"method\": \"GET\", \"path\": \"/api/thoughts/7/\"}\n";
    let unordered = Run::new();
    let text = unordered.parity(&api_table(&legacy, &new), corpus, 0).await;
    assert!(text.contains(": 1 match,"), "objects are unordered by default: {text}");

    let ordered = Run::new();
    let table = api_table(&legacy, &new).replace("new = \"new\"\n", "new = \"new\"\ncompare = { key_order = true }\n");
    let text = ordered.parity(&table, corpus, 1).await;
    assert!(
        text.contains("  keys: legacy id, text, owner new text, id, owner\n"),
        "{text}"
    );
    assert!(text.contains("  keys:/owner: legacy id, name new name, id\n"), "{text}");
    assert!(text.contains(": 0 match,") && text.contains(" 1 mismatch,"), "{text}");
    let diffs = &ordered.json()["mismatches"][0]["diffs"];
    assert_eq!(diffs[1]["pointer"], "keys:/owner", "{diffs}");
}

/// A3: a mismatch whose status differs says `status: legacy X new Y` once, in the
/// terminal and in JUnit, and the body difference after it.
#[tokio::test(flavor = "multi_thread")]
async fn the_status_is_said_once_per_mismatch() {
    let legacy = scripted(|_| {
        (
            500,
            "application/json",
            br#"{"message":"Internal Server Error"}"#.to_vec(),
        )
    })
    .await;
    let new = scripted(|_| (401, "application/json", br#"{"message":"Unauthorized"}"#.to_vec())).await;
    let run = Run::new();
    let text = run
        .parity(
            &api_table(&legacy, &new),
            "{\"method\": \"POST\", \"path\": \"/api/login/\", \"body\": \"{}\"}\n",
            1,
        )
        .await;
    let block = text
        .split("\n\n")
        .find(|block| block.starts_with("MISMATCH POST /api/login/"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(block.matches("status: legacy 500 new 401").count(), 1, "{block}");
    assert_eq!(block.matches("500").count(), 1, "{block}");
    assert!(
        block.contains(
            "  status: legacy 500 new 401\n  /message: legacy \"Internal Server Error\" new \"Unauthorized\""
        ),
        "{block}"
    );
    let failures = run.junit_failures();
    assert_eq!(
        failures[0].matches("status: legacy 500 new 401").count(),
        1,
        "{}",
        failures[0]
    );
    assert_eq!(run.json()["mismatches"][0]["status"], serde_json::json!([500, 401]));
}

/// A9: requests that are not replayed are counted and listed with their reason in the
/// terminal report: one matches no route (and the default upstream has no new side),
/// one matches a route without a new upstream.
#[tokio::test(flavor = "multi_thread")]
async fn skipped_requests_are_listed_with_their_reasons() {
    let legacy = scripted(|_| (200, "application/json", b"{}".to_vec())).await;
    let new = scripted(|_| (200, "application/json", b"{}".to_vec())).await;
    let table = routes_toml(
        &[("legacy", &legacy.url()), ("new", &new.url())],
        "[[routes]]\nname = \"login-api\"\npath = \"/api/login/\"\nnew = \"new\"\n\n\
         [[routes]]\nname = \"admin\"\npath = \"/admin/\"\n",
    );
    let run = Run::new();
    let text = run
        .parity(
            &table,
            "{\"method\": \"POST\", \"path\": \"/api/login/\"}\n\
             {\"method\": \"POST\", \"path\": \"/login\"}\n\
             {\"method\": \"GET\", \"path\": \"/admin/users\"}\n\
             {\"method\": \"GET\", \"path\": \"/api/other\"}\n",
            0,
        )
        .await;
    let corpus = run.path("corpus.jsonl");
    assert!(
        text.contains(&format!(
            "\nSKIPPED 2 request(s): no route matches: the default upstream `legacy` has no new side (give --new to compare)\n  \
             POST /login  (route default, {corpus}:2)\n  GET /api/other  (route default, {corpus}:4)\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\nSKIPPED 1 request(s): route `admin` has no new upstream\n  GET /admin/users  (route admin, {corpus}:3)\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("1 match, 0 expected, 0 noise, 0 mismatch, 0 resolved, 3 skipped, 0 error: ok"),
        "{text}"
    );
}

/// Whether `xmllint` is there; without it the schema test is skipped, unless
/// `STRANGLER_REQUIRE_TOOLS=1` (CI, whose .ci/run installs libxml2-utils).
fn xmllint() -> bool {
    tool("xmllint", "libxml2-utils")
}

/// The JUnit file with the one attribute junit-10.xsd does not know removed: `skipped` on
/// the `<testsuites>` root (see tests/junit/README.md).
fn without_root_skipped(xml: &str) -> String {
    let start = xml
        .find("<testsuites ")
        .unwrap_or_else(|| panic!("no <testsuites>:\n{xml}"));
    let end = start + xml[start..].find('>').unwrap();
    let root = &xml[start..end];
    let at = root.find(" skipped=\"").unwrap_or_else(|| panic!("{root}"));
    let value_end = at + " skipped=\"".len() + root[at + " skipped=\"".len()..].find('"').unwrap() + 1;
    format!("{}{}{}", &xml[..start + at], &root[value_end..], &xml[end..])
}

/// `xmllint --schema tests/junit/junit-10.xsd` on `xml`: its verdict and its output.
fn validate(xml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.xml");
    std::fs::write(&file, xml).unwrap();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/junit/junit-10.xsd");
    let output = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// A12: the JUnit file of a run with a match, a mismatch, an error and a skipped request,
/// whose names and differences hold markup characters, quotes, control characters and
/// bytes that are not UTF-8, is valid against Jenkins' JUnit schema; and the schema check
/// itself refuses a broken file.
#[tokio::test(flavor = "multi_thread")]
async fn junit_is_valid_against_the_junit_schema() {
    if !xmllint() {
        return;
    }
    let odd = |target: &str| -> (u16, &'static str, Vec<u8>) {
        if target.starts_with("/api/odd") {
            (
                200,
                "text/plain",
                b"<tag> & \"q\" \x01\x02\x1b[31m \xff\xfe ]]> legacy".to_vec(),
            )
        } else {
            (200, "application/json", b"{\"a\":1}".to_vec())
        }
    };
    let legacy = scripted(odd).await;
    let new = scripted(|target| {
        if target.starts_with("/api/odd") {
            (
                200,
                "text/plain",
                b"<tag> & \"q\" \x01\x02\x1b[31m \xff\xfe ]]> new".to_vec(),
            )
        } else {
            (200, "application/json", b"{\"a\":1}".to_vec())
        }
    })
    .await;
    let table = routes_toml(
        &[("legacy", &legacy.url()), ("new", &new.url()), ("gone", &dead_url())],
        "[[routes]]\nname = \"api\"\npath = \"/api/\"\nnew = \"new\"\n\n\
         [[routes]]\nname = \"gone\"\npath = \"/gone/\"\nnew = \"gone\"\n",
    );
    let run = Run::new();
    run.parity(
        &table,
        "{\"method\": \"GET\", \"path\": \"/api/same\"}\n\
         {\"method\": \"GET\", \"path\": \"/api/odd?q=a&b='c'\", \"headers\": {\"x-note\": \"<b> & \\\"q\\\" ]]>\"}}\n\
         {\"method\": \"GET\", \"path\": \"/gone/x\"}\n\
         {\"method\": \"GET\", \"path\": \"/elsewhere\"}\n",
        1,
    )
    .await;
    let xml = run.read("parity.xml");
    assert!(xml.contains("<skipped "), "{xml}");
    assert!(xml.contains("type=\"mismatch\""), "{xml}");
    assert!(xml.contains("type=\"error\""), "{xml}");
    assert!(
        xml.contains("name=\"GET /api/odd?q=a&amp;b=&apos;c&apos; (line 2)\""),
        "{xml}"
    );
    let (valid, said) = validate(&without_root_skipped(&xml));
    assert!(valid, "{said}\n{xml}");
    let failures = run.junit_failures();
    let odd = failures.iter().find(|f| f.contains("legacy")).unwrap();
    assert!(
        // Control characters are shown as escapes (`\x{1b}`), in JUnit as in the terminal.
        odd.contains("(whole body): legacy <tag> & \"q\" \\x{1}\\x{2}\\x{1b}[31m \u{fffd}\u{fffd} ]]> legacy new"),
        "{odd}"
    );
    assert!(odd.contains("request headers: x-note: <b> & \"q\" ]]>\n"), "{odd}");

    // The check can fail: a <testcase> without its name is refused.
    let broken = without_root_skipped(&xml).replacen("<testcase name=", "<testcase label=", 1);
    let (valid, said) = validate(&broken);
    assert!(!valid, "a testcase without a name passed:\n{broken}");
    assert!(said.contains("name"), "{said}");
}

//! `strangler parity` with known divergences (issue 19, A5) and header-aware compare rules
//! (A4), run as the real binary against two tiny in-test upstreams that answer some paths
//! differently on purpose: a "book" legacy and its "port".

use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::support::*;

/// One side's answer to `path`: status, headers and body.
fn answer(book: bool, path: &str) -> (u16, Vec<(&'static str, String)>, String) {
    let json_type = ("content-type", "application/json".to_owned());
    let pick = |legacy: &str, new: &str| if book { legacy.to_owned() } else { new.to_owned() };
    match path {
        "/api/login" => (
            if book { 500 } else { 401 },
            vec![json_type],
            pick(
                r#"{"message": "Internal Server Error"}"#,
                r#"{"message": "Unauthorized"}"#,
            ),
        ),
        "/api/other" => (
            if book { 500 } else { 401 },
            vec![json_type],
            pick(r#"{"message": "a", "extra": 1}"#, r#"{"message": "b", "extra": 2}"#),
        ),
        "/api/thoughts/abc/" => (
            404,
            vec![("content-type", pick("text/html; charset=utf-8", "application/json"))],
            pick("<h1>Not Found</h1>", r#"{"message": "not found"}"#),
        ),
        "/api/thoughts" => (
            308,
            vec![
                json_type,
                (
                    "location",
                    pick("http://book.local:5000/api/thoughts/?a=1", "/api/thoughts/?a=1"),
                ),
            ],
            String::new(),
        ),
        "/api/me/thoughts/" => (
            405,
            vec![json_type, ("allow", pick("GET, HEAD, OPTIONS", "OPTIONS,HEAD,GET"))],
            String::new(),
        ),
        "/api/stamped" => (
            200,
            vec![json_type],
            pick(
                r#"{"items": [{"id": 1, "created": "2024-01-01T00:00:00"}], "title": "t"}"#,
                r#"{"items": [{"id": 1, "created": "2025-06-06T11:11:11"}], "title": "t"}"#,
            ),
        ),
        "/api/stamped-title" => (
            200,
            vec![json_type],
            pick(
                r#"{"items": [{"id": 1, "created": "2024-01-01"}], "title": "2024"}"#,
                r#"{"items": [{"id": 1, "created": "2025-06-06"}], "title": "2025"}"#,
            ),
        ),
        // The same on both sides (also /api/fixed, once a divergence).
        _ => (200, vec![json_type], r#"{"ok": true}"#.to_owned()),
    }
}

async fn side(book: bool) -> Upstream {
    upstream_with(move |request: Request<Incoming>| {
        let (status, headers, body) = answer(book, request.uri().path());
        async move {
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(full(body)).unwrap()
        }
    })
    .await
}

/// Two upstreams, a scratch directory, and a table with one route `api` (`/api/`) whose
/// `compare` is `compare`.
struct Setup {
    _book: Upstream,
    _port: Upstream,
    dir: tempfile::TempDir,
    table: String,
}

impl Setup {
    async fn new(compare: &str) -> Setup {
        let (book, port) = (side(true).await, side(false).await);
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("routes.toml").display().to_string();
        let routes = format!("[[routes]]\nname = \"api\"\npath = \"/api/\"\nnew = \"new\"\n{compare}\n");
        std::fs::write(
            &table,
            routes_toml(&[("legacy", &book.url()), ("new", &port.url())], &routes),
        )
        .unwrap();
        Setup {
            _book: book,
            _port: port,
            dir,
            table,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Runs `strangler parity` over these corpus lines with `--json` and `--junit`:
    /// the exit code, stdout+stderr, the JSON report and the JUnit XML.
    async fn run(&self, lines: &[Value]) -> (Option<i32>, String, Value, String) {
        let corpus = self.path("corpus.jsonl");
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&corpus, text).unwrap();
        let (json, junit) = (self.path("parity.json"), self.path("parity.xml"));
        let output = strangler(&[
            "parity",
            "--config",
            &self.table,
            "--requests",
            &corpus,
            "--json",
            &json,
            "--junit",
            &junit,
        ])
        .await;
        let report = std::fs::read_to_string(&json)
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap_or(Value::Null);
        let xml = std::fs::read_to_string(&junit).unwrap_or_default();
        (output.status.code(), both(&output), report, xml)
    }
}

fn get(path: &str) -> Value {
    json!({"method": "GET", "path": path})
}

fn expecting(path: &str, expect: Value) -> Value {
    json!({"method": "GET", "path": path, "expect": expect})
}

/// The book's HTML 404, stated once in the route for every run that meets it.
const ROUTE_DIVERGENCE: &str = r#"[[routes.compare.divergences]]
method = "GET"
path = "/api/thoughts/abc/"
reason = "the book has no such route and answers Werkzeug's HTML 404"
status = { legacy = 404, new = 404 }
pointers = { "" = { legacy = "<h1>Not Found</h1>", new = { message = "not found" } } }
headers = { "content-type" = { legacy = "text/html; charset=utf-8", new = "application/json" } }
"#;

/// A corpus line's `expect` and a route's divergence that hold are `expected`: listed with
/// their reasons in the terminal, the JSON report and JUnit (a passing case), exit 0.
#[tokio::test(flavor = "multi_thread")]
async fn stated_divergences_are_expected_and_pass() {
    let setup = Setup::new(ROUTE_DIVERGENCE).await;
    let login = expecting(
        "/api/login",
        json!({"reason": "the book fails with 500 on a bad password",
               "status": {"legacy": 500, "new": 401},
               "pointers": {"/message": {"legacy": "Internal Server Error", "new": "*"}}}),
    );
    let (code, out, report, xml) = setup.run(&[login, get("/api/thoughts/abc/"), get("/api/same")]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(": 1 match, 2 expected, 0 noise, 0 mismatch, 0 resolved, 0 skipped, 0 error: ok"),
        "{out}"
    );
    assert!(
        out.contains("EXPECTED GET /api/login  (route api, ")
            && out.contains(":1): the book fails with 500 on a bad password"),
        "{out}"
    );
    assert!(
        out.contains(":2): the book has no such route and answers Werkzeug's HTML 404"),
        "{out}"
    );
    let reasons: Vec<&str> = report["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "the book fails with 500 on a bad password",
            "the book has no such route and answers Werkzeug's HTML 404"
        ]
    );
    assert_eq!(report["expected"][1]["line"], 2);
    assert_eq!(report["routes"]["api"]["expected"], 2);
    assert_eq!(report["routes"]["api"]["match_rate"], 1.0);
    assert_eq!(report["resolved"], json!([]));
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(
        xml.contains("<system-out>expected divergence: the book fails with 500 on a bad password</system-out>"),
        "{xml}"
    );
}

/// A divergence that no longer occurs is `resolved`: a failure (exit 1) in every report,
/// so the list of divergences stays true.
#[tokio::test(flavor = "multi_thread")]
async fn a_divergence_that_no_longer_occurs_is_resolved_and_fails() {
    let setup = Setup::new("").await;
    let fixed = expecting(
        "/api/fixed",
        json!({"reason": "used to answer 500", "status": {"legacy": 500, "new": 200}}),
    );
    let (code, out, report, xml) = setup.run(&[fixed, get("/api/same")]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("RESOLVED GET /api/fixed  (route api, "), "{out}");
    assert!(out.contains("  divergence: used to answer 500"), "{out}");
    assert!(
        out.contains("  not as stated: status: stated legacy 500 new 200, got legacy 200 new 200"),
        "{out}"
    );
    assert!(
        out.contains(": 1 match, 0 expected, 0 noise, 0 mismatch, 1 resolved, 0 skipped, 0 error: FAILED"),
        "{out}"
    );
    assert_eq!(report["resolved"][0]["reason"], "used to answer 500");
    assert_eq!(report["routes"]["api"]["resolved"], 1);
    assert!(report["routes"]["api"]["match_rate"].as_f64().unwrap() < 1.0);
    assert!(
        xml.contains(
            "<failure message=\"the stated divergence no longer occurs: used to answer 500\" type=\"resolved\">"
        ),
        "{xml}"
    );
}

/// Answers that differ beyond what is stated, or otherwise than stated, are mismatches,
/// with the differences and the unmet statements.
#[tokio::test(flavor = "multi_thread")]
async fn differences_beside_an_expectation_are_mismatches() {
    let setup = Setup::new("").await;
    let beside = expecting(
        "/api/other",
        json!({"reason": "messages differ", "status": {"legacy": 500, "new": 401},
               "pointers": {"/message": {"legacy": "a", "new": "b"}}}),
    );
    let otherwise = expecting(
        "/api/login",
        json!({"reason": "stated wrong", "status": {"legacy": 500, "new": 403},
               "pointers": {"/message": {"legacy": "*", "new": "*"}}}),
    );
    let (code, out, report, xml) = setup.run(&[beside, otherwise]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(": 0 match, 0 expected, 0 noise, 2 mismatch, 0 resolved, 0 skipped, 0 error: FAILED"),
        "{out}"
    );
    assert!(out.contains("  /extra: legacy 1 new 2"), "{out}");
    assert!(
        out.contains("  not as stated: status: stated legacy 500 new 403, got legacy 500 new 401"),
        "{out}"
    );
    let pointers: Vec<&str> = report["mismatches"][0]["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/extra"), "{pointers:?}");
    assert_eq!(report["expected"], json!([]));
    assert!(xml.contains("type=\"mismatch\">"), "{xml}");
}

/// `location = "path"`, `unordered_headers` and a `normalize` scoped by `pointer` make the
/// port's answers agree with the book's; without them, or outside the scope, they do not.
#[tokio::test(flavor = "multi_thread")]
async fn header_rules_and_scoped_normalize_compare_as_configured() {
    let corpus = [get("/api/thoughts"), get("/api/me/thoughts/"), get("/api/stamped")];
    let plain = Setup::new("").await;
    let (code, out, report, _) = plain.run(&corpus).await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(report["routes"]["api"]["mismatch"], 1, "{out}");
    assert!(out.contains("created: legacy \"2024-01-01T00:00:00\""), "{out}");

    let headers = Setup::new(r#"compare = { headers = ["content-type", "location", "allow"] }"#).await;
    let (code, out, report, _) = headers.run(&corpus).await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(report["routes"]["api"]["mismatch"], 3, "{out}");
    assert!(
        out.contains("header:location: legacy http://book.local:5000/api/thoughts/?a=1 new /api/thoughts/?a=1"),
        "{out}"
    );
    assert!(
        out.contains("header:allow: legacy GET, HEAD, OPTIONS new OPTIONS,HEAD,GET"),
        "{out}"
    );

    let configured = Setup::new(
        r#"compare = { location = "path", unordered_headers = ["allow"], normalize = [{ pattern = "[0-9]", replace = "0", pointer = "/items/*/created" }] }"#,
    )
    .await;
    let (code, out, report, _) = configured.run(&corpus).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(report["routes"]["api"]["match"], 3, "{out}");
    // The normaliser stays in its scope: /title is compared as it is.
    let (code, out, report, _) = configured.run(&[get("/api/stamped-title")]).await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(report["mismatches"][0]["diffs"][0]["pointer"], "/title", "{out}");
    assert_eq!(report["mismatches"][0]["diffs"].as_array().unwrap().len(), 1, "{out}");
}

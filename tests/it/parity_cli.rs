//! `strangler parity`, run as the real binary: against the MyThoughts demo (in-process, on
//! ephemeral loopback ports) with the repository's corpus, against a new upstream that
//! changes one field on purpose, and against small upstreams that are noisy, slow or
//! absent. Every run is bounded by a timeout; nothing sleeps.
//!
//! This is the CI check of the corpus: `cargo test --workspace` runs it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use strangler::table::Table;

use crate::support::demo::*;
use crate::support::*;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parity/mythoughts.jsonl");

/// Where a run writes its reports.
struct Reports {
    dir: tempfile::TempDir,
}

impl Reports {
    fn new() -> Reports {
        Reports {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn json(&self, name: &str) -> Value {
        let path = self.path(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON ({e}):\n{text}"))
    }

    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// Writes a file into the reports' directory and returns its path.
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// The route each request of the repository's corpus takes under routes.toml, worked out
/// here independently of the router (by path prefix and method), with its count.
fn corpus_routes() -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(CORPUS).unwrap().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let request: Value = serde_json::from_str(line).unwrap();
        let (method, path) = (request["method"].as_str().unwrap(), request["path"].as_str().unwrap());
        let route = if path.starts_with("/api/thoughts") && matches!(method, "GET" | "HEAD") {
            "thoughts-api"
        } else if path.starts_with("/api/me/thoughts") {
            "my-thoughts-api"
        } else if path == "/api/login/" && method == "POST" {
            "login-api"
        } else {
            "default"
        };
        *counts.entry(route).or_default() += 1;
    }
    counts
}

/// A `<testsuite>` of a JUnit file, as a JUnit reader sees it.
#[derive(Debug, Default)]
struct Suite {
    /// The `tests`, `failures`, `skipped` attributes.
    declared: (u64, u64, u64),
    /// The testcases: name, and `failure`/`skipped`/`pass`, with the failure's text.
    cases: Vec<(String, &'static str, String)>,
}

/// Parses JUnit XML with a real XML parser (so escaping mistakes fail here) into its
/// suites by name.
fn parse_junit(xml: &str) -> BTreeMap<String, Suite> {
    use quick_xml::events::{BytesStart, Event};

    fn attr(e: &BytesStart<'_>, key: &str) -> Option<String> {
        e.attributes()
            .map(|a| a.unwrap())
            .find(|a| a.key.as_ref() == key)
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap()
                    .into_owned()
            })
    }
    let number = |e: &BytesStart<'_>, key: &str| attr(e, key).unwrap().parse::<u64>().unwrap();

    let mut reader = quick_xml::Reader::from_str(xml);
    let mut suites = BTreeMap::new();
    let mut suite: Option<(String, Suite)> = None;
    let mut in_failure = false;
    let mut roots = 0;
    for _ in 0..1_000_000 {
        let event = reader.read_event().unwrap_or_else(|e| panic!("bad XML ({e}):\n{xml}"));
        let is_start = matches!(event, Event::Start(_));
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "testsuites" => roots += 1,
                "testsuite" => {
                    let declared = (number(&e, "tests"), number(&e, "failures"), number(&e, "skipped"));
                    suite = Some((
                        attr(&e, "name").unwrap(),
                        Suite {
                            declared,
                            cases: Vec::new(),
                        },
                    ));
                }
                "testcase" => {
                    let (_, current) = suite.as_mut().expect("testcase outside a testsuite");
                    current.cases.push((attr(&e, "name").unwrap(), "pass", String::new()));
                }
                "failure" | "skipped" => {
                    let (_, current) = suite.as_mut().unwrap();
                    let case = current.cases.last_mut().expect("outside a testcase");
                    case.1 = if e.name().as_ref() == "failure" {
                        "failure"
                    } else {
                        "skipped"
                    };
                    in_failure = is_start && case.1 == "failure";
                }
                other => panic!("unexpected element <{other}>"),
            },
            Event::End(e) => match e.name().as_ref() {
                "testsuite" => {
                    let (name, done) = suite.take().unwrap();
                    suites.insert(name, done);
                }
                "failure" => in_failure = false,
                _ => {}
            },
            Event::Text(text) if in_failure => {
                let (_, current) = suite.as_mut().unwrap();
                let case = current.cases.last_mut().unwrap();
                case.2.push_str(&text.xml10_content());
            }
            Event::GeneralRef(reference) if in_failure => {
                let resolved = match reference.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&reference)
                        .unwrap_or_else(|| panic!("unknown entity &{};", &*reference))
                        .to_owned(),
                };
                let (_, current) = suite.as_mut().unwrap();
                current.cases.last_mut().unwrap().2.push_str(&resolved);
            }
            _ => {}
        }
    }
    assert_eq!(roots, 1, "one <testsuites> root:\n{xml}");
    for (name, suite) in &suites {
        let count = |kind: &str| suite.cases.iter().filter(|c| c.1 == kind).count() as u64;
        assert_eq!(
            suite.declared,
            (suite.cases.len() as u64, count("failure"), count("skipped")),
            "suite {name}: declared counts differ from its testcases"
        );
        for (case, _, _) in &suite.cases {
            let (method, path) = case
                .split_once(' ')
                .unwrap_or_else(|| panic!("not METHOD path: {case}"));
            assert!(
                method.chars().all(|c| c.is_ascii_uppercase()) && path.starts_with('/'),
                "{case}"
            );
        }
    }
    suites
}

/// The counts of `route` in a JSON report: (requests, match, noise, mismatch, error, skipped).
fn counts(report: &Value, route: &str) -> (u64, u64, u64, u64, u64, u64) {
    let r = &report["routes"][route];
    let n = |key: &str| {
        r[key]
            .as_u64()
            .unwrap_or_else(|| panic!("routes.{route}.{key} in {report:#}"))
    };
    (
        n("requests"),
        n("match"),
        n("noise"),
        n("mismatch"),
        n("error"),
        n("skipped"),
    )
}

/// The repository's corpus against the demo: the monolith and the thoughts service agree
/// on every request, with the upstreams given on the command line and with the table's
/// own; the JUnit file says so per request; and `strangler flip` takes the JSON report
/// as evidence.
#[tokio::test(flavor = "multi_thread")]
async fn the_mythoughts_corpus_matches_on_both_sides() {
    let (_dir, demo) = start_demo().await;
    let expected = corpus_routes();
    let routes = demo.routes.display().to_string();
    let reports = Reports::new();
    let (legacy, thoughts) = (format!("http://{}", demo.legacy), format!("http://{}", demo.thoughts));
    let (junit, json) = (reports.path("parity.xml"), reports.path("parity.json"));

    let output = strangler(&[
        "parity",
        "--config",
        &routes,
        "--requests",
        CORPUS,
        "--legacy",
        &legacy,
        "--new",
        &thoughts,
        "--route",
        "thoughts-api",
        "--route",
        "my-thoughts-api",
        "--junit",
        &junit,
        "--json",
        &json,
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let report = reports.json("parity.json");
    for route in ["thoughts-api", "my-thoughts-api"] {
        let n = expected[route];
        assert!(n >= 5, "the corpus has only {n} requests for {route}");
        assert_eq!(counts(&report, route), (n, n, 0, 0, 0, 0), "{route}: {}", both(&output));
        assert_eq!(report["routes"][route]["match_rate"], 1.0);
        assert_eq!(report["routes"][route]["dropped"], 0);
    }
    assert_eq!(report["routes"].as_object().unwrap().len(), 2, "{report:#}");
    assert_eq!(report["mismatches"], json!([]));
    assert_eq!(report["errors"], json!([]));
    let text = stdout(&output);
    let outside = expected["login-api"] + expected["default"];
    assert!(
        text.contains(&format!(
            "{outside} request(s) of other routes than those given with --route"
        )),
        "{text}"
    );
    assert!(text.contains(": ok\n"), "{text}");

    let suites = parse_junit(&reports.text("parity.xml"));
    assert_eq!(suites.keys().collect::<Vec<_>>(), ["my-thoughts-api", "thoughts-api"]);
    for (name, suite) in &suites {
        assert_eq!(suite.declared, (expected[name.as_str()], 0, 0), "{name}");
    }
    assert!(
        suites["thoughts-api"]
            .cases
            .iter()
            .any(|(name, _, _)| name.starts_with("GET /api/thoughts/?search=GAMMA (line ")),
        "{:?}",
        suites["thoughts-api"].cases
    );

    // The report is evidence for a flip (on a copy: the demo watches its own file).
    let table = reports.write("routes.toml", &std::fs::read_to_string(&demo.routes).unwrap());
    let flip = strangler(&[
        "flip",
        "my-thoughts-api",
        "new",
        "--config",
        &table,
        "--parity-report",
        &json,
        "--min-requests",
        "1",
    ])
    .await;
    assert_eq!(flip.status.code(), Some(0), "{}", both(&flip));
    assert!(
        stdout(&flip).contains("parity evidence from the report"),
        "{}",
        both(&flip)
    );
    let flipped = Table::load(Path::new(&table)).unwrap();
    let route = flipped
        .config
        .routes
        .iter()
        .find(|r| r.name == "my-thoughts-api")
        .unwrap();
    assert_eq!(route.stage, strangler::config::Stage::New);

    // With the table's own upstreams: every route, login on the users service included;
    // the request no route takes has no new side and is skipped, which fails nothing.
    let output = strangler(&["parity", "--config", &routes, "--requests", CORPUS, "--json", &json]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let report = reports.json("parity.json");
    for (route, n) in &expected {
        let want = if *route == "default" {
            (*n, 0, 0, 0, 0, *n)
        } else {
            (*n, *n, 0, 0, 0, 0)
        };
        assert_eq!(counts(&report, route), want, "{route}: {}", both(&output));
    }
    assert_eq!(report["routes"]["thoughts-api"]["stage"], "new");
    assert_eq!(report["routes"]["my-thoughts-api"]["stage"], "legacy");
    assert_eq!(report["routes"]["default"]["stage"], Value::Null);

    // The corpus covers what it says it covers: reads, redirects, validation, auth, not found.
    let statuses = legacy_statuses(demo.legacy).await;
    for status in [200, 308, 400, 401, 404] {
        assert!(
            statuses.contains(&status),
            "no {status} from the monolith: {statuses:?}"
        );
    }

    demo.shutdown().await;
}

/// The status the monolith answers each request of the repository's corpus with, asked
/// directly.
async fn legacy_statuses(legacy: std::net::SocketAddr) -> Vec<u16> {
    let http = client();
    let mut statuses = Vec::new();
    for line in std::fs::read_to_string(CORPUS).unwrap().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let request: Value = serde_json::from_str(line).unwrap();
        let mut builder = Request::builder()
            .method(request["method"].as_str().unwrap())
            .uri(format!("http://{legacy}{}", request["path"].as_str().unwrap()));
        if let Some(headers) = request["headers"].as_object() {
            for (name, value) in headers {
                builder = builder.header(name, value.as_str().unwrap());
            }
        }
        let body = full(request["body"].as_str().unwrap_or_default().to_owned());
        statuses.push(send(&http, builder.body(body).unwrap()).await.status.as_u16());
    }
    statuses
}

/// Seed thought 1 with another text: what the divergent upstream serves.
const CHANGED_TEXT: &str = "Gamma ray test in a few minutes. What could possibly go right?";

/// Changes the text of thought 1 wherever it appears in a JSON answer; `true` if it did.
fn change_thought_one(value: &mut Value) -> bool {
    match value {
        Value::Array(items) => {
            // Every element, not just up to the first change.
            let mut changed = false;
            for item in items {
                changed |= change_thought_one(item);
            }
            changed
        }
        Value::Object(thought) if thought.get("id") == Some(&json!(1)) => {
            thought.insert("text".to_owned(), json!(CHANGED_TEXT));
            true
        }
        _ => false,
    }
}

/// A new upstream in front of `thoughts` that passes everything through except the text of
/// thought 1.
async fn divergent_upstream(thoughts: std::net::SocketAddr) -> Upstream {
    upstream_with(move |request: Request<Incoming>| async move {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let mut forward = Request::builder()
            .method(parts.method)
            .uri(format!("http://{thoughts}{}", parts.uri.path_and_query().unwrap()));
        for (name, value) in &parts.headers {
            forward = forward.header(name, value);
        }
        let answer = client().request(forward.body(full(body)).unwrap()).await.unwrap();
        let (mut parts, body) = answer.into_parts();
        let mut body = body.collect().await.unwrap().to_bytes();
        if let Ok(mut json) = serde_json::from_slice::<Value>(&body)
            && change_thought_one(&mut json)
        {
            body = serde_json::to_vec(&json).unwrap().into();
            parts.headers.remove("content-length");
        }
        Response::from_parts(parts, full(body))
    })
    .await
}

/// A new service that changes one field fails the run; the output, the JSON and the JUnit
/// file name the request and the JSON Pointer; `flip` refuses on that evidence; the
/// `--header` value never appears anywhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_divergent_new_upstream_fails_and_names_the_pointer() {
    const SECRET: &str = "Bearer sekrit-parity-token";
    let (_dir, demo) = start_demo().await;
    let divergent = divergent_upstream(demo.thoughts).await;
    let reports = Reports::new();
    let (junit, json) = (reports.path("parity.xml"), reports.path("parity.json"));
    // thoughts-api back at legacy, so that a flip to new needs evidence.
    let table = reports.write(
        "routes.toml",
        &with_stages(
            &std::fs::read_to_string(&demo.routes).unwrap(),
            &[("thoughts-api", "legacy")],
        ),
    );
    let header = format!("Authorization: {SECRET}");
    let output = strangler(&[
        "parity",
        "--config",
        &table,
        "--requests",
        CORPUS,
        "--legacy",
        &format!("http://{}", demo.legacy),
        "--new",
        &divergent.url(),
        "--route",
        "thoughts-api",
        "--header",
        &header,
        "--junit",
        &junit,
        "--json",
        &json,
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let text = stdout(&output);
    assert!(
        text.contains("MISMATCH GET /api/thoughts/1/  (route thoughts-api"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  /text: legacy \"{}\" new \"{CHANGED_TEXT}\"",
            mythoughts_common::seed::THOUGHTS[0].text
        )),
        "{text}"
    );
    assert!(text.contains("MISMATCH GET /api/thoughts/  (route"), "{text}");
    assert!(text.contains("  /0/text: legacy"), "{text}");
    assert!(text.contains("authorization: [redacted]"), "{text}");
    assert!(text.contains(": FAILED\n"), "{text}");

    let report = reports.json("parity.json");
    let mismatches = report["mismatches"].as_array().unwrap();
    let (requests, matched, noise, mismatch, error, skipped) = counts(&report, "thoughts-api");
    assert_eq!(mismatch, mismatches.len() as u64);
    assert!(
        mismatch >= 4,
        "thought 1 is in the list, by id and in searches: {report:#}"
    );
    assert_eq!((noise, error, skipped), (0, 0, 0));
    assert_eq!(requests, matched + mismatch);
    assert!(matched > 0, "the other requests still match: {report:#}");
    let pointers: Vec<(&str, &str)> = mismatches
        .iter()
        .flat_map(|m| {
            assert_eq!(m["route"], "thoughts-api");
            assert_eq!(m["status"], json!([200, 200]));
            assert!(m["at"].as_str().unwrap().ends_with('Z'), "{m}");
            m["diffs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| (m["path"].as_str().unwrap(), d["pointer"].as_str().unwrap()))
        })
        .collect();
    assert!(pointers.contains(&("/api/thoughts/1/", "/text")), "{pointers:?}");
    assert!(pointers.contains(&("/api/thoughts/", "/0/text")), "{pointers:?}");
    assert!(
        pointers.iter().all(|(_, p)| p.ends_with("/text")),
        "only the text differs: {pointers:?}"
    );

    let xml = reports.text("parity.xml");
    let suites = parse_junit(&xml);
    let suite = &suites["thoughts-api"];
    assert_eq!(suite.declared, (requests, mismatch, 0));
    let (_, _, failure) = suite
        .cases
        .iter()
        .find(|(name, kind, _)| name.starts_with("GET /api/thoughts/1/ (line ") && *kind == "failure")
        .unwrap_or_else(|| panic!("{:?}", suite.cases));
    assert!(
        failure.contains("status: legacy 200 new 200\n/text: legacy"),
        "{failure}"
    );
    assert!(failure.contains(CHANGED_TEXT), "{failure}");
    for (what, content) in [
        ("stdout", &text),
        ("JUnit", &xml),
        ("JSON", &reports.text("parity.json")),
    ] {
        assert!(!content.contains("sekrit"), "the --header value leaked into {what}");
    }

    // That evidence was gathered against the divergent upstream (--new), not the table's
    // `thoughts`: flip refuses it for the table (issue 17), and for a table that names the
    // divergent upstream, refuses it on its mismatches.
    let flip = |table: String| {
        let json = json.clone();
        async move {
            strangler(&[
                "flip",
                "thoughts-api",
                "new",
                "--config",
                &table,
                "--parity-report",
                &json,
                "--min-requests",
                "1",
            ])
            .await
        }
    };
    let refused = flip(table.clone()).await;
    assert_eq!(refused.status.code(), Some(1), "{}", both(&refused));
    assert!(
        stderr(&refused).contains(&format!("new thoughts ({}/)", divergent.url())),
        "{}",
        both(&refused)
    );
    let divergent_table = reports.write(
        "divergent.toml",
        &std::fs::read_to_string(&table)
            .unwrap()
            .replace(&format!("http://{}", demo.thoughts), &divergent.url()),
    );
    let flip = flip(divergent_table).await;
    assert_eq!(flip.status.code(), Some(1), "{}", both(&flip));
    assert!(
        String::from_utf8_lossy(&flip.stderr).contains(&format!("{mismatch} mismatches")),
        "{}",
        both(&flip)
    );
    demo.shutdown().await;
}

/// An upstream answering `{"id": 1, "nonce": <a new value each time>}`, `prefix` before
/// the value.
async fn nonce_upstream(prefix: &'static str) -> Upstream {
    let count = Arc::new(AtomicU64::new(0));
    upstream_with(move |_request: Request<Incoming>| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        async move {
            Response::builder()
                .header("content-type", "application/json")
                .body(full(json!({"id": 1, "nonce": format!("{prefix}{n}")}).to_string()))
                .unwrap()
        }
    })
    .await
}

/// A table with one route `api` (`/api/`) from `legacy` to `new`.
fn api_table(reports: &Reports, legacy: &str, new: &str) -> String {
    reports.write(
        "routes.toml",
        &routes_toml(
            &[("legacy", legacy), ("new", new)],
            "[[routes]]\nname = \"api\"\npath = \"/api/\"\nnew = \"new\"\n",
        ),
    )
}

/// A field legacy itself changes on every answer is noise with `--noise-sample 1`, and a
/// mismatch without it.
#[tokio::test(flavor = "multi_thread")]
async fn noise_sampling_tells_noise_from_mismatch() {
    let legacy = nonce_upstream("legacy-").await;
    let new = nonce_upstream("new-").await;
    let reports = Reports::new();
    let table = api_table(&reports, &legacy.url(), &new.url());
    let corpus = reports.write(
        "noise.jsonl",
        &(1..=4)
            .map(|i| format!("{{\"method\": \"GET\", \"path\": \"/api/items/{i}\"}}\n"))
            .collect::<String>(),
    );
    let json = reports.path("parity.json");

    let args = ["parity", "--config", &table, "--requests", &corpus, "--json", &json];
    let sampled = strangler(&[&args[..], &["--noise-sample", "1"]].concat()).await;
    assert_eq!(sampled.status.code(), Some(0), "{}", both(&sampled));
    assert_eq!(counts(&reports.json("parity.json"), "api"), (4, 0, 4, 0, 0, 0));
    assert_eq!(reports.json("parity.json")["routes"]["api"]["match_rate"], 1.0);
    assert_eq!((legacy.seen().len(), new.seen().len()), (8, 4), "legacy answers twice");

    let unsampled = strangler(&args).await;
    assert_eq!(unsampled.status.code(), Some(1), "{}", both(&unsampled));
    let report = reports.json("parity.json");
    assert_eq!(counts(&report, "api"), (4, 0, 0, 4, 0, 0));
    assert_eq!(report["mismatches"][0]["diffs"][0]["pointer"], "/nonce");
    assert!(
        stdout(&unsampled).contains("/nonce: legacy \"legacy-"),
        "{}",
        both(&unsampled)
    );
}

/// An upstream answering with the request it got: method, path, query, body, `x-corpus`,
/// and whether `accept-encoding` came.
async fn mirror_upstream() -> Upstream {
    upstream_with(|request: Request<Incoming>| async move {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let header = |name: &str| parts.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        let json = json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query(),
            "body": String::from_utf8_lossy(&body),
            "x-corpus": header("x-corpus"),
            "accept-encoding": header("accept-encoding"),
        });
        Response::builder()
            .header("content-type", "application/json")
            .body(full(json.to_string()))
            .unwrap()
    })
    .await
}

/// A side that refuses connections or does not answer in time, and a path the proxy
/// would refuse, are errors: exit 1, each named.
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_slow_and_refused_requests_are_errors() {
    let legacy = mirror_upstream().await;
    let slow = upstream_with(|_request: Request<Incoming>| async move {
        std::future::pending::<()>().await;
        Response::new(full(""))
    })
    .await;
    let reports = Reports::new();
    let closed = dead_url();
    let table = reports.write(
        "routes.toml",
        &routes_toml(
            &[("legacy", &legacy.url()), ("gone", &closed), ("slow", &slow.url())],
            "[[routes]]\nname = \"api\"\npath = \"/api/\"\nnew = \"gone\"\n\n\
             [[routes]]\nname = \"slow\"\npath = \"/slow/\"\nnew = \"slow\"\n",
        ),
    );
    let corpus = reports.write(
        "errors.jsonl",
        "{\"method\": \"GET\", \"path\": \"/api/x\"}\n\
         {\"method\": \"GET\", \"path\": \"/slow/x\"}\n\
         {\"method\": \"GET\", \"path\": \"/api/%2e%2e/%2e%2e/etc/passwd\"}\n",
    );
    let (json, junit) = (reports.path("parity.json"), reports.path("parity.xml"));
    let output = strangler(&[
        "parity",
        "--config",
        &table,
        "--requests",
        &corpus,
        "--timeout",
        "300ms",
        "--json",
        &json,
        "--junit",
        &junit,
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let report = reports.json("parity.json");
    assert_eq!(counts(&report, "api"), (1, 0, 0, 0, 1, 0));
    assert_eq!(counts(&report, "slow"), (1, 0, 0, 0, 1, 0));
    assert_eq!(counts(&report, "default"), (1, 0, 0, 0, 1, 0));
    let errors: BTreeMap<&str, &str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["route"].as_str().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert!(errors["api"].contains("new, upstream `gone`"), "{errors:?}");
    assert!(errors["slow"].contains("no whole answer within 300ms"), "{errors:?}");
    assert!(errors["default"].contains("400"), "{errors:?}");
    let suites = parse_junit(&reports.text("parity.xml"));
    assert_eq!(suites["api"].declared, (1, 1, 0));
    assert_eq!(
        suites["default"].cases[0].0,
        "GET /api/%2e%2e/%2e%2e/etc/passwd (line 3)"
    );
}

/// A HAR file (recognised by its content, whatever its name) is replayed with its path,
/// query, headers and body; connection and encoding headers are left to the client.
#[tokio::test(flavor = "multi_thread")]
async fn har_files_are_replayed() {
    let (legacy, new) = (mirror_upstream().await, mirror_upstream().await);
    let reports = Reports::new();
    let table = api_table(&reports, &legacy.url(), &new.url());
    let har = json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [
        {"request": {"method": "GET", "url": "https://example.com/api/thoughts/?search=a%20b",
            "headers": [{"name": ":authority", "value": "example.com"}, {"name": "x-corpus", "value": "har"},
                        {"name": "Accept-Encoding", "value": "gzip, br"}, {"name": "Connection", "value": "close"}]}},
        {"request": {"method": "POST", "url": "http://example.com/api/login/",
            "headers": [{"name": "content-type", "value": "application/x-www-form-urlencoded"}],
            "postData": {"mimeType": "application/x-www-form-urlencoded", "text": "username=bruce"}}},
    ]}});
    let corpus = reports.write("capture.json", &har.to_string());
    let json = reports.path("parity.json");
    let output = strangler(&["parity", "--config", &table, "--requests", &corpus, "--json", &json]).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(counts(&reports.json("parity.json"), "api"), (2, 2, 0, 0, 0, 0));
    for upstream in [&legacy, &new] {
        let seen = upstream.seen();
        assert_eq!(seen.len(), 2);
        let get = seen.iter().find(|s| s.method == "GET").unwrap();
        assert_eq!(get.uri.path_and_query().unwrap(), "/api/thoughts/?search=a%20b");
        assert_eq!(get.headers["x-corpus"], "har");
        assert!(!get.headers.contains_key("accept-encoding"), "{:?}", get.headers);
        assert_ne!(get.headers.get("connection").map(|v| v.as_bytes()), Some(&b"close"[..]));
        let post = seen.iter().find(|s| s.method == "POST").unwrap();
        assert_eq!(post.headers["content-length"], "14");
    }
}

/// Usage mistakes exit 2 and say what is wrong: a bad corpus line with file:line, an
/// unknown route, a bad --header.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_with_the_place() {
    let reports = Reports::new();
    let closed = dead_url();
    let table = api_table(&reports, &closed, &closed);
    let corpus = reports.write(
        "bad.jsonl",
        "# a comment\n{\"method\": \"GET\", \"path\": \"/api/\"}\n{\"method\": \"GET\", \"pth\": \"/api/\"}\n",
    );
    let good = reports.write("good.jsonl", "{\"method\": \"GET\", \"path\": \"/api/\"}\n");
    let cases: [(Vec<&str>, String); 4] = [
        (vec!["--requests", &corpus], format!("{corpus}:3: unknown field `pth`")),
        (
            vec!["--requests", &good, "--route", "nope"],
            "--route `nope`: no such route".to_owned(),
        ),
        (
            vec!["--requests", &good, "--header", "Authorization Bearer x"],
            "--header: expected `NAME: VALUE`".to_owned(),
        ),
        (
            vec!["--requests", &good, "--noise-sample", "1.5"],
            "--noise-sample must be between 0 and 1".to_owned(),
        ),
    ];
    for (extra, want) in cases {
        let args = [&["parity", "--config", table.as_str()][..], &extra[..]].concat();
        let output = strangler(&args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", both(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&want), "{args:?}: want {want:?} in\n{}", both(&output));
    }
}

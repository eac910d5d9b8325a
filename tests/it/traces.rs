//! W3C Trace Context through the proxy (`traceparent`, `tracestate`): what upstreams and
//! shadow copies get, the trace id in the access log, and the OTLP/HTTP export of a span
//! per request to an in-test receiver.

use std::time::Duration;

use http::{HeaderMap, Request};

use crate::support::binary::{BinaryProxy, ServeOptions, Stderr};
use crate::support::*;

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A `traceparent` as sent upstream: (trace id, parent id, flags), checked to be version
/// 00, lowercase hex, ids not all zero.
fn traceparent(headers: &HeaderMap) -> (String, String, String) {
    let values: Vec<_> = headers.get_all("traceparent").iter().collect();
    assert_eq!(values.len(), 1, "one traceparent: {headers:?}");
    let text = values[0].to_str().unwrap();
    let parts: Vec<&str> = text.split('-').collect();
    assert_eq!(parts.len(), 4, "{text}");
    assert_eq!(parts[0], "00", "{text}");
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && s.bytes().any(|b| b != b'0')
    };
    assert!(hex(parts[1], 32) && hex(parts[2], 16) && parts[3].len() == 2, "{text}");
    (parts[1].to_owned(), parts[2].to_owned(), parts[3].to_owned())
}

async fn get_with(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(&client(), request.body(full("")).unwrap()).await
}

/// Proves: a valid incoming `traceparent` keeps its trace id and flags and gets the
/// proxy's span as the upstream's parent, `tracestate` unchanged; none (or an invalid one)
/// gets a fresh valid trace, and the invalid one's `tracestate` is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_get_the_callers_trace_with_the_proxys_span() {
    let legacy = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&routes_toml(&[("legacy", &legacy.url())], "")).await;

    let answer = get_with(
        &proxy.url("/a"),
        &[
            ("traceparent", INCOMING),
            ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200);
    let seen = legacy.seen();
    let (trace, parent, flags) = traceparent(&seen[0].headers);
    assert_eq!(trace, TRACE_ID);
    assert_ne!(parent, "00f067aa0ba902b7", "the proxy is a span of its own");
    assert_eq!(flags, "01");
    assert_eq!(seen[0].headers["tracestate"], "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");

    assert_eq!(get_with(&proxy.url("/b"), &[]).await.status, 200);
    assert_eq!(
        get_with(
            &proxy.url("/c"),
            &[
                ("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
                ("tracestate", "a=1")
            ]
        )
        .await
        .status,
        200
    );
    let seen = legacy.seen();
    let (fresh, _, _) = traceparent(&seen[1].headers);
    let (restarted, _, _) = traceparent(&seen[2].headers);
    assert_ne!(fresh, TRACE_ID);
    assert_ne!(restarted, TRACE_ID, "an uppercase traceparent is invalid");
    assert_ne!(fresh, restarted, "every new trace has its own id");
    assert!(!seen[2].headers.contains_key("tracestate"), "{:?}", seen[2].headers);
    proxy.stop().await;
}

/// Proves: a shadow copy is another span of the same trace (same trace id, another parent
/// id than the primary's), marked `strangler=shadow` at the front of its `tracestate`; the
/// primary is not marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_copy_is_another_span_of_the_trace_marked_as_shadow() {
    let legacy = echo_upstream("legacy").await;
    let new = echo_upstream("new").await;
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy.url()), ("new", &new.url())],
        "[[routes]]\nname = \"items\"\npath = \"/items/\"\nstage = \"shadow\"\nnew = \"new\"\n",
    ))
    .await;
    let answer = get_with(
        &proxy.url("/items/1"),
        &[("traceparent", INCOMING), ("tracestate", "congo=t61rcWkgMzE")],
    )
    .await;
    assert_eq!(answer.status, 200);
    let copies = poll(Duration::from_secs(5), || async { new.seen() }, |seen| !seen.is_empty()).await;
    assert_eq!(copies.len(), 1, "the copy reached new");
    let primary = &legacy.seen()[0].headers;
    let (primary_trace, primary_parent, _) = traceparent(primary);
    let (copy_trace, copy_parent, _) = traceparent(&copies[0].headers);
    assert_eq!(primary_trace, TRACE_ID);
    assert_eq!(copy_trace, TRACE_ID);
    assert_ne!(copy_parent, primary_parent);
    assert_ne!(copy_parent, "00f067aa0ba902b7");
    assert_eq!(copies[0].headers["tracestate"], "strangler=shadow,congo=t61rcWkgMzE");
    assert_eq!(primary["tracestate"], "congo=t61rcWkgMzE");
    proxy.stop().await;
}

/// Proves: the access log line carries the trace id (`trace_id`), in the JSON format and
/// in the text format.
#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_names_the_trace() {
    let legacy = echo_upstream("legacy").await;
    let table = routes_toml(&[("legacy", &legacy.url())], "");
    for format in ["json", "text"] {
        let global_args: &'static [&'static str] = match format {
            "json" => &["--log-format", "json"],
            _ => &[],
        };
        let options = ServeOptions {
            global_args,
            rust_log: "info",
            stderr: Stderr::Lines,
        };
        let mut served = BinaryProxy::start_with(&table, options).await;
        let id = format!("trace-log-{format}");
        let url = format!("http://{}/logged", served.addr);
        let answer = get_with(&url, &[("traceparent", INCOMING), ("x-request-id", &id)]).await;
        assert_eq!(answer.status, 200);
        let line = served.stderr_until(Duration::from_secs(5), |l| l.contains(&id)).await;
        if format == "json" {
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(entry["trace_id"], TRACE_ID, "{entry}");
        } else {
            assert!(line.contains(&format!("trace_id={TRACE_ID}")), "{line}");
        }
        served.kill().await;
    }
}

/// An in-test OTLP/HTTP collector: keeps every span POSTed to `/v1/traces` (OTLP JSON).
struct Collector {
    upstream: Upstream,
    spans: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Collector {
    async fn start() -> Collector {
        let spans: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
        let kept = spans.clone();
        let upstream = upstream_with(move |request: Request<hyper::body::Incoming>| {
            let kept = kept.clone();
            async move {
                use http_body_util::BodyExt;
                assert_eq!(request.uri().path(), "/v1/traces");
                assert_eq!(request.headers()["content-type"], "application/json");
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let export: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let resource = &export["resourceSpans"][0];
                assert_eq!(
                    resource["resource"]["attributes"][0]["value"]["stringValue"],
                    "strangler"
                );
                for span in resource["scopeSpans"][0]["spans"].as_array().unwrap() {
                    kept.lock().unwrap().push(span.clone());
                }
                http::Response::new(full("{}"))
            }
        })
        .await;
        Collector { upstream, spans }
    }

    /// The spans received once `count` have come (or the deadline passed).
    async fn spans(&self, count: usize) -> Vec<serde_json::Value> {
        let spans = self.spans.clone();
        poll(
            Duration::from_secs(10),
            || {
                let spans = spans.clone();
                async move { spans.lock().unwrap().clone() }
            },
            |spans| spans.len() >= count,
        )
        .await
    }
}

/// A span's attribute, as a JSON value (`stringValue`, `intValue` or `boolValue`).
fn attribute(span: &serde_json::Value, key: &str) -> serde_json::Value {
    let attributes = span["attributes"].as_array().unwrap();
    let Some(found) = attributes.iter().find(|a| a["key"] == key) else {
        return serde_json::Value::Null;
    };
    let value = &found["value"];
    for kind in ["stringValue", "intValue", "boolValue"] {
        if !value[kind].is_null() {
            return value[kind].clone();
        }
    }
    serde_json::Value::Null
}

fn tracing_table(endpoint: &str, upstreams: &[(&str, &str)], routes: &str) -> String {
    format!(
        "{}\n[tracing]\notlp_endpoint = \"{endpoint}\"\n",
        routes_toml(upstreams, routes)
    )
}

/// Proves: with `[tracing] otlp_endpoint`, the collector gets a SERVER span per request
/// (named after method and route, the caller's span as parent, the attributes of the
/// contract, error status on a 5xx) and a CLIENT span for the shadow copy, marked
/// `strangler.shadow`, with the ids the upstreams saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_an_otlp_collector() {
    let collector = Collector::start().await;
    let legacy = upstream_with(|request: Request<hyper::body::Incoming>| async move {
        let status = if request.uri().path() == "/broken" { 503 } else { 200 };
        http::Response::builder().status(status).body(full("legacy")).unwrap()
    })
    .await;
    let new = echo_upstream("new").await;
    let table = tracing_table(
        &collector.upstream.url(),
        &[("legacy", &legacy.url()), ("new", &new.url())],
        "[[routes]]\nname = \"items\"\npath = \"/items/\"\nstage = \"shadow\"\nnew = \"new\"\n",
    );
    let proxy = TestProxy::start(&table).await;
    let shadowed = get_with(
        &proxy.url("/items/7"),
        &[("traceparent", INCOMING), ("x-request-id", "otlp-1")],
    )
    .await;
    assert_eq!(shadowed.status, 200);
    assert_eq!(get_with(&proxy.url("/broken"), &[]).await.status, 503);

    let spans = collector.spans(3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server = spans
        .iter()
        .find(|s| attribute(s, "strangler.request_id") == "otlp-1" && s["kind"] == 2);
    let server = server.unwrap_or_else(|| panic!("no server span: {spans:#?}"));
    let primary_sent = traceparent(&legacy.seen()[0].headers);
    assert_eq!(server["name"], "GET items");
    assert_eq!(server["traceId"], TRACE_ID);
    assert_eq!(server["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(server["spanId"], primary_sent.1.as_str(), "the span legacy was told of");
    assert_eq!(attribute(server, "http.request.method"), "GET");
    assert_eq!(attribute(server, "http.response.status_code"), "200");
    assert_eq!(attribute(server, "url.path"), "/items/7");
    assert_eq!(attribute(server, "strangler.route"), "items");
    assert_eq!(attribute(server, "strangler.upstream"), "legacy");
    assert_eq!(attribute(server, "strangler.side"), "legacy");
    assert_ne!(server["status"]["code"], 2);
    let start: u128 = server["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u128 = server["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 0 && start <= end, "{server}");

    let shadow = spans.iter().find(|s| attribute(s, "strangler.shadow") == true);
    let shadow = shadow.unwrap_or_else(|| panic!("no shadow span: {spans:#?}"));
    let copy_sent = traceparent(&new.seen()[0].headers);
    assert_eq!(shadow["kind"], 3);
    assert_eq!(shadow["traceId"], TRACE_ID);
    assert_eq!(shadow["spanId"], copy_sent.1.as_str());
    assert_eq!(shadow["parentSpanId"], server["spanId"]);
    assert_eq!(attribute(shadow, "strangler.side"), "shadow");
    assert_eq!(attribute(shadow, "strangler.upstream"), "new");

    let failed = spans.iter().find(|s| attribute(s, "url.path") == "/broken").unwrap();
    assert_eq!(failed["name"], "GET", "no route: the method alone");
    assert_eq!(failed["status"]["code"], 2, "a 5xx is an error");
    assert_eq!(attribute(failed, "http.response.status_code"), "503");
    assert!(failed["parentSpanId"].is_null(), "a trace started here: {failed}");
    assert_ne!(failed["traceId"], TRACE_ID);

    // A trace the caller did not sample has no spans exported (its headers still go on).
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let quiet = get_with(&proxy.url("/quiet"), &[("traceparent", unsampled)]).await;
    assert_eq!(quiet.status, 200);
    let (_, _, flags) = traceparent(&legacy.seen().last().unwrap().headers);
    assert_eq!(flags, "00");
    assert_eq!(get_with(&proxy.url("/loud"), &[]).await.status, 200);
    let spans = collector.spans(4).await;
    let paths: Vec<_> = spans.iter().map(|s| attribute(s, "url.path")).collect();
    assert!(paths.contains(&"/loud".into()), "{paths:?}");
    assert!(!paths.contains(&"/quiet".into()), "{paths:?}");
    proxy.stop().await;
}

/// Proves: a collector that is down neither fails nor holds up requests; their spans are
/// dropped and counted in `strangler_trace_spans_dropped_total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_requests_nothing() {
    let legacy = echo_upstream("legacy").await;
    let proxy = TestProxy::start(&tracing_table(&dead_url(), &[("legacy", &legacy.url())], "")).await;
    let started = std::time::Instant::now();
    for i in 0..20 {
        assert_eq!(get(&proxy.url(&format!("/r{i}"))).await.status, 200);
    }
    // Far below one export attempt's timeout (5 s) per request.
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let dropped = wait_metric(&proxy, "strangler_trace_spans_dropped_total", |v| v >= Some(20.0)).await;
    assert_eq!(dropped, Some(20.0));
    proxy.stop().await;
}

/// Proves: `[tracing] otlp_endpoint` is checked: a bad URL is an error at its
/// file:line:column.
#[test]
fn a_bad_otlp_endpoint_is_an_error_at_its_place() {
    let text = "[upstreams.legacy]\nurl = \"http://127.0.0.1:9\"\n\n[tracing]\notlp_endpoint = \"collector:4318\"\n";
    let error = strangler::config::parse_str("routes.toml", text)
        .unwrap_err()
        .to_string();
    assert!(error.contains("routes.toml:5:17"), "{error}");
    assert!(error.contains("tracing.otlp_endpoint"), "{error}");
    let unknown = text.replace("otlp_endpoint", "endpoint");
    let error = strangler::config::parse_str("routes.toml", &unknown)
        .unwrap_err()
        .to_string();
    assert!(error.contains("endpoint"), "{error}");
}

/// Proves: a fallback's retry to legacy is another span of the request's trace: legacy
/// gets the trace id with a new parent id, and that span is exported (kind CLIENT, a
/// child of the request's span, `strangler.fallback`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_retry_is_another_span_of_the_trace() {
    let collector = Collector::start().await;
    let legacy = echo_upstream("legacy").await;
    let table = tracing_table(
        &collector.upstream.url(),
        &[("legacy", &legacy.url()), ("new", &dead_url())],
        "[[routes]]\nname = \"items\"\npath = \"/items/\"\nstage = \"new\"\nnew = \"new\"\nfallback = true\n",
    );
    let proxy = TestProxy::start(&table).await;
    let answer = get_with(&proxy.url("/items/1"), &[("traceparent", INCOMING)]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["upstream"], "legacy");
    let (trace, retry_span, _) = traceparent(&legacy.seen()[0].headers);
    assert_eq!(trace, TRACE_ID);

    let spans = collector.spans(2).await;
    let server = spans.iter().find(|s| s["kind"] == 2).unwrap();
    let retry = spans.iter().find(|s| s["kind"] == 3).unwrap();
    assert_eq!(retry["spanId"], retry_span.as_str());
    assert_ne!(retry["spanId"], server["spanId"]);
    assert_eq!(retry["parentSpanId"], server["spanId"]);
    assert_eq!(attribute(retry, "strangler.fallback"), true);
    assert_eq!(attribute(retry, "strangler.side"), "legacy");
    assert_eq!(attribute(server, "strangler.upstream"), "legacy");
    proxy.stop().await;
}

/// Proves: a reload can move the export to another collector, or end it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_or_ends_the_export() {
    let first = Collector::start().await;
    let second = Collector::start().await;
    let legacy = echo_upstream("legacy").await;
    let upstreams = [("legacy", legacy.url())];
    let upstreams: Vec<(&str, &str)> = upstreams.iter().map(|(n, u)| (*n, u.as_str())).collect();
    let proxy = TestProxy::start(&tracing_table(&first.upstream.url(), &upstreams, "")).await;
    assert_eq!(get(&proxy.url("/one")).await.status, 200);
    assert_eq!(first.spans(1).await.len(), 1);

    let moved = tracing_table(&second.upstream.url(), &upstreams, "");
    proxy.write_config(&moved);
    proxy.wait_for_version(&strangler::config::version_of(&moved)).await;
    assert_eq!(get(&proxy.url("/two")).await.status, 200);
    let spans = second.spans(1).await;
    assert_eq!(attribute(&spans[0], "url.path"), "/two");

    let off = routes_toml(&upstreams, "");
    proxy.write_config(&off);
    proxy.wait_for_version(&strangler::config::version_of(&off)).await;
    assert_eq!(get(&proxy.url("/three")).await.status, 200);
    // Back to the second collector: its next span is /four's; /three had none.
    let back = format!("{moved}\n# again\n");
    proxy.write_config(&back);
    proxy.wait_for_version(&strangler::config::version_of(&back)).await;
    assert_eq!(get(&proxy.url("/four")).await.status, 200);
    let spans = second.spans(2).await;
    let paths: Vec<_> = spans.iter().map(|s| attribute(s, "url.path")).collect();
    assert_eq!(paths, ["/two", "/four"]);
    assert_eq!(first.spans.lock().unwrap().len(), 1);
    proxy.stop().await;
}

/// Proves: a reload names a change of the OTLP endpoint among the changed settings.
#[test]
fn a_changed_otlp_endpoint_is_a_changed_setting() {
    let upstreams = [("legacy", "http://127.0.0.1:9")];
    let before = strangler::config::parse_str("a.toml", &routes_toml(&upstreams, "")).unwrap();
    let after =
        strangler::config::parse_str("b.toml", &tracing_table("http://127.0.0.1:4318", &upstreams, "")).unwrap();
    let changed = strangler::config::settings_diff(
        &strangler::config::settings_of(&before),
        &strangler::config::settings_of(&after),
    );
    assert!(
        changed
            .iter()
            .any(|line| line.contains("tracing.otlp_endpoint") && line.contains("http://127.0.0.1:4318")),
        "{changed:?}"
    );
}

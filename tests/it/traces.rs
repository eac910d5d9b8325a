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

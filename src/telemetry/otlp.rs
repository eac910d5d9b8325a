//! The OTLP/HTTP JSON encoding of spans (`ExportTraceServiceRequest`, as the
//! OpenTelemetry protocol's JSON mapping writes it: lowerCamelCase keys, ids in hex, 64-bit
//! integers as strings, enums as numbers). Pure: spans in, bytes out.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::span::{AttributeValue, SpanKind, SpanRecord};

/// `ExportTraceServiceRequest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportRequest<'a> {
    resource_spans: [ResourceSpans<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    resource: Resource,
    scope_spans: [ScopeSpans<'a>; 1],
}

#[derive(Serialize)]
struct Resource {
    attributes: Vec<KeyValue<'static>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScopeSpans<'a> {
    scope: Scope,
    spans: Vec<Span<'a>>,
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Span<'a> {
    trace_id: String,
    span_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    parent_span_id: String,
    name: &'a str,
    kind: u8,
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: Vec<KeyValue<'a>>,
    status: Status,
}

#[derive(Serialize)]
struct Status {
    /// 0 unset, 2 error.
    code: u8,
}

#[derive(Serialize)]
struct KeyValue<'a> {
    key: &'a str,
    value: AnyValue<'a>,
}

#[derive(Serialize)]
enum AnyValue<'a> {
    #[serde(rename = "stringValue")]
    String(&'a str),
    #[serde(rename = "intValue")]
    Int(String),
    #[serde(rename = "boolValue")]
    Bool(bool),
}

/// Nanoseconds since the Unix epoch, as OTLP JSON writes a `fixed64`.
fn unix_nanos(time: SystemTime) -> String {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()).to_string()
}

/// The JSON body of one export of `spans`, from the service `strangler`.
pub fn encode(spans: &[SpanRecord]) -> Vec<u8> {
    let spans = spans
        .iter()
        .map(|span| Span {
            trace_id: span.trace_id.to_string(),
            span_id: span.span_id.to_string(),
            parent_span_id: span.parent.map(|p| p.to_string()).unwrap_or_default(),
            name: &span.name,
            kind: match span.kind {
                SpanKind::Internal => 1,
                SpanKind::Server => 2,
                SpanKind::Client => 3,
            },
            start_time_unix_nano: unix_nanos(span.start),
            end_time_unix_nano: unix_nanos(span.end),
            attributes: span
                .attributes
                .iter()
                .map(|(key, value)| KeyValue {
                    key,
                    value: match value {
                        AttributeValue::String(text) => AnyValue::String(text),
                        AttributeValue::Int(number) => AnyValue::Int(number.to_string()),
                        AttributeValue::Bool(flag) => AnyValue::Bool(*flag),
                    },
                })
                .collect(),
            status: Status {
                code: if span.error { 2 } else { 0 },
            },
        })
        .collect();
    let request = ExportRequest {
        resource_spans: [ResourceSpans {
            resource: Resource {
                attributes: vec![
                    KeyValue {
                        key: "service.name",
                        value: AnyValue::String("strangler"),
                    },
                    KeyValue {
                        key: "service.version",
                        value: AnyValue::String(env!("CARGO_PKG_VERSION")),
                    },
                ],
            },
            scope_spans: [ScopeSpans {
                scope: Scope {
                    name: "strangler",
                    version: env!("CARGO_PKG_VERSION"),
                },
                spans,
            }],
        }],
    };
    serde_json::to_vec(&request).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::trace::{SpanId, TraceId};

    #[test]
    fn a_span_is_written_as_otlp_json() {
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_123);
        let span = SpanRecord {
            trace_id: TraceId([0x4b; 16]),
            span_id: SpanId([0x01; 8]),
            parent: Some(SpanId([0x02; 8])),
            name: "GET users".into(),
            kind: SpanKind::Server,
            start,
            end: start + Duration::from_millis(3),
            error: true,
            attributes: vec![
                ("http.request.method", AttributeValue::String("GET".into())),
                ("http.response.status_code", AttributeValue::Int(502)),
                ("strangler.shadow", AttributeValue::Bool(true)),
            ],
        };
        let json: serde_json::Value = serde_json::from_slice(&encode(&[span])).unwrap();
        let resource = &json["resourceSpans"][0];
        assert_eq!(
            resource["resource"]["attributes"][0]["value"]["stringValue"],
            "strangler"
        );
        let written = &resource["scopeSpans"][0]["spans"][0];
        assert_eq!(written["traceId"], "4b".repeat(16));
        assert_eq!(written["spanId"], "01".repeat(8));
        assert_eq!(written["parentSpanId"], "02".repeat(8));
        assert_eq!(written["kind"], 2);
        assert_eq!(written["startTimeUnixNano"], "1700000000000000123");
        assert_eq!(written["endTimeUnixNano"], "1700000000003000123");
        assert_eq!(written["status"]["code"], 2);
        assert_eq!(written["attributes"][1]["value"]["intValue"], "502");
        assert_eq!(written["attributes"][2]["value"]["boolValue"], true);
    }
}

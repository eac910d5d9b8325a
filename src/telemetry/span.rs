//! A finished span as the exporter takes it, and how the proxy's spans are made: the
//! request's (SERVER) and those of the requests it sends on its own (CLIENT: a shadow
//! copy, a fallback's retry). Pure data; [`super`] sends them.

use std::time::{Duration, SystemTime};

use crate::trace::{SpanId, TraceId};

/// The longest string attribute a span keeps, in bytes (OpenTelemetry's attribute value
/// length limit): a client's 60 KiB path would otherwise sit in every queued span, and the
/// export queue is bounded in spans, not bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// OpenTelemetry's span kinds that strangler's spans use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Work inside the proxy.
    Internal,
    /// A request the proxy served.
    Server,
    /// A request the proxy sent on its own (a shadow copy, a fallback retry).
    Client,
}

/// A span attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A string.
    String(String),
    /// An integer.
    Int(i64),
    /// A flag.
    Bool(bool),
}

/// One finished span, as exported.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// Its trace.
    pub trace_id: TraceId,
    /// Its id.
    pub span_id: SpanId,
    /// The span it is part of; `None` for a trace's first span.
    pub parent: Option<SpanId>,
    /// `"{METHOD} {route}"`, or the method alone.
    pub name: String,
    /// Kind.
    pub kind: SpanKind,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Whether it failed (a 5xx, or no answer).
    pub error: bool,
    /// Attributes, in OpenTelemetry's semantic conventions where one fits.
    pub attributes: Vec<(&'static str, AttributeValue)>,
}

impl SpanRecord {
    /// A span that started `elapsed` ago and ends now.
    pub fn ending_now(trace_id: TraceId, span_id: SpanId, kind: SpanKind, elapsed: Duration) -> Self {
        let end = SystemTime::now();
        Self {
            trace_id,
            span_id,
            parent: None,
            name: String::new(),
            kind,
            start: end.checked_sub(elapsed).unwrap_or(end),
            end,
            error: false,
            attributes: Vec::new(),
        }
    }

    /// Adds a string attribute, cut to [`MAX_ATTRIBUTE_BYTES`] (at a character boundary).
    pub fn text(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        let mut value = value.into();
        if value.len() > MAX_ATTRIBUTE_BYTES {
            let mut end = MAX_ATTRIBUTE_BYTES;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
        }
        self.attributes.push((key, AttributeValue::String(value)));
        self
    }

    /// Adds an integer attribute.
    pub fn int(&mut self, key: &'static str, value: i64) -> &mut Self {
        self.attributes.push((key, AttributeValue::Int(value)));
        self
    }

    /// Adds a flag attribute.
    pub fn flag(&mut self, key: &'static str, value: bool) -> &mut Self {
        self.attributes.push((key, AttributeValue::Bool(value)));
        self
    }
}

/// The span name for a request: `"{METHOD} {route}"`, or the method alone without a route.
pub fn span_name(method: &http::Method, route: Option<&str>) -> String {
    match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_string(),
    }
}

/// A request the proxy sends on its own behalf within a client's trace: a shadow copy or
/// a fallback's retry to legacy (kind CLIENT, a child of the request's span).
#[derive(Debug, Clone, Copy)]
pub struct SentCopy<'a> {
    /// The copy's own span, as its upstream got it in `traceparent`.
    pub span: crate::trace::TraceParent,
    /// The request's span, its parent.
    pub parent: Option<SpanId>,
    /// Method.
    pub method: &'a http::Method,
    /// Route name.
    pub route: &'a str,
    /// The upstream it went to.
    pub upstream: &'a str,
    /// `shadow` or `legacy` (a fallback's retry).
    pub side: &'static str,
    /// The path as sent.
    pub path: &'a str,
    /// The request id.
    pub request_id: &'a http::HeaderValue,
}

impl SentCopy<'_> {
    /// Its span, ended now after `elapsed`, with the upstream's status (`None`: no answer,
    /// an error).
    pub fn finished(&self, status: Option<u16>, elapsed: Duration) -> SpanRecord {
        let mut span = SpanRecord::ending_now(self.span.trace_id, self.span.parent_id, SpanKind::Client, elapsed);
        span.parent = self.parent;
        span.name = span_name(self.method, Some(self.route));
        span.error = status.is_none_or(|status| status >= 500);
        span.text("http.request.method", self.method.as_str());
        if let Some(status) = status {
            span.int("http.response.status_code", i64::from(status));
        }
        span.text("url.path", self.path)
            .text("strangler.route", self.route)
            .text("strangler.upstream", self.upstream)
            .text("strangler.side", self.side)
            .text("strangler.request_id", self.request_id.to_str().unwrap_or("-"));
        if self.side == "shadow" {
            span.flag("strangler.shadow", true);
        } else {
            span.flag("strangler.fallback", true);
        }
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_attributes_are_cut_at_a_character_boundary() {
        let mut span = SpanRecord::ending_now(TraceId::random(), SpanId::random(), SpanKind::Server, Duration::ZERO);
        span.text("url.path", format!("/{}", "é".repeat(1000)));
        span.text("short", "/a");
        let AttributeValue::String(path) = &span.attributes[0].1 else {
            panic!("{span:?}")
        };
        assert_eq!(path.len(), MAX_ATTRIBUTE_BYTES - 1);
        assert!(path.ends_with('é'));
        assert_eq!(span.attributes[1].1, AttributeValue::String("/a".to_owned()));
    }
}

//! OTLP/HTTP export of spans (`[tracing] otlp_endpoint`): one span per request, one per
//! shadow copy and per fallback retry, sent in batches by a thread of its own.
//!
//! The request path only ever calls [`SpanExporter::record`], which puts the span on a
//! bounded queue without waiting: when the queue is full, the span is dropped and counted
//! (`strangler_trace_spans_dropped_total`). The exporter's thread (`strangler-otlp`, a
//! single-threaded runtime of its own, so export never competes with the proxy workers'
//! runtimes) takes up to [`BATCH`] spans, or what came within [`FLUSH_AFTER`], POSTs them
//! as OTLP JSON ([`otlp`]) and counts a batch the collector did not take (refused,
//! unreachable, no answer within [`EXPORT_TIMEOUT`]) as dropped, with a WARN line at most
//! every [`WARN_EVERY`].
//!
//! One exporter per endpoint: a reload that keeps the endpoint keeps the exporter (see
//! [`crate::state::Snapshot`]); one that changes or removes it lets the old exporter go,
//! and its thread sends what is queued and ends once the last request holding it is done.

pub mod otlp;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus::IntCounter;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::trace::{SpanId, TraceId};

/// Spans waiting for export at most; more are dropped (and counted).
pub const QUEUE: usize = 4096;
/// Spans per export request at most.
pub const BATCH: usize = 512;
/// How long a span waits for others to fill its batch.
pub const FLUSH_AFTER: Duration = Duration::from_millis(500);
/// How long one export request may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time between two WARN lines about failed exports.
pub const WARN_EVERY: Duration = Duration::from_secs(30);

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

    /// Adds a string attribute.
    pub fn text(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.attributes.push((key, AttributeValue::String(value.into())));
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

/// Where spans go: the queue of the exporter thread of one endpoint.
#[derive(Debug)]
pub struct SpanExporter {
    endpoint: Uri,
    queue: mpsc::Sender<SpanRecord>,
    dropped: IntCounter,
}

impl SpanExporter {
    /// Starts the exporter thread for `endpoint` (as configured), POSTing to `traces_url`.
    pub fn start(endpoint: Uri, traces_url: Uri, metrics: &Metrics) -> std::io::Result<Arc<Self>> {
        let (queue, spans) = mpsc::channel(QUEUE);
        let dropped = metrics.trace_spans_dropped.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let export = Export {
            url: traces_url,
            dropped: dropped.clone(),
            last_warning: None,
            failed_since_warning: 0,
        };
        std::thread::Builder::new()
            .name("strangler-otlp".into())
            .spawn(move || runtime.block_on(export.run(spans)))?;
        Ok(Arc::new(Self {
            endpoint,
            queue,
            dropped,
        }))
    }

    /// The endpoint it exports to, as configured.
    pub fn endpoint(&self) -> &Uri {
        &self.endpoint
    }

    /// Queues `span` for export; never waits: a full queue drops it (counted).
    pub fn record(&self, span: SpanRecord) {
        if self.queue.try_send(span).is_err() {
            self.dropped.inc();
        }
    }
}

/// The exporter thread's side.
struct Export {
    url: Uri,
    dropped: IntCounter,
    last_warning: Option<Instant>,
    failed_since_warning: u64,
}

impl Export {
    /// Sends batches until every sender is gone and the queue is empty.
    async fn run(mut self, mut spans: mpsc::Receiver<SpanRecord>) {
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            if spans.recv_many(&mut batch, BATCH).await == 0 {
                return;
            }
            let deadline = tokio::time::Instant::now() + FLUSH_AFTER;
            while batch.len() < BATCH {
                let room = BATCH - batch.len();
                match tokio::time::timeout_at(deadline, spans.recv_many(&mut batch, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let sent = tokio::time::timeout(EXPORT_TIMEOUT, self.send(&client, &batch)).await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(why)) => self.failed(batch.len(), &why),
                Err(_) => self.failed(batch.len(), "no answer in time"),
            }
            batch.clear();
        }
    }

    /// One export request.
    async fn send(&self, client: &Client<HttpConnector, Full<Bytes>>, batch: &[SpanRecord]) -> Result<(), String> {
        let request = Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(otlp::encode(batch))))
            .map_err(|e| e.to_string())?;
        let response = client.request(request).await.map_err(|e| error_chain(&e))?;
        let status = response.status();
        // The answer's body (a partial-success note at most) is not needed; dropping it
        // before the end only costs the connection.
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {status}"))
        }
    }

    /// Counts a batch the collector did not take; warns at most every [`WARN_EVERY`].
    fn failed(&mut self, spans: usize, why: &str) {
        self.dropped.inc_by(spans as u64);
        self.failed_since_warning += 1;
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|last| now.duration_since(last) >= WARN_EVERY)
        {
            tracing::warn!(
                endpoint = %self.url,
                error = why,
                failed_exports = self.failed_since_warning,
                "cannot export spans to the OTLP collector; they are dropped (strangler_trace_spans_dropped_total)"
            );
            self.last_warning = Some(now);
            self.failed_since_warning = 0;
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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

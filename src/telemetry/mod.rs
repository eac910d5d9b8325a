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
pub mod span;

pub use span::{AttributeValue, SentCopy, SpanKind, SpanRecord, span_name};

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus::IntCounter;
use tokio::sync::mpsc;

use crate::metrics::Metrics;

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

    /// Queues `span` for export; never waits: a full queue drops it (counted). Callers
    /// record only spans of sampled traces.
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
        let response = client.request(request).await.map_err(|e| crate::error_line::of(&e))?;
        let status = response.status();
        // The answer's body (a partial-success note at most) is read, bounded, so that the
        // connection goes back to the pool.
        let _ = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{SpanId, TraceId};

    fn span() -> SpanRecord {
        SpanRecord::ending_now(TraceId::random(), SpanId::random(), SpanKind::Server, Duration::ZERO)
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let metrics = Metrics::new().unwrap();
        let (queue, _unread) = mpsc::channel(2);
        let exporter = SpanExporter {
            endpoint: Uri::from_static("http://127.0.0.1:4318"),
            queue,
            dropped: metrics.trace_spans_dropped.clone(),
        };
        for _ in 0..5 {
            exporter.record(span());
        }
        assert_eq!(metrics.trace_spans_dropped.get(), 3);
    }

    #[test]
    fn failed_exports_are_counted_and_warned_of_at_most_every_so_often() {
        let metrics = Metrics::new().unwrap();
        let mut export = Export {
            url: Uri::from_static("http://127.0.0.1:4318/v1/traces"),
            dropped: metrics.trace_spans_dropped.clone(),
            last_warning: None,
            failed_since_warning: 0,
        };
        export.failed(10, "refused");
        let warned = export.last_warning;
        assert!(warned.is_some());
        assert_eq!(export.failed_since_warning, 0, "the first failure is warned of at once");
        export.failed(5, "refused");
        export.failed(1, "refused");
        assert_eq!(export.last_warning, warned, "no second warning within WARN_EVERY");
        assert_eq!(export.failed_since_warning, 2);
        assert_eq!(metrics.trace_spans_dropped.get(), 16);
    }
}

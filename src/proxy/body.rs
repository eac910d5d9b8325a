//! The response body handed to our HTTP server, and the bookkeeping that runs when a
//! response is finished.
//!
//! Upstream bodies stream through frame by frame (no buffering); synthetic answers (400,
//! 502, 504 …) are one small chunk. Every response carries a [`Finish`] that counts its
//! bytes and, when the body is done or dropped (client gone), records the request's
//! metrics and emits its access-log line. That keeps duration and bytes honest for
//! streamed bodies and keeps `strangler_inflight_requests` exact.
//!
//! An upstream body that stalls (nothing for the upstream's `read_timeout` between two
//! reads) ends in an error: hyper then closes the client's HTTP/1.1 connection (its
//! answer is cut short, never completed with made-up bytes) or resets its HTTP/2 stream;
//! the upstream connection is dropped, never reused; the stall is logged and counted in
//! `strangler_upstream_errors_total{kind="read_timeout"}`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use prometheus::Histogram;

use crate::metrics::{Metrics, UPSTREAM_READ_TIMEOUT, method_label};
use crate::migration::shadow::Capture;
use crate::telemetry::{SpanExporter, SpanKind, SpanRecord, span_name};
use crate::trace::RequestTrace;
use crate::upstream::body::StallDeadline;
use crate::upstream::pool::Lease;
use crate::window::{SideWindowsShard, WindowSide};

/// Target of the access log, so it can be filtered on its own (`RUST_LOG=strangler::access=off`).
pub const ACCESS_LOG: &str = "strangler::access";

enum Inner {
    /// A streamed upstream body, the connection it arrives on until it is complete, and
    /// the upstream's `read_timeout` between two reads.
    Upstream(Incoming, Option<Lease>, StallDeadline),
    Full(Option<Bytes>),
}

/// Why a response body ended before it was complete.
#[derive(Debug, thiserror::Error)]
pub enum ResponseBodyError {
    /// The upstream's body failed (connection reset, malformed chunk …).
    #[error(transparent)]
    Upstream(#[from] hyper::Error),
    /// The upstream sent nothing of its body for its `read_timeout`.
    #[error("the upstream sent nothing of its answer's body for {0:?} (read_timeout)")]
    ReadTimeout(Duration),
}

/// A response body: streamed from an upstream, or made here.
pub struct ResponseBody {
    inner: Inner,
    finish: Option<Box<Finish>>,
    /// A bounded copy for a shadow comparison, if this answer is being compared.
    /// Boxed: a `Response<ResponseBody>` is moved several times on its way to the
    /// client, and most answers have no capture.
    capture: Option<Box<Capture>>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl ResponseBody {
    /// A body streamed from an upstream; `lease` goes back to its pool once the body is
    /// complete (at once if it is empty); no read may wait longer than `read_timeout`.
    pub fn upstream(body: Incoming, lease: Option<Lease>, read_timeout: Duration) -> Self {
        let lease = match lease {
            Some(lease) if body.is_end_stream() => {
                lease.give_back();
                None
            }
            other => other,
        };
        Self {
            inner: Inner::Upstream(body, lease, StallDeadline::new(read_timeout)),
            finish: None,
            capture: None,
        }
    }

    /// A body made here.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            inner: Inner::Full((!bytes.is_empty()).then_some(bytes)),
            finish: None,
            capture: None,
        }
    }

    /// Copies the body, bounded, for a shadow comparison.
    pub fn with_capture(mut self, capture: Option<Capture>) -> Self {
        self.capture = capture.map(Box::new);
        if self.is_end_stream()
            && let Some(capture) = self.capture.as_mut()
        {
            capture.complete();
        }
        self
    }

    /// Attaches the bookkeeping that runs when the body is done.
    pub fn with_finish(mut self, finish: Box<Finish>) -> Self {
        self.finish = Some(finish);
        self
    }
}

impl ResponseBody {
    /// The upstream's body stalled: the exchange ends here. The upstream connection is
    /// dropped (its answer is unfinished: never reused), the capture given up; counted,
    /// logged, and the access log says `aborted`.
    #[cold]
    fn read_timed_out(&mut self, waited: Duration) {
        self.inner = Inner::Full(None);
        self.capture = None;
        let Some(finish) = self.finish.as_mut() else {
            return;
        };
        finish.aborted = true;
        finish
            .metrics
            .upstream_errors
            .with_label_values(&[&finish.upstream, UPSTREAM_READ_TIMEOUT])
            .inc();
        tracing::warn!(
            request_id = finish.request_id.to_str().unwrap_or("-"),
            route = &*finish.route,
            upstream = &*finish.upstream,
            read_timeout_ms = waited.as_millis() as u64,
            bytes = finish.bytes,
            "upstream stopped sending the response body; closing the client's connection"
        );
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Upstream(body, lease, deadline) => {
                let polled = match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Pending => {
                        if deadline
                            .poll_expired(cx, lease.as_mut().and_then(Lease::timer))
                            .is_pending()
                        {
                            crate::server::conn::h2_send::waiting_on_upstream();
                            return Poll::Pending;
                        }
                        let waited = deadline.timeout();
                        this.read_timed_out(waited);
                        return Poll::Ready(Some(Err(ResponseBodyError::ReadTimeout(waited))));
                    }
                    polled => {
                        deadline.stepped();
                        polled.map(|frame| frame.map(|frame| frame.map_err(ResponseBodyError::from)))
                    }
                };
                let complete = match &polled {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    _ => false,
                };
                if let (Poll::Ready(Some(Ok(frame))), Some(capture)) = (&polled, this.capture.as_mut())
                    && let Some(data) = frame.data_ref()
                {
                    capture.data(data);
                }
                if complete {
                    if let Some(lease) = lease.take() {
                        lease.give_back();
                    }
                    if let Some(capture) = this.capture.as_mut() {
                        capture.complete();
                    }
                }
                polled
            }
            Inner::Full(chunk) => Poll::Ready(chunk.take().map(|b| Ok(Frame::data(b)))),
        };
        if let (Poll::Ready(Some(Ok(frame))), Some(finish)) = (&polled, &mut this.finish)
            && let Some(data) = frame.data_ref()
        {
            finish.bytes += data.len() as u64;
        }
        if let (Poll::Ready(Some(Err(_))), Some(finish)) = (&polled, &mut this.finish) {
            finish.aborted = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Upstream(body, ..) => body.is_end_stream(),
            Inner::Full(chunk) => chunk.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Upstream(body, ..) => body.size_hint(),
            Inner::Full(chunk) => SizeHint::with_exact(chunk.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// What is known about a request when its response starts; recorded when it ends.
#[derive(Debug)]
pub struct Finish {
    /// Shared metrics.
    pub metrics: Arc<Metrics>,
    /// Duration histogram of the route and upstream, when a route was chosen.
    pub duration: Option<Histogram>,
    /// Route label: a route name, `default`, or `-` for requests refused before routing.
    pub route: Arc<str>,
    /// Upstream label, or `-`.
    pub upstream: Arc<str>,
    /// Method.
    pub method: Method,
    /// Status sent to the client.
    pub status: StatusCode,
    /// When the request head arrived.
    pub started: Instant,
    /// The request id, as sent back to the client.
    pub request_id: HeaderValue,
    /// Normalised path (or the raw one for refused requests); only kept when the access log
    /// is on.
    pub path: Option<String>,
    /// The client's address.
    pub client: SocketAddr,
    /// Body bytes sent so far.
    pub bytes: u64,
    /// Whether the upstream body failed mid-stream.
    pub aborted: bool,
    /// Whether requests_total is counted (false for requests refused before routing,
    /// which have their own counter).
    pub count_request: bool,
    /// The route's traffic windows (this worker's copy) and the side the answer counts on,
    /// when a route was chosen.
    pub window: Option<(Arc<SideWindowsShard>, WindowSide)>,
    /// The request's place in its trace (W3C Trace Context): its trace id is logged.
    pub trace: RequestTrace,
    /// Where the request's span goes, when spans are exported (`[tracing]`).
    pub spans: Option<Arc<SpanExporter>>,
    /// The request's line of the traffic recording, waiting for its answer
    /// (`[record] responses = true`).
    pub recording: Option<crate::migration::record::PendingAnswer>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.started);
        self.metrics.inflight.dec();
        if self.count_request {
            self.metrics
                .requests
                .with_label_values(&[
                    &*self.route,
                    &*self.upstream,
                    method_label(&self.method),
                    self.status.as_str(),
                ])
                .inc();
        }
        if let Some(histogram) = &self.duration {
            histogram.observe(elapsed.as_secs_f64());
        }
        if let Some((window, side)) = &self.window {
            window.record(*side, now, elapsed, self.status.is_server_error());
        }
        if let Some(spans) = &self.spans
            && self.trace.sampled()
        {
            spans.record(self.span(elapsed));
        }
        if let Some(path) = &self.path {
            tracing::info!(
                target: ACCESS_LOG,
                request_id = self.request_id.to_str().unwrap_or("-"),
                trace_id = %self.trace.trace_id,
                client = %self.client,
                method = %self.method,
                path = %path,
                route = &*self.route,
                upstream = &*self.upstream,
                status = self.status.as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                bytes = self.bytes,
                aborted = self.aborted,
                "request"
            );
        }
    }
}

impl Finish {
    /// The request's span (kind SERVER), ending now: named `"{METHOD} {route}"` (the
    /// method alone when no route matched), an error when the answer is a 5xx or was cut
    /// short.
    fn span(&self, elapsed: Duration) -> SpanRecord {
        let trace = &self.trace;
        let mut span = SpanRecord::ending_now(trace.trace_id, trace.span_id, SpanKind::Server, elapsed);
        span.parent = trace.parent;
        // `window` is set exactly when a route matched (Executor::begin).
        let side = match &self.window {
            Some((_, WindowSide::New)) => Some("new"),
            Some((_, WindowSide::Legacy)) => Some("legacy"),
            // The default upstream answers what no route matched.
            None if self.count_request => Some("legacy"),
            None => None,
        };
        span.name = span_name(&self.method, self.window.is_some().then_some(&*self.route));
        span.error = self.status.is_server_error() || self.aborted;
        span.text("http.request.method", self.method.as_str())
            .int("http.response.status_code", i64::from(self.status.as_u16()))
            .text("url.path", self.path.as_deref().unwrap_or(""))
            .text("strangler.route", &*self.route)
            .text("strangler.upstream", &*self.upstream)
            .text("strangler.request_id", self.request_id.to_str().unwrap_or("-"));
        if let Some(side) = side {
            span.text("strangler.side", side);
        }
        span
    }
}

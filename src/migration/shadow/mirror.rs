//! The mirror task: the copy of one admitted request goes to the new upstream off the
//! request path, waits for the capture of the legacy answer, and the two are compared and
//! counted.
//!
//! The task runs on the low-priority mirror runtime (`State::mirrors`) and holds the
//! route's [`MirrorPermit`] until it is done; it keeps the two upstreams it uses (and so
//! their pools) alive meanwhile. It knows nothing of the running proxy's state: the caller
//! hands it the upstreams, the ledger and where to run. Every wait is bounded: the copy by the route's shadow
//! `timeout`, the capture by that timeout plus 30 s (the client may read slowly).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::BodyExt;
use tokio::sync::oneshot;

use super::admission::{MirrorPermit, ShadowRoute};
use super::capture::{CAPTURE_LIMIT, Capture};
use super::ledger::{ParityLedger, ShadowResult};
use crate::config::{Forwarding, HeaderEdits, HostPolicy};
use crate::migration::canary::{BUCKETS, bucket};
use crate::migration::period::EvidencePeriod;
use crate::migration::replay::KeptRequest;
use crate::parity::{Captured, Comparison, compare};
use crate::telemetry::{SentCopy, SpanExporter};
use crate::upstream::Upstream;
use crate::upstream::body::RequestBody;
use crate::upstream::pool::SendError;
use crate::window::{SideWindowsShard, WindowSide};
use prometheus::IntCounterVec;

/// An admitted mirror, waiting for the legacy answer's head.
#[derive(Debug)]
pub struct PendingMirror<'s> {
    shadow: &'s ShadowRoute,
    permit: MirrorPermit,
    request: KeptRequest,
}

/// Whom a mirror reports to, what it reports about and where it runs.
#[derive(Debug)]
pub struct MirrorContext<'a> {
    /// The parity ledger the comparison is counted in.
    pub ledger: &'a Arc<ParityLedger>,
    /// `strangler_shadow_comparisons_total`.
    pub comparisons: &'a IntCounterVec,
    /// The runtime mirrors run on (`None`: the caller's).
    pub runtime: Option<&'a tokio::runtime::Handle>,
    /// Route label.
    pub route: &'a Arc<str>,
    /// The new upstream, which gets the copy.
    pub new: &'a Arc<Upstream>,
    /// The legacy upstream, which answered the client.
    pub legacy: &'a Arc<Upstream>,
    /// Headers kept secret in the ledger's mismatches (`[record] redact`).
    pub secret: &'a [HeaderName],
    /// The request id.
    pub request_id: &'a HeaderValue,
    /// Where the copy's duration is recorded.
    pub timing: CopyTiming,
    /// The route's forwarding settings: the copy is addressed to the new upstream as the
    /// primary is to its own (`host`), and the new answer's headers are edited as the
    /// client's are (`response_headers`) before the two are compared.
    pub forwarding: &'a Forwarding,
    /// Where the copy's span goes, when spans are exported.
    pub spans: Option<Arc<SpanExporter>>,
}

/// Where a shadow copy's duration goes: the route's traffic windows (new side) and
/// `strangler_shadow_duration_seconds`.
#[derive(Debug)]
pub struct CopyTiming {
    /// The route's windows (a worker's copy); `None` for no route.
    pub window: Option<Arc<SideWindowsShard>>,
    /// The route's and new upstream's `strangler_shadow_duration_seconds`.
    pub histogram: prometheus::Histogram,
}

impl CopyTiming {
    /// Records a copy sent at `sent`; no answer counts as a 5xx.
    fn record(&self, sent: Instant, status: Option<u16>) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(sent);
        self.histogram.observe(elapsed.as_secs_f64());
        if let Some(window) = &self.window {
            let failed = status.is_none_or(|status| status >= 500);
            window.record(WindowSide::New, now, elapsed, failed);
        }
    }
}

impl<'s> PendingMirror<'s> {
    /// A mirror of `request`, holding `permit`.
    pub fn new(shadow: &'s ShadowRoute, permit: MirrorPermit, request: KeptRequest) -> Self {
        Self {
            shadow,
            permit,
            request,
        }
    }

    /// The new upstream the copy goes to.
    pub fn new_upstream(&self) -> crate::upstream::UpstreamId {
        self.shadow.new
    }

    /// Spawns the mirror task; returns the capture the legacy answer (`status`, `headers`)
    /// must feed as its body streams to the client.
    pub fn start(self, context: MirrorContext<'_>, status: u16, headers: HeaderMap) -> Capture {
        let (capture, legacy_answer) = Capture::new(status, headers);
        let mirror = Mirror {
            ledger: context.ledger.clone(),
            comparisons: context.comparisons.clone(),
            route: context.route.clone(),
            path: self.request.path_for_report(),
            request: self.request,
            request_id: context.request_id.clone(),
            new: context.new.clone(),
            legacy: context.legacy.clone(),
            secret: context.secret.to_vec(),
            config: self.shadow.config.clone(),
            rules: self.shadow.rules.clone(),
            period: self.shadow.period.clone(),
            timing: context.timing,
            host: context.forwarding.host,
            response_headers: context.forwarding.response_headers.clone(),
            spans: context.spans,
        };
        let permit = self.permit;
        let task = async move {
            let _permit = permit;
            mirror.run(legacy_answer).await;
        };
        match context.runtime {
            Some(mirrors) => drop(mirrors.spawn(task)),
            None => drop(tokio::spawn(task)),
        }
        capture
    }
}

/// The copy of one shadowed request, sent to the new upstream off the request path.
struct Mirror {
    ledger: Arc<ParityLedger>,
    comparisons: IntCounterVec,
    route: Arc<str>,
    path: String,
    request: KeptRequest,
    request_id: HeaderValue,
    /// Kept alive (with their pools) until the mirror is done.
    new: Arc<Upstream>,
    legacy: Arc<Upstream>,
    /// Headers `[record]` treats as secret are secret in `/admin/parity` too.
    secret: Vec<HeaderName>,
    config: crate::config::ShadowConfig,
    rules: Arc<crate::parity::CompareRules>,
    /// The route's evidence period in the snapshot that routed the request: where the
    /// outcome is counted, whatever table is in force when it arrives.
    period: Arc<EvidencePeriod>,
    timing: CopyTiming,
    /// The route's `host`: each upstream gets the copy addressed to itself.
    host: HostPolicy,
    /// The route's `response_headers`, applied to the answers compared with the client's.
    response_headers: HeaderEdits,
    spans: Option<Arc<SpanExporter>>,
}

impl Mirror {
    /// Sends the copy, waits for the legacy answer's capture, compares, records.
    async fn run(self, legacy_answer: oneshot::Receiver<Option<Captured>>) {
        let mut copy = self.request.clone();
        copy.headers
            .insert(&crate::headers::X_STRANGLER_SHADOW, HeaderValue::from_static("1"));
        // Another span of the client's trace, marked as the shadow copy (W3C tracestate).
        let request_span = crate::trace::TraceParent::of(&copy.headers).map(|p| p.parent_id);
        let copy_span = crate::trace::new_span(&mut copy.headers);
        crate::trace::mark_shadow(&mut copy.headers);
        let sent = Instant::now();
        let new_answer = fetch(&self.new, self.address(&self.new, copy.request()), self.config.timeout).await;
        self.timing.record(sent, new_answer.as_ref().map(|c| c.status));
        if let (Some(spans), Some(span)) = (&self.spans, copy_span)
            && span.flags & 0x01 == 0x01
        {
            let copy = SentCopy {
                span,
                parent: request_span,
                method: &self.request.method,
                route: &self.route,
                upstream: &self.new.name,
                side: "shadow",
                path: &self.path,
                request_id: &self.request_id,
            };
            spans.record(copy.finished(new_answer.as_ref().map(|c| c.status), sent.elapsed()));
        }
        let noise_probe = self.config.noise_sample > 0.0
            && f64::from(bucket(&format!("{}#noise", self.route), self.request_id.as_bytes()))
                < self.config.noise_sample * f64::from(BUCKETS);
        let legacy_again = if noise_probe {
            fetch(
                &self.legacy,
                self.address(&self.legacy, self.request.request()),
                self.config.timeout,
            )
            .await
        } else {
            None
        };
        // The client may read slowly; the capture is bounded in size, and so is this wait.
        let legacy_answer = tokio::time::timeout(self.config.timeout + Duration::from_secs(30), legacy_answer)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let new_answer = new_answer.map(|mut answer| {
            self.response_headers.apply(&mut answer.headers);
            answer
        });
        let legacy_again = legacy_again.map(|mut answer| {
            self.response_headers.apply(&mut answer.headers);
            answer
        });
        let comparison = match (&legacy_answer, &new_answer) {
            (Some(legacy), Some(new)) => compare(&self.rules, legacy, new, legacy_again.as_ref()),
            _ => Comparison::error(),
        };
        let result = ShadowResult::from_outcome(comparison.outcome);
        self.ledger.count(&self.comparisons, &self.route, &self.period, result);
        if result == ShadowResult::Mismatch {
            let status = [
                legacy_answer.as_ref().map_or(0, |c| c.status),
                new_answer.as_ref().map_or(0, |c| c.status),
            ];
            self.keep_mismatch(status, &comparison);
        }
    }

    /// `request` addressed to `upstream` (its base path, and `Host` as the route says).
    fn address(&self, upstream: &Upstream, mut request: Request<RequestBody>) -> Request<RequestBody> {
        upstream.address(&mut request, self.host);
        request
    }

    /// Keeps a mismatch for `/admin/parity` and logs it.
    fn keep_mismatch(&self, status: [u16; 2], comparison: &Comparison) {
        self.ledger.record_mismatch(
            &self.route,
            &self.period.id,
            self.request.method.as_str(),
            &self.path,
            status,
            comparison,
            &self.secret,
            self.request_id.to_str().ok(),
        );
        tracing::info!(
            request_id = self.request_id.to_str().unwrap_or("-"),
            route = &*self.route,
            path = %self.path,
            diffs = comparison.diffs.len(),
            first = comparison.diffs.first().map_or("", |d| d.pointer.as_str()),
            "shadow mismatch"
        );
    }
}

/// One bounded exchange for a comparison: the whole answer, or `None` if the upstream
/// failed, took longer than `timeout` or answered more than the capture limit.
async fn fetch(upstream: &Upstream, request: Request<RequestBody>, timeout: Duration) -> Option<Captured> {
    let ticket = upstream.health.admit().ok()?;
    let exchange = async {
        let sent = upstream.pool().send(request).await;
        let (response, lease) = match sent {
            Ok(exchange) => exchange,
            // Our own max_connections, not the upstream's failure: not held against it (as
            // in the proxy's exchange).
            Err(SendError::Saturated(_)) => {
                drop(ticket);
                return None;
            }
            Err(_) => {
                upstream.health.record(ticket, false);
                return None;
            }
        };
        upstream.health.record(ticket, !response.status().is_server_error());
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, CAPTURE_LIMIT).collect().await.ok()?;
        lease.give_back();
        Some(Captured {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.to_bytes(),
        })
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

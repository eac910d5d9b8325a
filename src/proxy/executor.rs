//! Carries out a [`Plan`]: the effects of its decisions, the body (streamed or buffered),
//! the exchange(s) with the upstream (a fallback's replay included), the mirror, a
//! protocol upgrade's tunnel, and the response as the client gets it.
//!
//! [`Proxy::handle`](super::Proxy::handle) strings these steps together; each step here is
//! either synchronous or one bounded exchange. Rare paths (a buffered body for a mirror or
//! a fallback) are whole futures of their own, boxed by the caller, so that the common
//! request's state machine stays small.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::HeaderValue;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::body::{Finish, ResponseBody};
use super::error::{ProxyError, Refusal, UpstreamErrorKind, classify};
use super::plan::Plan;
use super::request::client_closed_request;
use crate::config::{Forwarding, HostPolicy};
use crate::headers;
use crate::headers::X_REQUEST_ID;
use crate::metrics::Metrics;
use crate::migration::fallback::{self, Fallback, NewTry};
use crate::migration::replay::KeptRequest;
use crate::migration::shadow::mirror::CopyTiming;
use crate::migration::shadow::{Admission, Capture, MirrorContext, PendingMirror, ShadowResult};
use crate::state::{Snapshot, State};
use crate::telemetry::SentCopy;
use crate::trace::RequestTrace;
use crate::upstream::body::{self as request_body, BodyFault, BodyWatch, ClientBody, RequestBody};
use crate::upstream::pool::{self, Lease};
use crate::upstream::{Upstream, UpstreamId};
use crate::window::WindowSide;

/// An upstream's answer, with the mirror waiting for it if the request is shadowed.
#[derive(Debug)]
pub struct Exchanged<'s> {
    /// The response head, its body still streaming.
    pub response: Response<Incoming>,
    /// The connection it arrives on.
    pub lease: Lease,
    /// The mirror to start once the answer's head is known (boxed: rare, and held across
    /// the rest of the exchange).
    pub mirror: Option<Box<PendingMirror<'s>>>,
    /// The answering upstream's `read_timeout`, which bounds its body.
    pub read_timeout: Duration,
}

impl Exchanged<'_> {
    /// An answer of `upstream` without a mirror.
    pub fn plain((response, lease): (Response<Incoming>, Lease), upstream: &Upstream) -> Self {
        Self {
            response,
            lease,
            mirror: None,
            read_timeout: upstream.config.read_timeout,
        }
    }
}

/// The request being carried out: what every step refers to.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    /// The snapshot the request was planned with.
    pub snapshot: &'a Arc<Snapshot>,
    /// Its id.
    pub request_id: &'a HeaderValue,
    /// Its route's forwarding settings (`host`, `response_headers`; as routed until
    /// the plan names the route).
    pub forwarding: &'a Forwarding,
}

/// What carrying out requests needs; one per worker (see [`crate::server`]).
#[derive(Debug, Clone)]
pub struct Executor {
    /// Shared state: snapshots, the parity ledger, the mirror runtime.
    pub state: Arc<State>,
    /// Metrics (a handle of this worker's own).
    pub metrics: Arc<Metrics>,
    /// Label for "no route/upstream" (requests refused before routing), shared.
    none_label: Arc<str>,
    /// Route label of requests that no route matched, shared.
    default_route: Arc<str>,
    /// Whether clients reach this proxy over TLS (`X-Forwarded-Proto: https`).
    pub over_tls: bool,
}

impl Executor {
    /// An executor over shared state.
    pub fn new(state: Arc<State>) -> Self {
        let metrics = Arc::new(state.metrics.clone());
        Self {
            state,
            metrics,
            none_label: Arc::from("-"),
            default_route: Arc::from("default"),
            over_tls: false,
        }
    }

    /// The bookkeeping of a request that has just arrived: counted in flight, recorded
    /// (metrics, access log) when its response ends. Boxed from the start: it ends up in
    /// the response body's box anyway, and meanwhile the request's state machine holds a
    /// pointer instead of 200 bytes.
    #[inline]
    pub fn start(
        &self,
        snapshot: &Snapshot,
        method: &Method,
        headers: &http::HeaderMap,
        request_id: &HeaderValue,
        client: SocketAddr,
    ) -> Box<Finish> {
        let started = Instant::now();
        self.metrics.inflight.inc();
        Box::new(Finish {
            metrics: self.metrics.clone(),
            duration: None,
            route: self.none_label.clone(),
            upstream: self.none_label.clone(),
            method: method.clone(),
            // Until a response exists, a dropped request means the client went away (nginx's 499).
            status: client_closed_request(),
            started,
            request_id: request_id.clone(),
            path: None,
            client,
            bytes: 0,
            aborted: false,
            count_request: false,
            window: None,
            trace: RequestTrace::of(headers),
            spans: snapshot.spans.clone(),
            recording: None,
        })
    }

    /// The answer to a refused request (counted in `strangler_rejected_requests_total`).
    pub fn refuse(
        &self,
        refusal: Refusal,
        uri: &Uri,
        log_on: bool,
        settings: &crate::config::ProxySettings,
        mut finish: Box<Finish>,
    ) -> Response<ResponseBody> {
        self.metrics.rejected.with_label_values(&[refusal.reason()]).inc();
        // The path goes in the access log and in the request's span.
        let keep_path = log_on || finish.spans.is_some();
        finish.path = keep_path.then(|| match refusal {
            Refusal::Connect => uri.to_string(),
            _ => uri.path().to_owned(),
        });
        ProxyError::Refused(refusal).into_response(settings, finish)
    }

    /// The effects of a plan that come before sending: the canary side, a fallback to
    /// legacy at once and a mirror skipped or dropped are counted; `finish` gets the
    /// request's labels; the request is offered to the recording.
    #[inline]
    pub fn begin<B>(
        &self,
        current: Current<'_>,
        plan: &Plan<'_>,
        request: &Request<B>,
        finish: &mut Finish,
        log_on: bool,
    ) {
        let route = match plan.route {
            Some(route) => {
                if let (Some(split), Some(side)) = (&route.canary, plan.canary) {
                    split.count(side);
                }
                route.name.clone()
            }
            None => self.default_route.clone(),
        };
        plan.fallback.count(&self.metrics.fallbacks, &route);
        plan.mirror
            .count(&self.state.ledger, &self.metrics.shadow_comparisons, &route);
        finish.upstream = current.snapshot.upstreams[plan.upstream].name.clone();
        finish.duration = Some(plan.duration.here().clone());
        finish.window = plan.route.map(|route| {
            let side = if route.new_upstream == Some(plan.upstream) {
                WindowSide::New
            } else {
                WindowSide::Legacy
            };
            (route.windows.here().clone(), side)
        });
        finish.count_request = true;
        let keep_path = log_on || finish.spans.is_some();
        finish.path = keep_path.then(|| plan.path_and_query.path().to_owned());
        if plan.record
            && let Some(recorder) = &current.snapshot.recorder
        {
            finish.recording = recorder.offer(
                &route,
                request.method(),
                plan.path_and_query.as_str(),
                request.headers(),
                current.request_id.as_bytes(),
            );
        }
        finish.route = route;
    }

    /// Buffers the body (at most `limit` bytes), sends it to `upstream` and keeps a copy
    /// for the mirror `admission` admitted. A failed exchange is counted as the mirror's
    /// error: there is no legacy answer to compare.
    pub async fn send_mirrored<'s, B: ClientBody>(
        &self,
        current: Current<'_>,
        upstream: &Upstream,
        (parts, body): (http::request::Parts, B),
        limit: usize,
        admission: Admission<'s>,
        route: &str,
    ) -> Result<Exchanged<'s>, ProxyError> {
        let between_reads = current.snapshot.config().proxy.client_body_timeout;
        let kept = keep(&parts, body, limit, between_reads).await?;
        let host = current.forwarding.host;
        let exchanged = self
            .exchange(upstream, kept.request(), current.request_id, route, host)
            .await;
        let Admission::Admitted(shadow, permit) = admission else {
            return exchanged
                .map(|exchange| Exchanged::plain(exchange, upstream))
                .map_err(|kind| ProxyError::upstream(kind, &upstream.name));
        };
        match exchanged {
            Ok((response, lease)) => Ok(Exchanged {
                response,
                lease,
                mirror: Some(Box::new(PendingMirror::new(shadow, permit, kept))),
                read_timeout: upstream.config.read_timeout,
            }),
            Err(kind) => {
                let comparisons = &self.metrics.shadow_comparisons;
                self.state
                    .ledger
                    .count(comparisons, route, &shadow.period, ShadowResult::Error);
                Err(ProxyError::upstream(kind, &upstream.name))
            }
        }
    }

    /// Buffers the body (at most the fallback's `max_body`), sends it to the new upstream
    /// `new` and, when [`fallback::reason`] says so, replays it to legacy (`finish` then
    /// names legacy).
    pub async fn send_with_fallback<'s, B: ClientBody>(
        &self,
        current: Current<'_>,
        new: UpstreamId,
        (parts, body): (http::request::Parts, B),
        fallback: &Fallback,
        finish: &mut Finish,
    ) -> Result<Exchanged<'s>, ProxyError> {
        let between_reads = current.snapshot.config().proxy.client_body_timeout;
        let kept = keep(&parts, body, fallback.max_body, between_reads).await?;
        let new = &current.snapshot.upstreams[new];
        let host = current.forwarding.host;
        let first = self
            .exchange(new, kept.request(), current.request_id, &finish.route, host)
            .await;
        let tried = match &first {
            Ok((response, _)) => NewTry::Answered {
                server_error: response.status().is_server_error(),
            },
            Err(kind) => kind.as_new_try(),
        };
        let Some(reason) = fallback::reason(tried, &kept.method) else {
            return first
                .map(|exchange| Exchanged::plain(exchange, new))
                .map_err(|kind| ProxyError::upstream(kind, &new.name));
        };
        drop(first);
        let legacy = &current.snapshot.upstreams[fallback.legacy];
        let names = [&*new.name, &*legacy.name];
        fallback::replayed(
            &self.metrics.fallbacks,
            &finish.route,
            reason,
            current.request_id,
            names,
        );
        finish.upstream = legacy.name.clone();
        finish.duration = Some(fallback.legacy_duration.here().clone());
        if let Some((_, side)) = &mut finish.window {
            *side = WindowSide::Legacy;
        }
        // The retry is another span of the request's trace.
        let mut retry = kept.request();
        let retry_span = crate::trace::new_span(retry.headers_mut());
        let sent = Instant::now();
        let answer = self
            .exchange(legacy, retry, current.request_id, &finish.route, host)
            .await;
        if let (Some(spans), Some(span)) = (&finish.spans, retry_span)
            && span.flags & 0x01 == 0x01
        {
            let copy = SentCopy {
                span,
                parent: Some(finish.trace.span_id),
                method: &kept.method,
                route: &finish.route,
                upstream: &legacy.name,
                side: "legacy",
                path: kept.uri.path(),
                request_id: current.request_id,
            };
            let status = answer.as_ref().ok().map(|(response, _)| response.status().as_u16());
            spans.record(copy.finished(status, sent.elapsed()));
        }
        answer
            .map(|exchange| Exchanged::plain(exchange, legacy))
            .map_err(|kind| ProxyError::upstream(kind, &legacy.name))
    }

    /// The response as the client gets it: hop-by-hop headers out, `Via` and the request
    /// id in; a 101 joins the client's upgrade to the upstream's in a tunnel (and is a
    /// failure if the client asked for none); a mirror starts, capturing the answer.
    #[inline]
    pub fn respond(
        &self,
        current: Current<'_>,
        upstream: UpstreamId,
        exchanged: Exchanged<'_>,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        mut finish: Box<Finish>,
    ) -> Response<ResponseBody> {
        let Exchanged {
            mut response,
            lease,
            mirror,
            read_timeout,
        } = exchanged;
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching {
            match client_upgrade {
                Some(client_upgrade) => spawn_tunnel(
                    client_upgrade,
                    hyper::upgrade::on(&mut response),
                    current.request_id.clone(),
                ),
                None => {
                    // An upstream must not switch protocols unasked.
                    tracing::warn!(
                        upstream = &*finish.upstream,
                        "upstream sent 101 to a request that asked for no upgrade"
                    );
                    self.metrics
                        .upstream_errors
                        .with_label_values(&[&finish.upstream, UpstreamErrorKind::Other.as_str()])
                        .inc();
                    let name = &current.snapshot.upstreams[upstream].name;
                    let settings = &current.snapshot.config().proxy;
                    return ProxyError::upstream(UpstreamErrorKind::Other, name).into_response(settings, finish);
                }
            }
        }
        // A proxy answers in its own HTTP version (RFC 9110 §6.2): an HTTP/1.0 upstream's
        // version would make HTTP/1.1 clients give up their keep-alive connection.
        if response.version() == http::Version::HTTP_10 {
            *response.version_mut() = http::Version::HTTP_11;
        }
        let headers = response.headers_mut();
        headers::remove_hop_by_hop(headers, switching);
        // The route's `response_headers`, before the capture: a mirror compares what the
        // client gets (and edits the new answer alike).
        let edits = &current.forwarding.response_headers;
        if !edits.is_empty() {
            edits.apply(headers);
        }
        headers::append_via(headers);
        headers.insert(&X_REQUEST_ID, current.request_id.clone());
        finish.status = response.status();
        // An upgraded connection belongs to the tunnel now; never back to the pool.
        let lease = (!switching).then_some(lease);
        let capture = match mirror {
            Some(mirror) if !switching => {
                let snapshot = current.snapshot;
                let new = &snapshot.upstreams[mirror.new_upstream()];
                let timing = CopyTiming {
                    window: finish.window.as_ref().map(|(window, _)| window.clone()),
                    histogram: self
                        .metrics
                        .shadow_duration
                        .with_label_values(&[&finish.route, &new.name]),
                };
                let context = MirrorContext {
                    ledger: &self.state.ledger,
                    comparisons: &self.metrics.shadow_comparisons,
                    runtime: self.state.mirrors.get(),
                    route: &finish.route,
                    new,
                    legacy: &snapshot.upstreams[upstream],
                    secret: snapshot.config().record.as_ref().map_or(&[][..], |r| &r.redact[..]),
                    request_id: current.request_id,
                    timing,
                    forwarding: current.forwarding,
                    spans: finish.spans.clone(),
                };
                Some(mirror.start(context, response.status().as_u16(), response.headers().clone()))
            }
            _ => None,
        };
        let capture = record_answer(&mut finish, capture, &response, switching);
        response.map(|body| {
            ResponseBody::upstream(body, lease, read_timeout)
                .with_capture(capture)
                .with_finish(finish)
        })
    }

    /// One exchange with one upstream, bounded by its `request_timeout`; failures are
    /// logged and classified here. The request is addressed to `upstream` here (its base
    /// path; its URL's authority as `Host` when `host` says so), so that every upstream a
    /// request reaches, a fallback's among them, gets its own.
    /// (Not an async fn: one would hold its request twice.)
    pub fn exchange(
        &self,
        upstream: &Upstream,
        request: Request<RequestBody>,
        request_id: &HeaderValue,
        route: &str,
        host: HostPolicy,
    ) -> impl Future<Output = Result<(Response<Incoming>, Lease), UpstreamErrorKind>> {
        let mut request = request;
        upstream.address(&mut request, host);
        async move {
            let ticket = match upstream.health.admit() {
                Ok(ticket) => ticket,
                Err(why) => {
                    self.metrics.rejected.with_label_values(&["upstream_unavailable"]).inc();
                    tracing::debug!(
                        request_id = request_id.to_str().unwrap_or("-"),
                        route,
                        upstream = &*upstream.name,
                        "{}",
                        why.describe()
                    );
                    return Err(UpstreamErrorKind::Unavailable(why));
                }
            };
            let timeout = upstream.config.request_timeout;
            let health = &upstream.health;
            let watch = request.body().watch().cloned();
            match upstream
                .pool()
                .send_with_retry(request, || health.try_retry(), Some(timeout))
                .await
            {
                Ok((mut response, lease)) => match self.framing(upstream, response.headers_mut(), request_id, route) {
                    Ok(()) => {
                        health.record(ticket, !response.status().is_server_error());
                        Ok((response, lease))
                    }
                    // Dropped unread with its lease: the connection is closed, never reused.
                    Err(kind) => {
                        health.record(ticket, false);
                        Err(kind)
                    }
                },
                // The request body failed (too large, unreadable, stalled): the client's doing,
                // not an upstream error; the caller answers for it (and the upstream's record
                // is untouched).
                Err(e) if client_at_fault(&e, watch.as_deref()) => {
                    drop(ticket);
                    Err(classify(&e))
                }
                // Our own limit, not the upstream's failure: not held against it.
                Err(pool::SendError::Saturated(max)) => {
                    drop(ticket);
                    self.metrics.rejected.with_label_values(&["upstream_saturated"]).inc();
                    tracing::warn!(
                        request_id = request_id.to_str().unwrap_or("-"),
                        route,
                        upstream = &*upstream.name,
                        max_connections = max,
                        "upstream connection limit reached; request not sent"
                    );
                    Err(UpstreamErrorKind::Saturated)
                }
                Err(e) => {
                    health.record(ticket, false);
                    let kind = classify(&e);
                    self.metrics
                        .upstream_errors
                        .with_label_values(&[&upstream.name, kind.as_str()])
                        .inc();
                    let request_id = request_id.to_str().unwrap_or("-");
                    let upstream = &*upstream.name;
                    match e {
                        pool::SendError::TimedOut => tracing::warn!(
                            request_id,
                            route,
                            upstream,
                            timeout_ms = timeout.as_millis() as u64,
                            "upstream did not answer in time"
                        ),
                        e => tracing::warn!(
                            request_id,
                            route,
                            upstream,
                            kind = kind.as_str(),
                            error = %crate::error_line::of(&e),
                            "upstream request failed"
                        ),
                    }
                    Err(kind)
                }
            }
        }
    }

    /// Checks an answer's framing: one with both `Content-Length` and `Transfer-Encoding`,
    /// or with `Content-Length` values that differ, is not passed on (the client gets a 502
    /// naming the upstream); a `Content-Length` spelled otherwise than as a plain number
    /// (`005`, `5, 5`, repeated) goes on as the number, which HTTP/2 clients insist on.
    #[inline]
    fn framing(
        &self,
        upstream: &Upstream,
        headers: &mut http::HeaderMap,
        request_id: &HeaderValue,
        route: &str,
    ) -> Result<(), UpstreamErrorKind> {
        let refused = if crate::headers::has_ambiguous_framing(headers) {
            "upstream answered with both Content-Length and Transfer-Encoding; not passed on (502)"
        } else if normalise_response_length(headers).is_err() {
            "upstream answered with Content-Length values that differ; not passed on (502)"
        } else {
            return Ok(());
        };
        Err(self.ambiguous_framing(upstream, request_id, route, refused))
    }

    /// Counts and logs an answer whose length is ambiguous, which is not passed on: the
    /// client gets a 502 naming the upstream.
    #[cold]
    fn ambiguous_framing(
        &self,
        upstream: &Upstream,
        request_id: &HeaderValue,
        route: &str,
        what: &'static str,
    ) -> UpstreamErrorKind {
        let kind = UpstreamErrorKind::Protocol;
        self.metrics
            .upstream_errors
            .with_label_values(&[&upstream.name, kind.as_str()])
            .inc();
        tracing::warn!(
            request_id = request_id.to_str().unwrap_or("-"),
            route,
            upstream = &*upstream.name,
            kind = kind.as_str(),
            "{what}"
        );
        kind
    }
}

/// Whether a failed exchange is the client's doing: its body failed (too large,
/// unreadable, stalled for `client_body_timeout`), or the upstream's `request_timeout` ran
/// out while the body was still awaited from the client (noted in `watch` as a stall, so
/// that the client gets 408 and the upstream is not blamed for what it never received).
fn client_at_fault(error: &pool::SendError, watch: Option<&BodyWatch>) -> bool {
    if request_body::RequestBodyError::behind(error).is_some() {
        return true;
    }
    let Some(watch) = watch else { return false };
    if watch.fault().is_none() && matches!(error, pool::SendError::TimedOut) && watch.waiting_for_client() {
        watch.set_fault(BodyFault::TimedOut);
    }
    watch.fault().is_some()
}

/// A response's `Content-Length` as the plain number: `005`, `5, 5` and a repeated
/// header become `5`. Err when the values differ (or one is not a number).
#[inline]
fn normalise_response_length(headers: &mut http::HeaderMap) -> Result<(), ()> {
    let mut values = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let Some(first) = values.next() else { return Ok(()) };
    let bytes = first.as_bytes();
    let plain = (bytes.len() == 1 || bytes.first() != Some(&b'0')) && !bytes.contains(&b',');
    if plain && values.next().is_none() {
        return Ok(());
    }
    let mut length = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        for part in value.to_str().map_err(drop)?.split(',') {
            let number: u64 = part.trim().parse().map_err(drop)?;
            if length.is_some_and(|length| length != number) {
                return Err(());
            }
            length = Some(number);
        }
    }
    if let Some(length) = length {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    Ok(())
}

/// Reads the whole body (at most `limit` bytes, waiting at most `between_reads` for each
/// read) and keeps it with the head, so that the request can be sent twice; a body that
/// cannot be read, or is longer, is the client's 400 (413 would say the route's limit,
/// which a fallback's buffer is not); one that stalls is the client's 408.
async fn keep<B: ClientBody>(
    parts: &http::request::Parts,
    body: B,
    limit: usize,
    between_reads: Duration,
) -> Result<KeptRequest, ProxyError> {
    let mut body = std::pin::pin!(http_body_util::Limited::new(body, limit));
    let mut kept = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(between_reads, body.frame()).await {
            Err(_) => return Err(ProxyError::Body(BodyFault::TimedOut)),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(ProxyError::Body(BodyFault::Unreadable)),
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    kept.extend_from_slice(data);
                }
            }
        }
    }
    Ok(KeptRequest::new(parts, kept.freeze()))
}

/// Hands the request's recording line (`[record] responses = true`) the copy of the
/// answer: the mirror's capture when the answer is compared too, else one of its own.
/// A switched connection has no answer to record (the line is dropped: counted skipped).
fn record_answer<B>(
    finish: &mut Finish,
    capture: Option<Capture>,
    response: &Response<B>,
    switching: bool,
) -> Option<Capture> {
    let Some(pending) = finish.recording.take() else {
        return capture;
    };
    if switching {
        return capture;
    }
    let (capture, answer) = match capture {
        Some(mut capture) => {
            let answer = capture.also();
            (capture, answer)
        }
        None => Capture::new(response.status().as_u16(), response.headers().clone()),
    };
    pending.answer_from(answer);
    Some(capture)
}

/// Joins both upgraded connections and copies bytes both ways until one side closes.
fn spawn_tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade, request_id: HeaderValue) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(request_id = request_id.to_str().unwrap_or("-"), error = %e, "protocol upgrade failed");
                return;
            }
        };
        let mut client = hyper_util::rt::TokioIo::new(client);
        let mut upstream = hyper_util::rt::TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(
                request_id = request_id.to_str().unwrap_or("-"),
                up,
                down,
                "upgraded connection closed"
            ),
            Err(e) => {
                tracing::debug!(request_id = request_id.to_str().unwrap_or("-"), error = %e, "upgraded connection ended with an error")
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::plan::tests::Unended;
    use crate::table::Table;

    const TABLE: &str = r#"
[proxy]
listen = "127.0.0.1:8000"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:1"
[upstreams.new]
url = "http://127.0.0.1:2"

[[routes]]
name = "canary"
path = "/canary/"
stage = "canary"
new = "new"
canary = { percent = 100 }
[[routes]]
name = "shadow"
path = "/shadow/"
stage = "shadow"
new = "new"
shadow = { max_body = 4 }
"#;

    fn executor() -> Executor {
        let metrics = Metrics::new().unwrap();
        let table = Table::parse("routes.toml", TABLE).unwrap();
        let snapshot = Snapshot::build(table, None, &metrics, 1).unwrap();
        Executor::new(Arc::new(State::new("routes.toml".into(), snapshot, metrics, 1)))
    }

    /// Plans `request` and carries out the plan's effects; returns the finish labels.
    fn begin(executor: &Executor, request: Request<Unended>) -> (String, String, bool) {
        let snapshot = executor.state.snapshot();
        let id = HeaderValue::from_static("request-1");
        let client = "192.0.2.7:5000".parse().unwrap();
        let mut finish = executor.start(&snapshot, request.method(), request.headers(), &id, client);
        let plan = super::super::plan::plan(&snapshot, &request, client, &id).unwrap();
        let current = Current {
            snapshot: &snapshot,
            request_id: &id,
            forwarding: &crate::config::AS_ROUTED,
        };
        executor.begin(current, &plan, &request, &mut finish, false);
        (
            finish.route.to_string(),
            finish.upstream.to_string(),
            finish.count_request,
        )
    }

    fn get(target: &str, length: &str) -> Request<Unended> {
        Request::builder()
            .uri(target)
            .header("host", "app.example")
            .header("content-length", length)
            .body(Unended)
            .unwrap()
    }

    #[test]
    fn a_response_length_goes_on_as_the_plain_number() {
        let cases: [(&[&str], Option<&str>); 7] = [
            (&["5"], Some("5")),
            (&["0"], Some("0")),
            (&["005"], Some("5")),
            (&["5, 5"], Some("5")),
            (&["5", "5"], Some("5")),
            (&["5, 6"], None),
            (&["5", "x"], None),
        ];
        for (sent, expected) in cases {
            let mut headers = http::HeaderMap::new();
            for value in sent {
                headers.append(http::header::CONTENT_LENGTH, HeaderValue::from_static(value));
            }
            let normalised = normalise_response_length(&mut headers).map(|()| {
                let values: Vec<_> = headers.get_all(http::header::CONTENT_LENGTH).iter().collect();
                assert_eq!(values.len(), 1, "{sent:?}");
                values[0].to_str().unwrap().to_owned()
            });
            assert_eq!(normalised.ok().as_deref(), expected, "{sent:?}");
        }
        let mut none = http::HeaderMap::new();
        assert!(normalise_response_length(&mut none).is_ok());
        assert!(none.is_empty());
    }

    #[test]
    fn the_executor_counts_what_the_plan_decided() {
        let executor = executor();
        let metrics = executor.metrics.clone();
        assert_eq!(
            begin(&executor, get("/canary/1", "0")),
            ("canary".into(), "new".into(), true)
        );
        assert_eq!(metrics.canary.with_label_values(&["canary", "new"]).get(), 1);
        assert_eq!(metrics.canary.with_label_values(&["canary", "legacy"]).get(), 0);

        // A body over the shadow cap: skipped, in the ledger and the metric alike.
        assert_eq!(
            begin(&executor, get("/shadow/1", "5")),
            ("shadow".into(), "legacy".into(), true)
        );
        let snapshot = executor.state.snapshot();
        let period = &snapshot.routes.iter().find(|r| &*r.name == "shadow").unwrap().period.id;
        let skipped = metrics
            .shadow_comparisons
            .with_label_values(&["shadow", "skipped", period]);
        assert_eq!(skipped.get(), 1);
        let evidence = executor.state.ledger.evidence();
        assert_eq!(evidence.routes["shadow"].current.counts.skipped, 1, "{evidence:?}");

        assert_eq!(
            begin(&executor, get("/other", "0")),
            ("default".into(), "legacy".into(), true)
        );
        assert_eq!(metrics.inflight.get(), 0, "every finish recorded its request");
    }
}

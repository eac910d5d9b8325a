//! The proxy service: one request in, one response out, never an error.
//!
//! The phases of a request, in order:
//! 1. load the [`Snapshot`] once; the request keeps it to the end;
//! 2. refuse what must not be forwarded (CONNECT → 405, ambiguous framing or head →
//!    400 ([`guard`]), unsafe path → 400);
//! 3. route on the normalised path (absolute-form targets are routed by their path only:
//!    the host they name is never contacted);
//! 4. rewrite headers (hop-by-hop out; `X-Forwarded-*`, `Via`, `x-request-id` in) and
//!    send to the chosen upstream over its pooled client, streaming the body;
//! 5. stream the response back, or turn the failure into 502/504 ([`error`]);
//! 6. when the response body ends, record metrics and the access log ([`body`]).

pub mod body;
pub mod error;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::{Body as _, Incoming};

use crate::headers;
use crate::headers::{X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID};
use crate::metrics::Metrics;
use crate::migration::shadow::{Capture, ShadowResult};
use crate::path::normalize_path;
use crate::server::conn::guard;
use crate::state::{ShadowRoute, Snapshot, State, Upstream};
use crate::upstream::body::{self as request_body, BodyFault, RequestBody};
use crate::upstream::pool::{self, Lease};
use body::{ACCESS_LOG, Finish, ResponseBody};
use error::{Refusal, UpstreamErrorKind, classify};
use http_body_util::BodyExt;

/// The request-handling half of the proxy (the accept loop is in [`crate::server`]).
#[derive(Debug, Clone)]
pub struct Proxy {
    state: Arc<State>,
    metrics: Arc<Metrics>,
    /// Label for "no route/upstream" (requests refused before routing), shared.
    none_label: Arc<str>,
    /// Route label of requests that no route matched, shared.
    default_route: Arc<str>,
    /// Whether clients reach this proxy over TLS (`X-Forwarded-Proto: https`).
    over_tls: bool,
}

impl Proxy {
    /// A proxy over shared state.
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

    /// Marks the listener this proxy serves as TLS: upstreams get `X-Forwarded-Proto: https`.
    pub fn over_tls(mut self, over_tls: bool) -> Self {
        self.over_tls = over_tls;
        self
    }

    /// Handles one request from `client`. The future owns its handle on the proxy (no
    /// wrapper future around a borrowing one: this state machine is kilobytes, and every
    /// wrapper would hold, and copy, another one).
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold its arguments twice")]
    pub fn handle(
        self: Arc<Self>,
        mut request: Request<Incoming>,
        client: SocketAddr,
    ) -> impl Future<Output = Response<ResponseBody>> + Send + 'static {
        // An async block, not an async fn: an async fn keeps its arguments twice in its state
        // (as captured, and as moved into the body), the block once.
        async move {
            let started = Instant::now();
            self.metrics.inflight.inc();
            let snapshot = self.state.snapshot();
            let request_id = request_id(request.headers());
            let log_on = tracing::enabled!(target: ACCESS_LOG, tracing::Level::INFO);
            // Boxed from the start: it ends up in the response body's box anyway, and meanwhile
            // this state machine holds a pointer instead of 200 bytes.
            let mut finish = Box::new(Finish {
                metrics: self.metrics.clone(),
                duration: None,
                route: self.none_label.clone(),
                upstream: self.none_label.clone(),
                method: request.method().clone(),
                // Until a response exists, a dropped request means the client went away (nginx's 499).
                status: client_closed_request(),
                started,
                request_id: request_id.clone(),
                path: None,
                client,
                bytes: 0,
                aborted: false,
                count_request: false,
            });

            if request.method() == Method::CONNECT {
                return self.refuse(Refusal::Connect, finish, log_on.then(|| request.uri().to_string()));
            }
            // The body length the head declares (read before the hop-by-hop headers,
            // Transfer-Encoding among them, are removed).
            let guard::Checked { declared_length, host } = match guard::check(&request) {
                Ok(checked) => checked,
                Err(violation) => {
                    return self.refuse(
                        violation.into(),
                        finish,
                        log_on.then(|| request.uri().path().to_owned()),
                    );
                }
            };
            // The path and query the upstream gets. An already-normal path (the common case)
            // reuses the request's own, without copying or re-parsing it.
            let path_and_query = match normalize_path(request.uri().path()) {
                Ok(Cow::Borrowed(_)) => request
                    .uri()
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/")),
                Ok(Cow::Owned(path)) => {
                    let rebuilt = match request.uri().query() {
                        Some(query) => PathAndQuery::try_from(format!("{path}?{query}")),
                        None => PathAndQuery::try_from(path),
                    };
                    match rebuilt {
                        Ok(path_and_query) => path_and_query,
                        Err(_) => {
                            // Only malformed input can fail to re-parse after normalisation.
                            let refusal = Refusal::BadPath(crate::path::PathError::BadPercentEncoding);
                            return self.refuse(refusal, finish, log_on.then(|| request.uri().path().to_owned()));
                        }
                    }
                }
                Err(e) => {
                    return self.refuse(
                        Refusal::BadPath(e),
                        finish,
                        log_on.then(|| request.uri().path().to_owned()),
                    );
                }
            };
            let path = path_and_query.path();

            let matched = snapshot.table.routes.lookup(request.method(), path);
            let (route_name, upstream_id, duration, fallback, shadow, max_body) = match matched {
                Some(m) => {
                    let route = &snapshot.routes[m.route];
                    let (upstream, duration) = match &route.canary {
                        Some(split)
                            if crate::migration::canary::place(
                                &route.name,
                                split.basis_points,
                                split.sticky.as_ref(),
                                request.headers(),
                                client.ip(),
                                request_id.as_bytes(),
                            ) =>
                        {
                            split.to_new.inc();
                            (split.new, split.new_duration.here().clone())
                        }
                        Some(split) => {
                            split.to_legacy.inc();
                            (route.upstream, route.duration.here().clone())
                        }
                        None => (route.upstream, route.duration.here().clone()),
                    };
                    // Fallback only ever applies to requests placed on the new upstream.
                    let fallback = route.fallback.as_ref().filter(|f| f.new == upstream);
                    (
                        route.name.clone(),
                        upstream,
                        duration,
                        fallback,
                        route.shadow.as_ref(),
                        route.max_body,
                    )
                }
                None => {
                    let upstream = &snapshot.upstreams[snapshot.default_upstream];
                    (
                        self.default_route.clone(),
                        snapshot.default_upstream,
                        upstream.default_duration.here().clone(),
                        None,
                        None,
                        None,
                    )
                }
            };
            // A route with a fallback whose new upstream is out of service goes to legacy at
            // once: nothing is buffered, and a body of any size can still be sent.
            let (upstream_id, duration, fallback) = match fallback {
                Some(fallback) if snapshot.upstreams[upstream_id].health.unavailable().is_some() => {
                    self.metrics
                        .fallbacks
                        .with_label_values(&[&route_name, "unavailable"])
                        .inc();
                    (fallback.legacy, fallback.legacy_duration.here().clone(), None)
                }
                other => (upstream_id, duration, other),
            };
            let upstream = &snapshot.upstreams[upstream_id];
            finish.route = route_name;
            finish.upstream = upstream.name.clone();
            finish.duration = Some(duration);
            finish.count_request = true;
            finish.path = log_on.then(|| path.to_owned());
            if let Some(recorder) = &snapshot.recorder {
                recorder.offer(
                    &finish.route,
                    request.method(),
                    path_and_query.as_str(),
                    request.headers(),
                    request_id.as_bytes(),
                );
            }

            // Origin-form towards the upstream: the path and query only.
            let uri = Uri::from(path_and_query);

            let upgrade = headers::is_upgrade_request(request.headers());
            if let (Some(limit), Some(length)) = (max_body, declared_length)
                && length > limit
            {
                return self.body_failure(BodyFault::TooLarge { limit }, finish);
            }
            let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
            // TE is hop-by-hop; an HTTP/2 upstream hears `TE: trailers` again if the client said it.
            let te_trailers = upstream.config.http2 && headers::accepts_trailers(request.headers());
            let (mut parts, body) = request.into_parts();
            // HTTP/2 clients name the host in `:authority` (the URI), not in `Host`.
            let host = host.or_else(|| headers::host_from_authority(&mut parts.headers, &parts.uri));
            let has_host =
                prepare_request_headers(&mut parts.headers, host, &request_id, client, upgrade, self.over_tls);
            if te_trailers {
                parts.headers.insert(header::TE, HeaderValue::from_static("trailers"));
            }
            if !has_host && let Ok(host) = HeaderValue::from_str(upstream.authority.as_str()) {
                parts.headers.insert(header::HOST, host);
            }
            parts.uri = uri;
            parts.version = http::Version::HTTP_11;
            // Shadow: decide whether this request is mirrored; the decision never fails it.
            let mirror = match shadow {
                Some(shadow) if !upgrade => {
                    self.admit_mirror(shadow, &finish.route, &parts.method, declared_length, &request_id)
                }
                _ => None,
            };
            let mut pending_mirror = None;
            let replay = if let Some((shadow, permit)) = mirror {
                // Rare paths are boxed: an awaited future is stored inline in this one, and this
                // one is moved (copied) for every request, whatever path it takes.
                let collect = Box::pin(http_body_util::Limited::new(body, shadow.config.max_body).collect());
                let bytes = match collect.await {
                    Ok(collected) => collected.to_bytes(),
                    Err(_) => return self.body_failure(BodyFault::Unreadable, finish),
                };
                let head = RequestHead::from(&parts);
                let exchange =
                    Box::pin(self.exchange(upstream, head.request(bytes.clone()), &request_id, &finish.route));
                let sent = exchange.await;
                match sent {
                    Ok((response, lease)) => {
                        // Boxed: this state machine holds it across the rest of the exchange.
                        pending_mirror = Some(Box::new((shadow, permit, head, bytes)));
                        Ok((response, lease))
                    }
                    Err(kind) => {
                        self.state.ledger.record(&finish.route, ShadowResult::Error);
                        self.metrics
                            .shadow_comparisons
                            .with_label_values(&[&finish.route, ShadowResult::Error.as_str()])
                            .inc();
                        return self.upstream_failure(kind, &snapshot, upstream_id, finish);
                    }
                }
            } else {
                Err(body)
            };
            // With a fallback, a body of known, bounded size is buffered so that it can be
            // replayed; anything else streams and is not replayed.
            let replay = match replay {
                Ok(exchange) => Ok(exchange),
                Err(body) => Err(match fallback {
                    Some(fallback) if !upgrade => match declared_length {
                        Some(length) if length <= fallback.max_body as u64 => {
                            let collect = Box::pin(http_body_util::Limited::new(body, fallback.max_body).collect());
                            match collect.await {
                                Ok(collected) => Ok((fallback, collected.to_bytes())),
                                Err(_) => return self.body_failure(BodyFault::Unreadable, finish),
                            }
                        }
                        _ => Err(body),
                    },
                    _ => Err(body),
                }),
            };
            let (mut response, lease) = match replay {
                Ok(exchange) => exchange,
                Err(Err(body)) => {
                    // No body (most GETs): nothing to stream, nothing that can fail on the client's
                    // side. One exchange below for both: each awaited site is its own kilobytes
                    // in this state machine.
                    let (body, fault) = if body.is_end_stream() && !upgrade {
                        (RequestBody::Buffered(None), None)
                    } else {
                        let fault = Arc::new(std::sync::OnceLock::new());
                        let first_wait = snapshot.config().proxy.client_header_timeout;
                        let streaming = Box::pin(RequestBody::streaming(body, max_body, first_wait, fault.clone()));
                        match streaming.await {
                            Ok(body) => (body, Some(fault)),
                            Err(fault) => return self.body_failure(fault, finish),
                        }
                    };
                    let request = Request::from_parts(parts, body);
                    match self.exchange(upstream, request, &request_id, &finish.route).await {
                        Ok(exchange) => exchange,
                        Err(kind) => match fault.as_deref().and_then(std::sync::OnceLock::get) {
                            // The client's body failed, not the upstream: answer for that.
                            Some(&fault) => return self.body_failure(fault, finish),
                            None => return self.upstream_failure(kind, &snapshot, upstream_id, finish),
                        },
                    }
                }
                Err(Ok((fallback, bytes))) => {
                    let head = RequestHead::from(&parts);
                    let exchange =
                        Box::pin(self.exchange(upstream, head.request(bytes.clone()), &request_id, &finish.route));
                    let first = exchange.await;
                    let idempotent = is_idempotent(&head.method);
                    let reason = match &first {
                        Err(UpstreamErrorKind::Unavailable(_)) => Some("unavailable"),
                        Err(UpstreamErrorKind::Saturated) => Some("saturated"),
                        // Nothing was sent: a refused connection or a failed TLS handshake.
                        Err(UpstreamErrorKind::Connect | UpstreamErrorKind::Tls) => Some("connect"),
                        Err(UpstreamErrorKind::Timeout) if idempotent => Some("timeout"),
                        Err(UpstreamErrorKind::Reset) if idempotent => Some("reset"),
                        Err(UpstreamErrorKind::Other) if idempotent => Some("other"),
                        Ok((response, _)) if response.status().is_server_error() && idempotent => Some("status_5xx"),
                        _ => None,
                    };
                    match (first, reason) {
                        (first, Some(reason)) => {
                            drop(first);
                            let legacy = &snapshot.upstreams[fallback.legacy];
                            self.metrics.fallbacks.with_label_values(&[&finish.route, reason]).inc();
                            tracing::warn!(
                                request_id = request_id.to_str().unwrap_or("-"),
                                route = &*finish.route,
                                new = &*upstream.name,
                                legacy = &*legacy.name,
                                reason,
                                "new upstream failed; falling back to legacy"
                            );
                            finish.upstream = legacy.name.clone();
                            finish.duration = Some(fallback.legacy_duration.here().clone());
                            let exchange =
                                Box::pin(self.exchange(legacy, head.request(bytes), &request_id, &finish.route));
                            match exchange.await {
                                Ok(exchange) => exchange,
                                Err(kind) => return self.upstream_failure(kind, &snapshot, fallback.legacy, finish),
                            }
                        }
                        (Ok(exchange), None) => exchange,
                        (Err(kind), None) => return self.upstream_failure(kind, &snapshot, upstream_id, finish),
                    }
                }
            };

            let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
            if switching {
                match client_upgrade {
                    Some(client_upgrade) => {
                        spawn_tunnel(client_upgrade, hyper::upgrade::on(&mut response), request_id.clone())
                    }
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
                        return self.upstream_failure(UpstreamErrorKind::Other, &snapshot, upstream_id, finish);
                    }
                }
            }
            let headers = response.headers_mut();
            headers::remove_hop_by_hop(headers, switching);
            headers::append_via(headers);
            headers.insert(&X_REQUEST_ID, request_id.clone());
            finish.status = response.status();
            // An upgraded connection belongs to the tunnel now; never back to the pool.
            let lease = (!switching).then_some(lease);
            let capture = match pending_mirror.map(|pending| *pending) {
                Some((shadow, permit, head, bytes)) if !switching => {
                    let (capture, legacy_answer) = Capture::new(response.status().as_u16(), response.headers().clone());
                    let mirror = Mirror {
                        state: self.state.clone(),
                        snapshot: snapshot.clone(),
                        route: finish.route.clone(),
                        path: path_for_report(&head.uri),
                        head,
                        body: bytes,
                        request_id: request_id.clone(),
                    };
                    let new = shadow.new;
                    let config = shadow.config.clone();
                    let rules = shadow.rules.clone();
                    let legacy = upstream_id;
                    let task = async move {
                        let _permit = permit;
                        mirror.run(new, legacy, config, rules, legacy_answer).await;
                    };
                    match self.state.mirrors.get() {
                        Some(mirrors) => drop(mirrors.spawn(task)),
                        None => drop(tokio::spawn(task)),
                    }
                    Some(capture)
                }
                _ => None,
            };
            response.map(|body| {
                ResponseBody::upstream(body, lease)
                    .with_capture(capture)
                    .with_finish(finish)
            })
        }
    }

    /// Whether a request of a shadowed route is mirrored: safe method (unless the route
    /// opts in), sampled, body of known size within the cap (else skipped), and a free slot
    /// (else dropped). Skips and drops are counted here.
    fn admit_mirror<'s>(
        &self,
        shadow: &'s ShadowRoute,
        route: &str,
        method: &Method,
        declared_length: Option<u64>,
        request_id: &HeaderValue,
    ) -> Option<(&'s ShadowRoute, tokio::sync::OwnedSemaphorePermit)> {
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !shadow.config.unsafe_methods {
            return None;
        }
        let sampled = shadow.config.sample >= 1.0
            || f64::from(crate::migration::canary::bucket(route, request_id.as_bytes()))
                < shadow.config.sample * f64::from(crate::migration::canary::BUCKETS);
        if !sampled {
            return None;
        }
        let outcome = match declared_length {
            Some(length) if length <= shadow.config.max_body as u64 => {
                match shadow.inflight.clone().try_acquire_owned() {
                    Ok(permit) => return Some((shadow, permit)),
                    Err(_) => ShadowResult::Dropped,
                }
            }
            _ => ShadowResult::Skipped,
        };
        self.state.ledger.record(route, outcome);
        self.metrics
            .shadow_comparisons
            .with_label_values(&[route, outcome.as_str()])
            .inc();
        None
    }

    /// One exchange with one upstream, bounded by its `request_timeout`; failures are
    /// logged and classified here.
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold its request twice")]
    fn exchange(
        &self,
        upstream: &Upstream,
        request: Request<RequestBody>,
        request_id: &HeaderValue,
        route: &str,
    ) -> impl Future<Output = Result<(Response<Incoming>, Lease), UpstreamErrorKind>> {
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
            match upstream
                .pool()
                .send_with_retry(request, || health.try_retry(), Some(timeout))
                .await
            {
                Ok(exchange) => {
                    health.record(ticket, !exchange.0.status().is_server_error());
                    Ok(exchange)
                }
                // The request body failed (too large, unreadable): the client's doing, not an
                // upstream error; the caller answers for it (and the upstream's record is untouched).
                Err(e) if request_body::RequestBodyError::behind(&e).is_some() => {
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
                            error = %error_chain(&e),
                            "upstream request failed"
                        ),
                    }
                    Err(kind)
                }
            }
        }
    }

    fn refuse(&self, refusal: Refusal, mut finish: Box<Finish>, path: Option<String>) -> Response<ResponseBody> {
        self.metrics.rejected.with_label_values(&[refusal.reason()]).inc();
        finish.path = path;
        let mut response = self.respond_text(refusal.status(), format!("{refusal}\n"), finish);
        if matches!(refusal, Refusal::Connect) {
            response.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE"),
            );
        }
        if matches!(refusal, Refusal::Malformed(_)) {
            // The framing of what follows on this connection cannot be trusted.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// 413 for a body over the route's `max_body`, 400 for one that could not be read.
    fn body_failure(&self, fault: BodyFault, finish: Box<Finish>) -> Response<ResponseBody> {
        let (status, body) = match fault {
            BodyFault::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "413 Payload Too Large: route `{}` accepts request bodies of at most {limit} bytes\n",
                    finish.route
                ),
            ),
            BodyFault::Unreadable => (
                StatusCode::BAD_REQUEST,
                "400 Bad Request: could not read the request body\n".to_owned(),
            ),
        };
        let mut response = self.respond_text(status, body, finish);
        // The rest of the body is not read: this connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }

    fn upstream_failure(
        &self,
        kind: UpstreamErrorKind,
        snapshot: &Snapshot,
        upstream: usize,
        finish: Box<Finish>,
    ) -> Response<ResponseBody> {
        // Counted in strangler_upstream_errors_total where the exchange failed.
        let name = &snapshot.upstreams[upstream].name;
        let status = kind.status();
        let body = format!(
            "{} {}: upstream `{name}` (route `{}`) {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            finish.route,
            kind.describe()
        );
        self.respond_text(status, body, finish)
    }

    fn respond_text(&self, status: StatusCode, body: String, mut finish: Box<Finish>) -> Response<ResponseBody> {
        finish.status = status;
        let request_id = finish.request_id.clone();
        let mut response = Response::new(ResponseBody::full(body).with_finish(finish));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(&X_REQUEST_ID, request_id);
        response
    }
}

/// The head of a request kept aside so that the request can be sent twice.
#[derive(Clone)]
struct RequestHead {
    method: Method,
    uri: Uri,
    headers: http::HeaderMap,
}

impl RequestHead {
    fn from(parts: &http::request::Parts) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        }
    }

    fn request(&self, body: bytes::Bytes) -> Request<RequestBody> {
        let mut request = Request::new(RequestBody::Buffered((!body.is_empty()).then_some(body)));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// The copy of one shadowed request, sent to the new upstream off the request path.
struct Mirror {
    state: Arc<State>,
    /// Keeps the upstreams (and their pools) alive until the mirror is done.
    snapshot: Arc<Snapshot>,
    route: Arc<str>,
    path: String,
    head: RequestHead,
    body: bytes::Bytes,
    request_id: HeaderValue,
}

impl Mirror {
    /// Sends the copy, waits for the legacy answer's capture, compares, records.
    async fn run(
        self,
        new: usize,
        legacy: usize,
        config: crate::config::ShadowConfig,
        rules: Arc<crate::parity::CompareRules>,
        legacy_answer: tokio::sync::oneshot::Receiver<Option<crate::parity::Captured>>,
    ) {
        let mut head = self.head.clone();
        head.headers.insert(
            http::HeaderName::from_static("x-strangler-shadow"),
            HeaderValue::from_static("1"),
        );
        let new_upstream = &self.snapshot.upstreams[new];
        let new_answer = fetch(new_upstream, head.request(self.body.clone()), config.timeout).await;
        let noise_probe = config.noise_sample > 0.0
            && f64::from(crate::migration::canary::bucket(
                &format!("{}#noise", self.route),
                self.request_id.as_bytes(),
            )) < config.noise_sample * f64::from(crate::migration::canary::BUCKETS);
        let legacy_again = if noise_probe {
            let legacy_upstream = &self.snapshot.upstreams[legacy];
            fetch(legacy_upstream, self.head.request(self.body.clone()), config.timeout).await
        } else {
            None
        };
        // The client may read slowly; the capture is bounded in size, and so is this wait.
        let legacy_answer = tokio::time::timeout(config.timeout + std::time::Duration::from_secs(30), legacy_answer)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let comparison = match (&legacy_answer, &new_answer) {
            (Some(legacy), Some(new)) => crate::parity::compare(&rules, legacy, new, legacy_again.as_ref()),
            _ => crate::parity::Comparison::error(),
        };
        let result = ShadowResult::from_outcome(comparison.outcome);
        self.state.ledger.record(&self.route, result);
        self.state
            .metrics
            .shadow_comparisons
            .with_label_values(&[&self.route, result.as_str()])
            .inc();
        if result == ShadowResult::Mismatch {
            let status = [
                legacy_answer.as_ref().map_or(0, |c| c.status),
                new_answer.as_ref().map_or(0, |c| c.status),
            ];
            // Headers `[record]` treats as secret are secret in `/admin/parity` too.
            let secret = self
                .snapshot
                .config()
                .record
                .as_ref()
                .map_or(&[][..], |r| &r.redact[..]);
            self.state.ledger.record_mismatch(
                &self.route,
                self.head.method.as_str(),
                &self.path,
                status,
                &comparison,
                secret,
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
}

/// One bounded exchange for a comparison: the whole answer, or `None` if the upstream
/// failed, took longer than `timeout` or answered more than the capture limit.
async fn fetch(
    upstream: &Upstream,
    request: Request<RequestBody>,
    timeout: std::time::Duration,
) -> Option<crate::parity::Captured> {
    let ticket = upstream.health.admit().ok()?;
    let exchange = async {
        let sent = upstream.pool().send(request).await;
        let (response, lease) = match sent {
            Ok(exchange) => exchange,
            // Our own max_connections, not the upstream's failure: not held against it (as
            // in `exchange`).
            Err(pool::SendError::Saturated(_)) => {
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
        let body = http_body_util::Limited::new(body, crate::migration::shadow::CAPTURE_LIMIT)
            .collect()
            .await
            .ok()?;
        lease.give_back();
        Some(crate::parity::Captured {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.to_bytes(),
        })
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

/// The path and query of a request, as reports show it.
fn path_for_report(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// Methods that may be sent twice (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// 499, nginx's "client closed request": recorded for requests whose client disconnected
/// before the response head was ready.
fn client_closed_request() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The client's `x-request-id` if it sent a usable one, else a fresh UUID.
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(&X_REQUEST_ID)
        && !id.is_empty()
        && id.len() <= 200
    {
        return id.clone();
    }
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_maybe_shared(id_bytes(text.as_bytes())).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// A copy of a generated request id. The id is sent upstream, returned to the client and
/// logged: its bytes are cut from a per-thread block shared by many ids, so that each copy
/// is a reference count, not an allocation.
fn id_bytes(id: &[u8]) -> bytes::Bytes {
    const BLOCK: usize = 4096;
    thread_local! {
        static BLOCK_LEFT: std::cell::RefCell<bytes::BytesMut> = std::cell::RefCell::new(bytes::BytesMut::new());
    }
    BLOCK_LEFT.with_borrow_mut(|block| {
        if block.capacity() < id.len() {
            *block = bytes::BytesMut::with_capacity(BLOCK.max(id.len()));
        }
        block.extend_from_slice(id);
        block.split().freeze()
    })
}

/// Rewrites a request's headers for the upstream (see [`headers`]); `host` is its `Host`
/// (as [`guard::check`] found it, or made from an HTTP/2 authority). Returns whether the
/// request still has a `Host`.
fn prepare_request_headers(
    headers: &mut http::HeaderMap,
    mut host: Option<HeaderValue>,
    request_id: &HeaderValue,
    client: SocketAddr,
    upgrade: bool,
    over_tls: bool,
) -> bool {
    // Most requests carry no hop-by-hop header and no `Expect`: one pass of cheap
    // comparisons instead of a hashed removal per name.
    if headers
        .keys()
        .any(|name| name == header::EXPECT || headers::is_hop_by_hop(name))
    {
        headers::remove_hop_by_hop(headers, upgrade);
        headers.remove(header::EXPECT);
        // `Connection` may have named `Host` itself.
        host = headers.get(header::HOST).cloned();
    }
    headers::append_forwarded_for(headers, client.ip());
    let proto = if over_tls { "https" } else { "http" };
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    let has_host = host.is_some();
    if let Some(host) = host {
        headers.insert(&X_FORWARDED_HOST, host);
    }
    headers::append_via(headers);
    headers.insert(&X_REQUEST_ID, request_id.clone());
    has_host
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_request_ids_are_distinct_uuids_across_blocks() {
        let mut seen = std::collections::HashSet::new();
        // Well past one shared block (4 KiB holds 113 ids): ids of old blocks stay intact.
        let ids: Vec<HeaderValue> = (0..500).map(|_| request_id(&http::HeaderMap::new())).collect();
        for id in &ids {
            let text = id.to_str().unwrap();
            assert!(uuid::Uuid::parse_str(text).is_ok(), "{text}");
            assert_eq!(text.len(), 36);
            assert!(seen.insert(text.to_owned()), "duplicate id {text}");
        }
    }

    #[test]
    fn request_headers_for_the_upstream() {
        let id = HeaderValue::from_static("id-1");
        let client: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let host = HeaderValue::from_static("app.example");
        let mut plain = http::HeaderMap::new();
        plain.insert(header::HOST, host.clone());
        assert!(prepare_request_headers(
            &mut plain,
            Some(host.clone()),
            &id,
            client,
            false,
            false
        ));
        assert_eq!(plain["x-forwarded-host"], "app.example");
        assert_eq!(plain["x-forwarded-for"], "192.0.2.7");
        assert_eq!(plain["x-forwarded-proto"], "http");
        assert_eq!(plain["x-request-id"], "id-1");
        assert_eq!(plain["via"], headers::VIA_VALUE);

        // Hop-by-hop and Expect go; a Host that Connection names goes with them, and the
        // caller is told.
        let mut odd = http::HeaderMap::new();
        odd.insert(header::HOST, host.clone());
        odd.insert(header::CONNECTION, HeaderValue::from_static("host, x-request-id"));
        odd.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        odd.insert(&X_REQUEST_ID, HeaderValue::from_static("client-id"));
        assert!(!prepare_request_headers(&mut odd, Some(host), &id, client, false, true));
        for gone in ["host", "connection", "expect", "x-forwarded-host"] {
            assert!(!odd.contains_key(gone), "{gone} still there: {odd:?}");
        }
        assert_eq!(odd["x-request-id"], "id-1");
        assert_eq!(odd["x-forwarded-proto"], "https");
    }

    #[test]
    fn a_client_request_id_is_kept() {
        let mut headers = http::HeaderMap::new();
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static(""));
        assert_ne!(request_id(&headers), "");
    }
}

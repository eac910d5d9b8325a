//! The proxy service: one request in, one response out, never an error.
//!
//! Decide, then do. The phases of a request, in order:
//! 1. load the [`Snapshot`](crate::state::Snapshot) once; the request keeps it to the end;
//! 2. decide ([`plan`]): refuse what must not be forwarded (CONNECT → 405, ambiguous framing
//!    or head → 400, unsafe path → 400), route on the normalised path, place a canary,
//!    plan a fallback, admit a mirror, choose what happens to the body; pure and
//!    synchronous, before the first `.await`;
//! 3. carry it out ([`executor`]): count the decision, rewrite headers ([`request`]), send to
//!    the chosen upstream over its pooled client (streaming the body, or buffering it for
//!    a replay or a mirror), start the mirror;
//! 4. stream the response back, or turn the failure into its answer ([`error`]: one
//!    [`ProxyError::into_response`] for 4xx and 5xx alike);
//! 5. when the response body ends, record metrics and the access log ([`body`]).
//!
//! Protocol upgrades: a request is forwarded as an upgrade only when it is HTTP/1.1, asks
//! for one (`Connection: upgrade`), names one protocol in `Upgrade`, and its route's
//! `upgrades` lists that protocol (requests no route matches: `websocket`); `h2c` never.
//! Any other `Upgrade` is dropped, with its `Connection` token, and the request goes on as
//! a plain one (nginx does the same for the upgrades it does not forward). A `101` opens a
//! tunnel only when its `Upgrade` names the protocol the client asked for; otherwise the
//! client gets a 502 (`kind="protocol"`) and the upstream connection is closed.
//!
//! `handle` takes any [`ClientBody`], not only a connection's: the service's tests
//! (`tests.rs`) call it with in-memory requests, its upstreams served in memory.

pub mod body;
pub mod error;
pub mod executor;
pub mod plan;
pub mod request;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode};

use body::{ACCESS_LOG, ResponseBody};
pub use error::ProxyError;
use executor::{Current, Exchanged, Executor};
use plan::{BodyPolicy, Plan};
use request::Origin;

pub use crate::upstream::body::ClientBody;
use crate::upstream::body::{BodyFault, BodyWatch, RequestBody};

/// The request-handling half of the proxy (the accept loop is in [`crate::server`]).
#[derive(Debug, Clone)]
pub struct Proxy {
    executor: Executor,
}

impl Proxy {
    /// A proxy over shared state.
    pub fn new(state: Arc<crate::state::State>) -> Self {
        Self {
            executor: Executor::new(state),
        }
    }

    /// Marks the listener this proxy serves as TLS: upstreams get `X-Forwarded-Proto: https`.
    pub fn over_tls(mut self, over_tls: bool) -> Self {
        self.executor.over_tls = over_tls;
        self
    }

    /// Handles one request from `client`, whatever its body type (hyper's `Incoming` from
    /// the server; the tests' in-memory bodies). The future owns its handle on the proxy (no
    /// wrapper future around a borrowing one: this state machine is kilobytes, and every
    /// wrapper would hold, and copy, another one).
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold its arguments twice")]
    pub fn handle<B: ClientBody>(
        self: Arc<Self>,
        mut request: Request<B>,
        client: SocketAddr,
    ) -> impl Future<Output = Response<ResponseBody>> + Send + 'static {
        // An async block, not an async fn: an async fn keeps its arguments twice in its state
        // (as captured, and as moved into the body), the block once.
        async move {
            let this = &self.executor;
            let snapshot = this.state.snapshot();
            let request_id = request::request_id(request.headers());
            let mut finish = this.start(&snapshot, request.method(), request.headers(), &request_id, client);
            let log_on = tracing::enabled!(target: ACCESS_LOG, tracing::Level::INFO);
            let current = Current {
                snapshot: &snapshot,
                request_id: &request_id,
                forwarding: &crate::config::AS_ROUTED,
            };
            // Decide, and count the decision, before the first await. Only what the rest needs
            // is kept (the plan itself is gone before anything is awaited).
            let Plan {
                route,
                rewritten,
                upstream: upstream_id,
                mirror,
                body: body_policy,
                path_and_query,
                host,
                upgrade,
                ..
            } = {
                let plan = match plan::plan(&snapshot, &request, client, &request_id) {
                    Ok(plan) => plan,
                    Err(refusal) => {
                        let settings = &snapshot.config().proxy;
                        return this.refuse(refusal, request.uri(), log_on, settings, finish);
                    }
                };
                this.begin(current, &plan, &request, &mut finish, log_on);
                plan
            };
            let upstream = &snapshot.upstreams[upstream_id];
            let asked = upgrade;
            let upgrade = asked.is_some();
            let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
            let (mut parts, body) = request.into_parts();
            let origin = Origin {
                request_id: &request_id,
                client,
                over_tls: this.over_tls,
                upgrade,
                trace: finish.trace,
            };
            let current = Current {
                forwarding: plan::forwarding_of(route),
                ..current
            };
            let target = rewritten.unwrap_or(path_and_query);
            let edits = &current.forwarding.request_headers;
            request::for_upstream(&mut parts, target, host, upstream, origin, edits);
            // Rare paths are boxed: an awaited future is stored inline in this one, and this
            // one is moved (copied) for every request, whatever path it takes.
            let exchanged = match body_policy {
                BodyPolicy::TooLarge { limit } => Err(ProxyError::Body(BodyFault::TooLarge { limit })),
                BodyPolicy::BufferForMirror { limit } => {
                    let route = &finish.route;
                    Box::pin(this.send_mirrored(current, upstream, (parts, body), limit, mirror, route)).await
                }
                BodyPolicy::BufferForFallback(fallback) => {
                    let sent = this.send_with_fallback(current, upstream_id, (parts, body), fallback, &mut finish);
                    Box::pin(sent).await
                }
                BodyPolicy::Stream { limit } => {
                    // No body (most GETs): nothing to stream, nothing that can fail on the client's
                    // side. One exchange below for both: each awaited site is its own kilobytes
                    // in this state machine.
                    let (body, fault) = if body.is_end_stream() && !upgrade {
                        (RequestBody::Buffered(None), None)
                    } else {
                        let fault = Arc::new(BodyWatch::default());
                        let settings = &snapshot.config().proxy;
                        let streaming = Box::pin(RequestBody::streaming(body, limit, settings, fault.clone()));
                        match streaming.await {
                            Ok(body) => (body, Some(fault)),
                            Err(fault) => return ProxyError::Body(fault).into_response(settings, finish),
                        }
                    };
                    let request = Request::from_parts(parts, body);
                    let host_policy = current.forwarding.host;
                    match this
                        .exchange(upstream, request, &request_id, &finish.route, host_policy)
                        .await
                    {
                        Ok(exchange) => Ok(Exchanged::plain(exchange, upstream)),
                        Err(kind) => Err(match fault.as_deref().and_then(BodyWatch::fault) {
                            // The client's body failed, not the upstream: answer for that.
                            Some(&fault) => ProxyError::Body(fault),
                            None => ProxyError::upstream(kind, &upstream.name),
                        }),
                    }
                }
            };
            match exchanged {
                Ok(exchanged) if switches_unasked(&exchanged.response, asked.as_ref()) => {
                    // Dropped: the connection, switched, is closed, never pooled.
                    drop(exchanged);
                    let settings = &snapshot.config().proxy;
                    refuse_switch(this, &upstream.name, &request_id, asked.as_ref(), settings, finish)
                }
                Ok(exchanged) => this.respond(current, upstream_id, exchanged, client_upgrade, finish),
                Err(error) => error.into_response(&snapshot.config().proxy, finish),
            }
        }
    }
}

/// Whether `response` switches protocols to another than the one the client asked for
/// (`asked`). A 101 to a request that asked for no upgrade is the executor's to refuse.
fn switches_unasked<B>(response: &Response<B>, asked: Option<&HeaderValue>) -> bool {
    response.status() == StatusCode::SWITCHING_PROTOCOLS
        && asked.is_some_and(|asked| {
            !asked
                .to_str()
                .is_ok_and(|asked| crate::headers::switches_to(response.headers(), asked))
        })
}

/// The answer to a 101 that switches to another protocol than the client asked for: a
/// 502 naming the upstream, counted as `kind="protocol"` and logged.
fn refuse_switch(
    this: &Executor,
    upstream: &std::sync::Arc<str>,
    request_id: &HeaderValue,
    asked: Option<&HeaderValue>,
    settings: &crate::config::ProxySettings,
    finish: Box<body::Finish>,
) -> Response<ResponseBody> {
    let kind = error::UpstreamErrorKind::Protocol;
    this.metrics
        .upstream_errors
        .with_label_values(&[upstream, kind.as_str()])
        .inc();
    tracing::warn!(
        request_id = request_id.to_str().unwrap_or("-"),
        upstream = &**upstream,
        asked = asked.and_then(|a| a.to_str().ok()).unwrap_or("-"),
        "upstream switched to another protocol than the client asked for; not passed on (502)"
    );
    ProxyError::upstream(kind, upstream).into_response(settings, finish)
}

//! The decision on one request, made before anything is sent: a pure, synchronous function
//! of the snapshot and the request head.
//!
//! [`plan`] refuses what must not be forwarded (CONNECT, ambiguous framing or head, an
//! unsafe path), routes on the normalised path, and asks each migration feature for its
//! decision: the canary side ([`CanarySplit::side`](crate::migration::canary::CanarySplit::side)),
//! the fallback ([`Fallback::plan`]), the mirror
//! ([`ShadowRoute::admit`](crate::migration::shadow::ShadowRoute::admit)); from those it
//! derives what happens to the body. It does no IO, awaits nothing and counts nothing: the
//! executor carries out the effects the plan implies (counters, the ledger, the recording).
//! The only state it touches is the mirror slot an admitted request takes, which goes
//! back when the plan is dropped.
//!
//! New request-path decisions are fields of [`Plan`], decided here.

use std::borrow::Cow;
use std::net::SocketAddr;

use http::header::HeaderValue;
use http::uri::PathAndQuery;
use http::{Method, Request, Uri};
use prometheus::Histogram;

use super::error::Refusal;
use crate::headers;
use crate::metrics::PerWorker;
use crate::migration::canary::Side;
use crate::migration::fallback::{Fallback, FallbackPlan};
use crate::migration::shadow::Admission;
use crate::path::{PathError, normalize_path};
use crate::server::conn::guard;
use crate::state::{Route, Snapshot, UpstreamId};

/// What to do with one request.
#[derive(Debug)]
pub struct Plan<'s> {
    /// The matched route; `None` when no route matched (the default upstream serves it).
    pub route: Option<&'s Route>,
    /// On a canary route: the side the request was placed on.
    pub canary: Option<Side>,
    /// The upstream the request is sent to first.
    pub upstream: UpstreamId,
    /// The duration histogram of the route and that upstream.
    pub duration: &'s PerWorker<Histogram>,
    /// What happens if the new upstream fails (or is out of service).
    pub fallback: FallbackPlan<'s>,
    /// Whether a copy goes to the new upstream (with its slot when admitted).
    pub mirror: Admission<'s>,
    /// What happens to the request body.
    pub body: BodyPolicy<'s>,
    /// Whether the request is offered to the traffic recording (`[record]`).
    pub record: bool,
    /// The target the upstream gets: the normalised path and the query, in origin form
    /// (an absolute-form target is routed by its path only: the host it names is never
    /// contacted).
    pub path_and_query: PathAndQuery,
    /// The request's `Host`, as [`guard::check`] found it.
    pub host: Option<HeaderValue>,
    /// Whether the client asks for a protocol upgrade.
    pub upgrade: bool,
}

/// What happens to a request body.
#[derive(Debug, Clone, Copy)]
pub enum BodyPolicy<'s> {
    /// Streamed to the upstream as it arrives, under the route's `max_body` if it has one.
    Stream {
        /// The route's `max_body`.
        limit: Option<u64>,
    },
    /// Buffered (at most `limit` bytes) so that it can also go to the mirror.
    BufferForMirror {
        /// The route's shadow `max_body`.
        limit: usize,
    },
    /// Buffered (at most the fallback's `max_body`) so that it can be replayed to legacy.
    BufferForFallback(&'s Fallback),
    /// Refused with 413 from its declared length: more than the route's `max_body`.
    TooLarge {
        /// The route's `max_body`.
        limit: u64,
    },
}

/// Decides what to do with `request` from `client` (see the module docs). `request_id`
/// is the key of per-request samples and of non-sticky canary placement.
pub fn plan<'s, B>(
    snapshot: &'s Snapshot,
    request: &Request<B>,
    client: SocketAddr,
    request_id: &HeaderValue,
) -> Result<Plan<'s>, Refusal> {
    if request.method() == Method::CONNECT {
        return Err(Refusal::Connect);
    }
    // The body length the head declares (read before the hop-by-hop headers, Transfer-Encoding
    // among them, are removed).
    let guard::Checked { declared_length, host } = guard::check(request)?;
    let path_and_query = upstream_target(request.uri())?;
    let upgrade = headers::is_upgrade_request(request.headers());
    let record = snapshot.recorder.is_some();
    let Some(matched) = snapshot.table.routes.lookup(request.method(), path_and_query.path()) else {
        let upstream = snapshot.default_upstream;
        return Ok(Plan {
            route: None,
            canary: None,
            upstream,
            duration: &snapshot.upstreams[upstream].default_duration,
            fallback: FallbackPlan::None,
            mirror: Admission::No,
            body: BodyPolicy::Stream { limit: None },
            record,
            path_and_query,
            host,
            upgrade,
        });
    };
    let route = &snapshot.routes[matched.route];
    let (canary, upstream, duration) = match &route.canary {
        Some(split) => match split.side(&route.name, request.headers(), client.ip(), request_id.as_bytes()) {
            Side::New => (Some(Side::New), split.new, &split.new_duration),
            Side::Legacy => (Some(Side::Legacy), route.upstream, &route.duration),
        },
        None => (None, route.upstream, &route.duration),
    };
    let new_unavailable = || snapshot.upstreams[upstream].health.unavailable().is_some();
    let fallback = Fallback::plan(
        route.fallback.as_ref(),
        upstream,
        new_unavailable,
        upgrade,
        declared_length,
    );
    let (upstream, duration) = match fallback {
        FallbackPlan::ToLegacyNow(fallback) => (fallback.legacy, &fallback.legacy_duration),
        _ => (upstream, duration),
    };
    let (body, mirror, fallback) = match (route.max_body, declared_length) {
        (Some(limit), Some(length)) if length > limit => {
            (BodyPolicy::TooLarge { limit }, Admission::No, without_replay(fallback))
        }
        _ => {
            let mirror = match &route.shadow {
                Some(shadow) if !upgrade => {
                    shadow.admit(&route.name, request.method(), declared_length, request_id.as_bytes())
                }
                _ => Admission::No,
            };
            match (&mirror, fallback) {
                (Admission::Admitted(shadow, _), _) => {
                    let limit = shadow.config.max_body;
                    (BodyPolicy::BufferForMirror { limit }, mirror, without_replay(fallback))
                }
                (_, FallbackPlan::Replay(replay)) => (BodyPolicy::BufferForFallback(replay), mirror, fallback),
                _ => (BodyPolicy::Stream { limit: route.max_body }, mirror, fallback),
            }
        }
    };
    Ok(Plan {
        route: Some(route),
        canary,
        upstream,
        duration,
        fallback,
        mirror,
        body,
        record,
        path_and_query,
        host,
        upgrade,
    })
}

/// A fallback plan whose body is not buffered: no replay.
fn without_replay(fallback: FallbackPlan<'_>) -> FallbackPlan<'_> {
    match fallback {
        FallbackPlan::Replay(_) => FallbackPlan::None,
        other => other,
    }
}

/// The path and query the upstream gets. An already-normal path (the common case) reuses
/// the request's own, without copying or re-parsing it.
fn upstream_target(uri: &Uri) -> Result<PathAndQuery, Refusal> {
    match normalize_path(uri.path())? {
        Cow::Borrowed(_) => Ok(uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"))),
        Cow::Owned(path) => {
            let rebuilt = match uri.query() {
                Some(query) => PathAndQuery::try_from(format!("{path}?{query}")),
                None => PathAndQuery::try_from(path),
            };
            // Only malformed input can fail to re-parse after normalisation.
            rebuilt.map_err(|_| Refusal::BadPath(PathError::BadPercentEncoding))
        }
    }
}

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
//! back when the plan is dropped. (A path refused because its `;params` change its route
//! is logged at debug level here, the one place that knows both routes' names.)
//!
//! New request-path decisions are fields of [`Plan`], decided here.

use std::borrow::Cow;
use std::net::SocketAddr;

use http::header::HeaderValue;
use http::uri::PathAndQuery;
use http::{Method, Request, Uri, Version};
use prometheus::Histogram;

use super::error::Refusal;
use crate::config::{AS_ROUTED, Forwarding};
use crate::headers;
use crate::metrics::PerWorker;
use crate::migration::canary::Side;
use crate::migration::fallback::{Fallback, FallbackPlan};
use crate::migration::shadow::Admission;
use crate::path::{PathError, normalize_path};
use crate::router::{AmbiguousPath, RouteId};
use crate::server::conn::guard;
use crate::state::{Route, Snapshot};
use crate::upstream::UpstreamId;

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
    /// The normalised path and the query, in origin form, as routed, logged and recorded
    /// (an absolute-form target is routed by its path only: the host it names is never
    /// contacted). The upstream gets it unless the route rewrites it ([`Plan::rewritten`]).
    pub path_and_query: PathAndQuery,
    /// The request's `Host`, as [`guard::check`] found it.
    pub host: Option<HeaderValue>,
    /// The protocol the request switches to, when it asks for an upgrade its route (or, with
    /// no route, the defaults) allows: only then is it forwarded as an upgrade.
    pub upgrade: Option<HeaderValue>,
    /// The target the route's `strip_prefix` or `rewrite` makes of `path_and_query`, which
    /// the upstream gets instead (under its URL's base path); `None` (no allocation) when
    /// the route rewrites nothing.
    pub rewritten: Option<PathAndQuery>,
}

impl Plan<'_> {
    /// The target the upstream gets, before its URL's base path.
    pub fn upstream_target(&self) -> &PathAndQuery {
        self.rewritten.as_ref().unwrap_or(&self.path_and_query)
    }

    /// How the request and its answer are forwarded: its route's settings, or (no route)
    /// as routed.
    pub fn forwarding(&self) -> &Forwarding {
        forwarding_of(self.route)
    }
}

/// The forwarding settings of `route`; as routed when no route matched.
#[inline]
pub fn forwarding_of(route: Option<&Route>) -> &Forwarding {
    route.map_or(&AS_ROUTED, |route| &route.forwarding)
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
pub fn plan<'s, B: http_body::Body>(
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
    // An HTTP/2 request whose stream ended with its head has no body, however it declares.
    let declared_length = declared_length.or_else(|| request.body().is_end_stream().then_some(0));
    let path_and_query = upstream_target(request.uri())?;
    let asks_upgrade = headers::is_upgrade_request(request.headers());
    let record = snapshot.recorder.is_some();
    let matched = snapshot
        .table
        .routes
        .route(request.method(), path_and_query.path())
        .map_err(|ambiguous| ambiguous_path(snapshot, ambiguous))?;
    let Some(matched) = matched else {
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
            upgrade: asks_upgrade.then(|| permitted_upgrade(request, None)).flatten(),
            rewritten: None,
        });
    };
    let route = &snapshot.routes[matched.route];
    let upgrade = asks_upgrade.then(|| permitted_upgrade(request, Some(route))).flatten();
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
        upgrade.is_some(),
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
                Some(shadow) if upgrade.is_none() => {
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
        host,
        upgrade,
        rewritten: route.forwarding.rewrite.apply(&path_and_query),
        path_and_query,
    })
}

/// The protocol `request` may switch to: the one its `Upgrade` names, when the request is
/// HTTP/1.1 and `route` (the defaults when no route matched) allows it. Never `h2c`.
fn permitted_upgrade<B>(request: &Request<B>, route: Option<&Route>) -> Option<HeaderValue> {
    if request.version() != Version::HTTP_11 {
        return None;
    }
    let protocol = crate::headers::upgrade_protocol(request.headers())?;
    let name = crate::headers::protocol_name(protocol);
    let allowed = match route {
        Some(route) => route.upgrades.iter().any(|allowed| allowed.eq_ignore_ascii_case(name)),
        None => crate::config::DEFAULT_UPGRADES
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name)),
    };
    (allowed && !name.eq_ignore_ascii_case("h2c")).then(|| HeaderValue::from_str(protocol).ok())?
}

/// The refusal of a path whose `;params` decide its route, with a log line naming both
/// routes (the client's answer names none).
#[cold]
fn ambiguous_path(snapshot: &Snapshot, ambiguous: AmbiguousPath) -> Refusal {
    let name = |route: Option<RouteId>| route.map_or("default", |id| &*snapshot.routes[id].name);
    tracing::debug!(
        as_sent = name(ambiguous.as_sent),
        without_params = %ambiguous.without_params,
        without_params_route = name(ambiguous.without_params_route),
        "refused a path whose ;parameters change its route"
    );
    Refusal::AmbiguousPath {
        without_params: ambiguous.without_params,
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::migration::canary::{bucket, goes_to_new};
    use crate::path::PathError;
    use crate::server::conn::guard::Violation;
    use crate::table::Table;

    /// A request body nothing is known of yet: not known to have ended (as a body still
    /// arriving on a connection is); its head says what length it declares.
    #[derive(Debug)]
    pub(crate) struct Unended;

    impl http_body::Body for Unended {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            std::task::Poll::Ready(None)
        }
    }

    /// Upstreams `legacy` (the default), `new`, and `down`, which one failure ejects for an
    /// hour; a route per stage and feature.
    const TABLE: &str = r#"
[proxy]
listen = "127.0.0.1:8000"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:1"
[upstreams.new]
url = "http://127.0.0.1:2"
[upstreams.down]
url = "http://127.0.0.1:3"
outlier = { consecutive_failures = 1, base_ejection = "1h", max_ejection = "2h" }

[[routes]]
name = "legacy-stage"
path = "/legacy/"
new = "new"
[[routes]]
name = "new-stage"
path = "/new/"
stage = "new"
new = "new"
[[routes]]
name = "exact"
exact = "/exact"
stage = "new"
new = "new"
[[routes]]
name = "reads"
path = "/reads/"
methods = ["GET"]
stage = "new"
new = "new"
[[routes]]
name = "canary-all"
path = "/canary/all/"
stage = "canary"
new = "new"
canary = { percent = 100 }
[[routes]]
name = "canary-none"
path = "/canary/none/"
stage = "canary"
new = "new"
canary = { percent = 0 }
[[routes]]
name = "canary-sticky"
path = "/canary/sticky/"
stage = "canary"
new = "new"
canary = { percent = 50, sticky = "header:x-user" }
[[routes]]
name = "shadow"
path = "/shadow/"
stage = "shadow"
new = "new"
shadow = { max_inflight = 1, max_body = 8 }
[[routes]]
name = "shadow-writes"
path = "/shadow-writes/"
stage = "shadow"
new = "new"
shadow = { unsafe_methods = true }
[[routes]]
name = "shadow-unsampled"
path = "/shadow-unsampled/"
stage = "shadow"
new = "new"
shadow = { sample = 0.0 }
[[routes]]
name = "fallback"
path = "/fallback/"
stage = "new"
new = "new"
fallback = true
fallback_max_body = 64
[[routes]]
name = "fallback-down"
path = "/fallback-down/"
stage = "new"
new = "down"
fallback = true
[[routes]]
name = "limited"
path = "/limited/"
max_body = 10
"#;

    fn snapshot(extra: &str) -> Snapshot {
        let table = Table::parse("routes.toml", &format!("{TABLE}{extra}")).unwrap();
        let snapshot = Snapshot::build(table, None, &Metrics::new().unwrap(), 1).unwrap();
        // Eject `down`: one failure does it.
        let down = snapshot.upstreams.iter().find(|u| &*u.name == "down").unwrap();
        let ticket = down.health.admit().unwrap();
        down.health.record(ticket, false);
        snapshot
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request<Unended> {
        let mut request = Request::builder().method(method).uri(target);
        if !headers.iter().any(|(name, _)| *name == "host") {
            request = request.header("host", "app.example");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Unended).unwrap()
    }

    fn client() -> SocketAddr {
        "192.0.2.7:5000".parse().unwrap()
    }

    /// A plan in one line: `route upstream canary fallback mirror body [record] [upgrade] target`.
    fn summary(snapshot: &Snapshot, plan: &Plan<'_>) -> String {
        let route = plan.route.map_or("-", |r| &*r.name);
        let upstream = &*snapshot.upstreams[plan.upstream].name;
        let canary = match plan.canary {
            None => "-",
            Some(Side::New) => "canary:new",
            Some(Side::Legacy) => "canary:legacy",
        };
        let fallback = match plan.fallback {
            FallbackPlan::None => "-".to_owned(),
            FallbackPlan::ToLegacyNow(f) => format!("to-legacy-now:{}", snapshot.upstreams[f.legacy].name),
            FallbackPlan::Replay(f) => format!("replay:{}", snapshot.upstreams[f.legacy].name),
        };
        let mirror = match &plan.mirror {
            Admission::No => "-".to_owned(),
            Admission::Skipped(_) => "skipped".to_owned(),
            Admission::Dropped(_) => "dropped".to_owned(),
            Admission::Admitted(shadow, _) => format!("mirror:{}", snapshot.upstreams[shadow.new].name),
        };
        let body = match plan.body {
            BodyPolicy::Stream { limit: None } => "stream".to_owned(),
            BodyPolicy::Stream { limit: Some(limit) } => format!("stream<={limit}"),
            BodyPolicy::BufferForMirror { limit } => format!("buffer-for-mirror<={limit}"),
            BodyPolicy::BufferForFallback(f) => format!("buffer-for-fallback<={}", f.max_body),
            BodyPolicy::TooLarge { limit } => format!("413>{limit}"),
        };
        let mut line = format!("{route} {upstream} {canary} {fallback} {mirror} {body}");
        if plan.record {
            line.push_str(" record");
        }
        if plan.upgrade.is_some() {
            line.push_str(" upgrade");
        }
        line.push(' ');
        line.push_str(plan.path_and_query.as_str());
        if let Some(rewritten) = &plan.rewritten {
            line.push_str(" -> ");
            line.push_str(rewritten.as_str());
        }
        line
    }

    fn planned(snapshot: &Snapshot, method: &str, target: &str, headers: &[(&str, &str)]) -> String {
        let id = HeaderValue::from_static("request-1");
        match plan(snapshot, &request(method, target, headers), client(), &id) {
            Ok(plan) => summary(snapshot, &plan),
            Err(refusal) => format!("refused: {refusal:?}"),
        }
    }

    /// Method, target, headers, and the plan's [`summary`].
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

    const CHUNKED: (&str, &str) = ("transfer-encoding", "chunked");
    const UPGRADE: [(&str, &str); 2] = [("connection", "upgrade"), ("upgrade", "websocket")];
    /// An upgrade no route allows: the request is a plain one (replayed, mirrored) and goes
    /// upstream without its `Upgrade`.
    const FORBIDDEN_UPGRADE: [(&str, &str); 2] = [("connection", "upgrade"), ("upgrade", "x-tunnel")];

    #[test]
    fn routes_stages_fallbacks_mirrors_and_bodies() {
        let snapshot = snapshot("");
        let length = |n: &'static str| ("content-length", n);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // No route: the default upstream, streamed, no limit.
            ("GET", "/elsewhere?q=1", &[], "- legacy - - - stream /elsewhere?q=1"),
            // Stages legacy and new; prefix, exact and method-restricted routes.
            ("GET", "/legacy/x", &[], "legacy-stage legacy - - - stream /legacy/x"),
            ("POST", "/new/x", &[length("3")], "new-stage new - - - stream /new/x"),
            ("GET", "/exact", &[], "exact new - - - stream /exact"),
            ("GET", "/exact/more", &[], "- legacy - - - stream /exact/more"),
            ("GET", "/reads/1", &[], "reads new - - - stream /reads/1"),
            ("DELETE", "/reads/1", &[], "- legacy - - - stream /reads/1"),
            // Routed on the normalised path, which the upstream gets with the query.
            ("GET", "/new/a/../b//c?q=1", &[], "new-stage new - - - stream /new/b/c?q=1"),
            // Absolute-form: routed by its path; the host it names is never contacted.
            ("GET", "http://elsewhere.example/new/x", &[], "new-stage new - - - stream /new/x"),
            // Canary at 100 % and 0 %.
            ("GET", "/canary/all/", &[], "canary-all new canary:new - - stream /canary/all/"),
            ("GET", "/canary/none/", &[], "canary-none legacy canary:legacy - - stream /canary/none/"),
            // Fallback: a body of known size within fallback_max_body is buffered for a replay.
            ("GET", "/fallback/", &[], "fallback new - replay:legacy - buffer-for-fallback<=64 /fallback/"),
            ("POST", "/fallback/", &[length("64")], "fallback new - replay:legacy - buffer-for-fallback<=64 /fallback/"),
            // ... anything else streams, not replayed.
            ("POST", "/fallback/", &[length("65")], "fallback new - - - stream /fallback/"),
            ("POST", "/fallback/", &[CHUNKED], "fallback new - - - stream /fallback/"),
            ("GET", "/fallback/", &UPGRADE, "fallback new - - - stream upgrade /fallback/"),
            ("GET", "/fallback/", &FORBIDDEN_UPGRADE, "fallback new - replay:legacy - buffer-for-fallback<=64 /fallback/"),
            // New out of service: legacy at once, any body.
            ("POST", "/fallback-down/", &[CHUNKED], "fallback-down legacy - to-legacy-now:legacy - stream /fallback-down/"),
            // Shadow: safe methods mirrored with a buffered body; writes only when opted in.
            ("GET", "/shadow/", &[], "shadow legacy - - mirror:new buffer-for-mirror<=8 /shadow/"),
            ("HEAD", "/shadow/", &[length("8")], "shadow legacy - - mirror:new buffer-for-mirror<=8 /shadow/"),
            ("POST", "/shadow/", &[length("3")], "shadow legacy - - - stream /shadow/"),
            ("POST", "/shadow-writes/", &[length("3")], "shadow-writes legacy - - mirror:new buffer-for-mirror<=65536 /shadow-writes/"),
            // Bodies over the shadow cap, or of unknown size, are skipped.
            ("GET", "/shadow/", &[length("9")], "shadow legacy - - skipped stream /shadow/"),
            ("GET", "/shadow/", &[CHUNKED], "shadow legacy - - skipped stream /shadow/"),
            // Not sampled, or an upgrade: not a candidate.
            ("GET", "/shadow-unsampled/", &[], "shadow-unsampled legacy - - - stream /shadow-unsampled/"),
            ("GET", "/shadow/", &UPGRADE, "shadow legacy - - - stream upgrade /shadow/"),
            // max_body: 413 from the declared length; a chunked body is counted as it streams.
            ("POST", "/limited/", &[length("11")], "limited legacy - - - 413>10 /limited/"),
            ("POST", "/limited/", &[length("10")], "limited legacy - - - stream<=10 /limited/"),
            ("POST", "/limited/", &[CHUNKED], "limited legacy - - - stream<=10 /limited/"),
            // Refused before routing.
            ("CONNECT", "app.example:443", &[], "refused: Connect"),
            ("POST", "/new/", &[length("3"), CHUNKED], "refused: Malformed(LengthAndChunked)"),
            ("GET", "/new/", &[("host", "a"), ("host", "b")], "refused: Malformed(BadHost)"),
            ("get", "/new/", &[], "refused: Malformed(Method)"),
            ("GET", "/new/%2fetc", &[], "refused: BadPath(EncodedSlash)"),
            ("GET", "/../etc", &[], "refused: BadPath(ClimbsAboveRoot)"),
            // `;params` that change the route (what Tomcat, Jetty and Spring strip) are refused;
            // ones that do not are forwarded as sent; `%3B` is not a delimiter.
            ("GET", "/new;x/y", &[], r#"refused: AmbiguousPath { without_params: "/new/y" }"#),
            ("GET", "/;x/new/y", &[], r#"refused: AmbiguousPath { without_params: "/new/y" }"#),
            ("GET", "/exact;v=1", &[], r#"refused: AmbiguousPath { without_params: "/exact" }"#),
            ("GET", "/legacy;x/y", &[], r#"refused: AmbiguousPath { without_params: "/legacy/y" }"#),
            ("GET", "/new/x;jsessionid=1?q=1", &[], "new-stage new - - - stream /new/x;jsessionid=1?q=1"),
            ("GET", "/elsewhere;x/y", &[], "- legacy - - - stream /elsewhere;x/y"),
            ("GET", "/new%3Bx/y", &[], "- legacy - - - stream /new%3Bx/y"),
            ("GET", "/new%3bx/y", &[], "- legacy - - - stream /new%3Bx/y"),
            // Per method: without parameters `/reads/` is for GET only.
            ("DELETE", "/reads;x/1", &[], "- legacy - - - stream /reads;x/1"),
            ("GET", "/reads;x/1", &[], r#"refused: AmbiguousPath { without_params: "/reads/1" }"#),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(method, target, headers, expected)| {
                let got = planned(&snapshot, method, target, headers);
                (got != *expected).then(|| format!("{method} {target} {headers:?}\n  got  {got}\n  want {expected}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// HTTP/2 heads need not declare a length: a body of unknown length is never buffered
    /// (a fallback would not replay it, a mirror skips it), and a stream that ended with
    /// its head has none.
    #[test]
    fn an_http2_body_without_a_length_is_of_unknown_length_unless_the_stream_ended() {
        let snapshot = snapshot("");
        let id = HeaderValue::from_static("request-1");
        let h2 = |method: &str, target: &str, length: Option<&str>| {
            let mut request = Request::builder()
                .method(method)
                .uri(target)
                .version(http::Version::HTTP_2);
            if let Some(length) = length {
                request = request.header("content-length", length);
            }
            request
        };
        let summarise = |request: &Request<_>| summary(&snapshot, &plan(&snapshot, request, client(), &id).unwrap());
        let unknown = h2("POST", "http://app.example/fallback/x", None).body(Unended).unwrap();
        assert_eq!(summarise(&unknown), "fallback new - - - stream /fallback/x");
        let declared = h2("POST", "http://app.example/fallback/x", Some("10"))
            .body(Unended)
            .unwrap();
        assert_eq!(
            summarise(&declared),
            "fallback new - replay:legacy - buffer-for-fallback<=64 /fallback/x"
        );
        let unknown = h2("GET", "http://app.example/shadow/x", None).body(Unended).unwrap();
        assert_eq!(summarise(&unknown), "shadow legacy - - skipped stream /shadow/x");
        let ended = h2("GET", "http://app.example/shadow/x", None)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let planned = plan(&snapshot, &ended, client(), &id).unwrap();
        assert_eq!(
            summary(&snapshot, &planned),
            "shadow legacy - - mirror:new buffer-for-mirror<=8 /shadow/x"
        );
    }

    #[test]
    fn refusals_are_typed() {
        let snapshot = snapshot("");
        let id = HeaderValue::from_static("request-1");
        let refused = |request: Request<Unended>| plan(&snapshot, &request, client(), &id).err();
        assert_eq!(
            refused(request("CONNECT", "app.example:443", &[])),
            Some(Refusal::Connect)
        );
        let mut no_host = request("GET", "/new/", &[]);
        no_host.headers_mut().remove("host");
        assert_eq!(refused(no_host), Some(Refusal::Malformed(Violation::MissingHost)));
        assert_eq!(
            refused(request("GET", "/a\\b", &[])),
            Some(Refusal::BadPath(PathError::Backslash))
        );
    }

    #[test]
    fn recording_follows_the_record_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.jsonl");
        let recording = snapshot(&format!(
            "\n[record]\npath = {:?}\nsample = 1.0\n",
            path.display().to_string()
        ));
        assert_eq!(
            planned(&recording, "GET", "/new/x", &[]),
            "new-stage new - - - stream record /new/x"
        );
        assert_eq!(
            planned(&recording, "GET", "/other", &[]),
            "- legacy - - - stream record /other"
        );
        assert_eq!(planned(&recording, "CONNECT", "a:1", &[]), "refused: Connect");
        assert_eq!(
            planned(&snapshot(""), "GET", "/new/x", &[]),
            "new-stage new - - - stream /new/x"
        );
    }

    #[test]
    fn sticky_canary_users_stay_on_their_side_and_both_sides_are_used() {
        let snapshot = snapshot("");
        let mut sides = [0, 0];
        for user in 0..40 {
            let user = format!("user-{user}");
            let to_new = goes_to_new(bucket("canary-sticky", user.as_bytes()), 5000);
            let expected = if to_new {
                sides[1] += 1;
                "canary-sticky new canary:new - - stream /canary/sticky/"
            } else {
                sides[0] += 1;
                "canary-sticky legacy canary:legacy - - stream /canary/sticky/"
            };
            // Whatever the request id, the user's key decides.
            for id in ["a", "b", "c"] {
                let request = request("GET", "/canary/sticky/", &[("x-user", &user)]);
                let plan = plan(&snapshot, &request, client(), &HeaderValue::from_static(id)).unwrap();
                assert_eq!(summary(&snapshot, &plan), expected, "{user} with id {id}");
            }
        }
        assert!(sides[0] > 0 && sides[1] > 0, "40 users all on one side: {sides:?}");
        // Deciding counts nothing: the executor counts the side.
        let route = snapshot.routes.iter().find(|r| &*r.name == "canary-sticky").unwrap();
        let split = route.canary.as_ref().unwrap();
        assert_eq!((split.to_new.get(), split.to_legacy.get()), (0, 0));
    }

    #[test]
    fn a_mirror_holds_its_slot_until_its_plan_is_dropped() {
        let snapshot = snapshot("");
        let id = HeaderValue::from_static("request-1");
        let get = request("GET", "/shadow/", &[]);
        let first = plan(&snapshot, &get, client(), &id).unwrap();
        assert!(matches!(first.mirror, Admission::Admitted(..)));
        // max_inflight = 1: the next one finds no free slot; its body streams.
        assert_eq!(
            planned(&snapshot, "GET", "/shadow/", &[]),
            "shadow legacy - - dropped stream /shadow/"
        );
        drop(first);
        assert_eq!(
            planned(&snapshot, "GET", "/shadow/", &[]),
            "shadow legacy - - mirror:new buffer-for-mirror<=8 /shadow/"
        );
    }

    #[test]
    fn the_route_rewrites_the_target_and_logs_the_routed_one() {
        let extra = "[[routes]]\nname = \"stripped\"\npath = \"/api/users/\"\nstrip_prefix = true\n\
                     [[routes]]\nname = \"moved\"\npath = \"/old/\"\nrewrite = \"/new-home/\"\n\
                     [[routes]]\nname = \"items\"\npath = \"/v2/items/{id}\"\nrewrite = \"/items/{id}\"\nhost = \"upstream\"\n";
        let snapshot = snapshot(extra);
        #[rustfmt::skip]
        let cases = [
            ("/api/users/7?x=1", "stripped legacy - - - stream /api/users/7?x=1 -> /7?x=1"),
            ("/api/users", "stripped legacy - - - stream /api/users -> /"),
            ("/api/users/a%20b", "stripped legacy - - - stream /api/users/a%20b -> /a%20b"),
            ("/old/a/../b", "moved legacy - - - stream /old/b -> /new-home/b"),
            ("/v2/items/42?full", "items legacy - - - stream /v2/items/42?full -> /items/42?full"),
            // No rewrite: nothing made.
            ("/legacy/x", "legacy-stage legacy - - - stream /legacy/x"),
            ("/elsewhere", "- legacy - - - stream /elsewhere"),
        ];
        for (target, expected) in cases {
            assert_eq!(planned(&snapshot, "GET", target, &[]), expected, "{target}");
        }
        let id = HeaderValue::from_static("request-1");
        let request = request("GET", "/v2/items/1", &[]);
        let items = plan(&snapshot, &request, client(), &id).unwrap();
        assert_eq!(items.forwarding().host, crate::config::HostPolicy::Upstream);
        assert_eq!(items.upstream_target().as_str(), "/items/1");
        let other = request_plain(&snapshot);
        assert!(other.forwarding().is_default());
    }

    fn request_plain(snapshot: &Snapshot) -> Plan<'_> {
        let id = HeaderValue::from_static("request-1");
        plan(snapshot, &request("GET", "/elsewhere", &[]), client(), &id).unwrap()
    }

    #[test]
    fn a_413_takes_no_mirror_slot_and_no_replay() {
        let extra = "[[routes]]\nname = \"both\"\npath = \"/both/\"\nstage = \"shadow\"\nnew = \"new\"\n\
                     max_body = 4\nshadow = { max_inflight = 1, unsafe_methods = true }\n";
        let snapshot = snapshot(extra);
        assert_eq!(
            planned(&snapshot, "POST", "/both/", &[("content-length", "5")]),
            "both legacy - - - 413>4 /both/"
        );
        let route = snapshot.routes.iter().find(|r| &*r.name == "both").unwrap();
        assert_eq!(route.mirrors_in_flight.get(), 0);
    }
}

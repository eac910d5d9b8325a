//! Fallback: a request the new upstream fails is replayed to legacy (`fallback = true`).
//!
//! Two decisions, each with its effect here:
//! - before sending ([`Fallback::plan`]): fallback applies only to requests placed on the new
//!   upstream. When that upstream is out of service (ejected or failing its health check)
//!   the request goes to legacy at once: nothing is buffered and a body of any size can
//!   still be sent (counted with `reason="unavailable"`). Otherwise a body of known size
//!   within the fallback's `max_body` (and no protocol upgrade) is buffered so that it can
//!   be replayed; anything else streams and is not replayed.
//! - after the new upstream's try ([`reason`]): a failure where nothing was sent (refused
//!   connection, TLS, unavailable, saturated) is replayed for any method; a timeout, a
//!   reset, an invalid answer or a 5xx only for idempotent methods (RFC 9110 §9.2.2), since
//!   the new upstream may have acted on the request. [`replayed`] counts and logs the replay.

use http::{HeaderValue, Method};
use prometheus::{Histogram, IntCounterVec};

use crate::metrics::PerWorker;

/// How a route falls back to legacy when its new upstream fails.
#[derive(Debug)]
pub struct Fallback {
    /// The new upstream (fallback applies only to requests sent there).
    pub new: usize,
    /// The legacy upstream.
    pub legacy: usize,
    /// Duration histogram for this route and its legacy upstream.
    pub legacy_duration: PerWorker<Histogram>,
    /// The largest request body buffered for a replay.
    pub max_body: usize,
}

/// What happens to a request if its new upstream fails.
#[derive(Debug, Clone, Copy)]
pub enum FallbackPlan<'s> {
    /// No replay: the route has no fallback, the request is not on the new upstream, or its
    /// body cannot be kept (unknown or too large, an upgrade).
    None,
    /// The new upstream is out of service: the request goes to this fallback's legacy
    /// upstream at once (counted with `reason="unavailable"`).
    ToLegacyNow(&'s Fallback),
    /// The body is buffered; if the new upstream fails, the request is replayed to legacy.
    Replay(&'s Fallback),
}

impl Fallback {
    /// The plan for a request going to `upstream` on a route with `fallback`.
    /// `new_unavailable` says whether that upstream is out of service (asked only when it
    /// matters); `declared_length` is the body length the head declares.
    pub fn plan(
        fallback: Option<&Fallback>,
        upstream: usize,
        new_unavailable: impl FnOnce() -> bool,
        upgrade: bool,
        declared_length: Option<u64>,
    ) -> FallbackPlan<'_> {
        match fallback {
            Some(fallback) if fallback.new == upstream => {
                if new_unavailable() {
                    FallbackPlan::ToLegacyNow(fallback)
                } else if !upgrade && declared_length.is_some_and(|length| length <= fallback.max_body as u64) {
                    FallbackPlan::Replay(fallback)
                } else {
                    FallbackPlan::None
                }
            }
            _ => FallbackPlan::None,
        }
    }
}

impl FallbackPlan<'_> {
    /// The effect of the plan before sending: a request sent to legacy at once is counted.
    pub fn count(&self, fallbacks: &IntCounterVec, route: &str) {
        if let FallbackPlan::ToLegacyNow(_) = self {
            fallbacks.with_label_values(&[route, "unavailable"]).inc();
        }
    }
}

/// How the new upstream's try went, as far as a fallback cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewTry {
    /// It answered (a 5xx or not).
    Answered {
        /// Whether the status is 5xx.
        server_error: bool,
    },
    /// Not tried: ejected or failing its health check.
    Unavailable,
    /// Not tried: every connection `max_connections` allows stayed busy.
    Saturated,
    /// Nothing was sent: a refused connection or a failed TLS handshake.
    NotSent,
    /// No answer in time.
    TimedOut,
    /// The connection closed before an answer.
    Reset,
    /// Anything else (no valid answer).
    Failed,
}

/// Why a request is replayed to legacy after `new` went this way, or `None` (the new
/// upstream's answer or failure stands). The reason is the `reason` label of
/// `strangler_fallbacks_total`.
pub fn reason(new: NewTry, method: &Method) -> Option<&'static str> {
    let idempotent = is_idempotent(method);
    match new {
        NewTry::Unavailable => Some("unavailable"),
        NewTry::Saturated => Some("saturated"),
        NewTry::NotSent => Some("connect"),
        NewTry::TimedOut if idempotent => Some("timeout"),
        NewTry::Reset if idempotent => Some("reset"),
        NewTry::Failed if idempotent => Some("other"),
        NewTry::Answered { server_error: true } if idempotent => Some("status_5xx"),
        _ => None,
    }
}

/// The effect of a replay: counted and logged.
pub fn replayed(
    fallbacks: &IntCounterVec,
    route: &str,
    reason: &'static str,
    request_id: &HeaderValue,
    upstreams: [&str; 2],
) {
    let [new, legacy] = upstreams;
    fallbacks.with_label_values(&[route, reason]).inc();
    tracing::warn!(
        request_id = request_id.to_str().unwrap_or("-"),
        route,
        new,
        legacy,
        reason,
        "new upstream failed; falling back to legacy"
    );
}

/// Methods that may be sent twice (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_replayed() {
        let cases = [
            (NewTry::Answered { server_error: false }, Method::GET, None),
            (NewTry::Answered { server_error: true }, Method::GET, Some("status_5xx")),
            (NewTry::Answered { server_error: true }, Method::POST, None),
            (NewTry::Unavailable, Method::POST, Some("unavailable")),
            (NewTry::Saturated, Method::POST, Some("saturated")),
            (NewTry::NotSent, Method::POST, Some("connect")),
            (NewTry::TimedOut, Method::PUT, Some("timeout")),
            (NewTry::TimedOut, Method::POST, None),
            (NewTry::Reset, Method::DELETE, Some("reset")),
            (NewTry::Reset, Method::PATCH, None),
            (NewTry::Failed, Method::HEAD, Some("other")),
            (NewTry::Failed, Method::POST, None),
        ];
        for (new, method, expected) in cases {
            assert_eq!(reason(new, &method), expected, "{new:?} {method}");
        }
    }
}

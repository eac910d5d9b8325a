//! Parity evidence: does the new service answer like the legacy one?
//!
//! This module owns the comparison engine that shadow traffic and `strangler parity` are
//! built on: [`compare()`] is a pure, synchronous function over two [`Captured`] responses
//! (and optionally a second legacy answer to the same request, to tell noise from
//! regressions), driven by per-route [`CompareRules`] compiled once per reload from a
//! [`CompareSpec`]. It does no IO, holds no state and never panics on any input.
//!
//! - `rules.rs`: [`CompareSpec`] (serde) → [`CompareRules`] (compiled), with errors that
//!   name the entry;
//! - `compare.rs`: [`compare()`], the walk over status, headers and body, and the noise
//!   model; [`compare_expecting()`] also judges a request against a [`Divergence`];
//! - `divergence.rs`: known, deliberate differences (a corpus line's `expect`, a route's
//!   `compare.divergences`), [`DivergenceSpec`] → [`Divergence`];
//! - `key_order.rs`: `key_order = true`, objects whose keys come in another order;
//! - `window.rs`: how the two values of a [`Diff`] are shown (a window around their first
//!   difference, with its offset); `wire.rs`: JSON with its keys in wire order, for that;
//! - `strangler parity`, which replays a corpus of requests against both sides and reports,
//!   is a command: [`crate::commands::parity`] (IO lives there, not in the comparison).
//!
//! What is compared: the status (pointer `status`), the configured headers (pointer
//! `header:NAME`, all values joined with `", "`), and the body: structurally by JSON
//! Pointer when both bodies are JSON, byte-wise at pointer `""` otherwise.
//!
//! Outcomes: [`Outcome::Match`] when nothing differs; [`Outcome::Noise`] when everything
//! that differs also differed between the two legacy answers (at or below a noisy
//! pointer); [`Outcome::Mismatch`] as soon as one difference lies outside the noise, so a
//! noisy field never hides a regression elsewhere. [`Outcome::Error`] is the caller's to
//! decide (a side failed to answer). With a divergence: [`Outcome::Expected`] when the
//! answers differ exactly as stated and nowhere else, [`Outcome::Resolved`] when they no
//! longer differ (a failure: the list of divergences must stay true), else a mismatch.

mod compare;
mod divergence;
mod key_order;
mod rules;
mod window;
mod wire;

#[cfg(test)]
mod tests;

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};

pub use compare::{MAX_DIFFS, MAX_NOISY, MAX_VALUE_CHARS, compare, compare_expecting};
pub use divergence::{ABSENT_HEADER, Divergence, DivergenceSpec, RouteDivergenceSpec, StatusPair, ValuePair};
pub use rules::{CompareRuleError, CompareRules, CompareSpec, LocationMode, NormalizeSpec, UnorderedArrays};
pub use window::visible;

/// What a [`Diff`] shows for a field, header or element that one side does not have.
pub const ABSENT: &str = "(absent)";

/// What [`redact_headers`] shows instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// One response as it was received, body fully read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Captured {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body (arbitrary bytes).
    pub body: Bytes,
}

impl Captured {
    /// A response with this status, no headers and this body.
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Self {
            status: status.as_u16(),
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }
}

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// No difference.
    Match,
    /// At least one difference outside the noise: a candidate regression.
    Mismatch,
    /// Every difference was at a pointer where legacy also differed from itself.
    Noise,
    /// A side failed (connect error, timeout): nothing to compare. Decided by the caller.
    Error,
    /// The answers differ exactly as a divergence states, and nowhere else: not a failure.
    Expected,
    /// A divergence no longer occurs (nothing differs): a failure, so the list stays true.
    Resolved,
}

impl Outcome {
    /// The lower-case name, for metric labels and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::Mismatch => "mismatch",
            Outcome::Noise => "noise",
            Outcome::Error => "error",
            Outcome::Expected => "expected",
            Outcome::Resolved => "resolved",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of [`compare()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The verdict.
    pub outcome: Outcome,
    /// Real differences between legacy and new (noise excluded), in walk order: status,
    /// headers, then the body. At most [`MAX_DIFFS`].
    pub diffs: Vec<Diff>,
    /// More real differences existed than `diffs` holds (the walk stopped there).
    pub truncated: bool,
    /// Pointers where the two legacy answers differed, sorted: noise for this request.
    /// Empty without a second legacy answer.
    pub noisy: Vec<String>,
}

impl Comparison {
    /// The comparison of a request where a side failed: [`Outcome::Error`], no differences.
    pub fn error() -> Self {
        Self {
            outcome: Outcome::Error,
            diffs: Vec::new(),
            truncated: false,
            noisy: Vec::new(),
        }
    }
}

/// The result of [`compare_expecting()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The comparison; with a divergence, its outcome is the judgement and its diffs
    /// include those at the listed fields.
    pub comparison: Comparison,
    /// One line per listed field of the divergence that is not as stated (`status: stated
    /// legacy 500 new 401, got legacy 500 new 403`); empty without a divergence.
    pub unmet: Vec<String>,
}

/// One difference between the legacy and the new answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// `status`, `header:NAME` (lower-case), or a JSON Pointer into the body (RFC 6901,
    /// array indices kept: `/items/0/id`); `""` is the whole body.
    pub pointer: String,
    /// The legacy value: compact JSON for JSON values (strings quoted, after
    /// normalisation; object keys in the order the side sent them), the text of a status or header, a lossy UTF-8 window of a non-JSON
    /// body, or [`ABSENT`]. At most [`MAX_VALUE_CHARS`] characters, then `…`; when the
    /// first difference lies further in, both sides show a window around it, after a
    /// marker with its character offset: `[offset 1432] …text…`.
    pub legacy: String,
    /// The new value, rendered the same way.
    pub new: String,
}

/// Headers that always carry secrets.
const SENSITIVE: [HeaderName; 4] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    http::header::SET_COOKIE,
];

/// Headers as `(name, value)` pairs for reports and logs, one pair per value, in map order,
/// values lossily decoded. The values of `authorization`, `proxy-authorization`, `cookie`,
/// `set-cookie`, of the `extra` names and of any value marked sensitive are [`REDACTED`].
pub fn redact_headers(headers: &HeaderMap, extra: &[HeaderName]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let secret = value.is_sensitive() || is_secret(name, extra);
            let shown = if secret {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect()
}

/// A difference with the values of a secret header (see [`redact_headers`]; `secret` adds
/// names) replaced by [`REDACTED`]: for reports, `/admin/parity` and logs.
pub fn redact_diff(mut diff: Diff, secret: &[HeaderName]) -> Diff {
    if let Some(name) = diff.pointer.strip_prefix("header:")
        && let Ok(name) = HeaderName::from_bytes(name.as_bytes())
        && is_secret(&name, secret)
    {
        for value in [&mut diff.legacy, &mut diff.new] {
            if value != ABSENT {
                *value = REDACTED.to_owned();
            }
        }
    }
    diff
}

/// Whether the values of header `name` are secret (the built-in names and `extra`); the
/// one place that decides, for [`redact_headers`] and [`redact_diff`].
fn is_secret(name: &HeaderName, extra: &[HeaderName]) -> bool {
    SENSITIVE.contains(name) || extra.contains(name)
}

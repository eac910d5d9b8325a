//! W3C Trace Context (level 1): the `traceparent` and `tracestate` headers, parsed and
//! written. Pure: no IO, no runtime; the only state is a per-thread random generator.
//!
//! Each request through the proxy is one span. A valid incoming `traceparent` keeps its
//! trace id and flags, and the caller's span becomes our span's parent; a missing or
//! invalid one starts a new trace (random trace id). Upstreams get a `traceparent` naming
//! our span as their parent; `tracestate` goes on unchanged, unless it is over the spec's
//! limits (512 characters, 32 list members) or the trace was restarted: then it is dropped.
//! A shadow copy is another span of the same trace, marked by a `strangler=shadow` member
//! at the front of its `tracestate`; a fallback's retry to legacy is another span too.
//!
//! Invariants: ids written here are never all zero; a `traceparent` written here is always
//! version `00` and lowercase.

use std::cell::Cell;
use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};

/// `traceparent`: version, trace id, parent id, flags.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`: vendor entries, passed on.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The spec's bound on the combined `tracestate` a vendor must pass on, in characters.
pub const TRACESTATE_MAX_LEN: usize = 512;
/// The spec's bound on `tracestate` list members.
pub const TRACESTATE_MAX_MEMBERS: usize = 32;
/// The `tracestate` member that marks a shadow copy.
pub const SHADOW_MEMBER: &str = "strangler=shadow";

/// A 16-byte trace id (never all zero when made or accepted here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id (never all zero when made or accepted here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// A random trace id.
    pub fn random() -> Self {
        loop {
            let mut id = [0; 16];
            id[..8].copy_from_slice(&next_random().to_be_bytes());
            id[8..].copy_from_slice(&next_random().to_be_bytes());
            if id != [0; 16] {
                return Self(id);
            }
        }
    }
}

impl SpanId {
    /// A random span id.
    pub fn random() -> Self {
        loop {
            let id = next_random().to_be_bytes();
            if id != [0; 8] {
                return Self(id);
            }
        }
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0; 32];
        hex_into(&self.0, &mut text);
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0; 16];
        hex_into(&self.0, &mut text);
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// The fields of a `traceparent` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace.
    pub trace_id: TraceId,
    /// The span of the sender (the parent of the receiver's span).
    pub parent_id: SpanId,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses one `traceparent` value as the spec says: version `00` is exactly
    /// `00-{32 hex}-{16 hex}-{2 hex}`, lowercase, ids not all zero; version `ff` is invalid;
    /// a later version is read by its version-00 prefix (at least 55 characters, followed by
    /// the end or a `-`), keeping only the sampled flag.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.len() < 55 {
            return None;
        }
        let version = hex_byte(&value[0..2])?;
        match version {
            0x00 if value.len() != 55 => return None,
            0xff => return None,
            0x00 => {}
            _ if value.len() > 55 && value[55] != b'-' => return None,
            _ => {}
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let mut trace_id = [0; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(&value[3 + 2 * i..5 + 2 * i])?;
        }
        let mut parent_id = [0; 8];
        for (i, byte) in parent_id.iter_mut().enumerate() {
            *byte = hex_byte(&value[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&value[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id: TraceId(trace_id),
            parent_id: SpanId(parent_id),
            flags: if version == 0 { flags } else { flags & 0x01 },
        })
    }

    /// The request's one `traceparent` (a repeated header is invalid), parsed.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(&TRACEPARENT).iter();
        let first = values.next()?;
        if values.next().is_some() {
            return None;
        }
        Self::parse(first.as_bytes())
    }

    /// The header value, version `00`.
    pub fn header_value(&self) -> HeaderValue {
        let mut text = [0; 55];
        text[..3].copy_from_slice(b"00-");
        hex_into(&self.trace_id.0, &mut text[3..35]);
        text[35] = b'-';
        hex_into(&self.parent_id.0, &mut text[36..52]);
        text[52] = b'-';
        hex_into(&[self.flags], &mut text[53..55]);
        // Always visible ASCII: cannot fail.
        HeaderValue::from_maybe_shared(shared_bytes(&text)).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// One request's place in a trace: the trace, the caller's span (if the request came with
/// a valid `traceparent`), our span, the flags, and whether the incoming `tracestate` may
/// be passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTrace {
    /// The trace (the caller's, or a new one).
    pub trace_id: TraceId,
    /// The caller's span, the parent of ours; `None` when the trace starts here.
    pub parent: Option<SpanId>,
    /// The proxy's span for this request: upstreams get it as their parent.
    pub span_id: SpanId,
    /// Trace flags, as received (sampled for a new trace).
    pub flags: u8,
    /// Whether the request's `tracestate` goes on (the trace is the caller's and the
    /// header is within the spec's limits).
    pub keep_state: bool,
}

impl RequestTrace {
    /// Continues the trace of the request's `traceparent` if it is valid, else starts one.
    pub fn of(headers: &HeaderMap) -> Self {
        match TraceParent::of(headers) {
            Some(incoming) => Self {
                trace_id: incoming.trace_id,
                parent: Some(incoming.parent_id),
                span_id: SpanId::random(),
                flags: incoming.flags,
                keep_state: tracestate_within_limits(headers),
            },
            None => Self {
                trace_id: TraceId::random(),
                parent: None,
                span_id: SpanId::random(),
                flags: 0x01,
                keep_state: false,
            },
        }
    }

    /// Whether the trace is sampled (flag bit 0): only sampled traces' spans are exported,
    /// as OpenTelemetry's parent-based sampler does.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The `traceparent` an upstream gets from `span` of this trace.
    pub fn traceparent(&self, span: SpanId) -> HeaderValue {
        TraceParent {
            trace_id: self.trace_id,
            parent_id: span,
            flags: self.flags,
        }
        .header_value()
    }

    /// Sets the trace headers of the request going upstream: our span as the parent;
    /// `tracestate` kept only when [`Self::keep_state`], less any `strangler` member (the
    /// proxy's key: a client's `strangler=shadow` would mark a primary as a shadow copy).
    pub fn forward(&self, headers: &mut HeaderMap) {
        headers.insert(&TRACEPARENT, self.traceparent(self.span_id));
        if !self.keep_state {
            headers.remove(&TRACESTATE);
        } else if has_our_member(headers) {
            set_members(headers, Vec::new());
        }
    }
}

/// Gives a request already forwarded once (its `traceparent` was set by
/// [`RequestTrace::forward`]) a new span of the same trace; returns the trace, with the
/// new span as `parent_id`, or `None` if the request has no valid `traceparent`.
pub fn new_span(headers: &mut HeaderMap) -> Option<TraceParent> {
    let forwarded = TraceParent::of(headers)?;
    let span = TraceParent {
        parent_id: SpanId::random(),
        ..forwarded
    };
    headers.insert(&TRACEPARENT, span.header_value());
    Some(span)
}

/// Marks a copy as a shadow: `strangler=shadow` at the front of its `tracestate` (an older
/// `strangler` member removed, as the spec says for an updated key; members dropped from
/// the end to stay within the limits).
pub fn mark_shadow(headers: &mut HeaderMap) {
    set_members(headers, vec![SHADOW_MEMBER]);
}

/// Whether a `tracestate` field may hold a `strangler` member (a cheap test first).
fn has_our_member(headers: &HeaderMap) -> bool {
    headers
        .get_all(&TRACESTATE)
        .iter()
        .any(|value| value.as_bytes().windows(10).any(|w| w == b"strangler="))
}

/// Rewrites `tracestate` as `front` followed by the request's members less any `strangler`
/// one, within the limits; no header at all when nothing is left.
fn set_members(headers: &mut HeaderMap, front: Vec<&str>) {
    let mut members = front;
    let combined: Vec<String> = headers
        .get_all(&TRACESTATE)
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_owned))
        .collect();
    members.extend(
        combined
            .iter()
            .flat_map(|value| value.split(','))
            .map(|member| member.trim_matches([' ', '\t']))
            .filter(|member| !member.is_empty() && member_key(member) != Some("strangler")),
    );
    members.truncate(TRACESTATE_MAX_MEMBERS);
    let mut text = members.join(",");
    while text.len() > TRACESTATE_MAX_LEN && members.len() > 1 {
        members.pop();
        text = members.join(",");
    }
    headers.remove(&TRACESTATE);
    if let Ok(value) = HeaderValue::from_str(&text)
        && !text.is_empty()
    {
        headers.insert(&TRACESTATE, value);
    }
}

/// Whether the request's `tracestate` (all its fields, combined) is within the spec's
/// limits and well formed (every member `key=value`); no header at all is within them.
pub fn tracestate_within_limits(headers: &HeaderMap) -> bool {
    let mut length = 0;
    let mut members = 0;
    for (i, value) in headers.get_all(&TRACESTATE).iter().enumerate() {
        let Ok(text) = value.to_str() else { return false };
        length += text.len() + usize::from(i > 0);
        for member in text.split(',').map(|m| m.trim_matches([' ', '\t'])) {
            if member.is_empty() {
                continue;
            }
            members += 1;
            if member_key(member).is_none() {
                return false;
            }
        }
    }
    length <= TRACESTATE_MAX_LEN && members <= TRACESTATE_MAX_MEMBERS
}

/// The key of a `tracestate` list member (`key=value`), if it is well formed: a key of
/// lowercase letters, digits and `_-*/@`, starting with a letter or digit, at most 256
/// characters; a value of 1 to 256 printable characters other than `,` and `=`.
fn member_key(member: &str) -> Option<&str> {
    let (key, value) = member.split_once('=')?;
    let key_ok = !key.is_empty()
        && key.len() <= 256
        && key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b));
    let value_ok = !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !value.ends_with(' ');
    (key_ok && value_ok).then_some(key)
}

/// Two lowercase hex digits.
fn hex_byte(text: &[u8]) -> Option<u8> {
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    Some(digit(text[0])? << 4 | digit(text[1])?)
}

/// Writes `bytes` as lowercase hex into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(byte >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

/// A copy of `text` cut from a per-thread block shared by many header values (as the
/// request ids are, in `proxy::request`): a reference count per request, not an allocation.
fn shared_bytes(text: &[u8]) -> bytes::Bytes {
    const BLOCK: usize = 4096;
    thread_local! {
        static BLOCK_LEFT: std::cell::RefCell<bytes::BytesMut> = std::cell::RefCell::new(bytes::BytesMut::new());
    }
    BLOCK_LEFT.with_borrow_mut(|block| {
        if block.capacity() < text.len() {
            *block = bytes::BytesMut::with_capacity(BLOCK.max(text.len()));
        }
        block.extend_from_slice(text);
        block.split().freeze()
    })
}

thread_local! {
    /// wyrand state, seeded once per thread from std's per-process random hash keys (no
    /// system call per id).
    static RANDOM: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    use std::hash::BuildHasher;
    let thread = std::thread::current().id();
    std::collections::hash_map::RandomState::new().hash_one((thread, std::time::Instant::now()))
}

/// The next number of this thread's wyrand generator (fast, not cryptographic: ids only
/// need to be unique, not secret).
fn next_random() -> u64 {
    RANDOM.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn a_valid_traceparent_parses_and_writes_back_the_same() {
        let parsed = TraceParent::parse(VALID.as_bytes()).unwrap();
        assert_eq!(parsed.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.parent_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(parsed.flags, 1);
        assert_eq!(parsed.header_value(), VALID);
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            // Uppercase hex.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            // All-zero ids.
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // Version ff, and version 00 with more after it.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // Wrong separators, not hex.
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn a_future_version_is_read_by_its_version_00_prefix() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-the-future-holds";
        let parsed = TraceParent::parse(later.as_bytes()).unwrap();
        assert_eq!(parsed.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        // Only the sampled flag is understood of a later version.
        assert_eq!(parsed.flags, 1);
        assert_eq!(
            parsed.header_value(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert!(TraceParent::parse(&later.as_bytes()[..55]).is_some());
        // After the flags: the end or a dash.
        let glued = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x";
        assert_eq!(TraceParent::parse(glued.as_bytes()), None);
    }

    #[test]
    fn two_traceparent_headers_are_invalid() {
        let twice = headers(&[(&TRACEPARENT, VALID), (&TRACEPARENT, VALID)]);
        assert_eq!(TraceParent::of(&twice), None);
        assert!(TraceParent::of(&headers(&[(&TRACEPARENT, VALID)])).is_some());
    }

    #[test]
    fn a_request_continues_a_valid_trace_with_a_new_span() {
        let mut incoming = headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, "congo=t61rcWkgMzE")]);
        let trace = RequestTrace::of(&incoming);
        assert_eq!(trace.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.parent.unwrap().to_string(), "00f067aa0ba902b7");
        assert_ne!(trace.span_id, trace.parent.unwrap());
        trace.forward(&mut incoming);
        let forwarded = TraceParent::of(&incoming).unwrap();
        assert_eq!(forwarded.trace_id, trace.trace_id);
        assert_eq!(forwarded.parent_id, trace.span_id);
        assert_eq!(incoming[&TRACESTATE], "congo=t61rcWkgMzE");
    }

    #[test]
    fn no_or_a_bad_traceparent_starts_a_trace_and_drops_tracestate() {
        for start in [
            headers(&[(&TRACESTATE, "congo=t61rcWkgMzE")]),
            headers(&[(&TRACEPARENT, "00-zz"), (&TRACESTATE, "congo=t61rcWkgMzE")]),
        ] {
            let mut outgoing = start.clone();
            let trace = RequestTrace::of(&start);
            assert_eq!(trace.parent, None);
            assert_ne!(trace.trace_id.0, [0; 16]);
            trace.forward(&mut outgoing);
            let forwarded = TraceParent::of(&outgoing).unwrap();
            assert_eq!(
                (forwarded.trace_id, forwarded.parent_id),
                (trace.trace_id, trace.span_id)
            );
            assert_eq!(forwarded.flags, 1);
            assert!(!outgoing.contains_key(&TRACESTATE));
        }
        let a = RequestTrace::of(&HeaderMap::new());
        let b = RequestTrace::of(&HeaderMap::new());
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
    }

    #[test]
    fn tracestate_over_the_limits_is_dropped() {
        let members = |n: usize| (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        let within = headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, &members(32))]);
        assert!(RequestTrace::of(&within).keep_state);
        let too_many = headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, &members(33))]);
        assert!(!RequestTrace::of(&too_many).keep_state);
        let long = format!("k={}", "v".repeat(255));
        let too_long = headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, &long), (&TRACESTATE, &long)]);
        assert!(
            !RequestTrace::of(&too_long).keep_state,
            "{} characters",
            2 * long.len() + 1
        );
        let malformed = headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, "Upper=1")]);
        assert!(!RequestTrace::of(&malformed).keep_state);
        // Two fields within the limits together go on as they came.
        let mut split = headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, "a=1"), (&TRACESTATE, "b=2")]);
        let trace = RequestTrace::of(&split);
        assert!(trace.keep_state);
        trace.forward(&mut split);
        assert_eq!(split.get_all(&TRACESTATE).iter().count(), 2);
    }

    #[test]
    fn a_clients_strangler_member_does_not_go_upstream() {
        let mut forged = headers(&[
            (&TRACEPARENT, VALID),
            (&TRACESTATE, "strangler=shadow, congo=t61rcWkgMzE"),
        ]);
        RequestTrace::of(&forged).forward(&mut forged);
        assert_eq!(forged[&TRACESTATE], "congo=t61rcWkgMzE");
        let mut alone = headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, "strangler=shadow")]);
        RequestTrace::of(&alone).forward(&mut alone);
        assert!(!alone.contains_key(&TRACESTATE));
        let mut theirs = headers(&[
            (&TRACEPARENT, VALID),
            (&TRACESTATE, "xstrangler=1,rojo=00f067aa0ba902b7"),
        ]);
        RequestTrace::of(&theirs).forward(&mut theirs);
        assert_eq!(theirs[&TRACESTATE], "xstrangler=1,rojo=00f067aa0ba902b7");
    }

    #[test]
    fn a_shadow_copy_is_a_new_span_marked_at_the_front_of_tracestate() {
        let mut copy = headers(&[(&TRACEPARENT, VALID), (&TRACESTATE, "strangler=old, congo=t61rcWkgMzE")]);
        let span = new_span(&mut copy).unwrap();
        mark_shadow(&mut copy);
        let sent = TraceParent::of(&copy).unwrap();
        assert_eq!(sent.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(sent.parent_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(sent, span);
        assert_eq!(copy[&TRACESTATE], "strangler=shadow,congo=t61rcWkgMzE");

        let mut bare = headers(&[(&TRACEPARENT, VALID)]);
        mark_shadow(&mut bare);
        assert_eq!(bare[&TRACESTATE], "strangler=shadow");

        // At the limits, members go from the end.
        let full = (0..32).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        let mut crowded = headers(&[(&TRACESTATE, &full)]);
        mark_shadow(&mut crowded);
        let marked = crowded[&TRACESTATE].to_str().unwrap();
        assert!(marked.starts_with("strangler=shadow,k0=v,"), "{marked}");
        assert_eq!(marked.split(',').count(), 32);
        assert!(!marked.contains("k31=v"), "{marked}");
        assert!(tracestate_within_limits(&crowded));
    }

    #[test]
    fn header_values_from_shared_blocks_stay_intact() {
        // Well past one block (4 KiB holds 74 values): older values are untouched.
        let parents: Vec<TraceParent> = (0..300)
            .map(|_| TraceParent {
                trace_id: TraceId::random(),
                parent_id: SpanId::random(),
                flags: 1,
            })
            .collect();
        let values: Vec<HeaderValue> = parents.iter().map(TraceParent::header_value).collect();
        for (parent, value) in parents.iter().zip(&values) {
            assert_eq!(TraceParent::parse(value.as_bytes()).as_ref(), Some(parent));
        }
    }

    #[test]
    fn random_ids_differ_and_are_never_zero() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| SpanId::random()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&SpanId([0; 8])));
        assert_ne!(TraceId::random(), TraceId::random());
    }
}

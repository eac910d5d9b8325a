//! Request-path normalisation: the one place that decides what a request path *is*.
//!
//! The proxy matches routes on the normalised path and forwards that very same
//! string upstream, so **what matched is what the upstream sees**. If routing
//! looked at one spelling and the upstream resolved another (`/public/..%2fadmin`,
//! `/public/%2e%2e/admin`, `/public/..;/admin`, `/public/..\admin`), a request
//! could be routed by one rule and served by a path that rule was never meant to
//! reach. Rather than guess how each upstream decodes, this module produces a
//! single canonical spelling and refuses every input whose meaning upstreams are
//! known to disagree on.
//!
//! Input is only the path part of the request target (no `?query`, which the
//! caller forwards untouched); callers pass `"/"` for an empty path.
//!
//! # Rules
//!
//! 1. The path must start with `/` ([`PathError::NotAbsolute`]).
//! 2. Percent-encoded *unreserved* characters (RFC 3986 §2.3: `ALPHA / DIGIT /
//!    "-" / "." / "_" / "~"`) are decoded (`%41` → `A`, `%2e` → `.`); every other
//!    escape is kept but its hex digits are uppercased (`%3a` → `%3A`), per
//!    RFC 3986 §6.2.2. A `%` not followed by two hex digits is
//!    [`PathError::BadPercentEncoding`]. `%2F` is [`PathError::EncodedSlash`],
//!    `%5C` is [`PathError::EncodedBackslash`], `%00` or a raw NUL is
//!    [`PathError::Nul`], a raw `\` is [`PathError::Backslash`].
//! 3. Runs of `/` collapse to one: `//api//thoughts` → `/api/thoughts`.
//! 4. Dot-segments are resolved (RFC 3986 §5.2.4), *after* decoding, so `%2e%2e`
//!    is `..`. A `..` that would climb above `/` is [`PathError::ClimbsAboveRoot`]:
//!    it is rejected, never clamped, because a client sending one is probing.
//!    A segment that is `.` or `..` followed by `;params` (`..;/`) is
//!    [`PathError::DotSegmentWithParams`] (see that variant for why).
//! 5. A trailing slash is preserved, also when the last segment was a
//!    dot-segment: `/a/b/..` → `/a/`, `/a/.` → `/a/`, `/.` → `/`.
//! 6. Non-ASCII text passes through byte for byte.
//!
//! When several problems are present, the first one from the left is reported.
//!
//! # Cost
//!
//! This runs on every request. An already-canonical path (no dot-segment, no
//! `//`, and only `%XX` escapes that are already canonical) is detected by one
//! linear scan and returned as [`Cow::Borrowed`] without allocating; the
//! returned path is borrowed exactly when it equals the input. Anything else is
//! rebuilt into one `String` (of at most the input's length) in a single pass
//! that keeps a stack of segment offsets, so `..` pops in O(1) and the whole
//! thing stays linear in the length of the path.

use std::borrow::Cow;

/// Why a request path was refused. Every variant maps to `400 Bad Request`; the
/// `Display` text is short enough to be the response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path does not start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding in path")]
    BadPercentEncoding,
    /// `%2F` / `%2f`: an encoded slash. Decoding it would change the segment
    /// structure the route matched; keeping it lets upstreams that do decode it
    /// (many do) see a different path than we routed on (`..%2f..%2fadmin`).
    #[error("encoded slash (%2F) in path")]
    EncodedSlash,
    /// `%5C` / `%5c`: an encoded backslash. Several upstream stacks (IIS and
    /// other Windows servers, some static-file servers and frameworks) treat `\`
    /// as a path separator after decoding, so `..%5C..%5Cadmin` would be one
    /// harmless segment to us and a climb to them: the same attack as
    /// [`PathError::EncodedSlash`]. No legitimate client needs it.
    #[error("encoded backslash (%5C) in path")]
    EncodedBackslash,
    /// A raw `\`. Same reasoning as [`PathError::EncodedBackslash`]; HTTP
    /// parsers (including `http`'s) accept it, and browsers never send it (they
    /// turn `\` into `/` before sending), so refusing it costs nothing.
    #[error("backslash in path")]
    Backslash,
    /// `%00` or a raw NUL byte, which truncates paths in C-based upstreams.
    #[error("nul byte in path")]
    Nul,
    /// A `..` segment (literal or percent-encoded) that would climb above `/`.
    #[error("path climbs above root")]
    ClimbsAboveRoot,
    /// A segment that is `.` or `..` followed by `;` path parameters, e.g.
    /// `/public/..;/admin`. RFC 3986 says `..;` is an ordinary segment, but
    /// Java servlet containers (Tomcat, Jetty) strip `;params` first and then
    /// resolve it as `..`: a well-known way past prefix-routing proxies. It
    /// never appears in legitimate traffic, so it is refused rather than
    /// guessed at.
    #[error("dot-segment with parameters (;) in path")]
    DotSegmentWithParams,
}

/// Normalises the path part of a request target (see the module docs for the
/// rules). Returns the input itself, borrowed, when it is already canonical.
///
/// # Errors
///
/// Any [`PathError`]; the first problem from the left is reported.
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    // Fast path: one scan. Everything before `seg_start` is a run of clean
    // segments ("/seg" with seg non-empty, not a dot-segment, canonical escapes).
    let mut seg_start = 1;
    let mut i = 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'/' => {
                match classify_fast(bytes.get(seg_start..i).unwrap_or_default()) {
                    FastSegment::Clean => {}
                    FastSegment::Rewrite => return normalize_slow(raw, seg_start - 1),
                    FastSegment::Reject(e) => return Err(e),
                }
                seg_start = i + 1;
            }
            b'%' => {
                if is_canonical_kept_escape(bytes.get(i + 1), bytes.get(i + 2)) {
                    i += 3;
                    continue;
                }
                // Needs decoding, uppercasing, or is an error: the slow path
                // decides which (and reports errors in left-to-right order).
                return normalize_slow(raw, seg_start - 1);
            }
            0 => return Err(PathError::Nul),
            b'\\' => return Err(PathError::Backslash),
            _ => {}
        }
        i += 1;
    }
    // The last segment may be empty: that is a trailing slash, which is fine.
    let last = bytes.get(seg_start..).unwrap_or_default();
    if !last.is_empty() {
        match classify_fast(last) {
            FastSegment::Clean => {}
            FastSegment::Rewrite => return normalize_slow(raw, seg_start - 1),
            FastSegment::Reject(e) => return Err(e),
        }
    }
    Ok(Cow::Borrowed(raw))
}

/// The path as Java servlet containers (Tomcat, Jetty) and Spring resolve it: every
/// segment's `;params` removed (`/secure;x/y` → `/secure/y`, `/a;v=1/b;c` → `/a/b`), and a
/// segment that was only parameters dropped (`/;x/a` → `/a`; as the last segment it
/// leaves a trailing slash: `/a/;x` → `/a/`). `None` when the path holds no `;`, the case
/// of nearly every request, which costs one scan.
///
/// `path` must be normalised ([`normalize_path`]); the result then is too: removing
/// parameters cannot leave a dot-segment, since `.;x` and `..;x` are refused.
///
/// A percent-encoded `%3B` is not a delimiter (RFC 3986 §3.3 gives `;` its meaning only
/// unencoded, and Tomcat, Jetty and Spring split parameters off before decoding), so it
/// is kept.
pub fn without_params(path: &str) -> Option<String> {
    if !path.as_bytes().contains(&b';') {
        return None;
    }
    let mut stripped = String::with_capacity(path.len());
    let mut last_was_empty = false;
    for segment in path.split('/').skip(1) {
        let name = segment.split(';').next().unwrap_or_default();
        last_was_empty = name.is_empty();
        if !last_was_empty {
            stripped.push('/');
            stripped.push_str(name);
        }
    }
    if stripped.is_empty() || last_was_empty {
        stripped.push('/');
    }
    Some(stripped)
}

enum FastSegment {
    Clean,
    Rewrite,
    Reject(PathError),
}

/// Classifies a raw segment between two slashes on the fast path. Its escapes
/// are all canonical and kept (else the scan would have left already), so the
/// raw bytes are also the decoded text.
fn classify_fast(seg: &[u8]) -> FastSegment {
    match seg {
        // Empty (from "//"), "." and ".." all need rewriting.
        [] | [b'.'] | [b'.', b'.'] => FastSegment::Rewrite,
        [b'.', ..] if is_dot_with_params(seg) => FastSegment::Reject(PathError::DotSegmentWithParams),
        _ => FastSegment::Clean,
    }
}

/// `.;…` or `..;…`: a dot-segment once `;params` are stripped.
fn is_dot_with_params(seg: &[u8]) -> bool {
    matches!(seg, [b'.', b';', ..] | [b'.', b'.', b';', ..])
}

/// Rebuilds the path. `clean_end` is the index of a `/` such that
/// `raw[..clean_end]` consists only of clean segments and can be copied as is.
fn normalize_slow(raw: &str, clean_end: usize) -> Result<Cow<'_, str>, PathError> {
    // `clean_end` is the index of an ASCII '/', so both slices are on char
    // boundaries; `get` keeps this panic-free regardless.
    let prefix = raw.get(..clean_end).unwrap_or_default();
    let rest = raw.get(clean_end + 1..).unwrap_or_default();

    // The output never grows past the input (decoding shrinks, uppercasing
    // keeps the length, a trailing slash is only added in place of a removed
    // segment), so this is the only allocation besides the segment stack.
    let mut out = String::with_capacity(raw.len());
    out.push_str(prefix);
    // Offsets in `out` of the '/' that starts each kept segment.
    let mut stack: Vec<usize> = prefix
        .bytes()
        .enumerate()
        .filter_map(|(i, b)| (b == b'/').then_some(i))
        .collect();

    let mut trailing_slash = false;
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let is_last = segments.peek().is_none();
        if seg.is_empty() {
            // "//" collapses; an empty last segment is a trailing slash.
            trailing_slash = is_last;
            continue;
        }
        let start = out.len();
        out.push('/');
        decode_segment_into(seg, &mut out)?;
        let decoded = out.as_bytes().get(start + 1..).unwrap_or_default();
        match decoded {
            [b'.'] => {
                out.truncate(start);
                trailing_slash = is_last;
            }
            [b'.', b'.'] => {
                let parent = stack.pop().ok_or(PathError::ClimbsAboveRoot)?;
                out.truncate(parent);
                trailing_slash = is_last;
            }
            _ if is_dot_with_params(decoded) => return Err(PathError::DotSegmentWithParams),
            _ => {
                stack.push(start);
                trailing_slash = false;
            }
        }
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// Appends the normalised form of one raw segment (which contains no '/') to
/// `out`: unreserved escapes decoded, other escapes uppercased, rest verbatim.
fn decode_segment_into(seg: &str, out: &mut String) -> Result<(), PathError> {
    let bytes = seg.as_bytes();
    // Start of the pending run of bytes to copy verbatim. `run` and `i` only
    // ever sit at the end of the string or on an ASCII byte ('%' or the byte
    // after a complete escape), so slicing there is on a char boundary.
    let mut run = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                out.push_str(seg.get(run..i).unwrap_or_default());
                let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                    return Err(PathError::BadPercentEncoding);
                };
                let (Some(hi), Some(lo)) = (hex_value(h), hex_value(l)) else {
                    return Err(PathError::BadPercentEncoding);
                };
                match (hi << 4) | lo {
                    0 => return Err(PathError::Nul),
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    v if is_unreserved(v) => out.push(char::from(v)),
                    _ => {
                        out.push('%');
                        out.push(char::from(h.to_ascii_uppercase()));
                        out.push(char::from(l.to_ascii_uppercase()));
                    }
                }
                i += 3;
                run = i;
            }
            0 => return Err(PathError::Nul),
            b'\\' => return Err(PathError::Backslash),
            _ => i += 1,
        }
    }
    out.push_str(seg.get(run..).unwrap_or_default());
    Ok(())
}

/// True for `%XX` that the slow path would leave exactly as it is: uppercase
/// hex, and a value that is neither decoded (unreserved) nor refused.
fn is_canonical_kept_escape(hi: Option<&u8>, lo: Option<&u8>) -> bool {
    let upper_hex = |b: &u8| matches!(b, b'0'..=b'9' | b'A'..=b'F');
    match (hi, lo) {
        (Some(hi), Some(lo)) if upper_hex(hi) && upper_hex(lo) => match (hex_value(*hi), hex_value(*lo)) {
            (Some(h), Some(l)) => {
                let v = (h << 4) | l;
                !(is_unreserved(v) || v == 0 || v == b'/' || v == b'\\')
            }
            _ => false,
        },
        _ => false,
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3 unreserved characters.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Expected outcome of one table row.
    enum Want {
        /// Unchanged, and returned borrowed.
        Same,
        /// Rewritten to this (and returned owned).
        Is(&'static str),
        Err(PathError),
    }
    use PathError as E;
    use Want::{Err as Fails, Is, Same};

    fn check(table: &[(&str, Want)]) {
        for (input, want) in table {
            let got = normalize_path(input);
            match want {
                Same => match got {
                    Ok(Cow::Borrowed(s)) => assert_eq!(s, *input, "input {input:?}"),
                    other => panic!("input {input:?}: want borrowed unchanged, got {other:?}"),
                },
                Is(expected) => match got {
                    Ok(Cow::Owned(s)) => assert_eq!(s, *expected, "input {input:?}"),
                    other => panic!("input {input:?}: want owned {expected:?}, got {other:?}"),
                },
                Fails(e) => assert_eq!(got, Err(e.clone()), "input {input:?}"),
            }
        }
    }

    #[test]
    fn must_be_absolute() {
        check(&[
            ("", Fails(E::NotAbsolute)),
            ("api/x", Fails(E::NotAbsolute)),
            ("*", Fails(E::NotAbsolute)),
            ("%2F", Fails(E::NotAbsolute)),
            ("\\a", Fails(E::NotAbsolute)),
            ("/", Same),
        ]);
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        check(&[
            ("/", Same),
            ("/api/thoughts/5", Same),
            ("/api/thoughts/", Same),
            ("/a/b/", Same),
            ("/...", Same),
            ("/a/.../b", Same),
            ("/.hidden/x.", Same),
            ("/a..b/..c/c../.d", Same),
            ("/a;b=1/c;d", Same),
            ("/%3A%20%25/x%C3%A9", Same),
            ("/a%2A", Same),
            ("/!$&'()*+,;=:@", Same),
            ("/{\"json\"}", Same),
        ]);
    }

    #[test]
    fn percent_decoding_of_unreserved_only() {
        check(&[
            ("/%41", Is("/A")),
            ("/%7E", Is("/~")),
            ("/%7e%5F%2D%2e", Is("/~_-.")),
            ("/%61%62c%30%39", Is("/abc09")),
            ("/%5A%5a", Is("/ZZ")),
            ("/a%3a", Is("/a%3A")),
            ("/%3a%3A%3b", Is("/%3A%3A%3B")),
            ("/%c3%a9", Is("/%C3%A9")),
            ("/%25", Same),
            ("/%252e", Same),
            ("/%252f", Same),
            ("/%20x", Same),
            ("/%ff", Is("/%FF")),
            // Decoding happens once: "%2541" is "%25" then "41".
            ("/%25%34%31", Is("/%2541")),
        ]);
    }

    #[test]
    fn bad_percent_encoding() {
        check(&[
            ("/a%zz", Fails(E::BadPercentEncoding)),
            ("/a%2", Fails(E::BadPercentEncoding)),
            ("/a%", Fails(E::BadPercentEncoding)),
            ("/%", Fails(E::BadPercentEncoding)),
            ("/a%/b", Fails(E::BadPercentEncoding)),
            ("/a%2/b", Fails(E::BadPercentEncoding)),
            ("/a%g0", Fails(E::BadPercentEncoding)),
            ("/a%0g", Fails(E::BadPercentEncoding)),
            ("/a%+1", Fails(E::BadPercentEncoding)),
            ("/a%é", Fails(E::BadPercentEncoding)),
            ("/a%1é", Fails(E::BadPercentEncoding)),
        ]);
    }

    #[test]
    fn encoded_separators_and_nul_rejected() {
        check(&[
            ("/a%2Fb", Fails(E::EncodedSlash)),
            ("/a%2fb", Fails(E::EncodedSlash)),
            ("/api/thoughts/..%2f..%2fadmin", Fails(E::EncodedSlash)),
            ("/api/thoughts/%2e%2e%2fadmin", Fails(E::EncodedSlash)),
            ("/a%5Cb", Fails(E::EncodedBackslash)),
            ("/public/..%5c..%5cadmin", Fails(E::EncodedBackslash)),
            ("/public/..\\admin", Fails(E::Backslash)),
            ("/a\\b", Fails(E::Backslash)),
            ("/a%00b", Fails(E::Nul)),
            ("/a\0b", Fails(E::Nul)),
            ("/\0", Fails(E::Nul)),
            ("/a%2e\0", Fails(E::Nul)),
        ]);
    }

    #[test]
    fn first_problem_from_the_left_wins() {
        check(&[
            ("/a%zz%2F", Fails(E::BadPercentEncoding)),
            ("/a%2F%zz", Fails(E::EncodedSlash)),
            ("/a\0%2F", Fails(E::Nul)),
            ("/../%2F", Fails(E::ClimbsAboveRoot)),
            ("/%2F/..", Fails(E::EncodedSlash)),
            ("/../\0", Fails(E::ClimbsAboveRoot)),
            ("/..;/%zz", Fails(E::DotSegmentWithParams)),
        ]);
    }

    #[test]
    fn slashes_collapse() {
        check(&[
            ("//api//thoughts", Is("/api/thoughts")),
            ("//", Is("/")),
            ("///", Is("/")),
            ("/a//", Is("/a/")),
            ("/a///b////", Is("/a/b/")),
            ("/a/b//c", Is("/a/b/c")),
        ]);
    }

    #[test]
    fn dot_segments() {
        check(&[
            ("/a/b/../c", Is("/a/c")),
            ("/a/%2e%2e/c", Is("/c")),
            ("/a/%2e/b", Is("/a/b")),
            ("/a/./b/./c", Is("/a/b/c")),
            ("/a/b/c/../../d", Is("/a/d")),
            ("/a/.%2E/b", Is("/b")),
            ("/a/%2E./b", Is("/b")),
            ("/a//..//b", Is("/b")),
            ("/./a", Is("/a")),
            ("/a/..", Is("/")),
            ("/a/../", Is("/")),
            ("/a/b/../..", Is("/")),
            // A prefix that was clean on the fast path is reused.
            ("/x/y/z/..", Is("/x/y/")),
            ("/x/y/z/../../..", Is("/")),
        ]);
    }

    #[test]
    fn climbing_above_root_is_rejected() {
        check(&[
            ("/..", Fails(E::ClimbsAboveRoot)),
            ("/../", Fails(E::ClimbsAboveRoot)),
            ("/%2e%2e", Fails(E::ClimbsAboveRoot)),
            ("/%2E%2e/etc/passwd", Fails(E::ClimbsAboveRoot)),
            ("/%2e%2e/x", Fails(E::ClimbsAboveRoot)),
            ("/./../x", Fails(E::ClimbsAboveRoot)),
            ("/a/b/../../..", Fails(E::ClimbsAboveRoot)),
            ("/a/../../b", Fails(E::ClimbsAboveRoot)),
            ("//../a", Fails(E::ClimbsAboveRoot)),
        ]);
    }

    #[test]
    fn dot_segments_with_params_are_rejected() {
        check(&[
            ("/public/..;/admin", Fails(E::DotSegmentWithParams)),
            ("/public/..;jsessionid=1/admin", Fails(E::DotSegmentWithParams)),
            ("/public/.;/admin", Fails(E::DotSegmentWithParams)),
            ("/public/%2e%2e;/admin", Fails(E::DotSegmentWithParams)),
            ("/a/b/..;", Fails(E::DotSegmentWithParams)),
            // Not dot-segments: ordinary names.
            ("/a/...;/b", Same),
            ("/a/x..;/b", Same),
            ("/a/..%3B/b", Same),
            ("/a/;../b", Same),
        ]);
    }

    #[test]
    fn params_are_removed_from_every_segment() {
        let strip = without_params;
        assert_eq!(strip("/secure/y"), None);
        assert_eq!(strip("/"), None);
        assert_eq!(strip("/secure;x/y").as_deref(), Some("/secure/y"));
        assert_eq!(strip("/a;v=1/b;c").as_deref(), Some("/a/b"));
        assert_eq!(strip("/a;v=1;w=2/b/").as_deref(), Some("/a/b/"));
        // In the last segment, with or without a trailing slash.
        assert_eq!(strip("/secure/y;jsessionid=1").as_deref(), Some("/secure/y"));
        assert_eq!(strip("/secure;x").as_deref(), Some("/secure"));
        assert_eq!(strip("/secure/;x").as_deref(), Some("/secure/"));
        // A segment of parameters only leaves nothing behind.
        assert_eq!(strip("/;x/secure/y").as_deref(), Some("/secure/y"));
        assert_eq!(strip("/;x").as_deref(), Some("/"));
        assert_eq!(strip("/a/;/b").as_deref(), Some("/a/b"));
        // `%3B` is data, not a delimiter: nothing to strip.
        assert_eq!(strip("/secure%3Bx/y"), None);
        assert_eq!(strip("/a%3B;b/c").as_deref(), Some("/a%3B/c"));
        // Non-ASCII text around the parameters is kept whole.
        assert_eq!(strip("/café;x/日本;y=é/🦀").as_deref(), Some("/café/日本/🦀"));
    }

    #[test]
    fn trailing_slash_preserved() {
        check(&[
            ("/a/b/", Same),
            ("/a/b/..", Is("/a/")),
            ("/a/.", Is("/a/")),
            ("/a/%2E", Is("/a/")),
            ("/a/b/%2e%2e", Is("/a/")),
            ("/.", Is("/")),
            ("/./", Is("/")),
            ("/a/./", Is("/a/")),
            ("/a/.//", Is("/a/")),
            ("/a/b", Same),
            ("/a/./b", Is("/a/b")),
            ("/..", Fails(E::ClimbsAboveRoot)),
        ]);
    }

    #[test]
    fn unicode_passes_through() {
        check(&[
            ("/café/日本語/🦀", Same),
            ("/café//🦀", Is("/café/🦀")),
            ("/é/../🦀/%41", Is("/🦀/A")),
            ("/%2e日本/x", Is("/.日本/x")),
            ("/日本/%e6%97%a5", Is("/日本/%E6%97%A5")),
        ]);
    }

    #[test]
    fn long_paths_are_linear() {
        // 64 KiB of "a/": the fast path must borrow it.
        let flat = format!("/{}", "a/".repeat(32 * 1024));
        assert!(matches!(normalize_path(&flat), Ok(Cow::Borrowed(_))));

        // Deep push-then-pop through the slow path.
        let deep = format!("/{}{}x", "a/".repeat(16 * 1024), "../".repeat(16 * 1024));
        assert_eq!(normalize_path(&deep), Ok(Cow::Owned("/x".to_owned())));

        // Alternating push/pop, many escapes, many empty segments.
        let churn = format!("/{}", "ab/%2e%2e/".repeat(6 * 1024));
        assert_eq!(normalize_path(&churn), Ok(Cow::Owned("/".to_owned())));
        let escapes = format!("/{}", "%41%3a".repeat(10 * 1024));
        let want = format!("/{}", "A%3A".repeat(10 * 1024));
        assert_eq!(normalize_path(&escapes), Ok(Cow::Owned(want)));
        let slashes = format!("/{}x", "/".repeat(64 * 1024));
        assert_eq!(normalize_path(&slashes), Ok(Cow::Owned("/x".to_owned())));

        // Climbing out only at the very end.
        let out = format!("/{}{}", "a/".repeat(16 * 1024), "../".repeat(16 * 1024 + 1));
        assert_eq!(normalize_path(&out), Err(E::ClimbsAboveRoot));
    }

    #[test]
    fn error_messages_are_short_and_lowercase() {
        let all = [
            E::NotAbsolute,
            E::BadPercentEncoding,
            E::EncodedSlash,
            E::EncodedBackslash,
            E::Backslash,
            E::Nul,
            E::ClimbsAboveRoot,
            E::DotSegmentWithParams,
        ];
        for e in all {
            let msg = e.to_string();
            assert!(msg.len() < 50, "{msg}");
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
        }
        assert_eq!(E::EncodedSlash.to_string(), "encoded slash (%2F) in path");
    }

    /// Paths built from the pieces that matter, so properties hit the
    /// interesting branches far more often than uniform random text would.
    fn tricky_path() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "/", "/", "/", ".", "..", "%2e", "%2E", "%2e%2e", "a", "b", "é", "🦀", "%41", "%7e", "%3a", "%3A", "%25",
            "%2f", "%5C", "%00", "%", "%z", "%2", ";", "\\", "\0", "~", "-",
        ]);
        prop::collection::vec(piece, 0..24).prop_map(|v| format!("/{}", v.concat()))
    }

    fn any_path() -> impl Strategy<Value = String> {
        prop_oneof![
            tricky_path(),
            any::<String>().prop_map(|s| format!("/{s}")),
            "/[a-z./%0-9A-F]{0,40}",
        ]
    }

    /// Checks every invariant of a successful output.
    fn assert_canonical(out: &str) {
        assert!(out.starts_with('/'), "{out:?}");
        assert!(!out.contains("//"), "{out:?}");
        assert!(!out.contains('\0') && !out.contains('\\'), "{out:?}");
        let body = out.strip_prefix('/').unwrap_or(out);
        let body = body.strip_suffix('/').unwrap_or(body);
        if !body.is_empty() {
            for seg in body.split('/') {
                assert!(!seg.is_empty(), "{out:?}");
                assert!(seg != "." && seg != "..", "{out:?}");
                assert!(!seg.starts_with(".;") && !seg.starts_with("..;"), "{out:?}");
                // No encoded dot (or any other encoded unreserved char) left.
                assert!(!seg.to_ascii_uppercase().contains("%2E"), "{out:?}");
            }
        }
        // Every escape is canonical: uppercase, not unreserved, not refused.
        let b = out.as_bytes();
        for (i, _) in out.match_indices('%') {
            assert!(is_canonical_kept_escape(b.get(i + 1), b.get(i + 2)), "{out:?}");
        }
    }

    /// The rules of the module docs written the slow, obvious way: split at `/`, decode
    /// each segment, resolve dot-segments on a stack. The real normaliser (fast path,
    /// single-pass rebuild) must agree with it on every input, errors included.
    fn model(raw: &str) -> Result<String, PathError> {
        let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        let segments: Vec<&str> = rest.split('/').collect();
        let mut kept: Vec<String> = Vec::new();
        let mut trailing_slash = false;
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            if segment.is_empty() {
                trailing_slash = last;
                continue;
            }
            let decoded = model_decode(segment)?;
            match decoded.as_str() {
                "." => trailing_slash = last,
                ".." => {
                    kept.pop().ok_or(PathError::ClimbsAboveRoot)?;
                    trailing_slash = last;
                }
                d if d.starts_with(".;") || d.starts_with("..;") => return Err(PathError::DotSegmentWithParams),
                _ => {
                    kept.push(decoded);
                    trailing_slash = false;
                }
            }
        }
        let mut out = format!("/{}", kept.join("/"));
        if trailing_slash && !kept.is_empty() {
            out.push('/');
        }
        Ok(out)
    }

    fn model_decode(segment: &str) -> Result<String, PathError> {
        let mut out = String::new();
        let mut chars = segment.chars();
        while let Some(c) = chars.next() {
            match c {
                '\0' => return Err(PathError::Nul),
                '\\' => return Err(PathError::Backslash),
                '%' => {
                    let hex: String = chars.clone().take(2).collect();
                    let value = (hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                        .then(|| u8::from_str_radix(&hex, 16).ok())
                        .flatten()
                        .ok_or(PathError::BadPercentEncoding)?;
                    chars.nth(1);
                    match value {
                        0 => return Err(PathError::Nul),
                        b'/' => return Err(PathError::EncodedSlash),
                        b'\\' => return Err(PathError::EncodedBackslash),
                        v if v.is_ascii_alphanumeric() || b"-._~".contains(&v) => out.push(char::from(v)),
                        v => out.push_str(&format!("%{v:02X}")),
                    }
                }
                c => out.push(c),
            }
        }
        Ok(out)
    }

    #[test]
    fn the_model_agrees_with_the_tables() {
        for (input, want) in [
            ("/a/b/../c", Ok("/a/c")),
            ("/a/%2e%2e/..", Err(PathError::ClimbsAboveRoot)),
            ("/a/.", Ok("/a/")),
            ("//", Ok("/")),
            ("/%7e%3a", Ok("/~%3A")),
            ("/..;/x", Err(PathError::DotSegmentWithParams)),
        ] {
            assert_eq!(model(input), want.map(str::to_owned), "{input:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Same answer as the obvious model, for every input (also the first error).
        #[test]
        fn agrees_with_the_model(s in any_path()) {
            prop_assert_eq!(normalize_path(&s).map(Cow::into_owned), model(&s), "input {:?}", s);
        }

        /// Never emits a `..` segment, `//`, or an encoded dot, for any input.
        #[test]
        fn never_emits_dot_dot_or_double_slash(s in any_path()) {
            if let Ok(out) = normalize_path(&s) {
                prop_assert!(!out.contains("//"), "{:?} -> {:?}", s, out);
                prop_assert!(!out.split('/').any(|seg| seg == ".." || seg == "."), "{:?} -> {:?}", s, out);
                prop_assert!(!out.to_ascii_lowercase().contains("%2e"), "{:?} -> {:?}", s, out);
            }
        }

        #[test]
        fn never_panics(s in any_path(), raw in any::<String>()) {
            let _ = normalize_path(&s);
            let _ = normalize_path(&raw);
        }

        #[test]
        fn idempotent(s in any_path()) {
            if let Ok(once) = normalize_path(&s) {
                let twice = normalize_path(&once);
                prop_assert_eq!(&twice, &Ok(once.clone()));
                // ... and the second pass is the allocation-free one.
                prop_assert!(matches!(twice, Ok(Cow::Borrowed(_))));
            }
        }

        #[test]
        fn output_is_canonical(s in any_path()) {
            if let Ok(out) = normalize_path(&s) {
                assert_canonical(&out);
                prop_assert!(out.len() <= s.len());
            }
        }

        #[test]
        fn borrowed_exactly_when_unchanged(s in any_path()) {
            match normalize_path(&s) {
                Ok(Cow::Borrowed(out)) => prop_assert_eq!(out, s.as_str()),
                Ok(Cow::Owned(out)) => prop_assert_ne!(out, s),
                Err(_) => {}
            }
        }

        /// Removing parameters from a normalised path leaves a normalised path without `;`.
        #[test]
        fn without_params_is_normalised(s in any_path()) {
            if let Ok(path) = normalize_path(&s)
                && let Some(stripped) = without_params(&path)
            {
                prop_assert!(!stripped.contains(';'), "{:?} -> {:?}", path, stripped);
                prop_assert_eq!(normalize_path(&stripped), Ok(Cow::Borrowed(stripped.as_str())));
            }
        }

        #[test]
        fn plain_paths_only_collapse_slashes(
            segs in prop::collection::vec("[a-z0-9é_-]{0,4}", 0..12),
            trailing in any::<bool>(),
        ) {
            let raw = format!("/{}{}", segs.join("/"), if trailing { "/" } else { "" });
            let kept: Vec<&str> = segs.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
            let ends_with_slash = raw.ends_with('/');
            let mut want = format!("/{}", kept.join("/"));
            if ends_with_slash && !kept.is_empty() {
                want.push('/');
            }
            prop_assert_eq!(normalize_path(&raw).map(Cow::into_owned), Ok(want));
        }
    }
}

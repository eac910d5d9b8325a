//! Request-shape checks: requests whose framing or head different HTTP implementations
//! read differently are refused with 400 before anything reaches an upstream.
//!
//! Request smuggling works by sending a request that the proxy frames one way and the
//! upstream another, so that part of one request becomes the start of the next. strangler
//! re-frames every body it forwards (hyper's client writes its own `Content-Length` or
//! chunked encoding, `Transfer-Encoding` is hop-by-hop and never forwarded), so an upstream
//! never sees the client's framing; refusing ambiguous shapes outright also means no
//! upstream, log or parity report ever has to make sense of one.
//!
//! Who refuses what (HTTP/1.1; `tests/it/hostile.rs` sends each shape over a raw socket):
//! - hyper's parser (httparse underneath) answers 400 itself, before the proxy sees the
//!   request, to: differing duplicate `Content-Length`s, a `Content-Length` that is not
//!   digits, obs-fold (a header line starting with whitespace), a bare CR or a NUL in a
//!   header, whitespace before a header's colon, `Transfer-Encoding` whose last coding is
//!   not `chunked`, `Transfer-Encoding` in HTTP/1.0, methods that are not tokens, targets
//!   with spaces or control characters; 431 to heads over `max_header_bytes` or with too
//!   many headers. A CR or LF can therefore never be inside a header value that reaches
//!   [`check`] (and `http::HeaderValue` cannot hold one).
//! - [`check`] refuses, with 400, what hyper accepts but is ambiguous: `Content-Length`
//!   together with `Transfer-Encoding`, `Transfer-Encoding` other than exactly one
//!   `chunked` (hyper accepts `gzip, chunked` and repeated lines), more than one
//!   `Content-Length` value, no `Host` (HTTP/1.1), several `Host`s or one that is not a
//!   `host[:port]`, methods that are not upper-case (`get` would miss a `methods = ["GET"]`
//!   route and still be read as GET by a lenient upstream), and absolute-form targets of
//!   another scheme than http(s).
//! - Path tricks (`..`, `%2e`, `%2f`, `%00`, `\`) are refused by [`crate::path`]; CONNECT
//!   gets 405 before this runs.
//!
//! hyper drops a `Content-Length` that arrives with `Transfer-Encoding: chunked` before the
//! proxy sees the request (it frames by the chunked encoding and closes the connection after
//! the response, as RFC 9112 §6.1 allows), so [`check`] cannot see that pair on HTTP/1.1
//! connections; see `tests/it/hostile.rs` for what a client gets.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Uri, Version};

/// Why a request's shape was refused. Every variant is answered with 400; the `Display`
/// text is the response body's explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Both `Content-Length` and `Transfer-Encoding`: the two framings could disagree.
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndChunked,
    /// `Transfer-Encoding` other than one `chunked` coding.
    #[error("Transfer-Encoding other than a single `chunked`")]
    TransferEncoding,
    /// More than one `Content-Length` value, or one that is not a number.
    #[error("more than one or a malformed Content-Length")]
    ContentLength,
    /// No `Host` header in an HTTP/1.1 request (RFC 9112 §3.2).
    #[error("no Host header")]
    MissingHost,
    /// More than one `Host` header, or one that is not `host[:port]`.
    #[error("more than one or a malformed Host header")]
    BadHost,
    /// A method that is not an upper-case token of at most 32 characters.
    #[error("method must be an upper-case token like GET")]
    Method,
    /// An absolute-form target whose scheme is not http or https.
    #[error("absolute-form target with a scheme other than http or https")]
    Scheme,
}

/// The longest method accepted (the registered ones are at most 17 characters).
const MAX_METHOD_LEN: usize = 32;

/// Checks the shape of a request's head (see the module docs). Cheap: a few header
/// lookups and, for unusual requests only, a short scan.
pub fn check<B>(request: &Request<B>) -> Result<(), Violation> {
    check_method(request.method())?;
    check_target(request.uri())?;
    check_framing(request.headers())?;
    check_host(request.headers(), request.version())
}

fn check_method(method: &Method) -> Result<(), Violation> {
    // The common methods are interned by `http`; only extension methods need a scan.
    let standard = matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::PATCH
            | Method::OPTIONS
            | Method::TRACE
            | Method::CONNECT
    );
    let text = method.as_str();
    if standard
        || (text.len() <= MAX_METHOD_LEN
            && !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_'))
    {
        Ok(())
    } else {
        Err(Violation::Method)
    }
}

fn check_target(uri: &Uri) -> Result<(), Violation> {
    match uri.scheme_str() {
        None => Ok(()),
        Some(scheme) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => Ok(()),
        Some(_) => Err(Violation::Scheme),
    }
}

fn check_framing(headers: &HeaderMap) -> Result<(), Violation> {
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let length = lengths.next();
    if let Some(length) = length
        && (lengths.next().is_some() || length.is_empty() || !length.as_bytes().iter().all(u8::is_ascii_digit))
    {
        return Err(Violation::ContentLength);
    }
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(coding) = codings.next() {
        if length.is_some() {
            return Err(Violation::LengthAndChunked);
        }
        let chunked = coding.to_str().is_ok_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        if !chunked || codings.next().is_some() {
            return Err(Violation::TransferEncoding);
        }
    }
    Ok(())
}

fn check_host(headers: &HeaderMap, version: Version) -> Result<(), Violation> {
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        // HTTP/2 and later carry the authority in the target, not in Host.
        (None, _) if version == Version::HTTP_11 => Err(Violation::MissingHost),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(Violation::BadHost),
        (Some(host), None) if is_host_and_port(host.as_bytes()) => Ok(()),
        (Some(_), None) => Err(Violation::BadHost),
    }
}

/// `host[:port]` (RFC 9110 §7.2): an authority without user info, the port digits only.
fn is_host_and_port(value: &[u8]) -> bool {
    if value.contains(&b'@') {
        return false;
    }
    let Ok(authority) = http::uri::Authority::try_from(value) else {
        return false;
    };
    let host = authority.host();
    let port = authority.as_str().get(host.len()..).unwrap_or_default();
    !host.is_empty()
        && match port.strip_prefix(':') {
            None => port.is_empty(),
            Some(digits) => digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn verdict(method: &str, target: &str, headers: &[(&str, &str)]) -> Result<(), Violation> {
        check(&request(method, target, headers))
    }

    const HOST_ONLY: &[(&str, &str)] = &[("host", "app.example")];

    #[test]
    fn ordinary_requests_pass() {
        for (method, target, headers) in [
            ("GET", "/", HOST_ONLY),
            ("GET", "/api/thoughts/?q=1", &[("host", "app.example:8000")][..]),
            ("POST", "/x", &[("host", "a"), ("content-length", "5")][..]),
            ("POST", "/x", &[("host", "a"), ("transfer-encoding", "chunked")][..]),
            ("PUT", "/x", &[("host", "a"), ("transfer-encoding", " Chunked ")][..]),
            ("PROPFIND", "/dav/", HOST_ONLY),
            ("VERSION-CONTROL", "/dav/", HOST_ONLY),
            ("GET", "http://app.example/x", HOST_ONLY),
            ("GET", "https://app.example/x", HOST_ONLY),
            ("GET", "/", &[("host", "[::1]:8000")][..]),
            ("GET", "/", &[("host", "127.0.0.1")][..]),
        ] {
            assert_eq!(
                verdict(method, target, headers),
                Ok(()),
                "{method} {target} {headers:?}"
            );
        }
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for (headers, want) in [
            (
                &[("content-length", "5"), ("transfer-encoding", "chunked")][..],
                Violation::LengthAndChunked,
            ),
            (
                &[("transfer-encoding", "chunked"), ("content-length", "0")][..],
                Violation::LengthAndChunked,
            ),
            (
                &[("transfer-encoding", "gzip, chunked")][..],
                Violation::TransferEncoding,
            ),
            (
                &[("transfer-encoding", "chunked, chunked")][..],
                Violation::TransferEncoding,
            ),
            (&[("transfer-encoding", "identity")][..], Violation::TransferEncoding),
            (
                &[("transfer-encoding", "gzip"), ("transfer-encoding", "chunked")][..],
                Violation::TransferEncoding,
            ),
            (
                &[("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")][..],
                Violation::TransferEncoding,
            ),
            (
                &[("content-length", "5"), ("content-length", "5")][..],
                Violation::ContentLength,
            ),
            (&[("content-length", "5, 5")][..], Violation::ContentLength),
            (&[("content-length", "+5")][..], Violation::ContentLength),
            (&[("content-length", "")][..], Violation::ContentLength),
        ] {
            let mut all = vec![("host", "app.example")];
            all.extend_from_slice(headers);
            assert_eq!(verdict("POST", "/x", &all), Err(want), "{headers:?}");
        }
    }

    #[test]
    fn host_must_be_one_valid_authority_on_http_1_1() {
        assert_eq!(verdict("GET", "/", &[]), Err(Violation::MissingHost));
        for hosts in [
            &[("host", "a.example"), ("host", "b.example")][..],
            &[("host", "a.example"), ("host", "a.example")][..],
            &[("host", "user@a.example")][..],
            &[("host", "a b")][..],
            &[("host", "")][..],
            &[("host", "a.example/path")][..],
            &[("host", "a.example:port")][..],
        ] {
            assert_eq!(verdict("GET", "/", hosts), Err(Violation::BadHost), "{hosts:?}");
        }
        // HTTP/1.0 and HTTP/2 requests may come without Host.
        for version in [Version::HTTP_10, Version::HTTP_2] {
            let mut request = request("GET", "/", &[]);
            *request.version_mut() = version;
            assert_eq!(check(&request), Ok(()), "{version:?}");
        }
    }

    #[test]
    fn methods_must_be_upper_case_tokens() {
        for method in ["get", "Get", "GET1", "G.T", "X!", &"A".repeat(33)] {
            assert_eq!(verdict(method, "/", HOST_ONLY), Err(Violation::Method), "{method}");
        }
        assert_eq!(verdict(&"A".repeat(32), "/", HOST_ONLY), Ok(()));
    }

    #[test]
    fn absolute_form_must_be_http() {
        for target in [
            "ftp://app.example/x",
            "gopher://app.example/x",
            "file://localhost/etc/passwd",
        ] {
            assert_eq!(verdict("GET", target, HOST_ONLY), Err(Violation::Scheme), "{target}");
        }
    }
}

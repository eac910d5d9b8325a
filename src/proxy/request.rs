//! The request as an upstream gets it, and its id.
//!
//! Every request gets an id (the client's `x-request-id` if usable, else a fresh UUID),
//! sent upstream, returned to the client and logged. Headers are rewritten for the
//! upstream (see [`crate::headers`]): hop-by-hop ones and those only the proxy may
//! assert (`x-strangler-*`, see [`headers::is_proxy_only`]) out; `X-Forwarded-*`, `Via`
//! and `x-request-id` in; the target becomes origin-form (path and query only).

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{StatusCode, Uri};

use crate::config::HeaderEdits;
use crate::headers;
use crate::headers::{X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID};
use crate::upstream::Upstream;

/// Where a request comes from and how it arrived, as its upstream is told.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The request id.
    pub request_id: &'a HeaderValue,
    /// The client's address (`X-Forwarded-For`).
    pub client: SocketAddr,
    /// Whether the client reached us over TLS (`X-Forwarded-Proto`).
    pub over_tls: bool,
    /// Whether the client asks for a protocol upgrade (its `Connection: upgrade` stays).
    pub upgrade: bool,
    /// The request's trace: the upstream gets our span as its parent (`traceparent`).
    pub trace: crate::trace::RequestTrace,
}

/// Rewrites the head of a request for `upstream`: its headers (see
/// `prepare_request_headers`, then the route's `request_headers` `edits`), `target` in
/// origin form (the upstream's base path and `host` policy are applied when it is sent:
/// [`Upstream::address`]), HTTP/1.1 (the upstream
/// connection's own version is set by the pool). `host` is the client's `Host`.
#[inline]
pub fn for_upstream(
    parts: &mut http::request::Parts,
    target: PathAndQuery,
    host: Option<HeaderValue>,
    upstream: &Upstream,
    origin: Origin<'_>,
    edits: &HeaderEdits,
) {
    // TE is hop-by-hop; an HTTP/2 upstream hears `TE: trailers` again if the client said it.
    let te_trailers = upstream.config.http2 && headers::accepts_trailers(&parts.headers);
    // A target with an authority names the host: an HTTP/2 `:authority` (hyper puts it in
    // the URI; a `Host` beside it was checked to agree), or an HTTP/1.1 absolute-form target,
    // whose authority wins over `Host`, which a proxy must replace (RFC 9112 §3.2.2). Only
    // `host[:port]` goes on: user info (`http://user:pass@host/`) never does.
    let host = match parts.uri.authority() {
        Some(authority) => {
            let named = if authority.as_str().contains('@') {
                match authority.port() {
                    Some(port) => HeaderValue::from_str(&format!("{}:{port}", authority.host())),
                    None => HeaderValue::from_str(authority.host()),
                }
            } else {
                HeaderValue::from_str(authority.as_str())
            };
            match named {
                Ok(named) => {
                    parts.headers.insert(header::HOST, named.clone());
                    Some(named)
                }
                Err(_) => host,
            }
        }
        None => host,
    };
    let has_host = prepare_request_headers(
        &mut parts.headers,
        host,
        origin.request_id,
        origin.client,
        origin.upgrade,
        origin.over_tls,
    );
    if te_trailers {
        parts.headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    origin.trace.forward(&mut parts.headers);
    if !has_host && let Ok(host) = HeaderValue::from_str(upstream.authority.as_str()) {
        parts.headers.insert(header::HOST, host);
    }
    // The route's `request_headers` (never a header the proxy itself sets: refused at load).
    if !edits.is_empty() {
        edits.apply(&mut parts.headers);
    }
    parts.uri = Uri::from(target);
    parts.version = http::Version::HTTP_11;
}

/// 499, nginx's "client closed request": recorded for requests whose client disconnected
/// before the response head was ready.
pub fn client_closed_request() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The client's `x-request-id` if it sent a usable one, else a fresh UUID.
pub fn request_id(headers: &http::HeaderMap) -> HeaderValue {
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
#[inline]
fn prepare_request_headers(
    headers: &mut http::HeaderMap,
    mut host: Option<HeaderValue>,
    request_id: &HeaderValue,
    client: SocketAddr,
    upgrade: bool,
    over_tls: bool,
) -> bool {
    // Most requests carry no hop-by-hop header, no `Expect` and no underscored name: one
    // pass of cheap comparisons instead of a hashed removal per name.
    if headers.keys().any(|name| {
        name == header::EXPECT
            || headers::is_hop_by_hop(name)
            || headers::is_proxy_only(name)
            || headers::is_underscored(name)
    }) {
        headers::remove_hop_by_hop(headers, upgrade);
        headers.remove(header::EXPECT);
        // What only the proxy may assert (a shadow marker, `X-Forwarded-Host`) is its own.
        headers::remove_proxy_only(headers);
        // `X_Forwarded_Host` is `X-Forwarded-Host` to a CGI upstream.
        headers::remove_underscored(headers);
        // `Connection` may have named `Host` itself.
        host = headers.get(header::HOST).cloned();
    }
    normalise_content_length(headers);
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

/// A `Content-Length` spelled with leading zeros (`003`, which RFC 9112's `1*DIGIT` allows and
/// [`guard::check`] accepts) goes upstream as the plain number (`3`): an upstream parser that
/// reads `0…` another way (as octal, or not at all) cannot disagree with us on where the
/// body ends. Repeated identical values reach here merged into one by hyper's parser.
#[inline]
fn normalise_content_length(headers: &mut http::HeaderMap) {
    let padded = headers
        .get(header::CONTENT_LENGTH)
        .filter(|value| value.len() > 1 && value.as_bytes().first() == Some(&b'0'))
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = padded {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_padded_length_goes_upstream_as_the_number() {
        let mut headers = http::HeaderMap::new();
        for (sent, forwarded) in [("003", "3"), ("0", "0"), ("00", "0"), ("30", "30"), ("3", "3")] {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static(sent));
            normalise_content_length(&mut headers);
            assert_eq!(headers[header::CONTENT_LENGTH], forwarded, "{sent}");
        }
    }

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

        // Hop-by-hop and Expect go; a Host that Connection names stays (issue 18: a client
        // cannot make the proxy drop it).
        let mut odd = http::HeaderMap::new();
        odd.insert(header::HOST, host.clone());
        odd.insert(header::CONNECTION, HeaderValue::from_static("host, x-request-id"));
        odd.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        odd.insert(&X_REQUEST_ID, HeaderValue::from_static("client-id"));
        // Nor can it erase the chain a load balancer in front started (attacker pass).
        odd.append(
            header::CONNECTION,
            HeaderValue::from_static("x-forwarded-for, via, forwarded, x-real-ip"),
        );
        odd.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        odd.insert(header::VIA, HeaderValue::from_static("1.1 lb"));
        odd.insert(header::FORWARDED, HeaderValue::from_static("for=203.0.113.9"));
        odd.insert("x-real-ip", HeaderValue::from_static("203.0.113.9"));
        assert!(prepare_request_headers(&mut odd, Some(host), &id, client, false, true));
        assert_eq!(odd["x-forwarded-for"], "203.0.113.9, 192.0.2.7");
        assert!(odd.get_all(header::VIA).iter().any(|v| v == "1.1 lb"), "{odd:?}");
        assert_eq!(odd["forwarded"], "for=203.0.113.9");
        assert_eq!(odd["x-real-ip"], "203.0.113.9");
        for gone in ["connection", "expect"] {
            assert!(!odd.contains_key(gone), "{gone} still there: {odd:?}");
        }
        assert_eq!(odd["host"], "app.example");
        assert_eq!(odd["x-forwarded-host"], "app.example");
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

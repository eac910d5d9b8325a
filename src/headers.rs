//! Header rewriting between client and upstream (RFC 9110 §7.6).
//!
//! Hop-by-hop headers describe one connection and never cross the proxy: the fixed list
//! below plus every header the `Connection` header names (except `Host` and
//! `Content-Length`, which say what the request is and how long, not how the connection
//! behaves: a client cannot make the proxy drop them). Protocol upgrades are the
//! exception: for a request whose route allows the protocol it asks for (see
//! [`upgrade_protocol`]), `Connection: upgrade` and `Upgrade` are forwarded so the upstream
//! can accept the switch, and the 101 answer carries them back. `h2c` is never forwarded,
//! nor `HTTP2-Settings` (hop-by-hop here).
//!
//! HTTP/2 on either side: a request from an HTTP/2 client names its host in `:authority`
//! (the URI) and usually has no `Host` header; `crate::proxy::request` gives the upstream
//! the same `Host` (and `X-Forwarded-Host`) an HTTP/1.1 client would have caused. Towards an
//! HTTP/2 upstream, [`remove_connection_specific`] drops what RFC 9113 §8.2.2
//! forbids, keeping `TE: trailers` (gRPC needs it).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that are hop-by-hop by definition. `Expect` is handled by our own HTTP
/// server (it answers `100 Continue` when the body is first read), so it is not passed on.
const HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    // RFC 9113 dropped the h2c upgrade; RFC 7540 §3.2.1 made it connection-specific.
    HeaderName::from_static("http2-settings"),
];

/// The value of `Via` that we add: `1.1 strangler`.
pub const VIA_VALUE: &str = "1.1 strangler";

/// The request id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `X-Forwarded-For`
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The marker on a shadow copy, set by the mirror: `x-strangler-shadow: 1`.
pub static X_STRANGLER_SHADOW: HeaderName = HeaderName::from_static("x-strangler-shadow");

/// The namespace of headers only the proxy may assert.
const PROXY_ONLY_PREFIX: &str = "x-strangler-";

/// Whether `name` is a header only the proxy may assert. A client's copy is removed before a request is
/// forwarded (and before a shadow copy is kept), so an upstream can trust what it sees:
/// - every `x-strangler-*` header (the namespace is the proxy's: today
///   `x-strangler-shadow`, set on shadow copies only);
/// - `X-Forwarded-Host` and `X-Forwarded-Proto`, which the proxy sets from the request it
///   received (a request without `Host` gets no `X-Forwarded-Host` at all).
///
/// Not on the list, on purpose: `X-Forwarded-For` and `Via` (the proxy appends its hop to
/// the chain) and `x-request-id` (a client's id is kept, to follow a request across hops).
pub fn is_proxy_only(name: &HeaderName) -> bool {
    name.as_str().starts_with(PROXY_ONLY_PREFIX) || name == X_FORWARDED_HOST || name == X_FORWARDED_PROTO
}

/// Removes every header only the proxy may assert (see [`is_proxy_only`]).
pub fn remove_proxy_only(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers.keys().filter(|name| is_proxy_only(name)).cloned().collect();
    for name in names {
        headers.remove(&name);
    }
}

/// Whether `name` has an underscore. A CGI or WSGI upstream (Flask, Django, PHP) reads
/// `X-Secret` and `X_Secret` alike, as `HTTP_X_SECRET`, so a client could send a header the
/// proxy removes or sets (`X_Forwarded_Host`, `X_Strangler_Shadow`, a `request_headers`
/// entry) under the other spelling. A request's underscored headers are dropped, as nginx
/// does by default (`underscores_in_headers off`).
pub fn is_underscored(name: &HeaderName) -> bool {
    name.as_str().as_bytes().contains(&b'_')
}

/// Removes every underscored header (see [`is_underscored`]).
pub fn remove_underscored(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers.keys().filter(|name| is_underscored(name)).cloned().collect();
    for name in names {
        headers.remove(&name);
    }
}

/// Whether a message carries both `Content-Length` and `Transfer-Encoding`: its length is
/// ambiguous (RFC 9112 §6.1: a sender must not send both), and a hop that picks one
/// reading while another picks the other is how responses get truncated or desynchronised.
/// An upstream answer like that is never passed on (502).
pub fn has_ambiguous_framing(headers: &HeaderMap) -> bool {
    headers.contains_key(header::CONTENT_LENGTH) && headers.contains_key(header::TRANSFER_ENCODING)
}

/// Whether a request asks for a protocol upgrade (`Connection: upgrade` + `Upgrade`) that
/// may be forwarded: never one to `h2c` (whether its route allows the protocol is the
/// proxy's to check, see [`upgrade_protocol`]).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_has_token(headers, "upgrade")
        && !upgrade_protocol(headers).is_some_and(|p| protocol_name(p).eq_ignore_ascii_case("h2c"))
}

/// The one protocol a request's `Upgrade` names, trimmed (`websocket`, `foo/2`): `None`
/// without `Upgrade`, or when it offers several (one `Upgrade` header with one protocol is
/// what clients send; anything else is not forwarded as an upgrade).
pub fn upgrade_protocol(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::UPGRADE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let protocol = value.to_str().ok()?.trim();
    let valid = !protocol.is_empty() && protocol.bytes().all(|b| is_token_byte(b) || b == b'/');
    valid.then_some(protocol)
}

/// A protocol's name, without its version: `websocket` of `WebSocket/13`, lower-cased
/// comparisons are the caller's.
pub fn protocol_name(protocol: &str) -> &str {
    protocol.split('/').next().unwrap_or(protocol)
}

/// Whether a `101` answer's `Upgrade` switches to `asked` (the protocol the client's
/// request named, by name, in any case): anything else is not a switch the client asked
/// for.
pub fn switches_to(response: &HeaderMap, asked: &str) -> bool {
    upgrade_protocol(response).is_some_and(|p| protocol_name(p).eq_ignore_ascii_case(protocol_name(asked)))
}

/// A `tchar` of RFC 9110 §5.6.2: the characters of header names, methods and protocol names.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn connection_has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Headers a `Connection` header cannot make the proxy drop: what the message is and how
/// long it is (`Host`, `Content-Length`), and the chain of hops a load balancer in front
/// started (`X-Forwarded-For`, `Forwarded`, `Via`, `X-Real-IP`) and the request id that
/// follows the request across them. A client naming them there would otherwise erase what
/// the hop before the proxy asserted about it (its address, for an upstream's allow-list).
static NOT_DROPPED_BY_CONNECTION: [HeaderName; 7] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::FORWARDED,
    header::VIA,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-request-id"),
];

/// Whether `name` is hop-by-hop by definition (a header named by `Connection` is too).
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// Removes hop-by-hop headers. With `keep_upgrade`, `Upgrade` and a `Connection: upgrade`
/// survive (for a request or response that switches protocols).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one pass of cheap comparisons instead of a hashed removal
    // per name.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    // Headers named by `Connection` go first, while we can still read it.
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            if (keep_upgrade && name == header::UPGRADE) || NOT_DROPPED_BY_CONNECTION.contains(&name) {
                continue;
            }
            headers.remove(&name);
        }
    }
    let upgrade = keep_upgrade.then(|| headers.get(header::UPGRADE).cloned()).flatten();
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::UPGRADE, upgrade);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Whether a request's `TE` accepts trailers. `TE` is hop-by-hop: when the client accepts
/// trailers, the proxy says so again to an HTTP/2 upstream.
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
}

/// Removes what HTTP/2 forbids in a request (RFC 9113 §8.2.2): every hop-by-hop header,
/// `Upgrade` included (HTTP/2 has no upgrades), except `TE: trailers`.
pub fn remove_connection_specific(headers: &mut HeaderMap) {
    let trailers = accepts_trailers(headers);
    remove_hop_by_hop(headers, false);
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Appends a hop to `Via`.
pub fn append_via(headers: &mut HeaderMap) {
    headers.append(header::VIA, HeaderValue::from_static(VIA_VALUE));
}

/// Appends the client address to `X-Forwarded-For` (one comma-separated header).
pub fn append_forwarded_for(headers: &mut HeaderMap, client: std::net::IpAddr) {
    // One lookup: most requests come without the header, and get the client's address.
    let mut entry = match headers.entry(&X_FORWARDED_FOR) {
        header::Entry::Vacant(vacant) => {
            vacant.insert(client_address_value(client));
            return;
        }
        header::Entry::Occupied(occupied) => occupied,
    };
    let mut joined = String::new();
    for value in entry.iter().filter_map(|v| v.to_str().ok()) {
        joined.push_str(value);
        joined.push_str(", ");
    }
    joined.push_str(&client.to_string());
    if let Ok(value) = HeaderValue::from_str(&joined) {
        entry.insert(value);
    }
}

/// The client address as a header value. A connection sends many requests, and a proxy
/// behind a load balancer sees few addresses: the last one formatted on this thread is
/// kept, and its value shared (no formatting or copy per request).
fn client_address_value(client: std::net::IpAddr) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(std::net::IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((ip, value)) if *ip == client => value.clone(),
        _ => {
            let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(client.to_string()))
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
            *last = Some((client, value.clone()));
            value
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn removes_fixed_and_connection_named_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic x"),
            ("upgrade", "websocket"),
            ("x-end-to-end", "kept"),
            ("authorization", "Bearer kept"),
        ]);
        remove_hop_by_hop(&mut h, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-end-to-end", "authorization"]);
    }

    #[test]
    fn keeps_upgrade_when_asked() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(is_upgrade_request(&h));
        remove_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
        assert_eq!(h.get("sec-websocket-key").unwrap(), "k");
    }

    #[test]
    fn connection_cannot_remove_host_or_the_length() {
        let mut h = map(&[
            ("connection", "Host, content-length, transfer-encoding, x-hop"),
            ("host", "app.example"),
            ("content-length", "3"),
            ("transfer-encoding", "chunked"),
            ("x-hop", "1"),
        ]);
        remove_hop_by_hop(&mut h, false);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-length", "host"]);
    }

    #[test]
    fn the_upgrade_protocol_is_one_token() {
        let protocol = |value: &str| upgrade_protocol(&map(&[("upgrade", value)])).map(str::to_owned);
        assert_eq!(protocol(" WebSocket "), Some("WebSocket".to_owned()));
        assert_eq!(protocol("foo/2"), Some("foo/2".to_owned()));
        for several_or_bad in ["websocket, h2c", "", "web socket", "a\"b"] {
            assert_eq!(protocol(several_or_bad), None, "{several_or_bad}");
        }
        assert_eq!(upgrade_protocol(&map(&[("upgrade", "a"), ("upgrade", "b")])), None);
        assert!(switches_to(&map(&[("upgrade", "WEBSOCKET")]), "websocket"));
        assert!(switches_to(&map(&[("upgrade", "foo/3")]), "Foo/2"));
        assert!(!switches_to(&map(&[("upgrade", "h2c")]), "websocket"));
        assert!(!switches_to(&HeaderMap::new(), "websocket"));
        let mut h = map(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
            ("http2-settings", "AAM"),
        ]);
        remove_hop_by_hop(&mut h, false);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn h2c_is_never_an_upgrade() {
        assert!(!is_upgrade_request(&map(&[
            ("connection", "Upgrade"),
            ("upgrade", "H2C")
        ])));
    }

    #[test]
    fn not_an_upgrade_without_connection_token() {
        assert!(!is_upgrade_request(&map(&[("upgrade", "websocket")])));
        assert!(!is_upgrade_request(&map(&[("connection", "keep-alive")])));
    }

    #[test]
    fn h2_requests_keep_only_te_trailers() {
        let mut h = map(&[
            ("connection", "upgrade, x-hop"),
            ("upgrade", "websocket"),
            ("x-hop", "1"),
            ("te", "gzip, trailers"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "application/grpc"),
        ]);
        remove_connection_specific(&mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "te"]);
        assert_eq!(h.get("te").unwrap(), "trailers");
        let mut h = map(&[("te", "gzip")]);
        remove_connection_specific(&mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn proxy_only_headers_are_removed() {
        let mut h = map(&[
            ("x-strangler-shadow", "1"),
            ("X-Strangler-Anything", "x"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-request-id", "r-1"),
            ("via", "1.1 other"),
            ("x-stranglers", "kept"),
        ]);
        remove_proxy_only(&mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["via", "x-forwarded-for", "x-request-id", "x-stranglers"]);
    }

    #[test]
    fn underscored_headers_are_removed() {
        let mut h = map(&[
            ("x_forwarded_host", "evil.example"),
            ("X_Strangler_Shadow", "1"),
            ("x_secret", "s"),
            ("x-secret", "kept"),
            ("accept", "*/*"),
        ]);
        remove_underscored(&mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "x-secret"]);
    }

    #[test]
    fn both_lengths_are_ambiguous_framing() {
        assert!(has_ambiguous_framing(&map(&[
            ("content-length", "1"),
            ("transfer-encoding", "chunked")
        ])));
        assert!(!has_ambiguous_framing(&map(&[("content-length", "1")])));
        assert!(!has_ambiguous_framing(&map(&[("transfer-encoding", "chunked")])));
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = map(&[("x-forwarded-for", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2")]);
        append_forwarded_for(&mut h, "127.0.0.1".parse().unwrap());
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.1, 10.0.0.2, 127.0.0.1");
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, "::1".parse().unwrap());
        assert_eq!(h.get("x-forwarded-for").unwrap(), "::1");
    }

    #[test]
    fn forwarded_for_follows_the_client_from_request_to_request() {
        // The last address is kept per thread: a different client must never get it.
        for client in ["10.1.1.1", "10.1.1.1", "10.2.2.2", "::1", "10.1.1.1"] {
            let mut h = HeaderMap::new();
            append_forwarded_for(&mut h, client.parse().unwrap());
            assert_eq!(h.get("x-forwarded-for").unwrap(), client);
        }
    }
}

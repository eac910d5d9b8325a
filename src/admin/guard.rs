//! The admin API's guard against browsers: DNS rebinding and cross-site requests.
//!
//! A page on `attacker.example` can make a browser talk to the admin listener in two ways:
//! by rebinding its own name to 127.0.0.1 (the browser then sends `Host: attacker.example`
//! and lets the page read the answers), or by a "simple" cross-origin request (a `POST`
//! with `Content-Type: text/plain` needs no preflight; the browser sends it with the page's
//! `Origin`). So, before any routing or token check:
//!
//! - the `Host` (and an HTTP/2 or absolute-form authority) must be an IP literal (v4, or v6
//!   in brackets; the listener's own address is one), `localhost`, or a name listed in
//!   `[proxy] admin_hosts`, any port, case-insensitive, with or without a trailing dot
//!   (`localhost.` is `localhost`); else 421. No name an attacker can
//!   point at us passes. A request without `Host` (HTTP/1.0) passes: a browser always sends one.
//!   The health checks follow the same rule (probes use IP literals).
//! - a state-changing request (any method but `GET`, `HEAD`, `OPTIONS`) with an `Origin`
//!   other than the listener's own (`http://` or `https://` + the request's `Host`) gets
//!   403, `Origin: null` included. Without `Origin` (curl, `strangler` itself) it passes.
//!
//! [`check`] is the pure decision; [`crate::admin`] turns a refusal into the answer.

use std::net::{Ipv4Addr, Ipv6Addr};

use http::{HeaderMap, Method, Uri, header};

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 421: the request names a host the admin API does not answer to (as sent, lossily
    /// decoded).
    Host(String),
    /// 403: a state-changing request from another origin.
    Origin { origin: String, host: Option<String> },
}

/// `Ok` if the request may go on to routing and the token check, else why not.
/// `admin_hosts` are lowercase names without a trailing dot, as the config keeps them.
pub(crate) fn check(method: &Method, uri: &Uri, headers: &HeaderMap, admin_hosts: &[String]) -> Result<(), Refusal> {
    let hosts: Vec<String> = headers
        .get_all(header::HOST)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .chain(uri.authority().map(|authority| authority.as_str().to_owned()))
        .collect();
    if let Some(refused) = hosts.iter().find(|host| !host_allowed(host, admin_hosts)) {
        return Err(Refusal::Host(refused.clone()));
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let host = hosts.first();
    for origin in headers.get_all(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        let own = host.is_some_and(|host| {
            ["http://", "https://"]
                .iter()
                .any(|scheme| origin.eq_ignore_ascii_case(&format!("{scheme}{host}")))
        });
        if !own {
            return Err(Refusal::Origin {
                origin: origin.into_owned(),
                host: host.cloned(),
            });
        }
    }
    Ok(())
}

/// Whether the admin API answers to `authority` (`host` or `host:port`).
fn host_allowed(authority: &str, admin_hosts: &[String]) -> bool {
    let Some(host) = host_of(authority) else {
        return false;
    };
    if let Some(v6) = host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok();
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    // A name with a trailing dot (fully qualified) is the same name: `localhost.` too.
    let name = host.strip_suffix('.').unwrap_or(host);
    name.eq_ignore_ascii_case("localhost") || admin_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// The host of `host[:port]` (a bracketed IPv6 literal keeps its brackets); `None` when the
/// port is not digits or the host is empty or an unbracketed IPv6 address.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => (&authority[..colon], Some(&authority[colon + 1..])),
        _ => (authority, None),
    };
    let port_ok = port.is_none_or(|port| port.bytes().all(|b| b.is_ascii_digit()));
    let bracketed = host.starts_with('[');
    (port_ok && !host.is_empty() && (bracketed || !host.contains(':'))).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, host: Option<&str>, origin: Option<&str>) -> (Method, Uri, HeaderMap) {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(header::HOST, host.parse().unwrap());
        }
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        (method, Uri::from_static("/admin/routes"), headers)
    }

    fn verdict(method: Method, host: Option<&str>, origin: Option<&str>) -> Result<(), Refusal> {
        let (method, uri, headers) = request(method, host, origin);
        check(&method, &uri, &headers, &["strangler-admin.example".to_owned()])
    }

    #[test]
    fn ip_literals_localhost_and_listed_names_pass_any_other_host_is_421() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:9100",
            "10.1.2.3:9100",
            "0.0.0.0:1",
            "[::1]",
            "[::1]:9100",
            "[fe80::1]:80",
            "localhost",
            "LocalHost:9100",
            "localhost.",
            "LOCALHOST.:9100",
            "strangler-admin.example",
            "Strangler-Admin.Example:9100",
            "strangler-admin.example.:9100",
        ] {
            assert_eq!(verdict(Method::GET, Some(host), None), Ok(()), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:9100",
            "localhost.attacker.example",
            "localhost..",
            "localhost.:x",
            "127.0.0.1.attacker.example",
            "strangler-admin.example.attacker.example",
            "::1",
            "[::1",
            "[not-v6]:80",
            "127.0.0.1:x",
            ":9100",
            "",
            "0x7f.1",
        ] {
            assert_eq!(
                verdict(Method::GET, Some(host), None),
                Err(Refusal::Host(host.to_owned())),
                "{host}"
            );
        }
    }

    #[test]
    fn no_host_passes_and_an_authority_is_checked_like_host() {
        assert_eq!(verdict(Method::GET, None, None), Ok(()));
        let headers = HeaderMap::new();
        let uri = Uri::from_static("http://attacker.example:9100/admin/routes");
        assert_eq!(
            check(&Method::GET, &uri, &headers, &[]),
            Err(Refusal::Host("attacker.example:9100".to_owned()))
        );
        let (method, uri, mut headers) = request(Method::GET, Some("attacker.example"), None);
        headers.append(header::HOST, "127.0.0.1".parse().unwrap());
        assert!(check(&method, &uri, &headers, &[]).is_err(), "every Host counts");
        let uri = Uri::from_static("http://[::1]:9100/admin/routes");
        assert_eq!(check(&Method::GET, &uri, &HeaderMap::new(), &[]), Ok(()));
    }

    #[test]
    fn state_changing_requests_need_their_own_origin_or_none() {
        let host = Some("127.0.0.1:9100");
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert_eq!(verdict(method.clone(), host, None), Ok(()), "{method}");
            for own in [
                "http://127.0.0.1:9100",
                "HTTP://127.0.0.1:9100",
                "https://127.0.0.1:9100",
            ] {
                assert_eq!(verdict(method.clone(), host, Some(own)), Ok(()), "{method} {own}");
            }
            for foreign in [
                "http://evil.example",
                "null",
                "http://127.0.0.1:9101",
                "http://127.0.0.1",
                "http://127.0.0.1:9100.evil.example",
                "ftp://127.0.0.1:9100",
            ] {
                assert_eq!(
                    verdict(method.clone(), host, Some(foreign)),
                    Err(Refusal::Origin {
                        origin: foreign.to_owned(),
                        host: host.map(str::to_owned),
                    }),
                    "{method} {foreign}"
                );
            }
        }
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert_eq!(
                verdict(method.clone(), host, Some("http://evil.example")),
                Ok(()),
                "{method}"
            );
        }
        assert!(
            verdict(Method::POST, None, Some("http://127.0.0.1:9100")).is_err(),
            "without Host no Origin is the listener's own"
        );
    }
}

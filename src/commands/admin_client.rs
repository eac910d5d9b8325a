//! The client side of the admin API, shared by `strangler status` and `flip`: where a
//! replica's admin API is (`--admin`, or a table's `admin_listen`), the bearer token sent
//! to it (`--admin-token-file`, or the table's `admin_token_file`), and what one replica
//! answers to `GET /admin/routes` and `/admin/parity` ([`Replica`]).
//!
//! A replica that does not answer is a [`ReplicaState::Down`] with the reason, never an
//! error: callers name it. A 401 reads "needs a token", not "down". Blocking (`ureq`).

use std::net::SocketAddr;
use std::time::Duration;

use crate::admin::api::{ListedRoute, ParityCounts, RouteListing};
use crate::config::Config;

/// How long one admin request may take, connect included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The admin bearer token this process sends, if any (see [`use_admin_token`]).
static ADMIN_TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sends `Authorization: Bearer <token>` with every admin request of this process (`strangler
/// status` and `flip` against proxies that set `admin_token_file`). The first call wins.
pub fn use_admin_token(token: String) {
    let _ = ADMIN_TOKEN.set(token);
}

/// When the admin address comes from a table, so does the token: sends the token of the
/// table's `admin_token_file` (unless a token was given already, by `--admin-token-file`).
/// A file that cannot be read is logged, not fatal: requests go without a token, and a 401
/// says that one is needed.
pub fn use_token_of(config: &Config) {
    if ADMIN_TOKEN.get().is_some() {
        return;
    }
    let Some(file) = &config.proxy.admin_token_file else {
        return;
    };
    match crate::config::read_token_file(&file.path, "the table's `admin_token_file`") {
        Ok(token) => use_admin_token(token),
        Err(e) => tracing::warn!("{e}; asking the admin API without a token"),
    }
}

/// What a 401 from an admin API means to the operator.
const NEEDS_TOKEN: &str = "401: the admin API needs a token (give --admin-token-file, or take the \
                           address from a table whose admin_token_file is readable here)";

/// A blocking `GET` of `url` (plain `http://` only): the status code and the body.
///
/// Uses `ureq` without TLS and without the `HTTP_PROXY` environment: admin listeners are on
/// loopback or an internal network, and a proxy in the environment must not reroute them.
pub fn http_get(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    http_get_as(url, timeout, ADMIN_TOKEN.get().map(String::as_str))
}

/// A blocking `GET` of `url` like [`http_get`], with `bearer` as the only credential: the
/// admin token never goes to another server (a Prometheus).
pub fn http_get_as(url: &str, timeout: Duration, bearer: Option<&str>) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    if response.status().is_redirection() {
        let location = response.headers().get("location").map_or_else(
            || "nowhere".to_owned(),
            |l| String::from_utf8_lossy(l.as_bytes()).into_owned(),
        );
        return Err(format!(
            "GET {url} answered {status}, a redirect to {location}: not followed (give the address that answers)"
        ));
    }
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {url}: cannot read the body: {e}"))?;
    Ok((status, body))
}

/// An admin base URL as given on the command line: `http://host:port`, or `host:port`
/// (taken as `http://`), without a trailing slash. A URL that [`parse_admin_url`] refuses
/// is kept as given minus any user info (callers check it first; never echo a password).
pub fn admin_base(arg: &str) -> String {
    parse_admin_url(arg).unwrap_or_else(|_| {
        let arg = arg.trim().trim_end_matches('/');
        let arg = arg.rsplit_once('@').map_or(arg, |(_, host)| host);
        if arg.contains("://") {
            arg.to_owned()
        } else {
            format!("http://{arg}")
        }
    })
}

/// Checks an admin (or Prometheus) base URL as given on the command line and returns it
/// as `http://host:port`: `host:port` or `http://host:port[/]`, nothing more. A path other
/// than `/`, a query, a fragment (they would be glued onto `/admin/routes`), user info (a
/// password on the command line; the token goes in `--admin-token-file`) or another scheme
/// is an error that says so, never echoing the user info.
pub fn parse_admin_url(arg: &str) -> Result<String, String> {
    let arg = arg.trim();
    let with_scheme = if arg.contains("://") {
        arg.to_owned()
    } else {
        format!("http://{arg}")
    };
    let (scheme_part, rest) = with_scheme.split_once("://").unwrap_or(("http", &with_scheme));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if rest[..authority_end].contains('@') {
        return Err(format!(
            "{scheme_part}://…@{}: user info (user:password@) is not accepted in an admin URL; give the token \
             with --admin-token-file",
            rest[..authority_end].rsplit_once('@').map_or("", |(_, host)| host)
        ));
    }
    if arg.contains('#') {
        return Err(format!(
            "{arg}: an admin URL has no fragment (#…); give http://HOST:PORT"
        ));
    }
    let uri: http::Uri = with_scheme
        .parse()
        .map_err(|e| format!("{arg}: not a URL ({e}); give http://HOST:PORT"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{arg}: only http:// admin URLs are supported (the admin listener is plain HTTP); give http://HOST:PORT"
        ));
    }
    if uri.query().is_some() || !matches!(uri.path(), "" | "/") {
        return Err(format!(
            "{arg}: an admin URL has no path or query (`/admin/…` is added); give http://HOST:PORT"
        ));
    }
    match uri.authority() {
        Some(authority) if !authority.host().is_empty() => Ok(format!("http://{authority}")),
        _ => Err(format!("{arg}: no host; give http://HOST:PORT")),
    }
}

/// The admin base URL of the proxy that runs `config`: its `proxy.admin_listen`, with an
/// unspecified address (`0.0.0.0`, `[::]`) read as loopback.
pub fn admin_url_of(config: &Config) -> String {
    let mut addr = config.proxy.admin_listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

/// What `/admin/parity` said.
#[derive(Debug, Clone)]
pub enum ParityAnswer {
    /// 404: this build has no parity endpoint.
    Absent,
    /// The report.
    Report(ParityCounts),
    /// Another status, or a body that is not a report.
    Unreadable(String),
    /// Not asked (a flip that needs the version only).
    NotAsked,
}

/// One replica as the board sees it.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Its admin base URL.
    pub admin: String,
    /// What it answered.
    pub state: ReplicaState,
}

/// Whether a replica answered, and what.
#[derive(Debug, Clone)]
pub enum ReplicaState {
    /// `/admin/routes` failed: why.
    Down(String),
    /// It answered 401: it runs, but this client has no (or a wrong) admin token.
    NeedsToken(String),
    /// It answered.
    Up {
        /// The table version in force.
        version: String,
        /// Its process id (`instance` of `/admin/routes`); `None` from a build without it.
        instance: Option<String>,
        /// Its routes.
        routes: Vec<ListedRoute>,
        /// Its parity counts.
        parity: ParityAnswer,
    },
}

/// Asks one replica for its routes and parity counts. Blocking.
pub fn fetch(admin: &str) -> Replica {
    fetch_with(admin, true)
}

/// Asks one replica for its routes, and its parity counts if `with_parity`. Blocking.
pub fn fetch_with(admin: &str, with_parity: bool) -> Replica {
    let admin = admin_base(admin);
    let state = match http_get(&format!("{admin}/admin/routes"), TIMEOUT) {
        Err(e) => ReplicaState::Down(e),
        Ok((200, body)) => match serde_json::from_str::<RouteListing>(&body) {
            Ok(answer) => ReplicaState::Up {
                version: answer.version,
                instance: answer.instance,
                routes: answer.routes,
                parity: if with_parity {
                    fetch_parity(&admin)
                } else {
                    ParityAnswer::NotAsked
                },
            },
            Err(e) => ReplicaState::Down(format!("GET {admin}/admin/routes: not a routes listing: {e}")),
        },
        Ok((421, _)) => ReplicaState::Down(format!(
            "GET {admin}/admin/routes answered 421: the admin API does not answer to this host name \
             (use its IP address, or list the name in its [proxy] admin_hosts)"
        )),
        Ok((401, _)) => ReplicaState::NeedsToken(format!("GET {admin}/admin/routes answered {NEEDS_TOKEN}")),
        Ok((status, _)) => ReplicaState::Down(format!("GET {admin}/admin/routes answered {status}")),
    };
    Replica { admin, state }
}

fn fetch_parity(admin: &str) -> ParityAnswer {
    let url = format!("{admin}/admin/parity");
    match http_get(&url, TIMEOUT) {
        Ok((200, body)) => match serde_json::from_str(&body) {
            Ok(report) => ParityAnswer::Report(report),
            Err(e) => ParityAnswer::Unreadable(format!("GET {url}: not a parity report: {e}")),
        },
        Ok((404, _)) => ParityAnswer::Absent,
        Ok((401, _)) => ParityAnswer::Unreadable(format!("GET {url} answered {NEEDS_TOKEN}")),
        Ok((status, _)) => ParityAnswer::Unreadable(format!("GET {url} answered {status}")),
        Err(e) => ParityAnswer::Unreadable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Table;

    #[test]
    fn admin_urls_are_a_host_and_port_and_nothing_more() {
        assert_eq!(
            parse_admin_url("127.0.0.1:9100"),
            Ok("http://127.0.0.1:9100".to_owned())
        );
        assert_eq!(parse_admin_url(" http://h:1/ "), Ok("http://h:1".to_owned()));
        assert_eq!(parse_admin_url("HTTP://[::1]:9"), Ok("http://[::1]:9".to_owned()));
        for bad in [
            "http://h:1/admin",
            "h:1/x",
            "http://h:1?a=b",
            "http://h:1#frag",
            "h:1#frag/admin/routes",
            "https://h:1",
            "ftp://h:1",
            "http://:1",
        ] {
            let said = parse_admin_url(bad).unwrap_err();
            assert!(said.contains("give http://HOST:PORT"), "{bad}: {said}");
        }
        let said = parse_admin_url("http://admin:s3cret@h:1").unwrap_err();
        assert!(!said.contains("s3cret") && !said.contains("admin:"), "{said}");
        assert!(said.contains("user info"), "{said}");
        assert!(!admin_base("http://admin:s3cret@h:1").contains("s3cret"));
    }

    #[test]
    fn redirects_are_not_followed_and_name_their_location() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).unwrap();
            stream
                .write_all(
                    b"HTTP/1.1 302 Found\r\nlocation: http://10.9.9.9:9100/admin/routes\r\ncontent-length: 0\r\n\r\n",
                )
                .unwrap();
        });
        let said = http_get_as(&format!("http://{addr}/admin/routes"), TIMEOUT, None).unwrap_err();
        server.join().unwrap();
        assert!(
            said.ends_with("answered 302, a redirect to http://10.9.9.9:9100/admin/routes: not followed (give the address that answers)"),
            "{said}"
        );
    }

    #[test]
    fn admin_urls() {
        assert_eq!(admin_base("127.0.0.1:9100/"), "http://127.0.0.1:9100");
        assert_eq!(admin_base("http://h:1"), "http://h:1");
        let table = |admin_listen: &str| {
            let text = format!(
                "[proxy]\nlisten = \"127.0.0.1:8000\"\nadmin_listen = \"{admin_listen}\"\n\
                 admin_token_file = \"token\"\ndefault_upstream = \"a\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1\"\n"
            );
            Table::parse("routes.toml", &text).unwrap().config
        };
        assert_eq!(admin_url_of(&table("0.0.0.0:9100")), "http://127.0.0.1:9100");
        assert_eq!(admin_url_of(&table("[::]:9")), "http://[::1]:9");
        assert_eq!(admin_url_of(&table("10.0.0.7:9100")), "http://10.0.0.7:9100");
    }
}

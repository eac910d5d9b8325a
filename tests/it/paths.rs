//! Path spellings that upstreams read differently from the router (issue 18, finding 8):
//! `;params`, which Tomcat, Jetty and Spring strip before routing, refused when they would
//! change the route; `%3B`, which is data; both over HTTP/1.1 and HTTP/2.

use std::ffi::OsStr;

use http::Request;
use tokio::net::TcpStream;

use crate::support::tls::send_over;
use crate::support::*;

/// Echo upstreams `legacy` (the default) and `new`; route `secure` (`/secure/`, stage new)
/// and `login` (exact `/secure/login`, POST only, stage legacy).
struct Site {
    proxy: TestProxy,
    legacy: Upstream,
    new: Upstream,
}

impl Site {
    async fn start(routes: &str) -> Site {
        let legacy = echo_upstream("legacy").await;
        let new = echo_upstream("new").await;
        let text = routes_toml(&[("legacy", &legacy.url()), ("new", &new.url())], routes);
        let proxy = TestProxy::start(&text).await;
        Site { proxy, legacy, new }
    }

    /// Paths the upstreams were asked for, legacy's then new's.
    fn seen_paths(&self) -> (Vec<String>, Vec<String>) {
        let paths = |u: &Upstream| u.seen().iter().map(|s| s.uri.to_string()).collect();
        (paths(&self.legacy), paths(&self.new))
    }
}

const SECURE: &str = r#"
[[routes]]
name = "secure"
path = "/secure/"
stage = "new"
new = "new"

[[routes]]
name = "login"
exact = "/secure/login"
methods = ["POST"]
"#;

#[tokio::test]
async fn params_that_would_reach_another_route_are_refused() {
    let site = Site::start(SECURE).await;
    let targets = [
        ("GET", "/secure;x/y", "/secure/y"),
        ("GET", "/secure;jsessionid=ABC/admin/users", "/secure/admin/users"),
        ("GET", "/;x/secure/y", "/secure/y"),
        ("GET", "/secure;x", "/secure"),
        // In the last segment: as sent the prefix route, without it the exact one.
        ("POST", "/secure/login;x=1", "/secure/login"),
    ];
    for (method, target, without) in targets {
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: app.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let response = raw_response(site.proxy.addr, request.as_bytes()).await;
        assert_eq!(response.status, 400, "{method} {target}: {}", response.body_text());
        assert_eq!(
            response.body_text(),
            format!("ambiguous request path: without its ;parameters it reads {without}, which another route serves\n"),
            "{method} {target}"
        );
        assert!(response.has_header("x-request-id"), "{method} {target}");
    }
    let (legacy, new) = site.seen_paths();
    let refused = metric(
        &site.proxy,
        "strangler_rejected_requests_total{reason=\"ambiguous_path\"}",
    )
    .await;
    println!(
        "figure: ;params that would change the route: {}/{} refused with 400, {} reached an upstream",
        refused.unwrap_or(0.0),
        targets.len(),
        legacy.len() + new.len()
    );
    assert_eq!((legacy, new), (vec![], vec![]), "a refused path reached an upstream");
    assert_eq!(refused, Some(5.0));
    site.proxy.stop().await;
}

#[tokio::test]
async fn params_that_keep_the_route_are_forwarded_as_sent() {
    let site = Site::start(SECURE).await;
    for (method, target, upstream) in [
        ("GET", "/secure/y;jsessionid=1?q=1", "new"),
        ("GET", "/secure/a;v=1/b", "new"),
        ("GET", "/secure/login;x", "new"),
        ("GET", "/other;x/y", "legacy"),
        // `%3B` is data, not a delimiter: the segment is `secure;x`, for the router as for
        // Tomcat, so it is legacy's path and legacy gets it as sent (hex uppercased).
        ("GET", "/secure%3Bx/y", "legacy"),
        ("GET", "/secure%3bx/y", "legacy"),
    ] {
        let request = format!("{method} {target} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n");
        let response = raw_response(site.proxy.addr, request.as_bytes()).await;
        assert_eq!(response.status, 200, "{method} {target}: {}", response.body_text());
        assert_eq!(response.json()["upstream"], upstream, "{method} {target}");
    }
    let (legacy, new) = site.seen_paths();
    assert_eq!(
        new,
        ["/secure/y;jsessionid=1?q=1", "/secure/a;v=1/b", "/secure/login;x"]
    );
    assert_eq!(legacy, ["/other;x/y", "/secure%3Bx/y", "/secure%3Bx/y"]);
    assert_eq!(
        metric(
            &site.proxy,
            "strangler_rejected_requests_total{reason=\"ambiguous_path\"}"
        )
        .await,
        None
    );
    site.proxy.stop().await;
}

#[tokio::test]
async fn params_are_judged_the_same_over_http2() {
    let site = Site::start(SECURE).await;
    let h2c_get = |path: &'static str| {
        let addr = site.proxy.addr;
        async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let request = Request::get(format!("http://app.example:{}{path}", addr.port()))
                .body(full(""))
                .unwrap();
            send_over(stream, true, request).await
        }
    };
    let refused = h2c_get("/secure;x/y").await;
    assert_eq!(refused.version, http::Version::HTTP_2);
    assert_eq!(refused.status, 400);
    assert!(
        String::from_utf8_lossy(&refused.body).starts_with("ambiguous request path"),
        "{:?}",
        refused.body
    );
    let forwarded = h2c_get("/secure/y;v=1").await;
    assert_eq!(forwarded.status, 200);
    assert_eq!(site.seen_paths(), (vec![], vec!["/secure/y;v=1".to_owned()]));
    site.proxy.stop().await;
}

/// RFC 9112 §3.2.2: an absolute-form target's authority wins over `Host`, and a proxy
/// replaces `Host` with it; user info never goes on.
#[tokio::test]
async fn an_absolute_form_target_names_the_host_the_upstream_hears() {
    let site = Site::start(SECURE).await;
    for (target, host) in [
        ("http://other.example/x", "other.example"),
        ("http://Other.example:8080/x?q=1", "Other.example:8080"),
        ("http://user:pass@other.example/x", "other.example"),
        ("http://user@[::1]:81/x", "[::1]:81"),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let response = raw_response(site.proxy.addr, request.as_bytes()).await;
        assert_eq!(response.status, 200, "{target}: {}", response.body_text());
        let seen = site.legacy.seen().pop().unwrap();
        assert_eq!(seen.uri.path(), "/x", "{target}");
        assert_eq!(seen.headers.get_all("host").iter().count(), 1, "{target}");
        assert_eq!(seen.headers["host"], host, "{target}");
        assert_eq!(seen.headers["x-forwarded-host"], host, "{target}");
    }
    // An origin-form target keeps its Host.
    let response = raw_response(site.proxy.addr, &get_request("/x")).await;
    assert_eq!(response.status, 200);
    assert_eq!(site.legacy.seen().pop().unwrap().headers["host"], "app.example");
    site.proxy.stop().await;
}

/// `localhost.` (fully qualified, with its trailing dot) is `localhost` to the admin
/// listener's Host check, not a foreign name (421).
#[tokio::test]
async fn the_admin_listener_takes_a_trailing_dot_as_the_same_name() {
    let site = Site::start("").await;
    for host in ["localhost.", "LOCALHOST.", "localhost.:9100"] {
        let request = format!("GET /admin/routes HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let response = raw_response(site.proxy.admin, request.as_bytes()).await;
        assert_eq!(response.status, 200, "{host}: {}", response.body_text());
    }
    let request = b"GET /admin/routes HTTP/1.1\r\nHost: localhost.attacker.example.\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_response(site.proxy.admin, request).await.status, 421);
    site.proxy.stop().await;
}

const CASE_INSENSITIVE: &str = r#"
[[routes]]
name = "secure"
path = "/secure/"
stage = "new"
new = "new"
case_insensitive = true

[[routes]]
name = "login"
exact = "/Account/Login"
stage = "new"
new = "new"
case_insensitive = true

[[routes]]
name = "reports"
path = "/Reports/"
stage = "new"
new = "new"
"#;

/// `case_insensitive = true`: every ASCII spelling of the route's path reaches the route
/// (and is forwarded as sent); a route without it keeps matching as written only.
#[tokio::test]
async fn a_case_insensitive_route_takes_every_spelling() {
    let site = Site::start(CASE_INSENSITIVE).await;
    for (target, upstream) in [
        ("/secure/x", "new"),
        ("/SECURE/x", "new"),
        ("/Secure/X?q=A", "new"),
        ("/account/login", "new"),
        ("/ACCOUNT/LOGIN", "new"),
        ("/account/login/x", "legacy"),
        ("/Reports/1", "new"),
        ("/reports/1", "legacy"),
        ("/securex", "legacy"),
    ] {
        let response = raw_response(site.proxy.addr, &get_request(target)).await;
        assert_eq!(response.status, 200, "{target}: {}", response.body_text());
        assert_eq!(response.json()["upstream"], upstream, "{target}");
    }
    let (_, new) = site.seen_paths();
    assert_eq!(new[..3], ["/secure/x", "/SECURE/x", "/Secure/X?q=A"]);
    // HTTP/2 alike, and `;params` are judged on the folded match too.
    for (path, status) in [("/SeCuRe/x", 200), ("/SECURE;x/y", 400)] {
        let stream = TcpStream::connect(site.proxy.addr).await.unwrap();
        let request = Request::get(format!("http://app.example:{}{path}", site.proxy.addr.port()))
            .body(full(""))
            .unwrap();
        let reply = send_over(stream, true, request).await;
        assert_eq!(reply.status, status, "{path}");
    }
    assert_eq!(site.new.seen().last().unwrap().uri.path(), "/SeCuRe/x");
    site.proxy.stop().await;
}

/// `strangler check` takes `case_insensitive = true` and says where a wrong one is.
#[tokio::test]
async fn check_accepts_case_insensitive_and_points_at_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("routes.toml");
    let text = routes_toml(
        &[("legacy", "http://127.0.0.1:1"), ("new", "http://127.0.0.1:2")],
        CASE_INSENSITIVE,
    );
    std::fs::write(&good, &text).unwrap();
    let output = strangler(&[OsStr::new("check"), good.as_os_str()]).await;
    assert!(output.status.success(), "{}", both(&output));

    let bad = dir.path().join("bad.toml");
    let text = text.replacen("case_insensitive = true", "case_insensitive = 1", 1);
    std::fs::write(&bad, &text).unwrap();
    let output = strangler(&[OsStr::new("check"), bad.as_os_str()]).await;
    assert!(!output.status.success());
    let (line, column) = position_of(&text, "1\n\n[[routes]]\nname = \"login\"");
    let expected = format!("bad.toml:{line}:{column}: invalid type");
    assert!(
        both(&output).contains(&expected),
        "want {expected} in {}",
        both(&output)
    );
}

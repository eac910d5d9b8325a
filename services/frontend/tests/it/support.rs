//! Shared helpers: the monolith as a backend on a loopback socket, stub backends, the frontend under test,
//! and a response type that is easy to assert on.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use frontend_service::backend::{BackendConfig, Backends};
use frontend_service::{AppState, app};
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::{Metrics, PasswordHasher};
use mythoughts_legacy::{Db, startup};
pub use mythoughts_testkit::{RequestExt, TestResponse, key_pair, positions, req, send, verifier};
use tokio::net::TcpListener;

/// The apps' issuer (the monolith signs with it, the frontend verifies with its public half).
pub fn issuer() -> mythoughts_common::TokenIssuer {
    mythoughts_testkit::issuer(0)
}

/// Serves `router` on an ephemeral loopback port for the rest of the test; returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

/// A base URL where nothing listens: a port we bound, then released.
pub async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// The seeded monolith on a private in-memory database, served on loopback, and reachable without a socket
/// too (to compare its own pages with ours).
pub struct Monolith {
    pub url: String,
    pub router: Router,
}

impl Monolith {
    pub async fn start() -> Self {
        let db = Db::open_in_memory().unwrap();
        let passwords = PasswordHasher::insecure_fast();
        startup::prepare_database(&db, &passwords, true).await.unwrap();
        let state = mythoughts_legacy::AppState {
            db,
            issuer: Arc::new(issuer()),
            verifier: Arc::new(verifier()),
            passwords,
            metrics: Metrics::new().unwrap(),
            version: Arc::new(VersionInfo::new("test", env!("CARGO_PKG_VERSION"))),
        };
        let router = mythoughts_legacy::app(state);
        Self {
            url: serve(router.clone()).await,
            router,
        }
    }

    /// A request to the monolith itself, through `oneshot`.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        send(&self.router, request).await
    }
}

/// The frontend under test.
pub struct Frontend {
    pub router: Router,
    pub state: AppState,
}

impl Frontend {
    /// A frontend whose backends are the monolith, for both services.
    pub fn on(monolith: &Monolith) -> Self {
        Self::with(&monolith.url, &monolith.url, Duration::from_secs(10))
    }

    pub fn with(thoughts: &str, users: &str, timeout: Duration) -> Self {
        let metrics = Metrics::new().unwrap();
        let config = BackendConfig {
            thoughts: thoughts.parse().unwrap(),
            users: users.parse().unwrap(),
            timeout,
            connect_timeout: timeout,
        };
        let state = AppState {
            backends: Backends::new(config, metrics.registry()).unwrap(),
            verifier: Arc::new(verifier()),
            metrics,
        };
        Self {
            router: app(state.clone()),
            state,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        send(&self.router, request).await
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.send(req(Method::GET, uri).empty()).await
    }
}

/// `GET uri` with the `session` cookie (among others).
pub fn get_with_session(uri: &str, token: &str) -> Request<Body> {
    req(Method::GET, uri)
        .header("cookie", format!("theme=dark; session={token}"))
        .empty()
}

/// What the page tests ask of a response besides the shared [`TestResponse`]'s.
pub trait PageResponse {
    /// The token in a `Set-Cookie: session=<token>; …` header.
    fn session_token(&self) -> String;
    /// Whether the body is an HTML page.
    fn is_html(&self) -> bool;
}

impl PageResponse for TestResponse {
    fn session_token(&self) -> String {
        let cookie = self.header("set-cookie").unwrap();
        cookie
            .strip_prefix("session=")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    fn is_html(&self) -> bool {
        self.header(header::CONTENT_TYPE.as_str())
            .is_some_and(|ct| ct.starts_with("text/html"))
    }
}

/// Logs `username` in through `POST /login/` of `router`'s app and returns the `session` cookie's token.
pub async fn login_via(send: impl AsyncFnOnce(Request<Body>) -> TestResponse, username: &str) -> String {
    let response = send(req(Method::POST, "/login/").form(&format!("username={username}&password=password"))).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.text());
    assert_eq!(response.header("location").as_deref(), Some("/"));
    let cookie = response.header("set-cookie").unwrap();
    for attribute in ["HttpOnly", "Path=/", "SameSite=Lax", "Max-Age=172800"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    response.session_token()
}

/// The visible text of each thought card (`<article class="card" …>…</article>`), tags stripped, entities
/// left as they are, whitespace collapsed.
pub fn thought_cards_text(html: &str) -> Vec<String> {
    let mut cards = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(r#"<article class="card""#) {
        let after = &rest[start..];
        let end = after.find("</article>").unwrap();
        cards.push(visible_text(&after[..end]));
        rest = &after[end..];
    }
    cards
}

/// Text outside tags, whitespace collapsed.
pub fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

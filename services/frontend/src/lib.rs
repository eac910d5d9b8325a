//! # frontend-service
//!
//! The MyThoughts pages as their own service: the monolith's HTML pages (same paths, same markup, same
//! `session` cookie), built from the Thoughts and Users services over HTTP instead of from a database. Behind
//! `strangler`, the page routes can move here one by one while the monolith keeps the rest.
//!
//! Map:
//! - [`app`] builds the [`axum::Router`] from an [`AppState`]; tests call it with `oneshot`, no socket.
//! - [`pages`]: the page handlers: session check, one backend call, shared markup.
//! - [`backend`]: the pooled, bounded HTTP client to the two backends and [`backend::BackendError`].
//! - [`error`]: the one mapping from a backend failure to a 502/503/504 page.
//! - [`startup`]: the public key and the client, before serving; [`cli`]: the command line.
//!
//! Markup, stylesheet, session cookie, redirects and error pages come from [`mythoughts_common`]
//! (`html`, `pages`, `session`), shared with the monolith; serving and shutdown from
//! [`mythoughts_common::server`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, FromRequestParts, MatchedPath, State};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mythoughts_common::pages as shared;
use mythoughts_common::telemetry::{self, METRICS_CONTENT_TYPE, REQUEST_ID_HEADER, tag_endpoint};
use mythoughts_common::{Metrics, TokenVerifier};

pub mod backend;
pub mod cli;
pub mod error;
pub mod pages;
pub mod startup;

pub use backend::Backends;

/// Everything a request handler needs. Cheap to clone: every field is a shared handle.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The Thoughts and Users services, behind one pooled client.
    pub backends: Backends,
    /// Checks session cookies locally (public key), so a missing or bad session redirects to the login page
    /// without asking any backend.
    pub verifier: Arc<TokenVerifier>,
    /// Request and backend-call metrics, served at `/metrics`.
    pub metrics: Metrics,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    /// Lets the shared [`mythoughts_common::session::Session`] extractor check cookies with our key.
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The request's `x-request-id`, if it sent one, to forward to the backends.
#[derive(Debug, Clone, Default)]
pub struct RequestId(pub Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(REQUEST_ID_HEADER).cloned()))
    }
}

/// The whole service: the pages, the stylesheet, health and metrics, with request metrics and spans.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(pages::thoughts))
        .route("/thoughts/", get(pages::thoughts))
        .route("/thoughts/new", post(pages::new_thought))
        .route("/login/", get(shared::login_form).post(pages::login_submit))
        .route("/logout/", get(shared::logout))
        .route("/search", get(pages::search))
        .route("/static/style.css", get(shared::stylesheet))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(pages::not_found);
    telemetry::instrument(routes, state.metrics.clone()).with_state(state)
}

/// `GET /healthz`: 200 while the process serves requests (it does not probe the backends: a backend outage
/// must not take the pages that still work out of rotation).
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], state.metrics.render())
}

/// 405 for a known path with an unsupported method; the router adds `Allow`.
async fn method_not_allowed(matched: Option<MatchedPath>) -> Response {
    let mut response = shared::method_not_allowed();
    if let Some(matched) = matched {
        tag_endpoint(&mut response, &matched);
    }
    response
}

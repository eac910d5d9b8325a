//! # mythoughts-legacy
//!
//! The "before" of the strangler-fig demo: a deliberately classic monolith. One process, one SQLite file,
//! server-rendered HTML for browsers and a JSON API compatible with the book's Thoughts and Users backends,
//! so that `strangler` can move routes one by one to the microservices and compare answers.
//!
//! Map:
//! - [`app`] builds the whole [`axum::Router`] from an [`AppState`]; tests call it with `oneshot`, no socket.
//! - [`api`]: the JSON endpoints (`/api/…`, `/admin/…`, `/healthz`, `/metrics`) and the trailing-slash and
//!   405 rules.
//! - [`pages`]: the HTML pages; their markup ([`html`]), cookie and shared responses come from
//!   [`mythoughts_common`] so the frontend service renders the very same pages.
//! - [`auth`]: bearer header and session cookie, and the shared login check.
//! - [`input`]: request fields from JSON, query string or form, as Flask-RESTPlus read them.
//! - [`store`]: every SQL statement; [`db`]: the connection pool that runs them off the async workers.
//! - [`startup`]: keys, database and seed data before serving; [`server`]: listening and graceful shutdown.
//! - [`cli`]: the command line.
//!
//! Shared shapes, JWT, passwords, seed rows, error bodies and telemetry come from [`mythoughts_common`].

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::middleware;
use axum::routing::{any, delete, get, post};
use mythoughts_common::api::with_flask_allow;
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::telemetry;
use mythoughts_common::thoughts_api;
use mythoughts_common::{Metrics, PasswordHasher, TokenIssuer, TokenVerifier};

pub mod api;
pub mod auth;
pub mod cli;
pub mod db;
pub mod input;
pub mod pages;
pub mod server;
pub mod startup;
pub mod store;

pub use db::Db;
/// The page markup, shared with the frontend service.
pub use mythoughts_common::html;

/// Everything a request handler needs. Cheap to clone: every field is a shared handle.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The SQLite pool.
    pub db: Db,
    /// Signs API tokens and session cookies (private key).
    pub issuer: Arc<TokenIssuer>,
    /// Checks API tokens and session cookies (public key).
    pub verifier: Arc<TokenVerifier>,
    /// Hashes new passwords and checks logins.
    pub passwords: PasswordHasher,
    /// Request metrics, served at `/metrics`.
    pub metrics: Metrics,
    /// Served at `/admin/version/`.
    pub version: Arc<VersionInfo>,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    /// Lets the shared [`mythoughts_common::session::Session`] extractor check cookies with our key.
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The whole application: HTML pages, JSON API, health and metrics, with request metrics and spans.
/// Hands the database to the shared thoughts endpoints ([`mythoughts_common::thoughts_api`]).
impl FromRef<AppState> for mythoughts_common::db::Db {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        // HTML pages.
        .route("/", get(pages::thoughts))
        .route("/thoughts/", get(pages::thoughts))
        .route("/thoughts/new", post(pages::new_thought))
        .route("/login/", get(pages::login_form).post(pages::login_submit))
        .route("/logout/", get(pages::logout))
        .route("/search", get(pages::search))
        .route("/static/style.css", get(pages::stylesheet))
        // JSON API (the book's Thoughts and Users backends).
        .route("/api/thoughts/", get(thoughts_api::list_thoughts))
        .route("/api/thoughts/{id}/", get(thoughts_api::get_thought))
        .route(
            "/api/me/thoughts/",
            get(thoughts_api::my_thoughts).post(thoughts_api::create_thought),
        )
        .route("/api/login/", post(api::login))
        .route("/admin/users/", post(api::create_user))
        .route("/admin/thoughts/{id}/", delete(thoughts_api::delete_thought))
        .route("/admin/version/", get(api::version))
        // The same API paths without their trailing slash: 308 to the canonical path.
        .route("/api/thoughts", any(api::add_trailing_slash))
        .route("/api/thoughts/{id}", any(api::add_trailing_slash))
        .route("/api/me/thoughts", any(api::add_trailing_slash))
        .route("/api/login", any(api::add_trailing_slash))
        .route("/admin/users", any(api::add_trailing_slash))
        .route("/admin/thoughts/{id}", any(api::add_trailing_slash))
        .route("/admin/version", any(api::add_trailing_slash))
        // Operations.
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .method_not_allowed_fallback(api::method_not_allowed)
        .fallback(pages::not_found);
    let metrics = state.metrics.clone();
    // Flask's `Allow` and `OPTIONS` rules see the router's answer; the metrics see what the client gets.
    let app = with_flask_allow(telemetry::tag_endpoints(routes).with_state(state));
    telemetry::track(app, metrics).layer(middleware::from_fn(telemetry::echo_request_id))
}

//! # thoughts-service
//!
//! The Thoughts backend of the strangler-fig demo: the monolith's thoughts JSON API, answered byte for byte
//! the same way, over a SQLite file of its own. `strangler` moves `/api/thoughts/…`, `/api/me/thoughts/` and
//! `/admin/thoughts/…` here route by route; [`import`] copies the monolith's rows across first.
//!
//! Map:
//! - [`app`] builds the [`axum::Router`] from an [`AppState`]; tests call it with `oneshot`, no socket.
//! - [`api`]: the endpoints (`/api/thoughts/…`, `/api/me/thoughts/`, `/admin/thoughts/{id}/`,
//!   `/admin/version/`, `/healthz`, `/metrics`).
//! - [`startup`]: public key, database and seed rows before serving.
//! - [`import`]: the data migration from the monolith's database (`thoughts-service import --from …`).
//! - [`cli`]: the command line.
//!
//! Everything the monolith and this service must agree on comes from [`mythoughts_common`]: the SQL
//! ([`mythoughts_common::thought_store`]), request fields, the `Bearer` extractor, the 308/405 rules, error
//! bodies, seed rows, telemetry and serving. This service never signs tokens: it holds the public key only.

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::middleware;
use axum::routing::{any, delete, get};
use mythoughts_common::api::{add_trailing_slash, method_not_allowed, with_flask_allow};
use mythoughts_common::db::Db;
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::telemetry;
use mythoughts_common::thoughts_api;
use mythoughts_common::{Metrics, TokenVerifier};

pub mod api;
pub mod cli;
pub mod import;
pub mod startup;

/// Everything a request handler needs. Cheap to clone: every field is a shared handle.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The SQLite pool (the `thoughts` table only).
    pub db: Db,
    /// Checks `Authorization: Bearer` tokens; public key only, so this service cannot mint them.
    pub verifier: Arc<TokenVerifier>,
    /// Request metrics, served at `/metrics`.
    pub metrics: Metrics,
    /// Served at `/admin/version/`.
    pub version: Arc<VersionInfo>,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    /// Hands the verifier to the shared [`mythoughts_common::api::Bearer`] extractor.
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.verifier)
    }
}

/// The whole service: the thoughts API, health and metrics, with request metrics and spans.
/// Hands the database to the shared thoughts endpoints ([`mythoughts_common::thoughts_api`]).
impl FromRef<AppState> for mythoughts_common::db::Db {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/thoughts/", get(thoughts_api::list_thoughts))
        .route("/api/thoughts/{id}/", get(thoughts_api::get_thought))
        .route(
            "/api/me/thoughts/",
            get(thoughts_api::my_thoughts).post(thoughts_api::create_thought),
        )
        .route("/admin/thoughts/{id}/", delete(thoughts_api::delete_thought))
        .route("/admin/version/", get(api::version))
        // The same paths without their trailing slash: 308 to the canonical path, like the monolith.
        .route("/api/thoughts", any(add_trailing_slash))
        .route("/api/thoughts/{id}", any(add_trailing_slash))
        .route("/api/me/thoughts", any(add_trailing_slash))
        .route("/admin/thoughts/{id}", any(add_trailing_slash))
        .route("/admin/version", any(add_trailing_slash))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(api::not_found);
    let metrics = state.metrics.clone();
    // Flask's `Allow` and `OPTIONS` rules see the router's answer; the metrics see what the client gets.
    let app = with_flask_allow(telemetry::tag_endpoints(routes).with_state(state));
    telemetry::track(app, metrics)
        // The book's thoughts backend echoes (or makes) `X-Request-ID`; its users backend does not.
        .layer(middleware::from_fn(telemetry::echo_request_id))
}

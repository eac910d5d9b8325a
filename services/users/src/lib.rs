//! # users-service
//!
//! The Users backend of the strangler-fig demo: logging in (issuing the RS256 tokens every other service
//! checks) and creating users, answered exactly as the monolith answers them, over a SQLite file of its own.
//! `strangler` moves `/api/login/` and `/admin/users/` here.
//!
//! Map:
//! - [`app`] builds the [`axum::Router`] from an [`AppState`]; tests call it with `oneshot`, no socket.
//! - [`api`]: the endpoints (`/api/login/`, `/admin/users/`, `/admin/version/`, `/healthz`, `/metrics`).
//! - [`startup`]: keys, database and seed users before serving.
//! - [`cli`]: the command line.
//!
//! Everything the monolith and this service must agree on comes from [`mythoughts_common`]: the SQL and the
//! login check ([`mythoughts_common::user_store`]), request fields, the 308/405 rules, error bodies, seed
//! rows, password hashing, telemetry and serving. This is the only service that holds the private key.

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};
use mythoughts_common::api::{add_trailing_slash, method_not_allowed, with_flask_allow};
use mythoughts_common::db::Db;
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::telemetry;
use mythoughts_common::{Metrics, PasswordHasher, TokenIssuer};

pub mod api;
pub mod cli;
pub mod startup;

/// Everything a request handler needs. Cheap to clone: every field is a shared handle.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The SQLite pool (the `users` table only).
    pub db: Db,
    /// Signs the tokens `POST /api/login/` hands out (private key).
    pub issuer: Arc<TokenIssuer>,
    /// Hashes new passwords and checks logins.
    pub passwords: PasswordHasher,
    /// Request metrics, served at `/metrics`.
    pub metrics: Metrics,
    /// Served at `/admin/version/`.
    pub version: Arc<VersionInfo>,
}

/// The whole service: login, user creation, version, health and metrics, with request metrics and spans.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/login/", post(api::login))
        .route("/admin/users/", post(api::create_user))
        .route("/admin/version/", get(api::version))
        // The same paths without their trailing slash: 308 to the canonical path, like the monolith.
        .route("/api/login", any(add_trailing_slash))
        .route("/admin/users", any(add_trailing_slash))
        .route("/admin/version", any(add_trailing_slash))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(api::not_found);
    let metrics = state.metrics.clone();
    // Flask's `Allow` and `OPTIONS` rules see the router's answer; the metrics see what the client gets.
    let app = with_flask_allow(telemetry::tag_endpoints(routes).with_state(state));
    telemetry::track(app, metrics)
}

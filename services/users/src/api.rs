//! The users endpoints, answering exactly as the monolith's (`mythoughts-legacy`'s `api` module): same
//! paths, keys in the same order, same status codes, same error bodies. The parity tests
//! (`tests/it/parity.rs`) send the same requests to both and compare.
//!
//! Like the monolith: a failed login is 401 with the JSON body `""` (the book's), a duplicate username 409
//! (the book answers 201 and stores a second row: a deliberate difference, see
//! `tests/parity/book-differences.toml`), and `/admin/users/` is unauthenticated (as in the book; keep it
//! off the public listener).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use mythoughts_common::errors::USER_EXISTS_MESSAGE;
use mythoughts_common::input::{Fields, args};
use mythoughts_common::model::MAX_USERNAME_CHARS;
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::telemetry::METRICS_CONTENT_TYPE;
use mythoughts_common::{ApiError, Timestamp, User, user_store};
use serde::Serialize;

use crate::AppState;

/// `{"Authorized": "Bearer <jwt>"}`, the body of a successful login.
#[derive(Debug, Serialize)]
pub struct LoginBody {
    /// The ready-made `Authorization` header value.
    #[serde(rename = "Authorized")]
    pub authorized: String,
}

/// `POST /api/login/` with `username`, `password`: the `Authorization` header to use, or 401 `""`.
pub async fn login(State(state): State<AppState>, fields: Fields) -> Result<Json<LoginBody>, ApiError> {
    let username = fields.required(args::LOGIN_USERNAME)?;
    let password = fields.required(args::LOGIN_PASSWORD)?;
    match user_store::authenticate(&state.db, &state.passwords, &state.issuer, username, password).await? {
        Some(token) => Ok(Json(LoginBody {
            authorized: format!("Bearer {token}"),
        })),
        None => Err(ApiError::LoginFailed),
    }
}

/// `POST /admin/users/` with `username`, `password`: 201 and the user (never the password); 409 if taken.
pub async fn create_user(State(state): State<AppState>, fields: Fields) -> Result<(StatusCode, Json<User>), ApiError> {
    let username = fields.required(args::NEW_USERNAME)?.to_owned();
    let password = fields.required(args::NEW_PASSWORD)?.to_owned();
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Err(ApiError::InvalidField {
            field: "username",
            problem: format!("Username is longer than {MAX_USERNAME_CHARS} characters"),
        });
    }
    let passwords = state.passwords.clone();
    let hash = tokio::task::spawn_blocking(move || passwords.hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let creation = Timestamp::now_utc();
    state
        .db
        .call(move |conn| user_store::insert_user(conn, &username, &hash, creation))
        .await
        .map_err(ApiError::internal)?
        .map(|user| (StatusCode::CREATED, Json(user)))
        .ok_or(ApiError::Conflict(USER_EXISTS_MESSAGE))
}

/// `GET /admin/version/`: `{"commit", "version"}`.
pub async fn version(State(state): State<AppState>) -> Json<VersionInfo> {
    Json((*state.version).clone())
}

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], state.metrics.render())
}

/// Any path this service has no route for: the JSON 404 `{"message"}`.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

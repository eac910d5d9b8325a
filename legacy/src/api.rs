//! The JSON API, compatible with the book's Thoughts and Users backends: same paths, same keys in the same
//! order, same status codes, same error texts. The differences from the book are deliberate; each is listed
//! with its reason in `tests/parity/book-differences.toml` (checked against the book's recorded answers).
//! Those that concern this module:
//! - a duplicate username is a 409 (the book has no unique constraint: it answers 201 and stores a second
//!   row, after which the new password never logs in);
//! - a username over 50 characters is a 400 (the book declares `String(50)`, which SQLite does not
//!   enforce);
//! - a token of another algorithm, or one not valid yet (`nbf`), is a 401 (the book's PyJWT raised and it
//!   answered 500);
//! - a `text` over 250 characters is a 400 with the validation body (the book's column did not limit it).
//!
//! As in the book, `POST /api/me/thoughts/` checks that `text` is given before it checks credentials.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use mythoughts_common::model::MAX_USERNAME_CHARS;
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::telemetry::METRICS_CONTENT_TYPE;
use mythoughts_common::{ApiError, Timestamp, User};
use serde::Serialize;

use crate::auth;
use crate::input::Fields;
use crate::{AppState, store};
use mythoughts_common::input::args;

/// The trailing-slash (308) and wrong-method (405) rules, and what counts as an API path, are shared with
/// the microservices; re-exported here under their old paths.
pub use mythoughts_common::api::{add_trailing_slash, is_api_path, method_not_allowed};

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
    match auth::authenticate(&state, username, password).await? {
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
        .call(move |conn| store::insert_user(conn, &username, &hash, creation))
        .await
        .map_err(ApiError::internal)?
        .map(|user| (StatusCode::CREATED, Json(user)))
        .ok_or(ApiError::Conflict(mythoughts_common::errors::USER_EXISTS_MESSAGE))
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

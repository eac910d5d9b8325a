//! The thoughts endpoints, answering exactly as the monolith's (`mythoughts-legacy`'s `api` module): same
//! paths, keys in the same order, same status codes, same error bodies. The parity tests
//! (`tests/it/parity.rs`) send the same requests to both and compare.
//!
//! As in the monolith (and the book), `POST /api/me/thoughts/` validates its arguments before it checks
//! credentials, so a request without `text` is a 400 even without a token.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use mythoughts_common::api::{Bearer, parse_id};
use mythoughts_common::input::Fields;
use mythoughts_common::model::MAX_THOUGHT_CHARS;
use mythoughts_common::telemetry::METRICS_CONTENT_TYPE;
use mythoughts_common::{ApiError, Thought, Timestamp, thought_store};

use crate::{AppState, VersionInfo};

/// `GET /api/thoughts/[?search=]`: every thought, by id, optionally filtered (case-insensitive).
pub async fn list_thoughts(State(state): State<AppState>, fields: Fields) -> Result<Json<Vec<Thought>>, ApiError> {
    let search = fields.optional("search").filter(|s| !s.is_empty()).map(str::to_owned);
    let thoughts = state
        .db
        .call(move |conn| thought_store::thoughts(conn, search.as_deref()))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(thoughts))
}

/// `GET /api/thoughts/{id}/`: one thought, or 404 with the all-null thought.
pub async fn get_thought(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Thought>, ApiError> {
    let id = parse_id(id)?;
    state
        .db
        .call(move |conn| thought_store::thought(conn, id))
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or(ApiError::ThoughtNotFound)
}

/// `GET /api/me/thoughts/`: the caller's thoughts, by id.
pub async fn my_thoughts(
    State(state): State<AppState>,
    Bearer(claims): Bearer,
) -> Result<Json<Vec<Thought>>, ApiError> {
    let thoughts = state
        .db
        .call(move |conn| thought_store::thoughts_of(conn, &claims.username))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(thoughts))
}

/// `POST /api/me/thoughts/` with `text`: 201 and the new thought. An empty text is accepted, as in the book.
pub async fn create_thought(
    State(state): State<AppState>,
    bearer: Result<Bearer, ApiError>,
    fields: Fields,
) -> Result<(StatusCode, Json<Thought>), ApiError> {
    let text = fields.required("text")?.to_owned();
    if text.chars().count() > MAX_THOUGHT_CHARS {
        return Err(ApiError::InvalidField {
            field: "text",
            problem: format!("Text is longer than {MAX_THOUGHT_CHARS} characters"),
        });
    }
    let Bearer(claims) = bearer?;
    let timestamp = Timestamp::now_utc();
    let thought = state
        .db
        .call(move |conn| thought_store::insert_thought(conn, &claims.username, &text, timestamp))
        .await
        .map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(thought)))
}

/// `DELETE /admin/thoughts/{id}/`: 204 with an empty body, whether or not the thought existed.
pub async fn delete_thought(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(id)?;
    state
        .db
        .call(move |conn| thought_store::delete_thought(conn, id))
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
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

/// Any path this service has no route for: the JSON 404 `{"message"}`. (The monolith answers the same for
/// API paths; other paths are pages, which are not this service's business.)
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

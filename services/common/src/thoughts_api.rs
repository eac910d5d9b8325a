//! The thoughts endpoints of the JSON API, served identically by the monolith and by the
//! thoughts service: same paths, keys in the same order, same status codes, same error
//! bodies. One implementation, so the two cannot drift; the parity tests in
//! `services/thoughts/tests/it/parity.rs` still compare the two apps end to end.
//!
//! The handlers take the [`Db`] as a sub-state (`Db: FromRef<AppState>`), so any app
//! whose state holds the thoughts table can mount them. As in the book,
//! `POST /api/me/thoughts/` checks that `text` is given before it checks credentials, so a
//! request without `text` is a 400 even without a token; a JSON `null` counts as given there
//! (the book's reqparse accepts it), so `{"text": null}` with a bad token is a 401. What the
//! book does not check (a `null` text, which it would store, and the length) comes after the
//! credentials.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};

use crate::api::{Bearer, parse_id};
use crate::db::Db;
use crate::input::{Fields, args};
use crate::model::MAX_THOUGHT_CHARS;
use crate::{ApiError, Thought, Timestamp, thought_store};

/// `GET /api/thoughts/[?search=]`: every thought, by id, optionally filtered (case-insensitive).
pub async fn list_thoughts(State(db): State<Db>, fields: Fields) -> Result<Json<Vec<Thought>>, ApiError> {
    let search = fields.optional("search").filter(|s| !s.is_empty()).map(str::to_owned);
    let thoughts = db
        .call(move |conn| thought_store::thoughts(conn, search.as_deref()))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(thoughts))
}

/// `GET /api/thoughts/{id}/`: one thought, or 404 with the all-null thought.
pub async fn get_thought(
    State(db): State<Db>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Thought>, ApiError> {
    let id = parse_id(id)?;
    db.call(move |conn| thought_store::thought(conn, id))
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or(ApiError::ThoughtNotFound)
}

/// `GET /api/me/thoughts/`: the caller's thoughts, by id.
pub async fn my_thoughts(State(db): State<Db>, Bearer(claims): Bearer) -> Result<Json<Vec<Thought>>, ApiError> {
    let thoughts = db
        .call(move |conn| thought_store::thoughts_of(conn, &claims.username))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(thoughts))
}

/// `POST /api/me/thoughts/` with `text`: 201 and the new thought. An empty text is accepted, as in the book.
pub async fn create_thought(
    State(db): State<Db>,
    bearer: Result<Bearer, ApiError>,
    fields: Fields,
) -> Result<(StatusCode, Json<Thought>), ApiError> {
    if !fields.is_given(args::THOUGHT_TEXT.name) {
        return Err(ApiError::MissingField(args::THOUGHT_TEXT));
    }
    let Bearer(claims) = bearer?;
    let text = fields.required(args::THOUGHT_TEXT)?.to_owned();
    if text.chars().count() > MAX_THOUGHT_CHARS {
        return Err(ApiError::InvalidField {
            field: "text",
            problem: format!("Text is longer than {MAX_THOUGHT_CHARS} characters"),
        });
    }
    let timestamp = Timestamp::now_utc();
    let thought = db
        .call(move |conn| thought_store::insert_thought(conn, &claims.username, &text, timestamp))
        .await
        .map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(thought)))
}

/// `DELETE /admin/thoughts/{id}/`: 204 with an empty body, whether or not the thought existed, and
/// `Content-Type: application/json` as the book's Flask-RESTPlus sends it.
pub async fn delete_thought(
    State(db): State<Db>,
    id: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, [(axum::http::HeaderName, HeaderValue); 1]), ApiError> {
    let id = parse_id(id)?;
    db.call(move |conn| thought_store::delete_thought(conn, id))
        .await
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::NO_CONTENT,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
    ))
}

//! The JSON API, compatible with the book's Thoughts and Users backends: same paths, same keys in the same
//! order, same status codes. Differences from the book are deliberate and listed here:
//! - a token of another algorithm is a 401 (the book's PyJWT raised and answered 500);
//! - a duplicate username is a 409 (the book answered 500 on the integrity error);
//! - a `text` over 250 characters is a 400 with the validation body (the book's column silently limited it).
//!
//! As in the book, `POST /api/me/thoughts/` validates its arguments before it checks credentials.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mythoughts_common::model::{MAX_THOUGHT_CHARS, MAX_USERNAME_CHARS};
use mythoughts_common::telemetry::{METRICS_CONTENT_TYPE, tag_endpoint};
use mythoughts_common::{ApiError, Thought, Timestamp, User};
use serde::Serialize;

use crate::auth::{self, Bearer};
use crate::input::Fields;
use crate::{AppState, VersionInfo, store};

/// `{"Authorized": "Bearer <jwt>"}`, the body of a successful login.
#[derive(Debug, Serialize)]
pub struct LoginBody {
    /// The ready-made `Authorization` header value.
    #[serde(rename = "Authorized")]
    pub authorized: String,
}

/// `GET /api/thoughts/[?search=]`: every thought, by id, optionally filtered (case-insensitive).
pub async fn list_thoughts(State(state): State<AppState>, fields: Fields) -> Result<Json<Vec<Thought>>, ApiError> {
    let search = fields.optional("search").filter(|s| !s.is_empty()).map(str::to_owned);
    let thoughts = state
        .db
        .call(move |conn| store::thoughts(conn, search.as_deref()))
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
        .call(move |conn| store::thought(conn, id))
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
        .call(move |conn| store::thoughts_of(conn, &claims.username))
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
        .call(move |conn| store::insert_thought(conn, &claims.username, &text, timestamp))
        .await
        .map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(thought)))
}

/// `POST /api/login/` with `username`, `password`: the `Authorization` header to use, or 401 `""`.
pub async fn login(State(state): State<AppState>, fields: Fields) -> Result<Json<LoginBody>, ApiError> {
    let username = fields.required("username")?;
    let password = fields.required("password")?;
    match auth::authenticate(&state, username, password).await? {
        Some(token) => Ok(Json(LoginBody {
            authorized: format!("Bearer {token}"),
        })),
        None => Err(ApiError::LoginFailed),
    }
}

/// `POST /admin/users/` with `username`, `password`: 201 and the user (never the password); 409 if taken.
pub async fn create_user(State(state): State<AppState>, fields: Fields) -> Result<(StatusCode, Json<User>), ApiError> {
    let username = fields.required("username")?.to_owned();
    let password = fields.required("password")?.to_owned();
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

/// `DELETE /admin/thoughts/{id}/`: 204 with an empty body, whether or not the thought existed.
pub async fn delete_thought(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(id)?;
    state
        .db
        .call(move |conn| store::delete_thought(conn, id))
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

/// An API path without its trailing slash: 308 to the same path with `/` (query kept), like Werkzeug's
/// strict slashes. 308 keeps the method and body, so a `POST` follows through.
pub async fn add_trailing_slash(uri: Uri) -> Response {
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    match HeaderValue::try_from(location) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(LOCATION, location)]).into_response(),
        Err(_) => ApiError::NotFound.into_response(),
    }
}

/// Whether `path` belongs to the JSON API (and so gets JSON errors).
pub fn is_api_path(path: &str) -> bool {
    ["/api", "/admin"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")))
}

/// 405 for a known path with an unsupported method. The router adds the `Allow` header to whatever this
/// returns.
pub async fn method_not_allowed(matched: Option<MatchedPath>, uri: Uri) -> Response {
    let mut response = if is_api_path(uri.path()) {
        ApiError::MethodNotAllowed.into_response()
    } else {
        (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n").into_response()
    };
    if let Some(matched) = matched {
        tag_endpoint(&mut response, &matched);
    }
    response
}

/// Parses a path id like Werkzeug's `int` converter: ASCII digits only, else the route does not exist (404).
fn parse_id(id: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::NotFound);
    }
    id.parse().map_err(|_| ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths() {
        for path in ["/api", "/api/thoughts/", "/admin/users/", "/admin"] {
            assert!(is_api_path(path), "{path}");
        }
        for path in ["/", "/apiary", "/login/", "/administrator", "/static/style.css"] {
            assert!(!is_api_path(path), "{path}");
        }
    }

    #[test]
    fn ids_are_plain_non_negative_integers() {
        let ok = |s: &str| parse_id(Ok(Path(s.to_owned())));
        assert_eq!(ok("42").unwrap(), 42);
        assert!(ok("-1").is_err());
        assert!(ok("1e3").is_err());
        assert!(ok("").is_err());
        assert!(ok("99999999999999999999999").is_err());
    }
}

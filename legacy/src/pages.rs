//! The server-rendered pages of the classic monolith: log in, read and post your thoughts, search everyone's.
//!
//! Logged-in state is the `session` cookie ([`Session`]). The data comes from SQLite; the markup, the cookie,
//! the redirects and the error pages come from [`mythoughts_common::pages`] and [`mythoughts_common::html`],
//! which the frontend service uses too, so both render the same page from the same data.

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{Html, IntoResponse, Response};
use mythoughts_common::pages::{self as shared, LoginForm, NewThought, NewThoughtForm, SearchQuery};
use mythoughts_common::{ApiError, Timestamp, html};

pub use mythoughts_common::pages::{login_form, logout, stylesheet};

use crate::auth::{self, Session};
use crate::{AppState, api, store};

/// `GET /` and `GET /thoughts/`: the user's thoughts, newest first; to the login page without a session.
pub async fn thoughts(State(state): State<AppState>, session: Session) -> Response {
    let Some(username) = session.username().map(str::to_owned) else {
        return shared::to_login();
    };
    let name = username.clone();
    match state
        .db
        .call(move |conn| store::thoughts_of_newest_first(conn, &name))
        .await
    {
        Ok(thoughts) => Html(html::thoughts_page(&username, &thoughts)).into_response(),
        Err(err) => shared::internal_error(err),
    }
}

/// `POST /login/`: on success a session cookie and a redirect to `/`; otherwise the form again, with an error.
pub async fn login_submit(State(state): State<AppState>, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    let Form(form) = form.unwrap_or_default();
    let username = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let token = if username.is_empty() {
        Ok(None)
    } else {
        auth::authenticate(&state, &username, &password).await
    };
    match token {
        Ok(Some(token)) => shared::logged_in(&token),
        Ok(None) => shared::login_failed(&username),
        Err(err) => shared::internal_error(err),
    }
}

/// `POST /thoughts/new`: stores the thought (an empty one is ignored) and goes back to `/thoughts/`.
pub async fn new_thought(
    State(state): State<AppState>,
    session: Session,
    form: Result<Form<NewThoughtForm>, FormRejection>,
) -> Response {
    let Some(username) = session.username().map(str::to_owned) else {
        return shared::to_login();
    };
    let Form(form) = form.unwrap_or_default();
    let text = match NewThought::check(form.text) {
        NewThought::Blank => return shared::to_thoughts(),
        NewThought::TooLong => return shared::thought_too_long(&username),
        NewThought::Text(text) => text,
    };
    let timestamp = Timestamp::now_utc();
    match state
        .db
        .call(move |conn| store::insert_thought(conn, &username, &text, timestamp))
        .await
    {
        Ok(_) => shared::to_thoughts(),
        Err(err) => shared::internal_error(err),
    }
}

/// `GET /search?search=`: everyone's thoughts containing the term (case-insensitive), newest first. No login
/// needed. Without the parameter: 400.
pub async fn search(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    let username = session.username();
    let Some(term) = query.ok().and_then(|Query(q)| q.search) else {
        return shared::missing_search_term(username);
    };
    let needle = term.clone();
    match state
        .db
        .call(move |conn| store::search_newest_first(conn, &needle))
        .await
    {
        Ok(results) => Html(html::search_page(username, &term, &results)).into_response(),
        Err(err) => shared::internal_error(err),
    }
}

/// Anything that matched no route: JSON 404 under the API prefixes, an HTML page elsewhere.
pub async fn not_found(session: Session, uri: Uri) -> Response {
    if api::is_api_path(uri.path()) {
        return ApiError::NotFound.into_response();
    }
    shared::not_found(session.username())
}

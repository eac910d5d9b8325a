//! The server-rendered pages of the classic monolith: log in, read and post your thoughts, search everyone's.
//!
//! Logged-in state is the `session` cookie ([`crate::auth::Session`]). Forms post back and are answered with
//! 303 redirects (post/redirect/get). The cookie is `SameSite=Lax`, which keeps other sites' forms from
//! posting with it.

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::{StatusCode, Uri};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use mythoughts_common::model::MAX_THOUGHT_CHARS;
use mythoughts_common::{ApiError, Timestamp};
use serde::Deserialize;

use crate::auth::{self, Session};
use crate::{AppState, api, html, store};

/// The stylesheet, compiled into the binary.
pub const STYLESHEET: &str = include_str!("../static/style.css");

/// Fields of the login form.
#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    username: Option<String>,
    password: Option<String>,
}

/// Fields of the new-thought form.
#[derive(Debug, Default, Deserialize)]
pub struct NewThoughtForm {
    text: Option<String>,
}

/// Query of the search page.
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    search: Option<String>,
}

fn internal_error(err: impl std::fmt::Display) -> Response {
    tracing::error!(cause = %err, "page failed");
    let page = html::error_page(None, "Something went wrong", "Please try again in a moment.");
    (StatusCode::INTERNAL_SERVER_ERROR, Html(page)).into_response()
}

/// `GET /` and `GET /thoughts/`: the user's thoughts, newest first; to the login page without a session.
pub async fn thoughts(State(state): State<AppState>, session: Session) -> Response {
    let Some(username) = session.username().map(str::to_owned) else {
        return Redirect::to("/login/").into_response();
    };
    let name = username.clone();
    match state
        .db
        .call(move |conn| store::thoughts_of_newest_first(conn, &name))
        .await
    {
        Ok(thoughts) => Html(html::thoughts_page(&username, &thoughts)).into_response(),
        Err(err) => internal_error(err),
    }
}

/// `GET /login/`: the login form.
pub async fn login_form() -> Html<String> {
    Html(html::login_page(None, ""))
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
        Ok(Some(token)) => (
            AppendHeaders([(SET_COOKIE, auth::session_cookie(&token))]),
            Redirect::to("/"),
        )
            .into_response(),
        Ok(None) => Html(html::login_page(Some(html::INVALID_LOGIN), &username)).into_response(),
        Err(err) => internal_error(err),
    }
}

/// `GET /logout/`: clears the session cookie, back to `/`.
pub async fn logout() -> Response {
    (
        AppendHeaders([(SET_COOKIE, auth::cleared_session_cookie())]),
        Redirect::to("/"),
    )
        .into_response()
}

/// `POST /thoughts/new`: stores the thought (an empty one is ignored) and goes back to `/thoughts/`.
pub async fn new_thought(
    State(state): State<AppState>,
    session: Session,
    form: Result<Form<NewThoughtForm>, FormRejection>,
) -> Response {
    let Some(username) = session.username().map(str::to_owned) else {
        return Redirect::to("/login/").into_response();
    };
    let Form(form) = form.unwrap_or_default();
    let text = form.text.unwrap_or_default();
    if text.trim().is_empty() {
        return Redirect::to("/thoughts/").into_response();
    }
    if text.chars().count() > MAX_THOUGHT_CHARS {
        let explanation = format!("A thought can be at most {MAX_THOUGHT_CHARS} characters long.");
        let page = html::error_page(Some(&username), "Thought too long", &explanation);
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    }
    let timestamp = Timestamp::now_utc();
    match state
        .db
        .call(move |conn| store::insert_thought(conn, &username, &text, timestamp))
        .await
    {
        Ok(_) => Redirect::to("/thoughts/").into_response(),
        Err(err) => internal_error(err),
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
        let page = html::error_page(
            username,
            "Bad request",
            "Give something to search for: /search?search=…",
        );
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    };
    let needle = term.clone();
    match state
        .db
        .call(move |conn| store::search_newest_first(conn, &needle))
        .await
    {
        Ok(results) => Html(html::search_page(username, &term, &results)).into_response(),
        Err(err) => internal_error(err),
    }
}

/// `GET /static/style.css`.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// Anything that matched no route: JSON 404 under the API prefixes, an HTML page elsewhere.
pub async fn not_found(session: Session, uri: Uri) -> Response {
    if api::is_api_path(uri.path()) {
        return ApiError::NotFound.into_response();
    }
    let page = html::error_page(session.username(), "Not found", "There is no page at this address.");
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

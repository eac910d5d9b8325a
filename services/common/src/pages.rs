//! The parts of the HTML pages that do not depend on where the data comes from: form fields, the checks on a
//! new thought, redirects, cookies, the stylesheet, and the error pages.
//!
//! The monolith reads its data from SQLite and the frontend service from the Thoughts and Users APIs; both
//! answer with these functions, so status codes, redirects, cookies and wording stay identical. Markup lives
//! in [`crate::html`]; the session cookie in [`crate::session`].
//!
//! Forms post back and are answered with 303 redirects (post/redirect/get). The session cookie is
//! `SameSite=Lax`, which keeps other sites' forms from posting with it.

use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::html;
use crate::model::MAX_THOUGHT_CHARS;
use crate::session;

/// Where a page without a session sends the browser.
pub const LOGIN_PATH: &str = "/login/";

/// Where posting a thought sends the browser back to.
pub const THOUGHTS_PATH: &str = "/thoughts/";

/// Fields of the login form (`POST /login/`). Absent fields count as empty.
#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    /// The login name.
    pub username: Option<String>,
    /// The password, in clear (the form is posted to us, never stored).
    pub password: Option<String>,
}

/// Fields of the new-thought form (`POST /thoughts/new`).
#[derive(Debug, Default, Deserialize)]
pub struct NewThoughtForm {
    /// The thought.
    pub text: Option<String>,
}

/// Query of the search page (`GET /search?search=`).
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    /// The term; absent is a 400, empty matches everything.
    pub search: Option<String>,
}

/// What to do with a posted thought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewThought {
    /// Empty or only whitespace: ignored, back to the list.
    Blank,
    /// Longer than [`MAX_THOUGHT_CHARS`] characters: a 400 page ([`thought_too_long`]).
    TooLong,
    /// Store this text.
    Text(String),
}

impl NewThought {
    /// Sorts a posted `text` field into one of the three cases.
    pub fn check(text: Option<String>) -> Self {
        let text = text.unwrap_or_default();
        if text.trim().is_empty() {
            Self::Blank
        } else if text.chars().count() > MAX_THOUGHT_CHARS {
            Self::TooLong
        } else {
            Self::Text(text)
        }
    }
}

/// An HTML error page with `status`.
pub fn error_page(status: StatusCode, username: Option<&str>, title: &str, explanation: &str) -> Response {
    (status, Html(html::error_page(username, title, explanation))).into_response()
}

/// `GET /login/`: the login form.
pub async fn login_form() -> Html<String> {
    Html(html::login_page(None, ""))
}

/// A failed `POST /login/`: the form again (200), with [`html::INVALID_LOGIN`] and the name kept.
pub fn login_failed(username: &str) -> Response {
    Html(html::login_page(Some(html::INVALID_LOGIN), username)).into_response()
}

/// A successful `POST /login/`: the session cookie holding `token`, and 303 to `/`.
pub fn logged_in(token: &str) -> Response {
    (
        AppendHeaders([(SET_COOKIE, session::session_cookie(token))]),
        Redirect::to("/"),
    )
        .into_response()
}

/// `GET /logout/`: clears the session cookie, 303 to `/`.
pub async fn logout() -> Response {
    (
        AppendHeaders([(SET_COOKIE, session::cleared_session_cookie())]),
        Redirect::to("/"),
    )
        .into_response()
}

/// 303 to the login page (a page that needs a session got none).
pub fn to_login() -> Response {
    Redirect::to(LOGIN_PATH).into_response()
}

/// 303 to the user's thoughts (after posting one, or ignoring a blank one).
pub fn to_thoughts() -> Response {
    Redirect::to(THOUGHTS_PATH).into_response()
}

/// 400: a posted thought over [`MAX_THOUGHT_CHARS`] characters.
pub fn thought_too_long(username: &str) -> Response {
    let explanation = format!("A thought can be at most {MAX_THOUGHT_CHARS} characters long.");
    error_page(
        StatusCode::BAD_REQUEST,
        Some(username),
        "Thought too long",
        &explanation,
    )
}

/// 400: `/search` without its `search` parameter.
pub fn missing_search_term(username: Option<&str>) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        username,
        "Bad request",
        "Give something to search for: /search?search=…",
    )
}

/// 404 page for a path that matched no route.
pub fn not_found(username: Option<&str>) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        username,
        "Not found",
        "There is no page at this address.",
    )
}

/// 405 for a page path with an unsupported method (the router adds `Allow`).
pub fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n").into_response()
}

/// 500: our own fault. The cause is logged (inside the request's span), never shown.
pub fn internal_error(cause: impl std::fmt::Display) -> Response {
    tracing::error!(%cause, "page failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

/// `GET /static/style.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        html::STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_thoughts_are_sorted_into_three_cases() {
        assert_eq!(NewThought::check(None), NewThought::Blank);
        assert_eq!(NewThought::check(Some(" \n ".into())), NewThought::Blank);
        assert_eq!(NewThought::check(Some("é".repeat(251))), NewThought::TooLong);
        assert_eq!(
            NewThought::check(Some("é".repeat(250))),
            NewThought::Text("é".repeat(250))
        );
    }

    #[test]
    fn redirects_and_cookies() {
        let response = logged_in("tok");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()["location"], "/");
        assert!(
            response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .starts_with("session=tok;")
        );
        assert_eq!(to_login().headers()["location"], LOGIN_PATH);
        assert_eq!(to_thoughts().headers()["location"], THOUGHTS_PATH);
    }

    #[tokio::test]
    async fn logout_clears_the_cookie() {
        let response = logout().await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(response.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn error_pages_have_their_status() {
        assert_eq!(thought_too_long("bruce").status(), StatusCode::BAD_REQUEST);
        assert_eq!(missing_search_term(None).status(), StatusCode::BAD_REQUEST);
        assert_eq!(not_found(None).status(), StatusCode::NOT_FOUND);
        assert_eq!(internal_error("boom").status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

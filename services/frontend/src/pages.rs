//! The pages, with the monolith's paths and behaviour, built from the backends' JSON.
//!
//! Each handler (1) decides from the locally verified `session` cookie whether a login is needed, exactly as
//! the monolith does, (2) asks a backend, forwarding the cookie's token as `Authorization: Bearer` and the
//! request's `x-request-id`, and (3) answers with the shared markup and responses of
//! [`mythoughts_common::pages`]. A backend failure becomes a page in [`crate::error`]; nothing here panics.
//!
//! The APIs list thoughts by id; the pages show them newest first ([`html::sort_newest_first`]).

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use mythoughts_common::html;
use mythoughts_common::pages::{self as shared, LoginForm, NewThought, NewThoughtForm, SearchQuery};
use mythoughts_common::session::Session;

use crate::backend::{BackendError, Service};
use crate::error::backend_failure;
use crate::{AppState, RequestId};

/// `GET /` and `GET /thoughts/`: the user's thoughts, newest first; to the login page without a session (or
/// when the Thoughts service refuses the session's token).
pub async fn thoughts(State(state): State<AppState>, session: Session, RequestId(id): RequestId) -> Response {
    let Some(signed_in) = session.signed_in() else {
        return shared::to_login();
    };
    let username = signed_in.claims.username.as_str();
    match state.backends.my_thoughts(id.as_ref(), &signed_in.token).await {
        Ok(Some(mut thoughts)) => {
            html::sort_newest_first(&mut thoughts);
            Html(html::thoughts_page(username, &thoughts)).into_response()
        }
        Ok(None) => {
            tracing::warn!(backend = %Service::Thoughts, "backend refused a session this service accepted");
            shared::to_login()
        }
        Err(err) => backend_failure(&err, Some(username)),
    }
}

/// `POST /login/`: asks the Users service; on success stores its token in the `session` cookie and
/// redirects to `/`, otherwise shows the form again with an error.
pub async fn login_submit(
    State(state): State<AppState>,
    RequestId(id): RequestId,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Form(form) = form.unwrap_or_default();
    let username = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    if username.is_empty() {
        return shared::login_failed(&username);
    }
    match state.backends.login(id.as_ref(), &username, &password).await {
        // A token we cannot verify would be a cookie that logs nobody in: refuse it loudly instead.
        Ok(Some(token)) => match state.verifier.verify(&token) {
            Ok(_) => shared::logged_in(&token),
            Err(reason) => {
                let err = BackendError::BadAnswer {
                    service: Service::Users,
                    reason: format!("issued a token this service cannot verify ({reason}); are the keys a pair?"),
                };
                backend_failure(&err, None)
            }
        },
        Ok(None) => shared::login_failed(&username),
        Err(err) => backend_failure(&err, None),
    }
}

/// `POST /thoughts/new`: posts the thought to the Thoughts service (a blank one is ignored) and goes back
/// to `/thoughts/`.
pub async fn new_thought(
    State(state): State<AppState>,
    session: Session,
    RequestId(id): RequestId,
    form: Result<Form<NewThoughtForm>, FormRejection>,
) -> Response {
    let Some(signed_in) = session.signed_in() else {
        return shared::to_login();
    };
    let username = signed_in.claims.username.as_str();
    let Form(form) = form.unwrap_or_default();
    let text = match NewThought::check(form.text) {
        NewThought::Blank => return shared::to_thoughts(),
        NewThought::TooLong => return shared::thought_too_long(username),
        NewThought::Text(text) => text,
    };
    match state
        .backends
        .create_thought(id.as_ref(), &signed_in.token, &text)
        .await
    {
        Ok(Some(_)) => shared::to_thoughts(),
        Ok(None) => {
            tracing::warn!(backend = %Service::Thoughts, "backend refused a session this service accepted");
            shared::to_login()
        }
        Err(err) => backend_failure(&err, Some(username)),
    }
}

/// `GET /search?search=`: everyone's thoughts containing the term, newest first. No login needed. Without
/// the parameter: 400.
pub async fn search(
    State(state): State<AppState>,
    session: Session,
    RequestId(id): RequestId,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    let username = session.username();
    let Some(term) = query.ok().and_then(|Query(q)| q.search) else {
        return shared::missing_search_term(username);
    };
    match state.backends.search(id.as_ref(), &term).await {
        Ok(mut results) => {
            html::sort_newest_first(&mut results);
            Html(html::search_page(username, &term, &results)).into_response()
        }
        Err(err) => backend_failure(&err, username),
    }
}

/// Anything that matched no route: the HTML 404 page.
pub async fn not_found(session: Session) -> Response {
    shared::not_found(session.username())
}

//! Who is asking: the `Authorization: Bearer` header for the JSON API, the `session` cookie for the HTML
//! pages. Both carry the same RS256 token ([`mythoughts_common::jwt`]), so a microservice that holds the
//! public key accepts either.
//!
//! Also the one login check ([`authenticate`]) shared by `POST /api/login/` and `POST /login/`.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use mythoughts_common::jwt::TOKEN_LIFETIME;
use mythoughts_common::{ApiError, Claims};

use crate::AppState;
use crate::store;

/// Name of the cookie that holds the session token.
pub const SESSION_COOKIE: &str = "session";

/// A request with a valid `Authorization: Bearer` token. Rejects with 401 otherwise.
#[derive(Debug, Clone)]
pub struct Bearer(pub Claims);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // A header that is not visible ASCII cannot be a bearer token: it becomes "" and fails as malformed.
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or_default());
        state
            .verifier
            .verify_authorization(header)
            .map(Bearer)
            .map_err(|reason| {
                tracing::debug!(%reason, "refused API credentials");
                ApiError::Unauthorized
            })
    }
}

/// The browser session, if the `session` cookie holds a valid token. Never rejects.
#[derive(Debug, Clone)]
pub struct Session(pub Option<Claims>);

impl Session {
    /// The logged-in user's name.
    pub fn username(&self) -> Option<&str> {
        self.0.as_ref().map(|claims| claims.username.as_str())
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let claims = cookie(&parts.headers, SESSION_COOKIE).and_then(|token| match state.verifier.verify(token) {
            Ok(claims) => Some(claims),
            Err(reason) => {
                tracing::debug!(%reason, "ignoring session cookie");
                None
            }
        });
        Ok(Self(claims))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// `Set-Cookie` value that stores `token` as the session for as long as the token lives.
pub fn session_cookie(token: &str) -> String {
    format!(
        "{SESSION_COOKIE}={token}; HttpOnly; Path=/; SameSite=Lax; Max-Age={}",
        TOKEN_LIFETIME.as_secs()
    )
}

/// `Set-Cookie` value that removes the session.
pub fn cleared_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; Path=/; SameSite=Lax; Max-Age=0")
}

/// Checks `username`/`password` and issues a token: `Ok(None)` for an unknown user or a wrong password.
///
/// Unknown users cost the same argon2 verification as known ones, so timing does not reveal who exists.
pub async fn authenticate(state: &AppState, username: &str, password: &str) -> Result<Option<String>, ApiError> {
    let name = username.to_owned();
    let stored = state
        .db
        .call(move |conn| store::password_hash(conn, &name))
        .await
        .map_err(ApiError::internal)?;
    let passwords = state.passwords.clone();
    let issuer = state.issuer.clone();
    let (username, password) = (username.to_owned(), password.to_owned());
    tokio::task::spawn_blocking(move || {
        let valid = match stored {
            Some(hash) => passwords.verify(&password, &hash).map_err(ApiError::internal)?,
            None => passwords.verify_nobody(&password),
        };
        if !valid {
            return Ok(None);
        }
        issuer.issue(&username).map(Some).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn finds_cookies_among_several() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; sessionx=no"));
        headers.append(COOKIE, HeaderValue::from_static("b=2;session=tok.en.x ; c=3"));
        assert_eq!(cookie(&headers, "session"), Some("tok.en.x"));
        assert_eq!(cookie(&headers, "c"), Some("3"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn session_cookie_attributes() {
        let set = session_cookie("abc");
        assert!(set.starts_with("session=abc;"));
        for attribute in ["HttpOnly", "Path=/", "SameSite=Lax", "Max-Age=172800"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(cleared_session_cookie().contains("Max-Age=0"));
    }
}

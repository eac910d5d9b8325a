//! The browser session: the `session` cookie that holds an RS256 token ([`crate::jwt`]).
//!
//! The monolith and the frontend service set and read the very same cookie, signed by the same key pair, so
//! a user logged in on a page one of them serves stays logged in on pages the other serves. The token in the
//! cookie is also a valid `Authorization: Bearer` token for the JSON APIs.
//!
//! Invariants:
//! - [`Session`] never rejects a request: a missing, forged, foreign or expired cookie is simply no session;
//! - the token is checked locally with the public key only ([`TokenVerifier`]); nothing here signs.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use axum::http::request::Parts;

use crate::jwt::TOKEN_LIFETIME;
use crate::{Claims, TokenVerifier};

/// Name of the cookie that holds the session token.
pub const SESSION_COOKIE: &str = "session";

/// A verified session token and what it says.
#[derive(Clone)]
pub struct SignedIn {
    /// The raw token, to forward as `Authorization: Bearer` to an API.
    pub token: String,
    /// Its verified payload.
    pub claims: Claims,
}

impl fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIn")
            .field("token", &"<redacted>")
            .field("claims", &self.claims)
            .finish()
    }
}

/// The browser session, if the `session` cookie holds a valid token. As an extractor it never rejects; the
/// state must hand out the [`TokenVerifier`] (`impl FromRef<State> for Arc<TokenVerifier>`).
#[derive(Debug, Clone, Default)]
pub struct Session(pub Option<SignedIn>);

impl Session {
    /// Reads and verifies the `session` cookie among `headers`.
    pub fn from_headers(headers: &HeaderMap, verifier: &TokenVerifier) -> Self {
        let signed_in = cookie(headers, SESSION_COOKIE).and_then(|token| match verifier.verify(token) {
            Ok(claims) => Some(SignedIn {
                token: token.to_owned(),
                claims,
            }),
            Err(reason) => {
                tracing::debug!(%reason, "ignoring session cookie");
                None
            }
        });
        Self(signed_in)
    }

    /// The logged-in user's name.
    pub fn username(&self) -> Option<&str> {
        self.0.as_ref().map(|s| s.claims.username.as_str())
    }

    /// The verified session, if any.
    pub fn signed_in(&self) -> Option<&SignedIn> {
        self.0.as_ref()
    }
}

impl<S> FromRequestParts<S> for Session
where
    S: Send + Sync,
    Arc<TokenVerifier>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<TokenVerifier>::from_ref(state);
        Ok(Self::from_headers(&parts.headers, &verifier))
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::TokenIssuer;
    use crate::jwt::generate_key_pair;

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

    #[test]
    fn only_a_valid_token_is_a_session() {
        let pair = generate_key_pair(1024).unwrap();
        let issuer = TokenIssuer::from_pem(pair.private_pem.as_bytes()).unwrap();
        let verifier = TokenVerifier::from_pem(pair.public_pem.as_bytes()).unwrap();
        let token = issuer.issue("bruce").unwrap();
        let with_cookie = |value: String| {
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, HeaderValue::try_from(value).unwrap());
            Session::from_headers(&headers, &verifier)
        };

        let session = with_cookie(format!("theme=dark; session={token}"));
        assert_eq!(session.username(), Some("bruce"));
        assert_eq!(session.signed_in().map(|s| s.token.as_str()), Some(token.as_str()));
        assert!(
            !format!("{session:?}").contains(&token),
            "the token must not reach logs"
        );

        assert_eq!(with_cookie("session=not.a.token".into()).username(), None);
        let now = crate::jwt::unix_now();
        let not_yet = issuer
            .sign(&serde_json::json!({"username": "bruce", "iat": now, "nbf": now + 3600, "exp": now + 7200}))
            .unwrap();
        assert_eq!(
            with_cookie(format!("session={not_yet}")).username(),
            None,
            "a token valid only in an hour is no session"
        );
        assert_eq!(Session::from_headers(&HeaderMap::new(), &verifier).username(), None);
    }
}

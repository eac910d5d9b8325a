//! Who is asking: the `Authorization: Bearer` header for the JSON API, the `session` cookie for the HTML
//! pages. Both carry the same RS256 token ([`mythoughts_common::jwt`]), so a microservice that holds the
//! public key accepts either. The cookie and its extractor, [`Session`], live in
//! [`mythoughts_common::session`], shared with the frontend service.
//!
//! Also the login check ([`authenticate`]) shared by `POST /api/login/` and `POST /login/`; its logic is
//! [`mythoughts_common::user_store::authenticate`], shared with the users service.

use mythoughts_common::{ApiError, user_store};

use crate::AppState;

/// The `Authorization: Bearer` extractor, shared with the microservices (it checks tokens with the state's
/// verifier, see the `FromRef` impl on [`AppState`]).
pub use mythoughts_common::api::Bearer;
pub use mythoughts_common::session::Session;

/// Checks `username`/`password` and issues a token: `Ok(None)` for an unknown user or a wrong password.
///
/// Unknown users cost the same argon2 verification as known ones, so timing does not reveal who exists.
pub async fn authenticate(state: &AppState, username: &str, password: &str) -> Result<Option<String>, ApiError> {
    user_store::authenticate(&state.db, &state.passwords, &state.issuer, username, password).await
}

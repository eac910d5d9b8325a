//! The tokens the book's recorded answers need (`tests/parity/book-chapter11.har`).
//!
//! The HAR writes every token it sent as a `${PLACEHOLDER}` (tokens expire and keys are not shared);
//! `strangler parity` expands them from the environment at load time. [`book_tokens`] mints one of
//! each, with the claims its README (`tests/parity/book-chapter11.md`) states, signed with the key
//! pair the services under test trust, so a test or a CI script can hand them to the replay:
//! `Command::new("strangler").envs(book_tokens(&ours, &stranger, unix_now())?)`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mythoughts_common::jwt::TokenError;
use mythoughts_common::{TokenIssuer, jwt::TOKEN_LIFETIME};
use serde::Serialize;
use serde_json::{Value, json};

/// Every placeholder of the HAR, in the README's order.
pub const BOOK_PLACEHOLDERS: [&str; 13] = [
    "TOKEN_BRUCE",
    "TOKEN_STEPHEN",
    "TOKEN_NOBODY",
    "TOKEN_EXPIRED",
    "TOKEN_HS256",
    "TOKEN_ALG_NONE",
    "TOKEN_OTHER_KEY",
    "TOKEN_NO_EXP",
    "TOKEN_NO_USERNAME",
    "TOKEN_NO_IAT",
    "TOKEN_NUMERIC_USERNAME",
    "TOKEN_NBF_FUTURE",
    "TOKEN_IAT_FUTURE",
];

/// The HMAC secret of `TOKEN_HS256`, as the README fixes it.
pub const HS256_SECRET: &[u8] = b"secret";

const HOUR: u64 = 3600;

/// A payload with the book's key order (`username`, `iat`, `exp`); absent claims are left out.
#[derive(Debug, Serialize)]
struct Payload {
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
}

impl Payload {
    fn of(username: &str, iat: u64, exp: u64) -> Self {
        Self {
            username: Some(json!(username)),
            iat: Some(iat),
            nbf: None,
            exp: Some(exp),
        }
    }
}

/// `(placeholder, token)` for every entry of [`BOOK_PLACEHOLDERS`], minted at `now` (seconds since
/// the epoch): RS256 tokens signed by `trusted` (the services' key), `TOKEN_OTHER_KEY` by
/// `stranger`, `TOKEN_HS256` with [`HS256_SECRET`], `TOKEN_ALG_NONE` unsigned.
pub fn book_tokens(
    trusted: &TokenIssuer,
    stranger: &TokenIssuer,
    now: u64,
) -> Result<Vec<(&'static str, String)>, TokenError> {
    let two_days = TOKEN_LIFETIME.as_secs();
    let short = Payload::of("bruce", now, now + HOUR);
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &short,
        &EncodingKey::from_secret(HS256_SECRET),
    )
    .map_err(TokenError::Sign)?;
    let tokens = [
        ("TOKEN_BRUCE", trusted.sign(&Payload::of("bruce", now, now + two_days))?),
        (
            "TOKEN_STEPHEN",
            trusted.sign(&Payload::of("stephen", now, now + two_days))?,
        ),
        (
            "TOKEN_NOBODY",
            trusted.sign(&Payload::of("nobody", now, now + two_days))?,
        ),
        (
            "TOKEN_EXPIRED",
            trusted.sign(&Payload::of("bruce", now - 2 * HOUR, now - HOUR))?,
        ),
        ("TOKEN_HS256", hs256),
        ("TOKEN_ALG_NONE", unsigned(&short)),
        (
            "TOKEN_OTHER_KEY",
            stranger.sign(&Payload::of("bruce", now, now + two_days))?,
        ),
        (
            "TOKEN_NO_EXP",
            trusted.sign(&Payload {
                exp: None,
                ..Payload::of("bruce", now, 0)
            })?,
        ),
        (
            "TOKEN_NO_USERNAME",
            trusted.sign(&Payload {
                username: None,
                ..Payload::of("", now, now + two_days)
            })?,
        ),
        (
            "TOKEN_NO_IAT",
            trusted.sign(&Payload {
                iat: None,
                ..Payload::of("bruce", 0, now + two_days)
            })?,
        ),
        (
            "TOKEN_NUMERIC_USERNAME",
            trusted.sign(&Payload {
                username: Some(json!(123)),
                ..Payload::of("", now, now + two_days)
            })?,
        ),
        (
            "TOKEN_NBF_FUTURE",
            trusted.sign(&Payload {
                nbf: Some(now + HOUR),
                ..Payload::of("bruce", now, now + 2 * HOUR)
            })?,
        ),
        (
            "TOKEN_IAT_FUTURE",
            trusted.sign(&Payload::of("bruce", now + HOUR, now + 2 * HOUR))?,
        ),
    ];
    Ok(tokens.into())
}

/// An `alg: none` token: header and payload, an empty signature.
fn unsigned(payload: &Payload) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    // Serialising a struct of strings, numbers and options cannot fail.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap_or_default());
    format!("{header}.{payload}.")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{DecodingKey, Validation};
    use mythoughts_common::TokenVerifier;
    use mythoughts_common::jwt::unix_now;

    use super::*;
    use crate::{issuer, key_pair, verifier};

    fn part(token: &str, index: usize) -> Value {
        let text = token.split('.').nth(index).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
    }

    fn minted(now: u64) -> HashMap<&'static str, String> {
        book_tokens(&issuer(0), &issuer(1), now).unwrap().into_iter().collect()
    }

    #[test]
    fn every_placeholder_once_in_the_readmes_order() {
        let tokens = book_tokens(&issuer(0), &issuer(1), unix_now()).unwrap();
        let names: Vec<&str> = tokens.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, BOOK_PLACEHOLDERS);
    }

    #[test]
    fn payloads_carry_exactly_the_claims_the_readme_states() {
        let now = 1_800_000_000;
        let tokens = minted(now);
        let two_days = 2 * 24 * HOUR;
        let expected = [
            (
                "TOKEN_BRUCE",
                json!({"username": "bruce", "iat": now, "exp": now + two_days}),
            ),
            (
                "TOKEN_STEPHEN",
                json!({"username": "stephen", "iat": now, "exp": now + two_days}),
            ),
            (
                "TOKEN_NOBODY",
                json!({"username": "nobody", "iat": now, "exp": now + two_days}),
            ),
            (
                "TOKEN_EXPIRED",
                json!({"username": "bruce", "iat": now - 7200, "exp": now - 3600}),
            ),
            (
                "TOKEN_HS256",
                json!({"username": "bruce", "iat": now, "exp": now + 3600}),
            ),
            (
                "TOKEN_ALG_NONE",
                json!({"username": "bruce", "iat": now, "exp": now + 3600}),
            ),
            (
                "TOKEN_OTHER_KEY",
                json!({"username": "bruce", "iat": now, "exp": now + two_days}),
            ),
            ("TOKEN_NO_EXP", json!({"username": "bruce", "iat": now})),
            ("TOKEN_NO_USERNAME", json!({"iat": now, "exp": now + two_days})),
            ("TOKEN_NO_IAT", json!({"username": "bruce", "exp": now + two_days})),
            (
                "TOKEN_NUMERIC_USERNAME",
                json!({"username": 123, "iat": now, "exp": now + two_days}),
            ),
            (
                "TOKEN_NBF_FUTURE",
                json!({"username": "bruce", "iat": now, "nbf": now + 3600, "exp": now + 7200}),
            ),
            (
                "TOKEN_IAT_FUTURE",
                json!({"username": "bruce", "iat": now + 3600, "exp": now + 7200}),
            ),
        ];
        for (name, claims) in expected {
            assert_eq!(part(&tokens[name], 1), claims, "{name}");
        }
        // The book's key order on the wire.
        let raw = URL_SAFE_NO_PAD
            .decode(tokens["TOKEN_BRUCE"].split('.').nth(1).unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            format!(r#"{{"username":"bruce","iat":{now},"exp":{}}}"#, now + two_days)
        );
    }

    #[test]
    fn headers_and_signatures_are_the_stated_ones() {
        let tokens = minted(unix_now());
        for name in BOOK_PLACEHOLDERS {
            let alg = part(&tokens[name], 0)["alg"].as_str().unwrap().to_owned();
            let stated = match name {
                "TOKEN_HS256" => "HS256",
                "TOKEN_ALG_NONE" => "none",
                _ => "RS256",
            };
            assert_eq!(alg, stated, "{name}");
        }
        // HS256 with the secret `secret`.
        let mut hs = Validation::new(Algorithm::HS256);
        hs.required_spec_claims.clear();
        let decoded =
            jsonwebtoken::decode::<Value>(&tokens["TOKEN_HS256"], &DecodingKey::from_secret(b"secret"), &hs).unwrap();
        assert_eq!(decoded.claims["username"], "bruce");
        // alg none: no signature at all.
        assert!(tokens["TOKEN_ALG_NONE"].ends_with('.'));
        // The stranger's key signs TOKEN_OTHER_KEY, and ours refuses it.
        let stranger = TokenVerifier::from_pem(key_pair(1).public_pem.as_bytes()).unwrap();
        assert_eq!(stranger.verify(&tokens["TOKEN_OTHER_KEY"]).unwrap().username, "bruce");
        assert!(verifier().verify(&tokens["TOKEN_OTHER_KEY"]).is_err());
    }

    #[test]
    fn the_services_verifier_accepts_and_refuses_them_as_the_book_did_except_nbf() {
        let tokens = minted(unix_now());
        let accepted = |name: &str| verifier().verify(&tokens[name]).map(|c| c.username);
        for (name, user) in [
            ("TOKEN_BRUCE", "bruce"),
            ("TOKEN_STEPHEN", "stephen"),
            ("TOKEN_NOBODY", "nobody"),
            ("TOKEN_NO_IAT", "bruce"),
            ("TOKEN_NUMERIC_USERNAME", "123"),
            ("TOKEN_IAT_FUTURE", "bruce"),
        ] {
            assert_eq!(accepted(name).unwrap(), user, "{name}");
        }
        for name in [
            "TOKEN_EXPIRED",
            "TOKEN_HS256",
            "TOKEN_ALG_NONE",
            "TOKEN_OTHER_KEY",
            "TOKEN_NO_EXP",
            "TOKEN_NO_USERNAME",
            "TOKEN_NBF_FUTURE",
        ] {
            assert!(accepted(name).is_err(), "{name}");
        }
        let err = verifier().verify(&tokens["TOKEN_NBF_FUTURE"]).unwrap_err();
        let mythoughts_common::jwt::TokenError::Invalid(err) = err else {
            panic!("{err}")
        };
        assert!(matches!(err.kind(), ErrorKind::ImmatureSignature), "{err}");
    }
}

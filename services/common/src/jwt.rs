//! RS256 JSON Web Tokens, as the book's Users backend issues them and every backend checks them.
//!
//! A token's payload is `{"username", "iat", "exp"}` with a two-day lifetime. The monolith puts the very same
//! token in its `session` cookie, so a microservice holding the public key accepts a browser session too.
//!
//! Invariants:
//! - Decoding is pinned to RS256. A token with any other `alg` (notably HS256 signed with the public key as
//!   an HMAC secret, the classic confusion attack) is refused, as are tokens without `username` or `exp`.
//! - Time claims are checked with no leeway (jsonwebtoken's `Validation::leeway`, 60 s by default, set to
//!   0 like PyJWT's default in the book): `exp` in the past and `nbf` in the future are refused. `iat` is
//!   not a validity bound and is not checked (the book accepts a token issued "in the future" too).
//! - Keys are read from PEM files given by path; nothing here embeds a key. [`ensure_dev_keys`] writes a
//!   development pair (private key mode 0600) only when asked to.
//! - Parsing a PEM and generating a key are blocking work: call them from `spawn_blocking` or before the
//!   runtime starts. Signing and verifying are cheap enough to run inline.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

/// How long a token stays valid after it is issued (the book's `timedelta(days=2)`).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 24 * 60 * 60);

/// Size of the RSA keys [`ensure_dev_keys`] generates.
pub const DEV_KEY_BITS: usize = 2048;

/// File name of the private key [`ensure_dev_keys`] writes.
pub const DEV_PRIVATE_KEY_FILE: &str = "jwt_private.pem";

/// File name of the public key [`ensure_dev_keys`] writes.
pub const DEV_PUBLIC_KEY_FILE: &str = "jwt_public.pem";

/// The token payload. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token speaks for. A number is read as its decimal text (`123` → `"123"`), as the book's
    /// query compared it; any other JSON type refuses the token.
    #[serde(deserialize_with = "username_text")]
    pub username: String,
    /// Issued at, seconds since the Unix epoch. Optional on input, like in the book (0 when absent).
    #[serde(default)]
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
}

/// The `username` claim as text: a JSON string, or a number in its JSON spelling.
fn username_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Username {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Username::deserialize(deserializer)? {
        Username::Text(text) => text,
        Username::Number(number) => number.to_string(),
    })
}

/// Why a request's credentials were refused. Every variant means HTTP 401; the variants exist for the log.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization` header (or no session cookie).
    #[error("no credentials")]
    Missing,
    /// The header is not `Bearer <token>`.
    #[error("authorization header is not `Bearer <token>`")]
    MalformedHeader,
    /// The token is expired, badly signed, of another algorithm, or lacks a claim.
    #[error("invalid token: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    /// Signing failed (an unusable private key).
    #[error("cannot sign token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// A key that cannot be read, parsed, generated or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read key {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
    /// The file is not an RSA key in PEM.
    #[error("{path} is not an RSA {kind} key in PEM: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// `private` or `public`.
        kind: &'static str,
        /// The parser's complaint.
        source: jsonwebtoken::errors::Error,
    },
    /// The file could not be written.
    #[error("cannot write key {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
    /// Only one half of a development key pair exists.
    #[error("{present} exists but {missing} does not; remove it or restore the pair")]
    HalfPair {
        /// The half that is there.
        present: PathBuf,
        /// The half that is not.
        missing: PathBuf,
    },
    /// RSA key generation or encoding failed.
    #[error("cannot generate an RSA key: {0}")]
    Generate(String),
    /// The private key parsed but cannot sign (parsing accepts some PEMs, such as a public key
    /// given as the private one, that cannot).
    #[error("the private key {private_key} cannot sign tokens: {source}")]
    UnusablePrivateKey {
        /// The private key file.
        private_key: PathBuf,
        /// The signing error.
        source: TokenError,
    },
    /// The public key is not the private key's other half.
    #[error("the public key {public_key} does not verify tokens signed with the private key {private_key}: {source}")]
    Mismatch {
        /// The private key file.
        private_key: PathBuf,
        /// The public key file.
        public_key: PathBuf,
        /// Why the probe token failed.
        source: TokenError,
    },
    /// The service needs a key half that its key source does not name (the command line rules
    /// this out; a hand-built source can still miss one).
    #[error("no RSA {kind} key given")]
    NotGiven {
        /// `private` or `public`.
        kind: &'static str,
    },
}

/// Loads a signing key and proves that it signs: parsing accepts some PEMs (a public key given
/// as the private one) that cannot, and such a key should stop a service at start rather than
/// fail every login. Blocking.
pub fn load_signing_key(private_key: &Path) -> Result<TokenIssuer, KeyError> {
    let issuer = TokenIssuer::from_pem_file(private_key)?;
    probe(&issuer, private_key)?;
    Ok(issuer)
}

/// Loads the public key of `issuer`'s pair and proves that it is the other half: a token
/// `issuer` signs must verify with it (a mismatched pair issues tokens the other services
/// refuse). Blocking.
pub fn load_matching_verifier(
    issuer: &TokenIssuer,
    private_key: &Path,
    public_key: &Path,
) -> Result<TokenVerifier, KeyError> {
    let verifier = TokenVerifier::from_pem_file(public_key)?;
    verifier
        .verify(&probe(issuer, private_key)?)
        .map_err(|source| KeyError::Mismatch {
            private_key: private_key.to_owned(),
            public_key: public_key.to_owned(),
            source,
        })?;
    Ok(verifier)
}

fn probe(issuer: &TokenIssuer, private_key: &Path) -> Result<String, KeyError> {
    issuer
        .issue("key-pair-check")
        .map_err(|source| KeyError::UnusablePrivateKey {
            private_key: private_key.to_owned(),
            source,
        })
}

/// Signs tokens with the RSA private key. Only the service that logs users in needs one.
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenIssuer { key: <private> }")
    }
}

impl TokenIssuer {
    /// Builds an issuer from an RSA private key in PEM (PKCS#1 or PKCS#8).
    pub fn from_pem(pem: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self {
            key: EncodingKey::from_rsa_pem(pem)?,
        })
    }

    /// Reads an RSA private key from a PEM file. Blocking.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let pem = fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem).map_err(|source| KeyError::Parse {
            path: path.to_owned(),
            kind: "private",
            source,
        })
    }

    /// Issues a token for `username`, valid from now for [`TOKEN_LIFETIME`].
    pub fn issue(&self, username: &str) -> Result<String, TokenError> {
        self.issue_at(username, unix_now())
    }

    /// Issues a token as if the time were `iat` (seconds since the epoch).
    pub fn issue_at(&self, username: &str, iat: u64) -> Result<String, TokenError> {
        let claims = Claims {
            username: username.to_owned(),
            iat,
            exp: iat + TOKEN_LIFETIME.as_secs(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims with RS256 (tests use it to forge odd payloads with the right key).
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &self.key).map_err(TokenError::Sign)
    }

    /// Issues a token and formats it as an `Authorization` header value: `Bearer <token>`.
    pub fn issue_bearer(&self, username: &str) -> Result<String, TokenError> {
        Ok(format!("Bearer {}", self.issue(username)?))
    }
}

/// Checks tokens with the RSA public key. Every service holds one.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Builds a verifier from an RSA public key in PEM (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::RS256);
        // Pinned: only RS256 is accepted, whatever the token's header claims.
        validation.algorithms = vec![Algorithm::RS256];
        validation.set_required_spec_claims(&["exp"]);
        // `nbf` is checked when present (jsonwebtoken's default is not to: a token not valid before
        // tomorrow would be accepted today).
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Like PyJWT in the book: no grace period, neither after `exp` nor before `nbf`.
        validation.leeway = 0;
        Ok(Self {
            key: DecodingKey::from_rsa_pem(pem)?,
            validation,
        })
    }

    /// Reads an RSA public key from a PEM file. Blocking.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let pem = fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem).map_err(|source| KeyError::Parse {
            path: path.to_owned(),
            kind: "public",
            source,
        })
    }

    /// Checks a bare token: RS256 signature by our key, `username` and `exp` present, not expired, and not
    /// before its `nbf` when it has one.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(TokenError::Invalid)
    }

    /// Checks an `Authorization` header value (`None` when the header is absent).
    pub fn verify_authorization(&self, header: Option<&str>) -> Result<Claims, TokenError> {
        let header = header.ok_or(TokenError::Missing)?;
        let token = parse_bearer(header).ok_or(TokenError::MalformedHeader)?;
        self.verify(token)
    }
}

/// Extracts the token from `Bearer <token>`, as the book's `parse('Bearer {}', header)` did: the scheme in
/// any case, then exactly one space, then the token, one non-empty word. `Bearer  <token>` (two spaces)
/// hands the book a token starting with a space, which never decodes: refused here too.
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let is_one_word = !token.is_empty() && !token.contains(char::is_whitespace);
    (scheme.eq_ignore_ascii_case("bearer") && is_one_word).then_some(token)
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A generated RSA key pair in PEM: the private key as PKCS#1, the public key as SPKI.
#[derive(Clone)]
pub struct PemKeyPair {
    /// `-----BEGIN RSA PRIVATE KEY-----` …
    pub private_pem: String,
    /// `-----BEGIN PUBLIC KEY-----` …
    pub public_pem: String,
}

impl fmt::Debug for PemKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemKeyPair")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

/// Generates a fresh RSA key pair of `bits` bits. Slow (seconds for 2048 bits in a debug build): blocking.
pub fn generate_key_pair(bits: usize) -> Result<PemKeyPair, KeyError> {
    let private =
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(|e| KeyError::Generate(e.to_string()))?;
    let private_pem = private
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let public_pem = RsaPublicKey::from(&private)
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    Ok(PemKeyPair {
        private_pem: private_pem.to_string(),
        public_pem,
    })
}

/// Where a key pair lives on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPaths {
    /// The private key (PEM).
    pub private_key: PathBuf,
    /// The public key (PEM).
    pub public_key: PathBuf,
}

/// Makes sure `dir` holds a development key pair ([`DEV_PRIVATE_KEY_FILE`], [`DEV_PUBLIC_KEY_FILE`]),
/// generating a [`DEV_KEY_BITS`]-bit pair when neither file exists. Blocking.
///
/// For development and tests only: production keys are made and stored by whoever deploys the services.
pub fn ensure_dev_keys(dir: &Path) -> Result<KeyPaths, KeyError> {
    ensure_dev_keys_with_bits(dir, DEV_KEY_BITS)
}

fn ensure_dev_keys_with_bits(dir: &Path, bits: usize) -> Result<KeyPaths, KeyError> {
    let paths = KeyPaths {
        private_key: dir.join(DEV_PRIVATE_KEY_FILE),
        public_key: dir.join(DEV_PUBLIC_KEY_FILE),
    };
    match (paths.private_key.exists(), paths.public_key.exists()) {
        (true, true) => return Ok(paths),
        (true, false) => {
            return Err(KeyError::HalfPair {
                present: paths.private_key,
                missing: paths.public_key,
            });
        }
        (false, true) => {
            return Err(KeyError::HalfPair {
                present: paths.public_key,
                missing: paths.private_key,
            });
        }
        (false, false) => {}
    }
    fs::create_dir_all(dir).map_err(|source| KeyError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let pair = generate_key_pair(bits)?;
    write_new_file(&paths.private_key, pair.private_pem.as_bytes(), 0o600)?;
    write_new_file(&paths.public_key, pair.public_pem.as_bytes(), 0o644)?;
    Ok(paths)
}

/// Creates `path` (failing if it exists) with permissions `mode` on Unix, and writes `contents`.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let write = || -> io::Result<()> {
        let mut file = options.open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().map_err(|source| KeyError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// Small keys keep the debug-build test run fast; the code paths are the same as with 2048 bits.
    fn pair(index: usize) -> &'static PemKeyPair {
        static PAIRS: OnceLock<[PemKeyPair; 2]> = OnceLock::new();
        &PAIRS.get_or_init(|| [generate_key_pair(1024).unwrap(), generate_key_pair(1024).unwrap()])[index]
    }

    fn issuer(index: usize) -> TokenIssuer {
        TokenIssuer::from_pem(pair(index).private_pem.as_bytes()).unwrap()
    }

    fn verifier(index: usize) -> TokenVerifier {
        TokenVerifier::from_pem(pair(index).public_pem.as_bytes()).unwrap()
    }

    #[test]
    fn round_trip() {
        let token = issuer(0).issue("bruce").unwrap();
        let claims = verifier(0).verify(&token).unwrap();
        assert_eq!(claims.username, "bruce");
        assert_eq!(claims.exp - claims.iat, 2 * 24 * 3600);
        assert!(claims.iat.abs_diff(unix_now()) < 60);
    }

    #[test]
    fn payload_has_exactly_username_iat_exp_and_rs256_header() {
        let token = issuer(0).issue_at("bruce", 1_000).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        let payload = token.split('.').nth(1).unwrap();
        let json = base64_url_decode(payload);
        assert_eq!(json, r#"{"username":"bruce","iat":1000,"exp":173800}"#);
    }

    #[test]
    fn expired_token_is_refused() {
        let iat = unix_now() - TOKEN_LIFETIME.as_secs() - 10;
        let token = issuer(0).issue_at("bruce", iat).unwrap();
        let err = verifier(0).verify(&token).unwrap_err();
        assert!(
            matches!(err, TokenError::Invalid(ref e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature)),
            "{err}"
        );
    }

    #[test]
    fn a_token_not_valid_yet_is_refused_and_one_valid_since_a_moment_is_accepted() {
        let now = unix_now();
        let not_yet = issuer(0)
            .sign(&serde_json::json!({"username": "bruce", "iat": now, "nbf": now + 3600, "exp": now + 7200}))
            .unwrap();
        let err = verifier(0).verify(&not_yet).unwrap_err();
        assert!(
            matches!(err, TokenError::Invalid(ref e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ImmatureSignature)),
            "{err}"
        );
        // No leeway: a token valid from the next second is refused too.
        let next_second = issuer(0)
            .sign(&serde_json::json!({"username": "bruce", "nbf": now + 2, "exp": now + 7200}))
            .unwrap();
        assert!(verifier(0).verify(&next_second).is_err());
        let since_a_moment = issuer(0)
            .sign(&serde_json::json!({"username": "bruce", "nbf": now - 1, "exp": now + 7200}))
            .unwrap();
        assert_eq!(verifier(0).verify(&since_a_moment).unwrap().username, "bruce");
        let malformed = issuer(0)
            .sign(&serde_json::json!({"username": "bruce", "nbf": "soon", "exp": now + 7200}))
            .unwrap();
        assert!(verifier(0).verify(&malformed).is_err());
    }

    #[test]
    fn exp_has_no_leeway_and_iat_in_the_future_is_accepted_as_in_the_book() {
        let now = unix_now();
        let just_expired = issuer(0)
            .sign(&serde_json::json!({"username": "bruce", "iat": now - 100, "exp": now - 2}))
            .unwrap();
        assert!(verifier(0).verify(&just_expired).is_err(), "no 60 s grace period");
        let issued_later = issuer(0)
            .sign(&serde_json::json!({"username": "bruce", "iat": now + 3600, "exp": now + 7200}))
            .unwrap();
        assert_eq!(verifier(0).verify(&issued_later).unwrap().iat, now + 3600);
    }

    #[test]
    fn token_signed_by_another_key_is_refused() {
        let token = issuer(1).issue("bruce").unwrap();
        assert!(matches!(verifier(0).verify(&token), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn hs256_token_keyed_with_the_public_key_is_refused() {
        // The algorithm-confusion attack: an HMAC token whose secret is the (public) RSA key.
        let claims = Claims {
            username: "bruce".into(),
            iat: unix_now(),
            exp: unix_now() + 3600,
        };
        let key = EncodingKey::from_secret(pair(0).public_pem.as_bytes());
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        let err = verifier(0).verify(&token).unwrap_err();
        assert!(
            matches!(err, TokenError::Invalid(ref e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidAlgorithm)),
            "{err}"
        );
    }

    #[test]
    fn tokens_without_username_or_exp_are_refused() {
        let now = unix_now();
        let no_username = issuer(0)
            .sign(&serde_json::json!({"iat": now, "exp": now + 60}))
            .unwrap();
        let no_exp = issuer(0)
            .sign(&serde_json::json!({"username": "bruce", "iat": now}))
            .unwrap();
        assert!(verifier(0).verify(&no_username).is_err());
        assert!(verifier(0).verify(&no_exp).is_err());
        // The book required only `username` and `exp`; `iat` is optional.
        let no_iat = issuer(0)
            .sign(&serde_json::json!({"username": "bruce", "exp": now + 60}))
            .unwrap();
        assert_eq!(verifier(0).verify(&no_iat).unwrap().iat, 0);
    }

    #[test]
    fn a_numeric_username_is_read_as_its_text_and_other_types_are_refused() {
        let now = unix_now();
        let numeric = issuer(0)
            .sign(&serde_json::json!({"username": 123, "iat": now, "exp": now + 60}))
            .unwrap();
        assert_eq!(verifier(0).verify(&numeric).unwrap().username, "123");
        for odd in [
            serde_json::json!(true),
            serde_json::json!(null),
            serde_json::json!(["bruce"]),
        ] {
            let token = issuer(0)
                .sign(&serde_json::json!({"username": odd, "iat": now, "exp": now + 60}))
                .unwrap();
            assert!(verifier(0).verify(&token).is_err(), "{odd}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(verifier(0).verify("not.a.jwt").is_err());
        assert!(verifier(0).verify("").is_err());
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(parse_bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(parse_bearer("bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("BEARER abc"), Some("abc"));
        // Exactly one space, as the book's `parse('Bearer {}', …)`: the extra space would be the token's.
        assert_eq!(parse_bearer("Bearer  abc"), None);
        assert_eq!(parse_bearer("Bearer abc "), None);
        assert_eq!(parse_bearer("Bearer\tabc"), None);
        assert_eq!(parse_bearer("Bearer"), None);
        assert_eq!(parse_bearer("Bearer "), None);
        assert_eq!(parse_bearer("Basic abc"), None);
        assert_eq!(parse_bearer("Bearer a b"), None);
        assert_eq!(parse_bearer("abc"), None);
        assert_eq!(parse_bearer(""), None);
    }

    #[test]
    fn authorization_header_checks() {
        let v = verifier(0);
        let header = issuer(0).issue_bearer("stephen").unwrap();
        assert_eq!(v.verify_authorization(Some(&header)).unwrap().username, "stephen");
        assert!(matches!(v.verify_authorization(None), Err(TokenError::Missing)));
        assert!(matches!(
            v.verify_authorization(Some("Token x")),
            Err(TokenError::MalformedHeader)
        ));
    }

    #[test]
    fn key_files_round_trip_and_bad_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("k.pem");
        let public = dir.path().join("k.pub.pem");
        fs::write(&private, &pair(0).private_pem).unwrap();
        fs::write(&public, &pair(0).public_pem).unwrap();
        let token = TokenIssuer::from_pem_file(&private).unwrap().issue("bruce").unwrap();
        assert!(TokenVerifier::from_pem_file(&public).unwrap().verify(&token).is_ok());

        let err = TokenVerifier::from_pem_file(&dir.path().join("missing.pem")).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }), "{err}");
        fs::write(&public, "not a key").unwrap();
        let err = TokenVerifier::from_pem_file(&public).unwrap_err();
        assert!(matches!(err, KeyError::Parse { kind: "public", .. }), "{err}");
    }

    #[test]
    fn dev_keys_are_generated_once_and_usable() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("keys");
        let paths = ensure_dev_keys_with_bits(&keys_dir, 1024).unwrap();
        let first = fs::read(&paths.private_key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&paths.private_key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Second call keeps the existing pair.
        assert_eq!(ensure_dev_keys_with_bits(&keys_dir, 1024).unwrap(), paths);
        assert_eq!(fs::read(&paths.private_key).unwrap(), first);
        let token = TokenIssuer::from_pem_file(&paths.private_key)
            .unwrap()
            .issue("bruce")
            .unwrap();
        assert!(
            TokenVerifier::from_pem_file(&paths.public_key)
                .unwrap()
                .verify(&token)
                .is_ok()
        );

        fs::remove_file(&paths.public_key).unwrap();
        assert!(matches!(
            ensure_dev_keys_with_bits(&keys_dir, 1024),
            Err(KeyError::HalfPair { .. })
        ));
    }

    fn base64_url_decode(input: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits = 0u32;
        let mut count = 0;
        let mut out = Vec::new();
        for byte in input.bytes() {
            let value = ALPHABET.iter().position(|&c| c == byte).unwrap() as u32;
            bits = (bits << 6) | value;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
                bits &= (1 << count) - 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn signing_keys_are_proved_before_use() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            fs::write(&path, pem).unwrap();
            path
        };
        let private_0 = write("private-0.pem", &pair(0).private_pem);
        let public_0 = write("public-0.pem", &pair(0).public_pem);
        let public_1 = write("public-1.pem", &pair(1).public_pem);

        let issuer = load_signing_key(&private_0).unwrap();
        let verifier = load_matching_verifier(&issuer, &private_0, &public_0).unwrap();
        assert!(verifier.verify(&issuer.issue("ann").unwrap()).is_ok());
        // The other pair's public key is not this key's other half.
        assert!(matches!(
            load_matching_verifier(&issuer, &private_0, &public_1),
            Err(KeyError::Mismatch { .. })
        ));
        // A public key given as the private one never becomes an issuer.
        assert!(matches!(
            load_signing_key(&public_0),
            Err(KeyError::Parse { .. } | KeyError::UnusablePrivateKey { .. })
        ));
    }
}

//! What every MyThoughts service does once, before its first request: load its JWT keys, open its
//! SQLite file, hash the seed passwords, and know its version. Blocking work (PEM parsing, key
//! generation, opening the file, argon2) runs on the blocking pool.
//!
//! Each service's own `startup` module composes these into its `build_state`; what differs between
//! them (which key halves, which tables, which seed rows) stays there.

use std::path::PathBuf;

use serde::Serialize;

use crate::db::{DEFAULT_POOL_SIZE, Db, DbError};
use crate::jwt::{self, KeyError, KeyPaths};
use crate::password::PasswordError;
use crate::telemetry::MetricsError;
use crate::{PasswordHasher, TokenIssuer, TokenVerifier, seed};

/// What `GET /admin/version/` reports. Field order is the wire order (the monolith's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// The deployed commit (`GIT_COMMIT`), or `unknown`.
    pub commit: String,
    /// The serving crate's version: pass `env!("CARGO_PKG_VERSION")` from that crate.
    pub version: String,
}

impl VersionInfo {
    /// `version` (the caller's `env!("CARGO_PKG_VERSION")`) deployed at `commit`.
    pub fn new(commit: impl Into<String>, version: &str) -> Self {
        Self {
            commit: commit.into(),
            version: version.to_owned(),
        }
    }
}

/// Where a service's JWT keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// PEM files. Which halves are given depends on the service: the monolith has both, the users
    /// service the private key (and, optionally, the public key to check it against), the thoughts
    /// and frontend services the public key only.
    Files {
        /// RSA private key: signs tokens.
        private_key: Option<PathBuf>,
        /// RSA public key: checks tokens.
        public_key: Option<PathBuf>,
    },
    /// A development directory, populated with a fresh pair if empty.
    DevDir(PathBuf),
}

impl KeySource {
    /// A public key file alone (a service that only checks tokens).
    pub fn public_key(path: PathBuf) -> Self {
        Self::Files {
            private_key: None,
            public_key: Some(path),
        }
    }

    /// The key files: the given ones, or the development pair (generated if the directory has none).
    fn paths(&self) -> Result<(Option<PathBuf>, Option<PathBuf>), KeyError> {
        match self {
            Self::Files {
                private_key,
                public_key,
            } => Ok((private_key.clone(), public_key.clone())),
            Self::DevDir(dir) => {
                let KeyPaths {
                    private_key,
                    public_key,
                } = jwt::ensure_dev_keys(dir)?;
                tracing::warn!(dir = %dir.display(), "using development JWT keys");
                Ok((Some(private_key), Some(public_key)))
            }
        }
    }

    /// Loads the private key and proves it signs; when a public key is given too (always, from a
    /// development directory), loads it and proves it verifies what the private key signs, so a
    /// mismatched pair stops the service at start. Blocking.
    pub fn load_issuer(&self) -> Result<(TokenIssuer, Option<TokenVerifier>), KeyError> {
        let (private_key, public_key) = self.paths()?;
        let private_key = private_key.ok_or(KeyError::NotGiven { kind: "private" })?;
        let issuer = jwt::load_signing_key(&private_key)?;
        let verifier = match public_key {
            Some(public_key) => Some(jwt::load_matching_verifier(&issuer, &private_key, &public_key)?),
            None => None,
        };
        Ok((issuer, verifier))
    }

    /// [`KeySource::load_issuer`] for a service that needs both halves. Blocking.
    pub fn load_pair(&self) -> Result<(TokenIssuer, TokenVerifier), KeyError> {
        match self.load_issuer()? {
            (issuer, Some(verifier)) => Ok((issuer, verifier)),
            (_, None) => Err(KeyError::NotGiven { kind: "public" }),
        }
    }

    /// Loads the public key alone (a service that only checks tokens). Blocking.
    pub fn load_verifier(&self) -> Result<TokenVerifier, KeyError> {
        let (_, public_key) = self.paths()?;
        TokenVerifier::from_pem_file(&public_key.ok_or(KeyError::NotGiven { kind: "public" })?)
    }
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A key could not be loaded or generated.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The database could not be opened, migrated or seeded.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Seed passwords could not be hashed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The metrics registry could not be built.
    #[error("metrics: {0}")]
    Metrics(#[from] MetricsError),
    /// A startup task panicked.
    #[error("startup task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs blocking startup work (`f`) on the blocking pool.
pub async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, StartupError>
where
    T: Send + 'static,
    E: Send + 'static,
    StartupError: From<E>,
{
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// Opens (creating if missing) the SQLite file at `path` with the default pool.
pub async fn open_db(path: PathBuf) -> Result<Db, StartupError> {
    blocking(move || Db::open(&path, DEFAULT_POOL_SIZE)).await
}

/// The seed users' password hashes, in [`seed::USERS`] order, hashed with `passwords`.
pub async fn hash_seed_passwords(passwords: &PasswordHasher) -> Result<Vec<String>, StartupError> {
    let hasher = passwords.clone();
    blocking(move || {
        seed::USERS
            .iter()
            .map(|_| hasher.hash(seed::SEED_PASSWORD))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::generate_key_pair;

    #[test]
    fn version_info_serializes_commit_then_version() {
        let info = VersionInfo::new("abc", "1.2.3");
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"commit":"abc","version":"1.2.3"}"#
        );
    }

    #[test]
    fn key_files_must_exist_parse_and_match() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let ours = generate_key_pair(1024).unwrap();
        let theirs = generate_key_pair(1024).unwrap();
        let private_key = write("private.pem", &ours.private_pem);
        let public_key = write("public.pem", &ours.public_pem);
        let foreign = write("foreign.pem", &theirs.public_pem);
        let files = |private: Option<&PathBuf>, public: Option<&PathBuf>| KeySource::Files {
            private_key: private.cloned(),
            public_key: public.cloned(),
        };

        let (issuer, verifier) = files(Some(&private_key), Some(&public_key)).load_pair().unwrap();
        let token = issuer.issue("bruce").unwrap();
        assert_eq!(verifier.verify(&token).unwrap().username, "bruce");
        let (_, verifier) = files(Some(&private_key), None).load_issuer().unwrap();
        assert!(verifier.is_none());
        assert!(matches!(
            files(Some(&private_key), None).load_pair(),
            Err(KeyError::NotGiven { kind: "public" })
        ));
        let verifier = KeySource::public_key(public_key.clone()).load_verifier().unwrap();
        assert_eq!(verifier.verify(&token).unwrap().username, "bruce");

        let err = files(Some(&private_key), Some(&foreign)).load_issuer().unwrap_err();
        assert!(matches!(err, KeyError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("foreign.pem"), "{err}");
        let err = files(Some(&dir.path().join("nope.pem")), None)
            .load_issuer()
            .unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }), "{err}");
        assert!(err.to_string().contains("nope.pem"), "{err}");
        // A public key is not a private key.
        let err = files(Some(&public_key), None).load_issuer().unwrap_err();
        assert!(
            matches!(err, KeyError::Parse { .. } | KeyError::UnusablePrivateKey { .. }),
            "{err}"
        );
        let err = KeySource::public_key(write("junk.pem", "hello"))
            .load_verifier()
            .unwrap_err();
        assert!(matches!(err, KeyError::Parse { .. }), "{err}");
        assert!(matches!(
            KeySource::public_key(public_key).load_issuer(),
            Err(KeyError::NotGiven { kind: "private" })
        ));
    }

    #[test]
    fn a_dev_dir_gives_a_matching_pair_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        // A small pair written in advance: left to generate one, `ensure_dev_keys` would make 2048 bits,
        // which takes seconds in a debug build.
        let pair = generate_key_pair(1024).unwrap();
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(keys.join(jwt::DEV_PRIVATE_KEY_FILE), &pair.private_pem).unwrap();
        std::fs::write(keys.join(jwt::DEV_PUBLIC_KEY_FILE), &pair.public_pem).unwrap();

        let source = KeySource::DevDir(keys);
        let (issuer, verifier) = source.load_pair().unwrap();
        let token = issuer.issue("stephen").unwrap();
        assert_eq!(verifier.verify(&token).unwrap().username, "stephen");
        assert_eq!(
            source.load_verifier().unwrap().verify(&token).unwrap().username,
            "stephen"
        );
    }

    #[tokio::test]
    async fn seed_passwords_are_hashed_in_seed_order() {
        let hasher = PasswordHasher::insecure_fast();
        let hashes = hash_seed_passwords(&hasher).await.unwrap();
        assert_eq!(hashes.len(), seed::USERS.len());
        for hash in &hashes {
            assert!(hasher.verify(seed::SEED_PASSWORD, hash).unwrap());
            assert!(!hasher.verify("not the password", hash).unwrap());
        }
    }
}

//! Everything that happens once before the first request: load the private key (or a development pair),
//! open and migrate the database, insert the seed users into an empty one. All blocking work runs on the
//! blocking pool.
//!
//! A probe token is signed at startup, so a private key that cannot sign stops the service before it serves.
//! When the public key is given too, it must be the private key's other half: the probe has to verify with it,
//! so a mismatched pair (tokens every other service would refuse) stops the service too.

use std::path::PathBuf;
use std::sync::Arc;

use mythoughts_common::db::{DEFAULT_POOL_SIZE, Db, DbError};
use mythoughts_common::jwt::{self, KeyError};
use mythoughts_common::password::PasswordError;
use mythoughts_common::telemetry::MetricsError;
use mythoughts_common::{Metrics, PasswordHasher, TokenIssuer, seed, user_store};

use crate::{AppState, VersionInfo};

/// Where the JWT keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The private key, and optionally the public key to check it against.
    Files {
        /// RSA private key (PEM): signs the tokens.
        private_key: PathBuf,
        /// RSA public key (PEM): only checked to match `private_key`.
        public_key: Option<PathBuf>,
    },
    /// A development directory, populated with a fresh pair if empty.
    DevDir(PathBuf),
}

/// What the service is started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// SQLite file.
    pub db_path: PathBuf,
    /// JWT keys.
    pub keys: KeySource,
    /// Insert the demo users into an empty database.
    pub seed: bool,
    /// Reported by `/admin/version/`.
    pub commit: String,
    /// Password hashing cost.
    pub passwords: PasswordHasher,
}

/// Why the service could not start.
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

/// Loads the keys, opens and prepares the database, and returns the state to serve with.
pub async fn build_state(options: Options) -> Result<AppState, StartupError> {
    let Options {
        db_path,
        keys,
        seed,
        commit,
        passwords,
    } = options;
    let issuer = tokio::task::spawn_blocking(move || load_issuer(&keys)).await??;
    let db = tokio::task::spawn_blocking(move || Db::open(&db_path, DEFAULT_POOL_SIZE)).await??;
    prepare_database(&db, &passwords, seed).await?;
    Ok(AppState {
        db,
        issuer: Arc::new(issuer),
        passwords,
        metrics: Metrics::new()?,
        version: Arc::new(VersionInfo::new(commit)),
    })
}

fn load_issuer(keys: &KeySource) -> Result<TokenIssuer, StartupError> {
    let (private_key, public_key) = match keys {
        KeySource::Files {
            private_key,
            public_key,
        } => (private_key.clone(), public_key.clone()),
        KeySource::DevDir(dir) => {
            let paths = jwt::ensure_dev_keys(dir)?;
            tracing::warn!(dir = %dir.display(), "using development JWT keys");
            (paths.private_key, Some(paths.public_key))
        }
    };
    let issuer = jwt::load_signing_key(&private_key)?;
    if let Some(public_key) = public_key {
        jwt::load_matching_verifier(&issuer, &private_key, &public_key)?;
    }
    Ok(issuer)
}

/// Creates the table and, when `seed` is set and the table is empty, inserts the demo users (the same ids,
/// names and creation times as the monolith's, passwords hashed with `passwords`).
pub async fn prepare_database(db: &Db, passwords: &PasswordHasher, seed: bool) -> Result<(), StartupError> {
    db.call(|conn| user_store::migrate(conn)).await?;
    if !seed || !db.call(|conn| user_store::is_empty(conn)).await? {
        return Ok(());
    }
    let hasher = passwords.clone();
    let hashes = tokio::task::spawn_blocking(move || {
        seed::USERS
            .iter()
            .map(|_| hasher.hash(seed::SEED_PASSWORD))
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    db.call(move |conn| {
        let tx = conn.transaction()?;
        user_store::insert_seed(&tx, &hashes)?;
        tx.commit()
    })
    .await?;
    tracing::info!(users = seed::USERS.len(), "inserted seed data");
    Ok(())
}

#[cfg(test)]
mod tests {
    use mythoughts_common::jwt::generate_key_pair;

    use super::*;

    async fn count(db: &Db) -> i64 {
        db.call(|c| c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0)))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn seeds_only_an_empty_database_and_only_when_asked() {
        let hasher = PasswordHasher::insecure_fast();
        let unseeded = Db::open_in_memory().unwrap();
        prepare_database(&unseeded, &hasher, false).await.unwrap();
        assert_eq!(count(&unseeded).await, 0);

        let db = Db::open_in_memory().unwrap();
        prepare_database(&db, &hasher, true).await.unwrap();
        assert_eq!(count(&db).await, 2);
        prepare_database(&db, &hasher, true).await.unwrap();
        assert_eq!(count(&db).await, 2, "a restart does not duplicate rows");
        let hash = db
            .call(|c| {
                c.query_row("SELECT password_hash FROM users WHERE id = 1", [], |r| {
                    r.get::<_, String>(0)
                })
            })
            .await
            .unwrap();
        assert!(hasher.verify(seed::SEED_PASSWORD, &hash).unwrap());
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

        let files = |public_key: Option<&PathBuf>| KeySource::Files {
            private_key: private_key.clone(),
            public_key: public_key.cloned(),
        };
        assert!(load_issuer(&files(Some(&public_key))).is_ok());
        assert!(load_issuer(&files(None)).is_ok());
        let err = load_issuer(&files(Some(&foreign))).unwrap_err();
        assert!(matches!(err, StartupError::Keys(KeyError::Mismatch { .. })), "{err}");
        assert!(err.to_string().contains("foreign.pem"), "{err}");

        let missing = KeySource::Files {
            private_key: dir.path().join("nope.pem"),
            public_key: None,
        };
        let err = load_issuer(&missing).unwrap_err();
        assert!(matches!(err, StartupError::Keys(KeyError::Read { .. })), "{err}");
        // A public key is not a private key.
        let swapped = KeySource::Files {
            private_key: public_key,
            public_key: None,
        };
        let err = load_issuer(&swapped).unwrap_err();
        assert!(
            matches!(
                err,
                StartupError::Keys(KeyError::Parse { .. } | KeyError::UnusablePrivateKey { .. })
            ),
            "{err}"
        );
    }
}

//! Everything that happens once before the first request: load (or generate) the JWT keys, open and migrate
//! the database, insert the seed rows into an empty one. All blocking work runs on the blocking pool.

use std::path::PathBuf;
use std::sync::Arc;

use mythoughts_common::jwt::{self, KeyError};
use mythoughts_common::password::PasswordError;
use mythoughts_common::telemetry::MetricsError;
use mythoughts_common::{Metrics, PasswordHasher, TokenIssuer, TokenVerifier, seed};

use crate::db::{DEFAULT_POOL_SIZE, Db, DbError};
use crate::{AppState, VersionInfo, store};

/// Where the JWT key pair comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Two PEM files.
    Files {
        /// RSA private key.
        private_key: PathBuf,
        /// RSA public key.
        public_key: PathBuf,
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
    /// Insert the demo rows into an empty database.
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

/// Loads keys, opens and prepares the database, and returns the state to serve with.
pub async fn build_state(options: Options) -> Result<AppState, StartupError> {
    let Options {
        db_path,
        keys,
        seed,
        commit,
        passwords,
    } = options;
    let (issuer, verifier) = tokio::task::spawn_blocking(move || load_keys(&keys)).await??;
    let db = tokio::task::spawn_blocking(move || Db::open(&db_path, DEFAULT_POOL_SIZE)).await??;
    prepare_database(&db, &passwords, seed).await?;
    Ok(AppState {
        db,
        issuer: Arc::new(issuer),
        verifier: Arc::new(verifier),
        passwords,
        metrics: Metrics::new()?,
        version: Arc::new(VersionInfo::new(commit)),
    })
}

fn load_keys(keys: &KeySource) -> Result<(TokenIssuer, TokenVerifier), KeyError> {
    let paths = match keys {
        KeySource::Files {
            private_key,
            public_key,
        } => jwt::KeyPaths {
            private_key: private_key.clone(),
            public_key: public_key.clone(),
        },
        KeySource::DevDir(dir) => {
            let paths = jwt::ensure_dev_keys(dir)?;
            tracing::warn!(dir = %dir.display(), "using development JWT keys");
            paths
        }
    };
    // The private key must sign and the public key must verify what it signs: a public key
    // given as the private one, or a mismatched pair, stops the monolith here.
    let issuer = jwt::load_signing_key(&paths.private_key)?;
    let verifier = jwt::load_matching_verifier(&issuer, &paths.private_key, &paths.public_key)?;
    Ok((issuer, verifier))
}

/// Creates the tables and, when `seed` is set and the database is empty, inserts the demo users and thoughts.
pub async fn prepare_database(db: &Db, passwords: &PasswordHasher, seed: bool) -> Result<(), StartupError> {
    db.call(|conn| store::migrate(conn)).await?;
    if !seed || !db.call(|conn| store::is_empty(conn)).await? {
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
    db.call(move |conn| store::insert_seed(conn, &hashes)).await?;
    tracing::info!(
        users = seed::USERS.len(),
        thoughts = seed::THOUGHTS.len(),
        "inserted seed data"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count(db: &Db, table: &'static str) -> i64 {
        db.call(move |c| c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn seeds_only_an_empty_database_and_only_when_asked() {
        let hasher = PasswordHasher::insecure_fast();
        let unseeded = Db::open_in_memory().unwrap();
        prepare_database(&unseeded, &hasher, false).await.unwrap();
        assert_eq!(
            (count(&unseeded, "users").await, count(&unseeded, "thoughts").await),
            (0, 0)
        );

        let db = Db::open_in_memory().unwrap();
        prepare_database(&db, &hasher, true).await.unwrap();
        assert_eq!((count(&db, "users").await, count(&db, "thoughts").await), (2, 5));
        // A restart neither duplicates nor resurrects rows.
        db.call(|c| c.execute("DELETE FROM thoughts WHERE id = 1", []))
            .await
            .unwrap();
        prepare_database(&db, &hasher, true).await.unwrap();
        assert_eq!((count(&db, "users").await, count(&db, "thoughts").await), (2, 4));
    }

    #[tokio::test]
    async fn build_state_reports_bad_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let options = Options {
            db_path: dir.path().join("db.sqlite"),
            keys: KeySource::Files {
                private_key: missing.clone(),
                public_key: missing,
            },
            seed: false,
            commit: "x".into(),
            passwords: PasswordHasher::insecure_fast(),
        };
        let err = build_state(options).await.unwrap_err();
        assert!(matches!(err, StartupError::Keys(KeyError::Read { .. })), "{err}");
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}

//! Everything that happens once before the first request: load (or generate) the JWT keys, open and migrate
//! the database, insert the seed rows into an empty one. All blocking work runs on the blocking pool.

use std::path::PathBuf;
use std::sync::Arc;

pub use mythoughts_common::startup::{KeySource, StartupError};
use mythoughts_common::startup::{VersionInfo, blocking, hash_seed_passwords, open_db};
use mythoughts_common::{Metrics, PasswordHasher, seed};

use crate::db::Db;
use crate::{AppState, store};

/// What the service is started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// SQLite file.
    pub db_path: PathBuf,
    /// JWT keys: both halves (the monolith signs and checks tokens).
    pub keys: KeySource,
    /// Insert the demo rows into an empty database.
    pub seed: bool,
    /// Reported by `/admin/version/`.
    pub commit: String,
    /// Password hashing cost.
    pub passwords: PasswordHasher,
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
    // The private key must sign and the public key must verify what it signs: a public key
    // given as the private one, or a mismatched pair, stops the monolith here.
    let (issuer, verifier) = blocking(move || keys.load_pair()).await?;
    let db = open_db(db_path).await?;
    prepare_database(&db, &passwords, seed).await?;
    Ok(AppState {
        db,
        issuer: Arc::new(issuer),
        verifier: Arc::new(verifier),
        passwords,
        metrics: Metrics::new()?,
        version: Arc::new(VersionInfo::new(commit, env!("CARGO_PKG_VERSION"))),
    })
}

/// Creates the tables and, when `seed` is set and the database is empty, inserts the demo users and thoughts.
pub async fn prepare_database(db: &Db, passwords: &PasswordHasher, seed: bool) -> Result<(), StartupError> {
    db.call(|conn| store::migrate(conn)).await?;
    if !seed || !db.call(|conn| store::is_empty(conn)).await? {
        return Ok(());
    }
    let hashes = hash_seed_passwords(passwords).await?;
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
                private_key: Some(missing.clone()),
                public_key: Some(missing),
            },
            seed: false,
            commit: "x".into(),
            passwords: PasswordHasher::insecure_fast(),
        };
        let err = build_state(options).await.unwrap_err();
        assert!(
            matches!(err, StartupError::Keys(mythoughts_common::jwt::KeyError::Read { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}

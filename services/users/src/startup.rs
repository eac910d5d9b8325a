//! Everything that happens once before the first request: load the private key (or a development pair),
//! open and migrate the database, insert the seed users into an empty one. All blocking work runs on the
//! blocking pool.
//!
//! A probe token is signed at startup, so a private key that cannot sign stops the service before it serves.
//! When the public key is given too, it must be the private key's other half: the probe has to verify with it,
//! so a mismatched pair (tokens every other service would refuse) stops the service too.

use std::path::PathBuf;
use std::sync::Arc;

use mythoughts_common::db::Db;
pub use mythoughts_common::startup::{KeySource, StartupError};
use mythoughts_common::startup::{VersionInfo, blocking, hash_seed_passwords, open_db};
use mythoughts_common::{Metrics, PasswordHasher, seed, user_store};

use crate::AppState;

/// What the service is started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// SQLite file.
    pub db_path: PathBuf,
    /// JWT keys: the private key, and optionally the public key to check it against.
    pub keys: KeySource,
    /// Insert the demo users into an empty database.
    pub seed: bool,
    /// Reported by `/admin/version/`.
    pub commit: String,
    /// Password hashing cost.
    pub passwords: PasswordHasher,
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
    let (issuer, _) = blocking(move || keys.load_issuer()).await?;
    let db = open_db(db_path).await?;
    prepare_database(&db, &passwords, seed).await?;
    Ok(AppState {
        db,
        issuer: Arc::new(issuer),
        passwords,
        metrics: Metrics::new()?,
        version: Arc::new(VersionInfo::new(commit, env!("CARGO_PKG_VERSION"))),
    })
}

/// Creates the table and, when `seed` is set and the table is empty, inserts the demo users (the same ids,
/// names and creation times as the monolith's, passwords hashed with `passwords`).
pub async fn prepare_database(db: &Db, passwords: &PasswordHasher, seed: bool) -> Result<(), StartupError> {
    db.call(|conn| user_store::migrate(conn)).await?;
    if !seed || !db.call(|conn| user_store::is_empty(conn)).await? {
        return Ok(());
    }
    let hashes = hash_seed_passwords(passwords).await?;
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
}

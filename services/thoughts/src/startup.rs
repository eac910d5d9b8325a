//! Everything that happens once before the first request: load the public key (or a development pair), open
//! and migrate the database, insert the seed thoughts into a fresh one. All blocking work runs on the blocking
//! pool.
//!
//! "Fresh" means the table has never held a row (empty, and `AUTOINCREMENT` has issued no id): a database
//! whose thoughts were all deleted, or that received an empty import, is not re-seeded on restart.

use std::path::PathBuf;
use std::sync::Arc;

use mythoughts_common::db::{Db, DbError};
pub use mythoughts_common::startup::{KeySource, StartupError};
use mythoughts_common::startup::{VersionInfo, blocking, open_db};
use mythoughts_common::{Metrics, seed, thought_store};

use crate::AppState;

/// What the service is started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// SQLite file.
    pub db_path: PathBuf,
    /// The JWT public key (the users service holds the private half).
    pub keys: KeySource,
    /// Insert the demo thoughts into a fresh database.
    pub seed: bool,
    /// Reported by `/admin/version/`.
    pub commit: String,
}

/// Loads the key, opens and prepares the database, and returns the state to serve with.
pub async fn build_state(options: Options) -> Result<AppState, StartupError> {
    let Options {
        db_path,
        keys,
        seed,
        commit,
    } = options;
    let verifier = blocking(move || keys.load_verifier()).await?;
    let db = open_db(db_path).await?;
    prepare_database(&db, seed).await?;
    Ok(AppState {
        db,
        verifier: Arc::new(verifier),
        metrics: Metrics::new()?,
        version: Arc::new(VersionInfo::new(commit, env!("CARGO_PKG_VERSION"))),
    })
}

/// Creates the table and, when `seed` is set and the database is fresh, inserts the demo thoughts (the same
/// rows, ids and timestamps as the monolith's).
pub async fn prepare_database(db: &Db, seed: bool) -> Result<(), DbError> {
    db.call(|conn| thought_store::migrate(conn)).await?;
    if !seed {
        return Ok(());
    }
    let seeded = db
        .call(|conn| {
            let tx = conn.transaction()?;
            let fresh = thought_store::is_empty(&tx)? && thought_store::last_issued_id(&tx)? == 0;
            if fresh {
                thought_store::insert_seed(&tx)?;
            }
            tx.commit()?;
            Ok(fresh)
        })
        .await?;
    if seeded {
        tracing::info!(thoughts = seed::THOUGHTS.len(), "inserted seed data");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mythoughts_common::jwt::KeyError;

    use super::*;

    async fn count(db: &Db) -> i64 {
        db.call(|c| c.query_row("SELECT COUNT(*) FROM thoughts", [], |r| r.get(0)))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn seeds_only_a_fresh_database_and_only_when_asked() {
        let unseeded = Db::open_in_memory().unwrap();
        prepare_database(&unseeded, false).await.unwrap();
        assert_eq!(count(&unseeded).await, 0);

        let db = Db::open_in_memory().unwrap();
        prepare_database(&db, true).await.unwrap();
        assert_eq!(count(&db).await, 5);
        // A restart neither duplicates nor resurrects rows, even when every thought was deleted.
        db.call(|c| c.execute("DELETE FROM thoughts WHERE id = 1", []))
            .await
            .unwrap();
        prepare_database(&db, true).await.unwrap();
        assert_eq!(count(&db).await, 4);
        db.call(|c| c.execute("DELETE FROM thoughts", [])).await.unwrap();
        prepare_database(&db, true).await.unwrap();
        assert_eq!(count(&db).await, 0);
    }

    #[tokio::test]
    async fn build_state_reports_a_bad_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let options = Options {
            db_path: dir.path().join("db.sqlite"),
            keys: KeySource::public_key(missing),
            seed: false,
            commit: "x".into(),
        };
        let err = build_state(options).await.unwrap_err();
        assert!(matches!(err, StartupError::Keys(KeyError::Read { .. })), "{err}");
        assert!(err.to_string().contains("nope.pem"), "{err}");

        let not_a_key = dir.path().join("junk.pem");
        std::fs::write(&not_a_key, "hello").unwrap();
        let options = Options {
            db_path: dir.path().join("db.sqlite"),
            keys: KeySource::public_key(not_a_key),
            seed: false,
            commit: "x".into(),
        };
        let err = build_state(options).await.unwrap_err();
        assert!(matches!(err, StartupError::Keys(KeyError::Parse { .. })), "{err}");
    }
}

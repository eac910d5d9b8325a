//! A small pool of SQLite connections to one database file, used from async code.
//!
//! Every statement runs on tokio's blocking thread pool ([`Db::call`]), never on an async worker. A semaphore
//! with one permit per connection makes a request wait (asynchronously) for a free connection rather than
//! open a new one. SQLite is in WAL mode so readers do not block the (single) writer.
//!
//! Invariant: the number of permits equals the number of idle connections plus those lent out. A closure
//! that panics loses its connection; its permit is forgotten with it, so the invariant holds.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Semaphore;

/// Connections opened by [`Db::open`] when no size is given.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file could not be opened or configured.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// SQLite's complaint.
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running the statement panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
}

/// Handle to the pool. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Arc<Pool>,
}

struct Pool {
    /// Where the connections point, for logs and `Debug`.
    location: String,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("location", &self.pool.location)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens `size` connections (at least one) to the SQLite file `path`, creating it if missing. Blocking.
    pub fn open(path: &Path, size: usize) -> Result<Self, DbError> {
        let location = path.display().to_string();
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Ok(conn)
        };
        let connections = (0..size.max(1))
            .map(|_| open())
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|source| DbError::Open {
                path: location.clone(),
                source,
            })?;
        Ok(Self::from_connections(location, connections))
    }

    /// A private in-memory database on a single connection (tests).
    pub fn open_in_memory() -> Result<Self, DbError> {
        let conn = Connection::open_in_memory().map_err(|source| DbError::Open {
            path: ":memory:".to_owned(),
            source,
        })?;
        Ok(Self::from_connections(":memory:".to_owned(), vec![conn]))
    }

    fn from_connections(location: String, connections: Vec<Connection>) -> Self {
        let permits = Semaphore::new(connections.len());
        Self {
            pool: Arc::new(Pool {
                location,
                idle: Mutex::new(connections),
                permits,
            }),
        }
    }

    /// Runs `f` with a connection on the blocking thread pool, waiting for a free connection first.
    pub async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .pool
            .permits
            .acquire()
            .await
            .map_err(|e| DbError::Task(e.to_string()))?;
        let mut conn = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or_else(|| DbError::Task("connection pool is empty".to_owned()))?;
        let outcome = tokio::task::spawn_blocking(move || {
            let result = f(&mut conn);
            (conn, result)
        })
        .await;
        match outcome {
            Ok((conn, result)) => {
                self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
                drop(permit);
                Ok(result?)
            }
            Err(join_error) => {
                // The connection went down with the task: retire its permit too.
                permit.forget();
                Err(DbError::Task(join_error.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn file_pool_runs_statements_and_survives_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.sqlite"), 2).unwrap();
        db.call(|c| c.execute_batch("CREATE TABLE t (x INTEGER)"))
            .await
            .unwrap();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move { db.call(move |c| c.execute("INSERT INTO t VALUES (?1)", [i])).await })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap().unwrap();
        }
        let count: i64 = db
            .call(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(count, 8);

        let err = db
            .call(|_| -> rusqlite::Result<()> { panic!("boom") })
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::Task(_)));
        // One connection left, and it still works.
        let count: i64 = db
            .call(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(count, 8);
        assert_eq!(db.pool.permits.available_permits(), 1);
    }

    #[tokio::test]
    async fn sql_errors_surface() {
        let db = Db::open_in_memory().unwrap();
        let err = db.call(|c| c.execute_batch("NOT SQL")).await.unwrap_err();
        assert!(matches!(err, DbError::Sqlite(_)), "{err}");
    }
}

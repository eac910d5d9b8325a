//! The data migration: copy the monolith's thoughts into this service's database.
//!
//! ```text
//! legacy.sqlite (read-only) ──check schema──> rows by id ──validate──> one transaction on thoughts.sqlite
//! ```
//!
//! Invariants:
//! - The monolith's file is opened read-only and never changed; the service's file is changed in one
//!   transaction, so a failed import leaves it as it was.
//! - Rows keep their ids, usernames, texts and timestamps, so every URL and every answer stays the same.
//! - Idempotent: a row whose id is already present with the same content is skipped, so running the import
//!   again copies nothing new. A row whose id is present with *different* content is a conflict: it is left
//!   alone (never overwritten) and reported, and the caller exits non-zero.
//! - `AUTOINCREMENT` here is moved past the highest id the monolith ever issued (deleted rows included), so an
//!   id deleted there is not handed out again here.
//! - Every copied row is checked first (types, timestamp format): one bad row fails the whole import with its
//!   id, rather than leaving a row the API could not read.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mythoughts_common::{Thought, thought_store};
use rusqlite::{Connection, OpenFlags};

/// The columns the monolith's `thoughts` table must have (its schema in `mythoughts-legacy`'s store).
const REQUIRED_COLUMNS: [&str; 4] = ["id", "username", "text", "timestamp"];

/// How long a write waits for a running service's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows copied.
    pub imported: usize,
    /// Rows already present with the same content.
    pub skipped: usize,
    /// Ids present on both sides with different content; left unchanged here.
    pub conflicts: Vec<i64>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {}, skipped {} (already present)",
            self.imported, self.skipped
        )?;
        if !self.conflicts.is_empty() {
            write!(f, ", {} in conflict", self.conflicts.len())?;
        }
        Ok(())
    }
}

/// Why an import could not run. Nothing was written to the service's database.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The monolith's file does not exist (or is not a file).
    #[error("{0}: no such file (expected the monolith's SQLite database)")]
    Missing(PathBuf),
    /// The file is not a readable SQLite database.
    #[error("{path}: not a readable SQLite database: {source}")]
    Unreadable {
        /// The monolith's file.
        path: PathBuf,
        /// SQLite's complaint.
        source: rusqlite::Error,
    },
    /// The database is not the monolith's: no `thoughts` table, or one without the expected columns.
    #[error("{path}: not a mythoughts-legacy database: {reason}")]
    Incompatible {
        /// The monolith's file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A row cannot be copied as it is (wrong type, malformed timestamp).
    #[error("{path}: thought {id} cannot be imported: {source}")]
    BadRow {
        /// The monolith's file.
        path: PathBuf,
        /// The row's id.
        id: i64,
        /// What is wrong with it.
        source: rusqlite::Error,
    },
    /// The service's database file could not be opened.
    #[error("cannot open the service database {path}: {source}")]
    TargetOpen {
        /// The service's file.
        path: PathBuf,
        /// SQLite's complaint.
        source: rusqlite::Error,
    },
    /// A statement on the service's database failed; the transaction was rolled back.
    #[error("service database: {0}")]
    Target(#[from] rusqlite::Error),
}

/// Copies every thought of the monolith's database at `source` into the service's database file `target`,
/// creating and migrating it if new. The source is read and checked before `target` is even opened, so a bad
/// source leaves no trace. Blocking.
pub fn import_file(source: &Path, target: &Path) -> Result<ImportReport, ImportError> {
    let legacy = read_legacy(source)?;
    let mut conn = Connection::open(target)
        .and_then(|conn| conn.busy_timeout(BUSY_TIMEOUT).map(|()| conn))
        .map_err(|source| ImportError::TargetOpen {
            path: target.to_owned(),
            source,
        })?;
    write(legacy, &mut conn)
}

/// Copies every thought of the monolith's database at `source` into `target` (the service's database,
/// migrated here if new). Blocking.
pub fn import(source: &Path, target: &mut Connection) -> Result<ImportReport, ImportError> {
    write(read_legacy(source)?, target)
}

/// The monolith's rows, checked, and the highest id it ever issued.
#[derive(Debug)]
struct LegacyRows {
    thoughts: Vec<Thought>,
    last_issued: i64,
}

fn write(legacy: LegacyRows, target: &mut Connection) -> Result<ImportReport, ImportError> {
    thought_store::migrate(target)?;
    let tx = target.transaction()?;
    let mut report = ImportReport::default();
    for row in legacy.thoughts {
        match thought_store::thought(&tx, row.id)? {
            None => {
                thought_store::insert_with_id(&tx, &row)?;
                report.imported += 1;
            }
            Some(existing) if existing == row => report.skipped += 1,
            Some(_) => report.conflicts.push(row.id),
        }
    }
    thought_store::reserve_ids_through(&tx, legacy.last_issued)?;
    tx.commit()?;
    Ok(report)
}

/// Opens the monolith's file read-only, refusing a missing file rather than letting SQLite create one.
fn open_legacy(path: &Path) -> Result<Connection, ImportError> {
    if !path.is_file() {
        return Err(ImportError::Missing(path.to_owned()));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).map_err(|source| ImportError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

/// Opens the monolith's file, checks the schema, then reads and validates every row, by id.
fn read_legacy(path: &Path) -> Result<LegacyRows, ImportError> {
    let conn = open_legacy(path)?;
    let unreadable = |source| ImportError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('thoughts')")
        .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
        .map_err(unreadable)?;
    if columns.is_empty() {
        return Err(ImportError::Incompatible {
            path: path.to_owned(),
            reason: "it has no `thoughts` table".to_owned(),
        });
    }
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .into_iter()
        .filter(|required| !columns.iter().any(|column| column == required))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Incompatible {
            path: path.to_owned(),
            reason: format!("its `thoughts` table lacks the column(s) {}", missing.join(", ")),
        });
    }

    let mut statement = conn
        .prepare(&format!("SELECT {} FROM thoughts ORDER BY id", thought_store::COLUMNS))
        .map_err(unreadable)?;
    let mut rows = statement.query([]).map_err(unreadable)?;
    let mut thoughts = Vec::new();
    while let Some(row) = rows.next().map_err(unreadable)? {
        let id: i64 = row.get(0).map_err(|source| ImportError::Incompatible {
            path: path.to_owned(),
            reason: format!("a thought id is not an integer: {source}"),
        })?;
        let thought = thought_store::thought_from_row(row).map_err(|source| ImportError::BadRow {
            path: path.to_owned(),
            id,
            source,
        })?;
        thoughts.push(thought);
    }

    // A monolith created without AUTOINCREMENT has no sequence: fall back to the highest present id.
    let sequence: i64 = conn
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'thoughts'", [], |row| {
            row.get(0)
        })
        .unwrap_or(0);
    let highest = thoughts.last().map_or(0, |t| t.id);
    Ok(LegacyRows {
        thoughts,
        last_issued: sequence.max(highest),
    })
}

#[cfg(test)]
mod tests {
    use mythoughts_common::Timestamp;

    use super::*;

    /// A monolith-shaped database file: both tables, the seed thoughts, one extra and one deleted thought.
    fn legacy_file(dir: &Path) -> PathBuf {
        let path = dir.join("legacy.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(mythoughts_common::user_store::SCHEMA).unwrap();
        thought_store::migrate(&conn).unwrap();
        thought_store::insert_seed(&conn).unwrap();
        let ts: Timestamp = "2026-01-02T03:04:05.678901".parse().unwrap();
        thought_store::insert_thought(&conn, "tony", "Extra", ts).unwrap(); // id 6
        let gone = thought_store::insert_thought(&conn, "tony", "Gone", ts).unwrap(); // id 7
        thought_store::delete_thought(&conn, gone.id).unwrap();
        path
    }

    fn service_db() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    #[test]
    fn copies_everything_once_keeping_ids_and_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let source = legacy_file(dir.path());
        let mut target = service_db();

        let first = import(&source, &mut target).unwrap();
        assert_eq!(
            first,
            ImportReport {
                imported: 6,
                skipped: 0,
                conflicts: vec![]
            }
        );
        assert_eq!(first.to_string(), "imported 6, skipped 0 (already present)");
        let copied = thought_store::thoughts(&target, None).unwrap();
        let original = thought_store::thoughts(&Connection::open(&source).unwrap(), None).unwrap();
        assert_eq!(copied, original);
        assert_eq!(copied[5].timestamp.to_string(), "2026-01-02T03:04:05.678901");

        let second = import(&source, &mut target).unwrap();
        assert_eq!(second.to_string(), "imported 0, skipped 6 (already present)");
        assert_eq!(thought_store::thoughts(&target, None).unwrap(), original);

        // Id 7 was deleted in the monolith: it is not handed out again here.
        let next = thought_store::insert_thought(&target, "bruce", "new", Timestamp::now_utc()).unwrap();
        assert_eq!(next.id, 8);
    }

    #[test]
    fn seeded_service_skips_the_shared_seed_rows_and_reports_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let source = legacy_file(dir.path());
        let mut target = service_db();
        thought_store::migrate(&target).unwrap();
        thought_store::insert_seed(&target).unwrap();
        // The service already stored its own id 6, different from the monolith's.
        let mine = thought_store::insert_thought(&target, "bruce", "Mine", Timestamp::now_utc()).unwrap();
        assert_eq!(mine.id, 6);

        let report = import(&source, &mut target).unwrap();
        assert_eq!(
            report,
            ImportReport {
                imported: 0,
                skipped: 5,
                conflicts: vec![6]
            }
        );
        assert_eq!(
            thought_store::thought(&target, 6).unwrap(),
            Some(mine),
            "never overwritten"
        );
    }

    #[test]
    fn refuses_missing_foreign_and_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut target = service_db();

        let missing = dir.path().join("missing.sqlite");
        let err = import(&missing, &mut target).unwrap_err();
        assert!(matches!(err, ImportError::Missing(_)), "{err}");
        assert!(err.to_string().contains("missing.sqlite"), "{err}");
        assert!(!missing.exists(), "must not create the file");

        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, "this is not a database, just some text that is long enough").unwrap();
        let err = import(&junk, &mut target).unwrap_err();
        assert!(matches!(err, ImportError::Unreadable { .. }), "{err}");

        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .unwrap();
        let err = import(&other, &mut target).unwrap_err();
        assert!(err.to_string().contains("no `thoughts` table"), "{err}");

        let odd = dir.path().join("odd.sqlite");
        Connection::open(&odd)
            .unwrap()
            .execute_batch("CREATE TABLE thoughts (id INTEGER PRIMARY KEY, body TEXT)")
            .unwrap();
        let err = import(&odd, &mut target).unwrap_err();
        assert!(err.to_string().contains("username, text, timestamp"), "{err}");

        let elsewhere = dir.path().join("broken");
        std::fs::create_dir(&elsewhere).unwrap();
        let broken = legacy_file(&elsewhere);
        Connection::open(&broken)
            .unwrap()
            .execute("UPDATE thoughts SET timestamp = 'yesterday' WHERE id = 4", [])
            .unwrap();
        let err = import(&broken, &mut target).unwrap_err();
        assert!(matches!(err, ImportError::BadRow { id: 4, .. }), "{err}");
        // Nothing was written by any of the failed imports.
        assert!(thought_store::thoughts(&target, None).unwrap_or_default().is_empty());
    }

    #[test]
    fn import_file_leaves_no_trace_of_a_bad_source() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("thoughts.sqlite");
        let err = import_file(&dir.path().join("nope.sqlite"), &target).unwrap_err();
        assert!(matches!(err, ImportError::Missing(_)), "{err}");
        assert!(!target.exists(), "the service database must not be created");
        let source = legacy_file(dir.path());
        assert_eq!(import_file(&source, &target).unwrap().imported, 6);
        assert_eq!(import_file(&source, &target).unwrap().skipped, 6);
    }
}

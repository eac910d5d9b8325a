//! The `thoughts` table and every SQL statement over it, shared by the monolith (whose database also holds
//! `users`) and the thoughts service (whose database holds only this table). Plain synchronous functions over a
//! connection, run by [`crate::db::Db::call`] on the blocking pool.
//!
//! Schema: `thoughts(id, username, text, timestamp)`, ids `AUTOINCREMENT` so a deleted id is never handed out
//! again. Timestamps are stored as the same ISO-8601 text the API prints, which also sorts chronologically.
//! `username` is not a foreign key, as in the book, where users and thoughts live in different services.
//!
//! Search is done in Rust with [`matches_search`] rather than SQL `LIKE`: SQLite's `LIKE` folds ASCII only and
//! treats `%`/`_` as wildcards, and every MyThoughts service must give identical results.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::model::matches_search;
use crate::{Thought, Timestamp, seed};

/// The table and its index; safe to run on every start.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS thoughts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    username  TEXT NOT NULL,
    text      TEXT NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS thoughts_by_username ON thoughts (username);
";

/// The columns of a thought, in [`Thought`]'s field order.
pub const COLUMNS: &str = "id, username, text, timestamp";

/// Creates the table if it does not exist.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// Whether the table has no rows.
pub fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM thoughts)", [], |row| row.get(0))
}

/// Inserts the seed thoughts with their fixed ids and timestamps. Run it inside the caller's transaction.
pub fn insert_seed(conn: &Connection) -> rusqlite::Result<()> {
    seed::THOUGHTS
        .iter()
        .try_for_each(|thought| insert_with_id(conn, &thought.to_thought()))
}

/// Stores `thought` as it is, id and timestamp included (seed rows, data migration). Fails on a taken id.
pub fn insert_with_id(conn: &Connection, thought: &Thought) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO thoughts (id, username, text, timestamp) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            thought.id,
            thought.username,
            thought.text,
            thought.timestamp.to_string()
        ])?;
    Ok(())
}

/// Reads a stored ISO-8601 timestamp; a malformed one is a conversion error naming the column.
pub fn timestamp_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let text: String = row.get(index)?;
    text.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

/// A row selected as [`COLUMNS`].
pub fn thought_from_row(row: &Row<'_>) -> rusqlite::Result<Thought> {
    Ok(Thought {
        id: row.get(0)?,
        username: row.get(1)?,
        text: row.get(2)?,
        timestamp: timestamp_column(row, 3)?,
    })
}

fn query_thoughts(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> rusqlite::Result<Vec<Thought>> {
    conn.prepare_cached(sql)?.query_map(args, thought_from_row)?.collect()
}

/// All thoughts, oldest id first, optionally only those containing `search` (case-insensitive).
pub fn thoughts(conn: &Connection, search: Option<&str>) -> rusqlite::Result<Vec<Thought>> {
    let mut all = query_thoughts(conn, &format!("SELECT {COLUMNS} FROM thoughts ORDER BY id"), [])?;
    if let Some(needle) = search {
        all.retain(|t| matches_search(&t.text, needle));
    }
    Ok(all)
}

/// `username`'s thoughts, oldest id first (the API's order).
pub fn thoughts_of(conn: &Connection, username: &str) -> rusqlite::Result<Vec<Thought>> {
    query_thoughts(
        conn,
        &format!("SELECT {COLUMNS} FROM thoughts WHERE username = ?1 ORDER BY id"),
        [username],
    )
}

/// `username`'s thoughts, newest first (the HTML page's order).
pub fn thoughts_of_newest_first(conn: &Connection, username: &str) -> rusqlite::Result<Vec<Thought>> {
    query_thoughts(
        conn,
        &format!("SELECT {COLUMNS} FROM thoughts WHERE username = ?1 ORDER BY timestamp DESC, id DESC"),
        [username],
    )
}

/// Thoughts containing `needle` (case-insensitive), newest first (the search page's order).
pub fn search_newest_first(conn: &Connection, needle: &str) -> rusqlite::Result<Vec<Thought>> {
    let mut all = query_thoughts(
        conn,
        &format!("SELECT {COLUMNS} FROM thoughts ORDER BY timestamp DESC, id DESC"),
        [],
    )?;
    all.retain(|t| matches_search(&t.text, needle));
    Ok(all)
}

/// One thought by id.
pub fn thought(conn: &Connection, id: i64) -> rusqlite::Result<Option<Thought>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM thoughts WHERE id = ?1"))?
        .query_row([id], thought_from_row)
        .optional()
}

/// Stores a new thought and returns it with its id.
pub fn insert_thought(
    conn: &Connection,
    username: &str,
    text: &str,
    timestamp: Timestamp,
) -> rusqlite::Result<Thought> {
    conn.prepare_cached("INSERT INTO thoughts (username, text, timestamp) VALUES (?1, ?2, ?3)")?
        .execute(params![username, text, timestamp.to_string()])?;
    Ok(Thought {
        id: conn.last_insert_rowid(),
        username: username.to_owned(),
        text: text.to_owned(),
        timestamp,
    })
}

/// Deletes a thought; `false` if there was none with that id.
pub fn delete_thought(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM thoughts WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// The highest id `AUTOINCREMENT` has handed out (0 for none), deleted rows included.
pub fn last_issued_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'thoughts'), 0)",
        [],
        |row| row.get(0),
    )
}

/// Makes sure `AUTOINCREMENT` never hands out an id at or below `id` (used after copying rows from another
/// database, so that ids deleted there are not reused here either). Never lowers the sequence.
pub fn reserve_ids_through(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    if id <= last_issued_id(conn)? {
        return Ok(());
    }
    let updated = conn.execute("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'thoughts'", [id])?;
    if updated == 0 {
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('thoughts', ?1)", [id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        assert!(is_empty(&conn).unwrap());
        insert_seed(&conn).unwrap();
        assert!(!is_empty(&conn).unwrap());
        conn
    }

    fn ids(thoughts: &[Thought]) -> Vec<i64> {
        thoughts.iter().map(|t| t.id).collect()
    }

    #[test]
    fn seed_rows_round_trip() {
        let conn = seeded();
        let expected: Vec<Thought> = seed::THOUGHTS.iter().map(|t| t.to_thought()).collect();
        assert_eq!(thoughts(&conn, None).unwrap(), expected);
        assert_eq!(last_issued_id(&conn).unwrap(), 5);
    }

    #[test]
    fn orders_and_filters() {
        let conn = seeded();
        assert_eq!(ids(&thoughts_of(&conn, "bruce").unwrap()), [1, 2, 3]);
        assert_eq!(ids(&thoughts_of_newest_first(&conn, "bruce").unwrap()), [3, 2, 1]);
        assert_eq!(ids(&thoughts(&conn, Some("GREEN")).unwrap()), [3]);
        assert_eq!(ids(&search_newest_first(&conn, "e").unwrap()), [5, 4, 3, 2, 1]);
        assert!(search_newest_first(&conn, "%").unwrap().is_empty());
    }

    #[test]
    fn taken_ids_are_refused_and_reserved_ids_are_skipped() {
        let conn = seeded();
        let mut copy = seed::THOUGHTS[0].to_thought();
        assert!(insert_with_id(&conn, &copy).is_err());
        copy.id = 10;
        insert_with_id(&conn, &copy).unwrap();
        assert_eq!(last_issued_id(&conn).unwrap(), 10);
        reserve_ids_through(&conn, 7).unwrap();
        assert_eq!(last_issued_id(&conn).unwrap(), 10, "never lowered");
        reserve_ids_through(&conn, 20).unwrap();
        let ts = Timestamp::now_utc();
        assert_eq!(insert_thought(&conn, "bruce", "next", ts).unwrap().id, 21);
    }

    #[test]
    fn reserving_works_on_an_empty_table() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        assert_eq!(last_issued_id(&conn).unwrap(), 0);
        reserve_ids_through(&conn, 3).unwrap();
        assert_eq!(insert_thought(&conn, "bruce", "x", Timestamp::now_utc()).unwrap().id, 4);
    }

    #[test]
    fn malformed_stored_timestamps_are_errors() {
        let conn = seeded();
        conn.execute("UPDATE thoughts SET timestamp = 'yesterday' WHERE id = 2", [])
            .unwrap();
        assert!(thought(&conn, 2).is_err());
        assert!(thought(&conn, 1).unwrap().is_some());
    }
}

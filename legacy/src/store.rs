//! Every SQL statement of the monolith: plain synchronous functions over a connection, run by
//! [`crate::db::Db::call`] on the blocking pool.
//!
//! Schema: `users(id, username UNIQUE, password_hash, creation)` and `thoughts(id, username, text,
//! timestamp)`, ids `AUTOINCREMENT` so a deleted id is never handed out again. Timestamps are stored as the
//! same ISO-8601 text the API prints, which also sorts chronologically. `thoughts.username` is not a foreign
//! key, as in the book, where users and thoughts live in different services.
//!
//! Search is done in Rust with [`matches_search`] rather than SQL `LIKE`: SQLite's `LIKE` folds ASCII only and
//! treats `%`/`_` as wildcards, and every MyThoughts service must give identical results.

use mythoughts_common::model::matches_search;
use mythoughts_common::seed;
use mythoughts_common::{Thought, Timestamp, User};
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    creation      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS thoughts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    username  TEXT NOT NULL,
    text      TEXT NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS thoughts_by_username ON thoughts (username);
";

const THOUGHT_COLUMNS: &str = "id, username, text, timestamp";

/// Creates the tables if they do not exist.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// Whether the database has neither users nor thoughts (a first start).
pub fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM thoughts)",
        [],
        |row| row.get(0),
    )
}

/// Inserts the seed users (with `password_hashes[i]` for `seed::USERS[i]`) and thoughts, with their fixed ids
/// and timestamps, in one transaction.
pub fn insert_seed(conn: &mut Connection, password_hashes: &[String]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for (user, hash) in seed::USERS.iter().zip(password_hashes) {
        tx.execute(
            "INSERT INTO users (id, username, password_hash, creation) VALUES (?1, ?2, ?3, ?4)",
            params![user.id, user.username, hash, user.creation.to_string()],
        )?;
    }
    for thought in &seed::THOUGHTS {
        tx.execute(
            "INSERT INTO thoughts (id, username, text, timestamp) VALUES (?1, ?2, ?3, ?4)",
            params![
                thought.id,
                thought.username,
                thought.text,
                thought.timestamp.to_string()
            ],
        )?;
    }
    tx.commit()
}

fn parse_timestamp(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let text: String = row.get(index)?;
    text.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

fn thought_from_row(row: &Row<'_>) -> rusqlite::Result<Thought> {
    Ok(Thought {
        id: row.get(0)?,
        username: row.get(1)?,
        text: row.get(2)?,
        timestamp: parse_timestamp(row, 3)?,
    })
}

fn query_thoughts(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> rusqlite::Result<Vec<Thought>> {
    conn.prepare_cached(sql)?.query_map(args, thought_from_row)?.collect()
}

/// All thoughts, oldest id first, optionally only those containing `search` (case-insensitive).
pub fn thoughts(conn: &Connection, search: Option<&str>) -> rusqlite::Result<Vec<Thought>> {
    let mut all = query_thoughts(conn, &format!("SELECT {THOUGHT_COLUMNS} FROM thoughts ORDER BY id"), [])?;
    if let Some(needle) = search {
        all.retain(|t| matches_search(&t.text, needle));
    }
    Ok(all)
}

/// `username`'s thoughts, oldest id first (the API's order).
pub fn thoughts_of(conn: &Connection, username: &str) -> rusqlite::Result<Vec<Thought>> {
    query_thoughts(
        conn,
        &format!("SELECT {THOUGHT_COLUMNS} FROM thoughts WHERE username = ?1 ORDER BY id"),
        [username],
    )
}

/// `username`'s thoughts, newest first (the HTML page's order).
pub fn thoughts_of_newest_first(conn: &Connection, username: &str) -> rusqlite::Result<Vec<Thought>> {
    query_thoughts(
        conn,
        &format!("SELECT {THOUGHT_COLUMNS} FROM thoughts WHERE username = ?1 ORDER BY timestamp DESC, id DESC"),
        [username],
    )
}

/// Thoughts containing `needle` (case-insensitive), newest first (the search page's order).
pub fn search_newest_first(conn: &Connection, needle: &str) -> rusqlite::Result<Vec<Thought>> {
    let mut all = query_thoughts(
        conn,
        &format!("SELECT {THOUGHT_COLUMNS} FROM thoughts ORDER BY timestamp DESC, id DESC"),
        [],
    )?;
    all.retain(|t| matches_search(&t.text, needle));
    Ok(all)
}

/// One thought by id.
pub fn thought(conn: &Connection, id: i64) -> rusqlite::Result<Option<Thought>> {
    conn.prepare_cached(&format!("SELECT {THOUGHT_COLUMNS} FROM thoughts WHERE id = ?1"))?
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

/// The stored password hash of `username`, if the user exists.
pub fn password_hash(conn: &Connection, username: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT password_hash FROM users WHERE username = ?1")?
        .query_row([username], |row| row.get(0))
        .optional()
}

/// Stores a new user; `None` if the username is taken.
pub fn insert_user(
    conn: &Connection,
    username: &str,
    password_hash: &str,
    creation: Timestamp,
) -> rusqlite::Result<Option<User>> {
    let inserted = conn
        .prepare_cached("INSERT INTO users (username, password_hash, creation) VALUES (?1, ?2, ?3)")?
        .execute(params![username, password_hash, creation.to_string()]);
    match inserted {
        Ok(_) => Ok(Some(User {
            id: conn.last_insert_rowid(),
            username: username.to_owned(),
            creation,
        })),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        assert!(is_empty(&conn).unwrap());
        insert_seed(&mut conn, &["h1".to_owned(), "h2".to_owned()]).unwrap();
        assert!(!is_empty(&conn).unwrap());
        conn
    }

    fn ids(thoughts: &[Thought]) -> Vec<i64> {
        thoughts.iter().map(|t| t.id).collect()
    }

    #[test]
    fn seed_rows_round_trip() {
        let conn = seeded();
        let all = thoughts(&conn, None).unwrap();
        let expected: Vec<Thought> = seed::THOUGHTS.iter().map(|t| t.to_thought()).collect();
        assert_eq!(all, expected);
        assert_eq!(password_hash(&conn, "bruce").unwrap().as_deref(), Some("h1"));
        assert_eq!(password_hash(&conn, "nobody").unwrap(), None);
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
    fn insert_and_delete_never_reuse_ids() {
        let conn = seeded();
        let ts: Timestamp = "2026-11-27T03:20:01.123456".parse().unwrap();
        let new = insert_thought(&conn, "bruce", "hello", ts).unwrap();
        assert_eq!(new.id, 6);
        assert_eq!(thought(&conn, 6).unwrap(), Some(new));
        assert!(delete_thought(&conn, 6).unwrap());
        assert!(!delete_thought(&conn, 6).unwrap());
        assert_eq!(insert_thought(&conn, "bruce", "again", ts).unwrap().id, 7);
    }

    #[test]
    fn duplicate_usernames_are_refused() {
        let conn = seeded();
        let ts = Timestamp::now_utc();
        let tony = insert_user(&conn, "tony", "h", ts).unwrap().unwrap();
        assert_eq!(tony.id, 3);
        assert_eq!(insert_user(&conn, "tony", "h", ts).unwrap(), None);
        assert_eq!(insert_user(&conn, "bruce", "h", ts).unwrap(), None);
    }
}

//! Every SQL statement of the monolith: plain synchronous functions over a connection, run by
//! [`crate::db::Db::call`] on the blocking pool.
//!
//! The monolith's one database holds both tables. Their schemas and statements are shared with the services
//! that take them over, so they live in [`mythoughts_common::thought_store`] (`thoughts`, shared with the
//! thoughts service) and [`mythoughts_common::user_store`] (`users`, shared with the users service), and are
//! re-exported here; this module only adds what spans both tables.

use mythoughts_common::{thought_store, user_store};
use rusqlite::Connection;

pub use mythoughts_common::thought_store::{
    delete_thought, insert_thought, search_newest_first, thought, thoughts, thoughts_of, thoughts_of_newest_first,
};
pub use mythoughts_common::user_store::{insert_user, password_hash};

/// Creates both tables if they do not exist.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    user_store::migrate(conn)?;
    thought_store::migrate(conn)
}

/// Whether the database has neither users nor thoughts (a first start).
pub fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(user_store::is_empty(conn)? && thought_store::is_empty(conn)?)
}

/// Inserts the seed users (with `password_hashes[i]` for `seed::USERS[i]`) and thoughts, with their fixed ids
/// and timestamps, in one transaction.
pub fn insert_seed(conn: &mut Connection, password_hashes: &[String]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    user_store::insert_seed(&tx, password_hashes)?;
    thought_store::insert_seed(&tx)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use mythoughts_common::{Thought, Timestamp, seed};

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

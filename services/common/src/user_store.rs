//! The `users` table, every SQL statement over it, and the one login check ([`authenticate`]), shared by the
//! monolith (whose database also holds `thoughts`) and the users service (whose database holds only this
//! table), so that both store, refuse and check users the same way.
//!
//! Schema: `users(id, username UNIQUE, password_hash, creation)`, ids `AUTOINCREMENT`. `password_hash` is an
//! argon2id PHC string ([`crate::password`]); it never leaves this module except to be verified.

use std::sync::Arc;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use crate::db::Db;
use crate::{ApiError, PasswordHasher, Timestamp, TokenIssuer, User, seed};

/// The table; safe to run on every start.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    creation      TEXT NOT NULL
);
";

/// Creates the table if it does not exist.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// Whether the table has no rows.
pub fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM users)", [], |row| row.get(0))
}

/// Inserts the seed users with their fixed ids and creation times, `password_hashes[i]` for
/// `seed::USERS[i]`. Run it inside the caller's transaction.
pub fn insert_seed(conn: &Connection, password_hashes: &[String]) -> rusqlite::Result<()> {
    for (user, hash) in seed::USERS.iter().zip(password_hashes) {
        conn.execute(
            "INSERT INTO users (id, username, password_hash, creation) VALUES (?1, ?2, ?3, ?4)",
            params![user.id, user.username, hash, user.creation.to_string()],
        )?;
    }
    Ok(())
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

/// Checks `username`/`password` against the `users` table in `db` and issues a token: `Ok(None)` for an
/// unknown user or a wrong password.
///
/// Unknown users cost the same argon2 verification as known ones, so timing does not reveal who exists. The
/// verification and the signing run on the blocking pool.
pub async fn authenticate(
    db: &Db,
    passwords: &PasswordHasher,
    issuer: &Arc<TokenIssuer>,
    username: &str,
    password: &str,
) -> Result<Option<String>, ApiError> {
    let name = username.to_owned();
    let stored = db
        .call(move |conn| password_hash(conn, &name))
        .await
        .map_err(ApiError::internal)?;
    let passwords = passwords.clone();
    let issuer = Arc::clone(issuer);
    let (username, password) = (username.to_owned(), password.to_owned());
    tokio::task::spawn_blocking(move || {
        let valid = match stored {
            Some(hash) => passwords.verify(&password, &hash).map_err(ApiError::internal)?,
            None => passwords.verify_nobody(&password),
        };
        if !valid {
            return Ok(None);
        }
        issuer.issue(&username).map(Some).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenVerifier;
    use crate::jwt::generate_key_pair;

    fn seeded(passwords: &PasswordHasher) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        assert!(is_empty(&conn).unwrap());
        let hashes: Vec<String> = seed::USERS
            .iter()
            .map(|_| passwords.hash(seed::SEED_PASSWORD).unwrap())
            .collect();
        insert_seed(&conn, &hashes).unwrap();
        assert!(!is_empty(&conn).unwrap());
        conn
    }

    #[test]
    fn duplicate_usernames_are_refused() {
        let conn = seeded(&PasswordHasher::insecure_fast());
        let ts = Timestamp::now_utc();
        let tony = insert_user(&conn, "tony", "h", ts).unwrap().unwrap();
        assert_eq!(tony.id, 3);
        assert_eq!(insert_user(&conn, "tony", "h", ts).unwrap(), None);
        assert_eq!(insert_user(&conn, "bruce", "h", ts).unwrap(), None);
        assert_eq!(password_hash(&conn, "tony").unwrap().as_deref(), Some("h"));
        assert_eq!(password_hash(&conn, "nobody").unwrap(), None);
    }

    #[tokio::test]
    async fn authenticate_issues_tokens_for_the_right_password_only() {
        let passwords = PasswordHasher::insecure_fast();
        let db = Db::open_in_memory().unwrap();
        let hashes: Vec<String> = seed::USERS
            .iter()
            .map(|_| passwords.hash(seed::SEED_PASSWORD).unwrap())
            .collect();
        db.call(move |conn| {
            migrate(conn)?;
            insert_seed(conn, &hashes)
        })
        .await
        .unwrap();
        let pair = generate_key_pair(1024).unwrap();
        let issuer = Arc::new(TokenIssuer::from_pem(pair.private_pem.as_bytes()).unwrap());
        let verifier = TokenVerifier::from_pem(pair.public_pem.as_bytes()).unwrap();

        let token = authenticate(&db, &passwords, &issuer, "bruce", "password")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(verifier.verify(&token).unwrap().username, "bruce");
        for (user, password) in [("bruce", "wrong"), ("nobody", "password"), ("stephen", "")] {
            let outcome = authenticate(&db, &passwords, &issuer, user, password).await.unwrap();
            assert_eq!(outcome, None, "{user}/{password}");
        }
    }
}

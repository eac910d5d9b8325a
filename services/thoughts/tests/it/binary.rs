//! The real executable: the import subcommand against a monolith-shaped file (twice, to show it is
//! idempotent), then serving the imported rows with development keys on an ephemeral loopback port, request
//! ids in the logs, and a clean exit on SIGTERM.

use std::path::Path;
use std::process::{Command, Output};

use mythoughts_common::{PasswordHasher, Timestamp};

use mythoughts_testkit::process::{Serving, clean_command, dev_keys, http};

const BIN: &str = env!("CARGO_BIN_EXE_thoughts-service");

/// A command with no inherited configuration from the environment.
fn command() -> Command {
    clean_command(
        BIN,
        &[
            "THOUGHTS_LISTEN",
            "THOUGHTS_DB",
            "THOUGHTS_JWT_PUBLIC_KEY",
            "THOUGHTS_DEV_KEYS",
        ],
        "info",
    )
}

/// A database file made by the monolith's own schema and seed code, plus one thought of its own (id 6).
fn legacy_database(path: &Path) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    mythoughts_legacy::store::migrate(&conn).unwrap();
    let hasher = PasswordHasher::insecure_fast();
    let hashes = vec![hasher.hash("password").unwrap(), hasher.hash("password").unwrap()];
    mythoughts_legacy::store::insert_seed(&mut conn, &hashes).unwrap();
    let ts: Timestamp = "2026-01-02T03:04:05.678901".parse().unwrap();
    mythoughts_legacy::store::insert_thought(&conn, "tony", "Imported from the monolith", ts).unwrap();
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn imports_twice_then_serves_the_rows_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let legacy_db = dir.path().join("legacy.sqlite");
    let db = dir.path().join("thoughts.sqlite");
    legacy_database(&legacy_db);

    let import = || {
        command()
            .args(["import", "--from"])
            .arg(&legacy_db)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap()
    };
    let first = import();
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(stdout(&first), "imported 6, skipped 0 (already present)\n");
    let second = import();
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(stdout(&second), "imported 0, skipped 6 (already present)\n");

    let keys = dir.path().join("keys");
    dev_keys(&keys);
    let log = dir.path().join("stderr.log");
    let server = Serving::start(
        command()
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .arg("--dev-keys")
            .arg(&keys),
        "thoughts-service",
        &log,
    );
    let address = server.address.clone();

    assert_eq!(
        http(&address, "GET", "/healthz", Some("probe-1"), None),
        (200, "ok".to_owned())
    );
    let (status, body) = http(&address, "GET", "/api/thoughts/", Some("list-2"), None);
    assert_eq!(status, 200);
    let thoughts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        thoughts.as_array().unwrap().len(),
        6,
        "imported rows, no extra seeding: {body}"
    );
    assert_eq!(
        thoughts[5]["timestamp"], "2026-01-02T03:04:05.678901",
        "timestamps survive the import"
    );
    let (status, body) = http(&address, "GET", "/admin/version/", Some("version-3"), None);
    assert_eq!(
        (status, body.contains(r#""commit":"test-commit""#)),
        (200, true),
        "{body}"
    );

    let logs = server.stop();
    assert!(
        logs.contains("request_id=list-2"),
        "request ids must be logged:\n{logs}"
    );
}

#[test]
fn import_refuses_a_missing_or_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("thoughts.sqlite");
    let missing = dir.path().join("missing.sqlite");
    let output = command()
        .args(["import", "--from"])
        .arg(&missing)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty());
    let err = stderr(&output);
    assert!(err.contains("missing.sqlite: no such file"), "{err}");
    assert!(!db.exists(), "a failed import must not create the service database");

    let foreign = dir.path().join("foreign.sqlite");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
        .unwrap();
    let output = command()
        .args(["import", "--from"])
        .arg(&foreign)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr(&output).contains("not a mythoughts-legacy database"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn help_lists_the_flags_and_serving_needs_a_key() {
    let output = command().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = stdout(&output);
    for flag in [
        "--listen",
        "--db",
        "--jwt-public-key",
        "--dev-keys",
        "--no-seed",
        "THOUGHTS_LISTEN",
        "import",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }

    let output = command().args(["--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");

    let dir = tempfile::tempdir().unwrap();
    let output = command()
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("db.sqlite"))
        .arg("--jwt-public-key")
        .arg(dir.path().join("missing.pem"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "must not announce readiness");
    assert!(stderr(&output).contains("missing.pem"), "{}", stderr(&output));
}

//! Our MyThoughts services against the book's own: `strangler parity --legacy-from` replays
//! the book's recorded answers (tests/parity/book-chapter11.har, Chapter 11's Flask services)
//! against thoughts-service and users-service, judged by tests/parity/book-differences.toml.
//! Everything must match the book but the deliberate differences listed there, and each of
//! those must still occur (`expected`, not `resolved`), so the list stays true.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mythoughts_common::db::Db;
use mythoughts_common::jwt::unix_now;
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::{Metrics, PasswordHasher};
use mythoughts_testkit::book::book_tokens;
use mythoughts_testkit::{issuer, verifier};

use crate::support::command::{both, output, stdout};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Serves a router on an ephemeral loopback port until the test's runtime ends.
macro_rules! serve {
    ($app:expr) => {{
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(mythoughts_common::server::serve(
            listener,
            $app,
            std::future::pending(),
            Duration::from_secs(1),
        ));
        addr
    }};
}

/// thoughts-service and users-service, each on a fresh seeded in-memory database, reporting
/// the version the book's recording ran with (VERSION_SHA=abc, VERSION_NAME=0.1.0).
async fn start_services() -> (SocketAddr, SocketAddr) {
    let version = Arc::new(VersionInfo::new("abc", "0.1.0"));
    let db = Db::open_in_memory().unwrap();
    thoughts_service::startup::prepare_database(&db, true).await.unwrap();
    let thoughts = thoughts_service::app(thoughts_service::AppState {
        db,
        verifier: Arc::new(verifier()),
        metrics: Metrics::new().unwrap(),
        version: version.clone(),
    });
    let db = Db::open_in_memory().unwrap();
    let passwords = PasswordHasher::insecure_fast();
    users_service::startup::prepare_database(&db, &passwords, true)
        .await
        .unwrap();
    let users = users_service::app(users_service::AppState {
        db,
        issuer: Arc::new(issuer(0)),
        passwords,
        metrics: Metrics::new().unwrap(),
        version,
    });
    (serve!(thoughts), serve!(users))
}

#[tokio::test(flavor = "multi_thread")]
async fn our_services_answer_like_the_book_but_for_the_listed_differences() {
    let (thoughts, users) = start_services().await;
    let dir = tempfile::tempdir().unwrap();
    let table = std::fs::read_to_string(Path::new(REPO).join("tests/parity/book-differences.toml"))
        .unwrap()
        .replace("http://127.0.0.1:8002", &format!("http://{thoughts}"))
        .replace("http://127.0.0.1:8003", &format!("http://{users}"));
    let table_path = dir.path().join("book.toml");
    std::fs::write(&table_path, table).unwrap();
    let json = dir.path().join("book.json");
    let har = Path::new(REPO).join("tests/parity/book-chapter11.har");

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_strangler"));
    command
        .args(["parity", "--config"])
        .arg(&table_path)
        .arg("--legacy-from")
        .arg(&har)
        .arg("--json")
        .arg(&json)
        .envs(book_tokens(&issuer(0), &issuer(1), unix_now()).unwrap());
    let out = output(&mut command).await;
    let printed = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let summary = printed.lines().last().unwrap_or_default();
    println!("figure: book replay: {summary}");
    assert!(
        summary.contains(": 67 match, 17 expected, 0 noise, 0 mismatch, 0 resolved, 0 skipped, 0 error: ok"),
        "{}",
        both(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let expected = report["expected"].as_array().unwrap();
    assert_eq!(expected.len(), 17, "{report:#}");
    assert!(
        expected
            .iter()
            .all(|e| !e["reason"].as_str().unwrap_or_default().is_empty()),
        "every deliberate difference says why: {report:#}"
    );
}

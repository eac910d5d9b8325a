//! The book's recorded answers (`tests/parity/book-chapter11.har`, entries for the thoughts backend)
//! replayed against this service and judged by `tests/parity/book-differences.toml`: everything
//! matches the book except the listed, deliberate differences, each of which still occurs.

use std::collections::HashMap;
use std::sync::Arc;

use mythoughts_common::Metrics;
use mythoughts_common::db::Db;
use mythoughts_common::jwt::unix_now;
use mythoughts_common::startup::VersionInfo;
use mythoughts_testkit::book::book_tokens;
use mythoughts_testkit::book_replay::replay_book;
use mythoughts_testkit::{issuer, verifier};
use thoughts_service::{AppState, app, startup};

#[tokio::test]
async fn the_books_answers_match_but_for_the_listed_differences() {
    let db = Db::open_in_memory().unwrap();
    startup::prepare_database(&db, true).await.unwrap();
    // The recording ran with VERSION_SHA=abc, VERSION_NAME=0.1.0.
    let router = app(AppState {
        db,
        verifier: Arc::new(verifier()),
        metrics: Metrics::new().unwrap(),
        version: Arc::new(VersionInfo::new("abc", "0.1.0")),
    });
    let tokens: HashMap<&str, String> = book_tokens(&issuer(0), &issuer(1), unix_now())
        .unwrap()
        .into_iter()
        .collect();
    let replay = replay_book(&router, "thoughts", &tokens).await;
    assert!(replay.failures.is_empty(), "{:#?}", replay.failures);
    // Entries 1-59 and 74 (/admin/version/, answered alike by both backends).
    assert_eq!(replay.matched + replay.expected.len(), 60, "{replay:?}");
    assert_eq!(
        replay.expected,
        [
            "GET /api/thoughts/-1/ (line 7)",
            "GET /api/thoughts/abc/ (line 8)",
            "GET /api/thoughts (line 9)",
            "GET /api/thoughts/2 (line 10)",
            "GET /api/thoughts/2?search=x (line 11)",
            "GET /api/thoughts/?search=_ (line 18)",
            "GET /api/thoughts/?search=%25 (line 19)",
            "GET /api/thoughts/?search=% (line 20)",
            "GET /api/me/thoughts/ (line 37)",
            "GET /api/me/thoughts/ (line 38)",
            "GET /api/me/thoughts/ (line 44)",
            "GET /api/me/thoughts (line 50)",
            "POST /api/me/thoughts/ (line 59)",
        ]
    );
}

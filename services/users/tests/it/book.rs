//! The book's recorded answers (`tests/parity/book-chapter11.har`, entries for the users backend)
//! replayed in order against this service on a fresh database and judged by
//! `tests/parity/book-differences.toml`: everything matches the book except the listed, deliberate
//! differences, each of which still occurs.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use mythoughts_common::jwt::unix_now;
use mythoughts_testkit::book::book_tokens;
use mythoughts_testkit::book_replay::replay_book;
use mythoughts_testkit::{RequestExt, issuer, req};

use crate::support::TestApp;

#[tokio::test]
async fn the_books_answers_match_but_for_the_listed_differences() {
    let app = TestApp::new().await;
    let tokens: HashMap<&str, String> = book_tokens(&issuer(0), &issuer(1), unix_now())
        .unwrap()
        .into_iter()
        .collect();
    let replay = replay_book(&app.router, "users", &tokens).await;
    assert!(replay.failures.is_empty(), "{:#?}", replay.failures);
    // Entries 60-84 but 74 (/admin/version/, which the thoughts service answers in the list).
    assert_eq!(replay.matched + replay.expected.len(), 24, "{replay:?}");
    assert_eq!(
        replay.expected,
        [
            "POST /api/login (line 73)",
            "POST /admin/users (line 81)",
            "POST /admin/users/ (line 82)",
            "POST /admin/users/ (line 83)",
        ]
    );
}

/// The book's users backend sends no `x-request-id` (only its thoughts backend does); neither do we.
#[tokio::test]
async fn answers_carry_no_request_id() {
    let app = TestApp::new().await;
    let request = req(Method::POST, "/api/login/")
        .header("x-request-id", "abc")
        .form("username=bruce&password=wrong");
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.header("x-request-id"), None);
}

//! What the book's users backend does that the recorded answers (`tests/parity/book-chapter11.har`,
//! replayed by the strangler suite's tests/it/book_parity.rs) cannot show on their own.

use axum::http::{Method, StatusCode};
use mythoughts_testkit::{RequestExt, req};

use crate::support::TestApp;

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

//! The `session` cookie is one and the same on the monolith and the frontend: a login on either works on
//! both.

use axum::http::StatusCode;

use crate::support::{Frontend, Monolith, get_with_session, login_via};

#[tokio::test]
async fn a_cookie_minted_by_the_monoliths_login_page_works_on_the_frontend() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);
    let token = login_via(async |r| monolith.send(r).await, "stephen").await;
    let page = frontend.send(get_with_session("/thoughts/", &token)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("cloak"), "{}", page.text());
}

#[tokio::test]
async fn a_cookie_minted_by_the_frontends_login_page_works_on_the_monolith() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);
    let token = login_via(async |r| frontend.send(r).await, "stephen").await;
    let page = monolith.send(get_with_session("/thoughts/", &token)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("cloak"), "{}", page.text());
}

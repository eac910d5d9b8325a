//! The same data rendered by the frontend (through the APIs) and by the monolith (from SQLite) shows the same
//! thoughts in the same order with the same text. What is compared is what a reader sees of the list, not
//! whole documents.

use axum::http::Method;

use crate::support::{
    Frontend, Monolith, RequestExt, TestResponse, get_with_session, login_via, req, thought_cards_text, visible_text,
};

fn main_text(page: &TestResponse) -> String {
    let html = page.text();
    let start = html.find("<main>").unwrap();
    let end = html.find("</main>").unwrap();
    visible_text(&html[start..end])
}

#[tokio::test]
async fn search_and_list_show_the_same_thoughts() {
    let monolith = Monolith::start().await;
    let frontend = Frontend::on(&monolith);
    let token = login_via(async |r| frontend.send(r).await, "bruce").await;
    // Fresh thoughts (with sub-second timestamps, one with markup) on top of the seed rows.
    for text in ["Hulk <b>smash</b> & more", "In the lab again"] {
        let body = serde_urlencoded::to_string([("text", text)]).unwrap();
        let request = req(Method::POST, "/thoughts/new")
            .header("cookie", format!("session={token}"))
            .form(&body);
        assert!(frontend.send(request).await.status.is_redirection());
    }

    for uri in [
        "/search?search=in",
        "/search?search=SMASH",
        "/search?search=zebra",
        "/search?search=",
    ] {
        let ours = frontend.get(uri).await;
        let theirs = monolith.send(req(Method::GET, uri).empty()).await;
        assert_eq!(ours.status, theirs.status, "{uri}");
        assert_eq!(
            thought_cards_text(&ours.text()),
            thought_cards_text(&theirs.text()),
            "{uri}"
        );
        assert_eq!(main_text(&ours), main_text(&theirs), "{uri}");
    }
    let everything = thought_cards_text(&frontend.get("/search?search=").await.text());
    assert_eq!(everything.len(), 7, "{everything:#?}");

    for uri in ["/", "/thoughts/"] {
        let ours = frontend.send(get_with_session(uri, &token)).await;
        let theirs = monolith.send(get_with_session(uri, &token)).await;
        assert_eq!(ours.status, theirs.status, "{uri}");
        let cards = thought_cards_text(&ours.text());
        assert_eq!(cards.len(), 5, "{cards:#?}");
        assert!(cards[0].contains("In the lab again"), "{cards:#?}");
        assert_eq!(cards, thought_cards_text(&theirs.text()), "{uri}");
        assert_eq!(main_text(&ours), main_text(&theirs), "{uri}");
    }
}

//! A real browser through the proxy: headless Chromium, driven over WebDriver by
//! chromedriver, logs in on the monolith, posts a thought and finds it on the search page
//! that the frontend service renders from the thoughts service; then the demo's migration
//! dashboard holds its layout at 1280×800. Screenshots of the list and search pages and of
//! the dashboard go to the workspace's `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test says it is
//! skipped and passes, unless `STRANGLER_REQUIRE_BROWSER=1` (as in CI), where it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::support::browser::*;
use crate::support::demo::*;
use crate::support::*;

/// How long the whole browser session may take.
const SESSION_WITHIN: Duration = Duration::from_secs(120);

/// Bruce's oldest seed thought, shown on his list page.
const SEED_TEXT: &str = "Gamma ray test in a few minutes. What could possibly go wrong?";

/// The texts of the thought cards on the current page, in page order.
async fn card_texts(browser: &Client) -> Vec<String> {
    let mut texts = Vec::new();
    for card in browser.find_all(Locator::Css("article.card p")).await.unwrap() {
        texts.push(card.text().await.unwrap());
    }
    texts
}

/// Waits until the browser is at `path` (with query) on the current origin.
async fn until_at(browser: &Client, path: &str) {
    let want = browser.current_url().await.unwrap().join(path).unwrap();
    let reached = browser.wait().at_most(PAGE_WITHIN).for_url(&want).await;
    if let Err(e) = reached {
        let at = browser.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        panic!("the browser did not reach {want} within {PAGE_WITHIN:?} (at {at}): {e}");
    }
}

/// The journey: log in, see the seed thoughts, post one, search for it.
async fn drive(browser: &Client, proxy: std::net::SocketAddr, shots: &Path) -> Vec<PathBuf> {
    let word = "quasarpickle";
    let text = format!("Found a <b>{word}</b> & it's \"green\"");

    // Log in on the monolith's form.
    browser.goto(&format!("http://{proxy}/login/")).await.unwrap();
    type_into(browser, "form[action='/login/'] input[name='username']", "bruce").await;
    let password = mythoughts_common::seed::SEED_PASSWORD;
    type_into(browser, "form[action='/login/'] input[name='password']", password).await;
    click(browser, "form[action='/login/'] button[type='submit']").await;
    until_at(browser, "/").await;
    assert_eq!(browser.title().await.unwrap(), "Your thoughts · MyThoughts");
    let texts = card_texts(browser).await;
    assert!(texts.iter().any(|t| t == SEED_TEXT), "{SEED_TEXT:?} not in {texts:?}");

    // Post through the form on the list page (to the monolith's /thoughts/new).
    type_into(browser, "form[action='/thoughts/new'] textarea[name='text']", &text).await;
    click(browser, "form[action='/thoughts/new'] button[type='submit']").await;
    until_at(browser, "/thoughts/").await;
    let texts = card_texts(browser).await;
    assert_eq!(texts.first(), Some(&text), "the new thought is not first: {texts:?}");
    assert!(texts.iter().any(|t| t == SEED_TEXT), "{texts:?}");
    let injected = browser.find_all(Locator::Css("article.card b")).await.unwrap();
    assert!(injected.is_empty(), "the thought's markup was rendered, not escaped");
    let list = screenshot(browser, shots, "mythoughts-list.png").await;

    // Search with the search box in the navigation bar (to the frontend service).
    type_into(browser, "form[role='search'] input[name='search']", word).await;
    click(browser, "form[role='search'] button[type='submit']").await;
    until_at(browser, &format!("/search?search={word}")).await;
    let heading = element(browser, "main h1").await.text().await.unwrap();
    assert_eq!(heading, format!("Search: {word}"));
    let texts = card_texts(browser).await;
    assert_eq!(texts, std::slice::from_ref(&text), "search results");
    let found = screenshot(browser, shots, "mythoughts-search.png").await;
    vec![list, found]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_logs_in_posts_and_finds_the_thought_through_the_proxy() {
    let Some((chromium, chromedriver)) = browser_programs() else {
        return;
    };

    let (dir, demo) = start_demo().await;
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("cannot create {}: {e}", shots.display()));
    let driver = ChromeDriver::start(&chromedriver, dir.path()).await;
    let profile = dir.path().join("chromium-profile");
    let browser = open_browser(&driver, &chromium, &profile).await;

    let journey = tokio::time::timeout(SESSION_WITHIN, drive(&browser, demo.proxy, &shots)).await;
    let saved = journey.unwrap_or_else(|_| panic!("the browser session took longer than {SESSION_WITHIN:?}"));
    for path in &saved {
        let size = std::fs::metadata(path).unwrap().len();
        assert!(size > 10_000, "{} is only {size} bytes: a blank page?", path.display());
    }

    // The requests went where routes.toml says: pages and the form post to the monolith,
    // the search page to the frontend.
    let metrics = metrics_text(demo.admin).await;
    let search = requests_total(&metrics, &[("route", "search-page"), ("upstream", "frontend")]);
    assert!(
        search >= 1.0,
        "the search page was not served by the frontend:\n{metrics}"
    );
    let posted = [("route", "default"), ("upstream", "legacy"), ("method", "POST")];
    assert!(
        requests_total(&metrics, &posted) >= 2.0,
        "login and post not on the monolith:\n{metrics}"
    );

    // The dashboard with the demo's routes and the traffic above, at 1280×800: no text
    // wrapped in a table cell, nothing wider than the window.
    browser.set_window_size(1280, 800).await.unwrap();
    browser.goto(&format!("http://{}/", demo.admin)).await.unwrap();
    let loaded = crate::dashboard::until_text(&browser, "#refresh", |t| t.starts_with("Updated ")).await;
    assert!(loaded.ends_with("Z · every 5 s"), "{loaded:?}");
    let (wrapped, tall, width, viewport) = crate::dashboard::layout(&browser).await;
    assert!(wrapped.is_empty(), "wrapped onto two lines: {wrapped:?}");
    assert!(tall.is_empty(), "cells taller than a line: {tall:?}");
    assert!(
        width <= viewport,
        "the document is {width} px wide in a {viewport} px window"
    );
    let charts = browser
        .find_all(Locator::Css("tr[data-route] td.history svg polyline"))
        .await
        .unwrap();
    assert!(!charts.is_empty(), "no sparkline drawn for the demo's routes");
    screenshot(&browser, &shots, "dashboard-demo.png").await;

    browser.close().await.unwrap();
    driver.stop().await;
    demo.shutdown().await;
}

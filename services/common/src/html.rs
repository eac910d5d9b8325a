//! The HTML pages, as plain functions from data to markup, and the one stylesheet they link to.
//!
//! Shared by the monolith and the frontend service so that both render the same page from the same data:
//! the proxy's parity checks then compare where the data came from, not two copies of a template.
//!
//! Invariants:
//! - every piece of user-controlled text (usernames, thought texts, the search term) goes through [`escape`]
//!   before it reaches markup; nothing else is interpolated except constants and numbers;
//! - lists are shown in the order given; [`sort_newest_first`] is the one definition of "newest first".

use std::cmp::Reverse;
use std::fmt::Write as _;

use crate::Thought;
use crate::model::MAX_THOUGHT_CHARS;

/// The stylesheet every page links to (`/static/style.css`), compiled into the binary.
pub const STYLESHEET: &str = include_str!("../static/style.css");

/// Shown when a login fails.
pub const INVALID_LOGIN: &str = "Invalid login/password, please try again.";

/// Shown when a search finds nothing.
pub const NO_RESULTS: &str = "No results for your search";

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// Orders thoughts the way the pages list them: newest first, the higher id first on equal timestamps (the
/// monolith's `ORDER BY timestamp DESC, id DESC`).
pub fn sort_newest_first(thoughts: &mut [Thought]) {
    thoughts.sort_by_key(|t| Reverse((t.timestamp, t.id)));
}

/// The page frame: navigation bar (brand, search box, user and logout link) around `content`.
fn layout(title: &str, username: Option<&str>, search: &str, content: &str) -> String {
    let user = match username {
        Some(name) => format!(
            r#"<span class="user">{} · <a href="/logout/">log out</a></span>"#,
            escape(name)
        ),
        None => r#"<span class="user"><a href="/login/">log in</a></span>"#.to_owned(),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · MyThoughts</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<nav>
<a class="brand" href="/">MyThoughts</a>
<form action="/search" method="get" role="search">
<input type="search" name="search" placeholder="Search thoughts" value="{search}" aria-label="Search thoughts">
<button type="submit">Search</button>
</form>
{user}
</nav>
<main>
{content}
</main>
</body>
</html>
"#,
        title = escape(title),
        search = escape(search),
    )
}

/// `2019-05-07T13:47:34.123456` → `2019-05-07 13:47 UTC`.
fn human_time(iso: &str) -> String {
    format!("{} UTC", iso.get(..16).unwrap_or(iso).replacen('T', " ", 1))
}

fn thought_cards(thoughts: &[Thought]) -> String {
    let mut out = String::new();
    for thought in thoughts {
        let _ = write!(
            out,
            r#"<article class="card" id="thought-{id}">
<div class="meta"><strong>{username}</strong> <time datetime="{timestamp}">{when}</time></div>
<p>{text}</p>
</article>
"#,
            id = thought.id,
            username = escape(&thought.username),
            timestamp = thought.timestamp,
            when = human_time(&thought.timestamp.to_string()),
            text = escape(&thought.text),
        );
    }
    out
}

/// The logged-in user's page: a form for a new thought, then their thoughts (already newest first).
pub fn thoughts_page(username: &str, thoughts: &[Thought]) -> String {
    let list = if thoughts.is_empty() {
        r#"<p class="empty">No thoughts yet.</p>"#.to_owned()
    } else {
        thought_cards(thoughts)
    };
    let content = format!(
        r#"<h1>Your thoughts</h1>
<form class="card" action="/thoughts/new" method="post">
<label for="text">Any thoughts, {name}?</label>
<textarea id="text" name="text" maxlength="{MAX_THOUGHT_CHARS}" required></textarea>
<button type="submit">Share</button>
</form>
{list}"#,
        name = escape(username),
    );
    layout("Your thoughts", Some(username), "", &content)
}

/// The login form, with an error line after a failed attempt.
pub fn login_page(error: Option<&str>, username: &str) -> String {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let content = format!(
        r#"<h1>Log in</h1>
{error}
<form class="card" action="/login/" method="post">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{username}" autocomplete="username" required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>"#,
        username = escape(username),
    );
    layout("Log in", None, "", &content)
}

/// Search results (already newest first) for `term`.
pub fn search_page(username: Option<&str>, term: &str, results: &[Thought]) -> String {
    let list = if results.is_empty() {
        format!(r#"<p class="empty">{NO_RESULTS}</p>"#)
    } else {
        thought_cards(results)
    };
    let content = format!("<h1>Search: {}</h1>\n{list}", escape(term));
    layout("Search", username, term, &content)
}

/// An error page (400, 404, …) with a short explanation.
pub fn error_page(username: Option<&str>, title: &str, explanation: &str) -> String {
    let content = format!(
        "<h1>{}</h1>\n<p>{}</p>\n<p><a href=\"/\">Back to MyThoughts</a></p>",
        escape(title),
        escape(explanation)
    );
    layout(title, username, "", &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_characters() {
        assert_eq!(
            escape(r#"<script>alert("x&y's")</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;y&#x27;s&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain text, é"), "plain text, é");
    }

    #[test]
    fn pages_escape_every_user_string() {
        let thought = Thought {
            id: 1,
            username: "<b>eve</b>".into(),
            text: "<script>alert(1)</script>".into(),
            timestamp: "2019-05-07T13:47:34".parse().unwrap(),
        };
        let pages = [
            thoughts_page("<b>eve</b>", std::slice::from_ref(&thought)),
            search_page(Some("<b>eve</b>"), "\"><script>", std::slice::from_ref(&thought)),
            login_page(Some(INVALID_LOGIN), "\"><img src=x>"),
            error_page(None, "<x>", "<y>"),
        ];
        for page in pages {
            assert!(!page.contains("<script>"), "{page}");
            assert!(!page.contains("<b>"), "{page}");
            assert!(!page.contains("<img"), "{page}");
            assert!(!page.contains("<x>") && !page.contains("<y>"), "{page}");
        }
    }

    #[test]
    fn times_are_shown_to_the_minute() {
        assert_eq!(human_time("2019-05-07T13:47:34.123456"), "2019-05-07 13:47 UTC");
        assert_eq!(human_time("2019-05-07T13:47:34"), "2019-05-07 13:47 UTC");
    }

    #[test]
    fn newest_first_breaks_timestamp_ties_by_id() {
        let at = |id: i64, timestamp: &str| Thought {
            id,
            username: "bruce".into(),
            text: format!("t{id}"),
            timestamp: timestamp.parse().unwrap(),
        };
        let mut thoughts = vec![
            at(1, "2019-05-07T13:47:34"),
            at(2, "2019-05-07T13:47:34.500000"),
            at(3, "2019-05-07T13:47:34"),
            at(4, "2019-05-06T00:00:00"),
        ];
        sort_newest_first(&mut thoughts);
        assert_eq!(thoughts.iter().map(|t| t.id).collect::<Vec<_>>(), [2, 3, 1, 4]);
    }

    #[test]
    fn stylesheet_is_embedded() {
        assert!(STYLESHEET.contains("body {"));
    }

    #[test]
    fn search_page_says_when_nothing_matched() {
        assert!(search_page(None, "zebra", &[]).contains(NO_RESULTS));
    }
}

//! `[proxy] error_bodies` and `[proxy.error_pages]`: what the answers strangler makes itself
//! say. Only the settings are checked here (a known status, a path, a content type from
//! its extension); the page files are read later, by [`crate::config::Config::read_error_pages`].

use super::values::relative_to;
use crate::config::error::Errors;
use crate::config::model::{ANSWERED_STATUSES, ErrorBodies, ErrorPage};
use crate::config::raw;

/// `error_bodies`: `detailed` (the default) or `minimal`.
pub(super) fn error_bodies(errors: &mut Errors<'_>, raw: &raw::Proxy) -> ErrorBodies {
    match raw.error_bodies.as_ref() {
        None => ErrorBodies::Detailed,
        Some(value) => match value.get_ref().as_str() {
            "detailed" => ErrorBodies::Detailed,
            "minimal" => ErrorBodies::Minimal,
            other => {
                errors.push(
                    value.span().start,
                    format!("unknown error_bodies `{other}`, expected `detailed` or `minimal`"),
                );
                ErrorBodies::Detailed
            }
        },
    }
}

/// `[proxy.error_pages]`: each key a status of [`ANSWERED_STATUSES`], each value a file
/// path (relative to the config file's directory), sorted by status.
pub(super) fn error_pages(errors: &mut Errors<'_>, raw: &raw::Proxy, file: &str) -> Vec<ErrorPage> {
    let mut pages = Vec::new();
    for (key, value) in raw.error_pages.iter().flatten() {
        let status = match answered_status(key.get_ref()) {
            Ok(status) => status,
            Err(message) => {
                errors.push(key.span().start, message);
                continue;
            }
        };
        let written = value.get_ref();
        if written.trim().is_empty() {
            errors.push(
                value.span().start,
                format!("the error page for {status} is empty: name a file"),
            );
            continue;
        }
        let path = relative_to(file, written);
        pages.push(ErrorPage {
            status,
            content_type: content_type_of(&path),
            path,
            location: errors.location(value.span().start),
            content: None,
        });
    }
    pages.sort_by_key(|page| page.status);
    pages
}

/// A key of `[proxy.error_pages]` as a status strangler answers itself.
fn answered_status(key: &str) -> Result<http::StatusCode, String> {
    let listed = || {
        ANSWERED_STATUSES
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(code) = key.parse::<u16>().ok().filter(|code| (100..=999).contains(code)) else {
        return Err(format!(
            "`{key}` in `[proxy.error_pages]` is not a status: write one strangler answers itself ({})",
            listed()
        ));
    };
    if !ANSWERED_STATUSES.contains(&code) {
        return Err(format!(
            "strangler never answers {code} itself, so it has no error page: pages are for {}",
            listed()
        ));
    }
    http::StatusCode::from_u16(code).map_err(|e| e.to_string())
}

/// The `Content-Type` a page is served with, from its file's extension.
fn content_type_of(path: &std::path::Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::model::{ErrorBodies, Location};
    use crate::config::parse::parse_str;
    use crate::config::tests::{GOOD, errors_of};

    /// GOOD with `lines` at the top of `[proxy]`.
    fn with(lines: &str) -> String {
        GOOD.replacen("[proxy]\n", &format!("[proxy]\n{lines}\n"), 1)
    }

    /// GOOD with a `[proxy.error_pages]` table of `entries` at its end.
    fn with_pages(entries: &str) -> String {
        format!("{GOOD}\n[proxy.error_pages]\n{entries}\n")
    }

    #[test]
    fn error_bodies_is_detailed_unless_minimal_is_written() {
        let bodies = |text: &str| parse_str("/etc/s/routes.toml", text).unwrap().proxy.error_bodies;
        assert_eq!(bodies(GOOD), ErrorBodies::Detailed);
        assert_eq!(bodies(&with("error_bodies = \"detailed\"")), ErrorBodies::Detailed);
        assert_eq!(bodies(&with("error_bodies = \"minimal\"")), ErrorBodies::Minimal);
        assert_eq!(
            errors_of(&with("error_bodies = \"terse\"")),
            ["routes.toml:3:16: unknown error_bodies `terse`, expected `detailed` or `minimal`"]
        );
    }

    #[test]
    fn error_pages_are_statuses_strangler_answers_mapped_to_files() {
        let text =
            with_pages("\"502\" = \"errors/502.html\"\n503 = \"/srv/down.JSON\"\n\"400\" = \"bad.txt\"\n413 = \"big\"");
        let pages = parse_str("/etc/s/routes.toml", &text).unwrap().proxy.error_pages;
        let seen: Vec<(u16, PathBuf, &str)> = pages
            .iter()
            .map(|p| (p.status.as_u16(), p.path.clone(), p.content_type))
            .collect();
        assert_eq!(
            seen,
            [
                (400, PathBuf::from("/etc/s/bad.txt"), "text/plain; charset=utf-8"),
                (413, PathBuf::from("/etc/s/big"), "application/octet-stream"),
                (502, PathBuf::from("/etc/s/errors/502.html"), "text/html; charset=utf-8"),
                (503, PathBuf::from("/srv/down.JSON"), "application/json"),
            ]
        );
        let line = GOOD.lines().count() + 3;
        assert_eq!(pages[2].location, Location { line, column: 9 });
        assert!(pages.iter().all(|p| p.content.is_none()), "parsing reads no file");
        assert!(parse_str("routes.toml", GOOD).unwrap().proxy.error_pages.is_empty());
    }

    #[test]
    fn an_unknown_status_or_an_empty_path_is_an_error_at_its_place() {
        let line = GOOD.lines().count() + 3;
        let errors = errors_of(&with_pages(
            "\"404\" = \"a.html\"\n\"5xx\" = \"b.html\"\n\"200\" = \"c.html\"\n\"504\" = \" \"\n\"502\" = \"ok.html\"",
        ));
        assert_eq!(
            errors,
            [
                format!(
                    "routes.toml:{line}:1: strangler never answers 404 itself, so it has no error page: \
                     pages are for 400, 405, 408, 413, 502, 503, 504"
                ),
                format!(
                    "routes.toml:{}:1: `5xx` in `[proxy.error_pages]` is not a status: write one strangler \
                     answers itself (400, 405, 408, 413, 502, 503, 504)",
                    line + 1
                ),
                format!(
                    "routes.toml:{}:1: strangler never answers 200 itself, so it has no error page: \
                     pages are for 400, 405, 408, 413, 502, 503, 504",
                    line + 2
                ),
                format!(
                    "routes.toml:{}:9: the error page for 504 Gateway Timeout is empty: name a file",
                    line + 3
                ),
            ]
        );
        let errors = errors_of(&with_pages("\"502\" = 7"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(&format!("routes.toml:{line}:9: ")), "{errors:?}");
    }

    #[test]
    fn a_changed_setting_is_a_change_of_the_table() {
        let changes = |after: &str| {
            let before = parse_str("routes.toml", GOOD).unwrap();
            crate::config::RouteChanges::between(&before, &parse_str("routes.toml", after).unwrap()).settings
        };
        assert_eq!(
            changes(&with("error_bodies = \"minimal\"")),
            ["proxy.error_bodies detailed -> minimal"]
        );
        assert_eq!(
            changes(&with_pages("503 = \"down.html\"\n502 = \"/srv/502.html\"")),
            ["proxy.error_pages none -> 502 /srv/502.html, 503 down.html"]
        );
    }
}

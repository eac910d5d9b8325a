//! Error page files (`[proxy.error_pages]`) read into the config: [`Config::read_error_pages`],
//! called by the serving proxy at start and on every reload (so an edited page is served
//! after the next reload, and a page that cannot be read rejects the reload while the old
//! table keeps serving) and by `strangler check`. Blocking IO, like [`super::token`];
//! validation never calls it.

use std::io::Read;
use std::path::Path;

use bytes::Bytes;

use super::error::{ConfigError, ConfigErrors};
use super::model::{Config, MAX_ERROR_PAGE_BYTES, PageContent};

/// What a page says in place of the request id.
pub const REQUEST_ID_PLACEHOLDER: &str = "{request_id}";

impl Config {
    /// Reads every `[proxy.error_pages]` file into its [`ErrorPage::content`](super::model::ErrorPage::content)
    /// (blocking IO). A file that cannot be read, is not a regular file, or is larger than
    /// [`MAX_ERROR_PAGE_BYTES`] is an error at the setting's file:line:col; every page is
    /// tried, so every such error is reported.
    pub fn read_error_pages(&mut self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        for page in &mut self.proxy.error_pages {
            match read_page(&page.path) {
                Ok(bytes) => page.content = Some(split_at_placeholders(bytes)),
                Err(problem) => errors.push(ConfigError {
                    file: self.source.clone(),
                    location: page.location.clone(),
                    message: format!(
                        "cannot read the error page for {} {}: {problem}",
                        page.status,
                        page.path.display()
                    ),
                }),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// The kernel's own trees: their "regular files" (`/proc/self/environ`, a process's
/// secrets) are no one's error page, and whoever may edit the table must not be able to
/// serve them to every client.
const KERNEL_TREES: [&str; 3] = ["/proc", "/sys", "/dev"];

/// The bytes of a page file: a regular file of at most [`MAX_ERROR_PAGE_BYTES`]. A FIFO or
/// a device is refused before it is opened (opening a FIFO waits for a writer), and so is
/// a file whose real path (symbolic links followed: a Kubernetes ConfigMap's files are
/// links) is under [`KERNEL_TREES`].
fn read_page(path: &Path) -> Result<Bytes, String> {
    let real = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    if let Some(tree) = KERNEL_TREES.iter().find(|tree| real.starts_with(tree)) {
        return Err(format!(
            "it is under {tree} ({}): an error page is a file of yours",
            real.display()
        ));
    }
    let is_file = |metadata: std::fs::Metadata| {
        if metadata.is_file() {
            Ok(())
        } else {
            Err("it is not a regular file".to_owned())
        }
    };
    is_file(std::fs::metadata(&real).map_err(|e| e.to_string())?)?;
    let file = std::fs::File::open(&real).map_err(|e| e.to_string())?;
    is_file(file.metadata().map_err(|e| e.to_string())?)?;
    let mut bytes = Vec::new();
    file.take(MAX_ERROR_PAGE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_ERROR_PAGE_BYTES {
        return Err(format!(
            "it is larger than {} MiB, the most an error page may be",
            MAX_ERROR_PAGE_BYTES / (1024 * 1024)
        ));
    }
    Ok(Bytes::from(bytes))
}

/// A page cut at every [`REQUEST_ID_PLACEHOLDER`] (the pieces share the page's bytes).
fn split_at_placeholders(page: Bytes) -> PageContent {
    let placeholder = REQUEST_ID_PLACEHOLDER.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at + placeholder.len() <= page.len() {
        if &page[at..at + placeholder.len()] == placeholder {
            pieces.push(page.slice(start..at));
            at += placeholder.len();
            start = at;
        } else {
            at += 1;
        }
    }
    pieces.push(page.slice(start..));
    PageContent { pieces }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_str;
    use crate::config::tests::GOOD;

    #[test]
    fn a_page_is_cut_at_each_placeholder() {
        let pieces = |text: &'static str| split_at_placeholders(Bytes::from_static(text.as_bytes())).pieces;
        assert_eq!(pieces("no id"), [Bytes::from_static(b"no id")]);
        assert_eq!(
            pieces("<p>{request_id}</p>{request_id}"),
            [Bytes::from_static(b"<p>"), Bytes::from_static(b"</p>"), Bytes::new()]
        );
        assert_eq!(pieces("{request_id"), [Bytes::from_static(b"{request_id")]);
        assert_eq!(pieces(""), [Bytes::new()]);
    }

    #[test]
    fn pages_are_read_and_every_unreadable_one_is_an_error_at_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("routes.toml");
        let name = config_file.to_str().unwrap();
        std::fs::write(dir.path().join("502.html"), "<h1>down</h1> {request_id}").unwrap();
        std::fs::write(
            dir.path().join("big.txt"),
            vec![b'x'; MAX_ERROR_PAGE_BYTES as usize + 1],
        )
        .unwrap();
        std::fs::write(dir.path().join("limit.txt"), vec![b'x'; MAX_ERROR_PAGE_BYTES as usize]).unwrap();
        std::fs::create_dir(dir.path().join("dir.html")).unwrap();
        let text = format!(
            "{GOOD}\n[proxy.error_pages]\n502 = \"502.html\"\n503 = \"missing.html\"\n504 = \"big.txt\"\n\
             400 = \"dir.html\"\n413 = \"limit.txt\"\n"
        );
        let line = GOOD.lines().count() + 3;
        let mut config = parse_str(name, &text).unwrap();
        let errors: Vec<String> = config
            .read_error_pages()
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        let dir = dir.path().display();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!(
                "{name}:{}:7: cannot read the error page for 400 Bad Request {dir}/dir.html: it is not a regular file",
                line + 3
            )),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with(&format!(
                "{name}:{}:7: cannot read the error page for 503 Service Unavailable {dir}/missing.html: ",
                line + 1
            )),
            "{errors:?}"
        );
        assert_eq!(
            errors[2],
            format!(
                "{name}:{}:7: cannot read the error page for 504 Gateway Timeout {dir}/big.txt: it is larger \
                 than 1 MiB, the most an error page may be",
                line + 2
            )
        );

        let text = format!("{GOOD}\n[proxy.error_pages]\n502 = \"502.html\"\n413 = \"limit.txt\"\n");
        let mut config = parse_str(name, &text).unwrap();
        config.read_error_pages().unwrap();
        let pages = &config.proxy.error_pages;
        assert_eq!(
            pages[0].content.as_ref().unwrap().pieces.concat().len(),
            MAX_ERROR_PAGE_BYTES as usize
        );
        assert_eq!(
            pages[1].content.as_ref().unwrap().pieces,
            [Bytes::from_static(b"<h1>down</h1> "), Bytes::new()]
        );
    }

    #[test]
    fn kernel_files_are_refused_even_through_a_link_and_other_links_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("routes.toml");
        let name = config_file.to_str().unwrap();
        std::fs::write(dir.path().join("real.html"), "down").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real.html"), dir.path().join("502.html")).unwrap();
        std::os::unix::fs::symlink("/proc/self/status", dir.path().join("503.html")).unwrap();
        let text = format!(
            "{GOOD}\n[proxy.error_pages]\n502 = \"502.html\"\n503 = \"503.html\"\n504 = \"/proc/self/environ\"\n"
        );
        let mut config = parse_str(name, &text).unwrap();
        let errors: Vec<String> = config
            .read_error_pages()
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("503.html: it is under /proc (/proc/"), "{errors:?}");
        assert!(
            errors[1].contains("/proc/self/environ: it is under /proc"),
            "{errors:?}"
        );
        let page = config.proxy.error_pages.iter().find(|p| p.status == 502).unwrap();
        assert_eq!(page.content.as_ref().unwrap().pieces, [Bytes::from_static(b"down")]);
    }
}

//! `strangler init`: writes a first routing table for a monolith, so that a new user starts
//! from a commented table of a few lines instead of the reference's full example.
//!
//! The table names the monolith as upstream `legacy` (so it is the default upstream) and
//! leaves everything else to the defaults, which its comments state; a commented-out route
//! shows the next step. The text is validated before it is written (a bad `--legacy` URL
//! leaves no file behind), an existing file is never replaced without `--force`, and the
//! file written is then checked by [`super::check`], the code `strangler check` runs.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{ConfigErrors, DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN, parse_str};

/// The monolith's address when `--legacy` is not given.
pub const DEFAULT_LEGACY: &str = "http://127.0.0.1:3000";

/// What `strangler init` writes, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The monolith's base URL (`--legacy`).
    pub legacy: String,
    /// The file to write (`--out`).
    pub out: PathBuf,
    /// Replace `out` if it exists (`--force`).
    pub force: bool,
    /// `listen` to write (`--listen`); left to its default when `None`.
    pub listen: Option<String>,
    /// `admin_listen` to write (`--admin-listen`); left to its default when `None`.
    pub admin_listen: Option<String>,
}

/// Why no table was written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `out` exists and `--force` was not given.
    #[error("{0} already exists; not overwritten (give --force to replace it, or --out another file)")]
    Exists(String),
    /// The flags make an invalid table (a bad URL or address); nothing was written.
    #[error("the table for these flags is invalid, nothing was written:\n{0}")]
    Invalid(ConfigErrors),
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
}

/// Writes the table `options` describe, checks it as `strangler check` does (its report on
/// `out` and `err`), then prints the next steps on `out`. Returns whether the written table
/// is usable (it is, unless a file it names is missing).
pub fn run(options: &Options, out: &mut dyn Write, err: &mut dyn Write) -> Result<bool, InitError> {
    let path = options.out.display().to_string();
    let text = table_text(options);
    parse_str(&path, &text).map_err(InitError::Invalid)?;
    write_new(&options.out, &text, options.force)?;
    let written = |source| InitError::Write {
        path: path.clone(),
        source,
    };
    let usable = super::check::run(&options.out, out, err).map_err(written)?;
    writeln!(out, "{}", next_steps(options)).map_err(written)?;
    Ok(usable)
}

/// Writes `text` to `path`: only if no file is there, unless `force`.
fn write_new(path: &Path, text: &str, force: bool) -> Result<(), InitError> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    let failed = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            InitError::Exists(path.display().to_string())
        } else {
            InitError::Write {
                path: path.display().to_string(),
                source,
            }
        }
    };
    let mut file = open.open(path).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

/// A TOML string literal of `value` (quoted and escaped).
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// The commented table.
pub fn table_text(options: &Options) -> String {
    let proxy = match (&options.listen, &options.admin_listen) {
        (None, None) => {
            format!("# [proxy]\n# listen = \"{DEFAULT_LISTEN}\"\n# admin_listen = \"{DEFAULT_ADMIN_LISTEN}\"\n")
        }
        (listen, admin_listen) => {
            let mut section = "[proxy]\n".to_owned();
            for (key, value) in [("listen", listen), ("admin_listen", admin_listen)] {
                if let Some(value) = value {
                    section.push_str(&format!("{key} = {}\n", quoted(value)));
                }
            }
            section
        }
    };
    // Only the settings the file leaves out are listed as left out.
    let mut left_out = String::new();
    if options.listen.is_none() {
        left_out.push_str(&format!(
            "#   listen           = \"{DEFAULT_LISTEN}\"    the public listener, every interface\n"
        ));
    }
    if options.admin_listen.is_none() {
        left_out.push_str(&format!(
            "#   admin_listen     = \"{DEFAULT_ADMIN_LISTEN}\"  admin API, metrics and dashboard, loopback only\n\
             #                                         (elsewhere it needs `admin_token_file`)\n"
        ));
    }
    format!(
        r#"# routes.toml: strangler's routing table, written by `strangler init`.
# Every key, its default and an example: docs/routes-toml.md.
#
# Left out here, with their defaults (`strangler check` prints the ones in use):
{left_out}#   default_upstream = "legacy"          where requests that no route claims go

{proxy}
# The monolith: every request goes here until a route moves it.
[upstreams.legacy]
url = {legacy}

# A first route, to move /api/users/ to a new service step by step (uncomment both):
# at stage "legacy" the monolith still answers; `strangler flip users-api shadow` mirrors
# copies to `users` and compares the answers; `flip users-api canary --percent 10`, then
# `flip users-api new`, move real traffic once the parity evidence says they match.
#
# [upstreams.users]
# url = "http://127.0.0.1:3001"
#
# [[routes]]
# name = "users-api"
# path = "/api/users/"
# stage = "legacy"
# new = "users"
"#,
        legacy = quoted(&options.legacy),
    )
}

/// What to run next, for the table at `options.out`.
fn next_steps(options: &Options) -> String {
    let file = options.out.display().to_string();
    let config = if file == "routes.toml" {
        String::new()
    } else {
        format!(" --config {file}")
    };
    let check = if file == "routes.toml" {
        String::new()
    } else {
        format!(" {file}")
    };
    format!(
        "wrote {file}; next:\n  \
         strangler check{check}            validate it after each edit (every error, file:line:col)\n  \
         strangler serve{config}            run the proxy (Ctrl-C stops it; saving the file reloads it)\n  \
         strangler explain{config} GET /    which route a request takes, why, and where it goes"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(legacy: &str) -> Options {
        Options {
            legacy: legacy.to_owned(),
            out: PathBuf::from("routes.toml"),
            force: false,
            listen: None,
            admin_listen: None,
        }
    }

    #[test]
    fn the_table_is_valid_and_sends_everything_to_legacy() {
        let text = table_text(&options("http://10.0.0.5:8080"));
        let config = parse_str("routes.toml", &text).unwrap();
        assert_eq!(config.proxy.default_upstream, "legacy");
        assert_eq!(config.upstreams["legacy"].url.to_string(), "http://10.0.0.5:8080/");
        assert_eq!(config.proxy.listen.to_string(), DEFAULT_LISTEN);
        assert!(config.routes.is_empty());
        assert!(text.contains("docs/routes-toml.md"), "{text}");
    }

    /// `key = value`, as the commented settings are written (no leading space).
    fn is_setting(line: &str) -> bool {
        line.split_once(" = ")
            .is_some_and(|(key, _)| !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    }

    #[test]
    fn the_commented_example_is_valid_once_uncommented() {
        let text = table_text(&options(DEFAULT_LEGACY));
        let uncommented: String = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.starts_with('[') || is_setting(rest) => rest,
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = parse_str("routes.toml", &uncommented).unwrap();
        assert_eq!(config.routes.len(), 1, "{uncommented}");
        assert_eq!(config.routes[0].name, "users-api");
        assert!(config.upstreams.contains_key("users"));
        assert_eq!(config.proxy.defaulted, ["default_upstream"], "{uncommented}");
    }

    #[test]
    fn given_listeners_are_written_and_values_are_quoted() {
        let mut given = options("http://legacy:9001");
        given.listen = Some("127.0.0.1:0".to_owned());
        given.admin_listen = Some("127.0.0.1:0".to_owned());
        let text = table_text(&given);
        let config = parse_str("routes.toml", &text).unwrap();
        assert_eq!(config.proxy.listen.to_string(), "127.0.0.1:0");
        // The header lists as left out only what the file leaves out (newcomer pass).
        assert!(!text.contains(&format!("\"{DEFAULT_LISTEN}\"")), "{text}");
        assert!(!text.contains(&format!("\"{DEFAULT_ADMIN_LISTEN}\"")), "{text}");
        assert_eq!(config.proxy.defaulted, ["default_upstream"]);
        let errors = parse_str("routes.toml", &table_text(&options("ftp://x\"\n[evil]"))).unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        assert!(errors.0[0].message.contains("ftp"), "{errors}");
    }
}

//! Admin bearer tokens read from files: [`read_token_file`], shared by the proxy
//! (`admin_token_file`, read by [`Config::read_admin_token`] at start and on every reload) and
//! the admin clients (`strangler status` and `flip` with `--admin-token-file`), so both accept
//! the same files. The only IO of `config`; validation never calls it.

use std::path::Path;

use super::error::{ConfigError, ConfigErrors};
use super::model::{AdminToken, Config};

impl Config {
    /// Reads `admin_token_file` into [`ProxySettings::admin_token`](super::model::ProxySettings::admin_token) (blocking IO) with
    /// [`read_token_file`]; its errors are at the setting's file:line:col.
    pub fn read_admin_token(&mut self) -> Result<(), ConfigErrors> {
        let Some(file) = &self.proxy.admin_token_file else {
            self.proxy.admin_token = None;
            return Ok(());
        };
        let problem = read_token_file(&file.path, "`admin_token_file`").map(|token| AdminToken::new(token.as_bytes()));
        match problem {
            Ok(token) => {
                self.proxy.admin_token = Some(token);
                Ok(())
            }
            Err(message) => Err(ConfigErrors(vec![ConfigError {
                file: self.source.clone(),
                location: file.location.clone(),
                message,
            }])),
        }
    }
}

/// Reads an admin token file: surrounding ASCII whitespace trimmed. An unreadable or empty
/// file, or one holding characters a client could not send in an `Authorization: Bearer`
/// header, is an error naming the file as `what`; errors never quote the file's content.
/// The proxy reads `admin_token_file` with it and the admin clients (`strangler status`,
/// `flip`) their `--admin-token-file`, so both accept the same files.
pub fn read_token_file(path: &Path, what: &str) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let token = bytes.trim_ascii();
    if token.is_empty() {
        return Err(format!("{what} {} is empty", path.display()));
    }
    if !token.iter().all(u8::is_ascii_graphic) {
        return Err(format!(
            "{what} {}: the token must be printable ASCII without spaces, as it is sent in an \
             `Authorization: Bearer` header",
            path.display()
        ));
    }
    // Printable ASCII is UTF-8: nothing is replaced.
    Ok(String::from_utf8_lossy(token).into_owned())
}

#[cfg(test)]
mod tests {
    use crate::config::parse::parse_str;
    use crate::config::tests::{GOOD, with_token_file};

    #[test]
    fn admin_token_is_read_checked_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("routes.toml");
        let config_name = config_file.to_str().unwrap();
        let token_path = dir.path().join("token");
        let load = |content: Option<&[u8]>| {
            match content {
                Some(bytes) => std::fs::write(&token_path, bytes).unwrap(),
                None => drop(std::fs::remove_file(&token_path)),
            }
            let mut config = parse_str(config_name, &with_token_file("token", "127.0.0.1:9100")).unwrap();
            config.read_admin_token().map(|()| config)
        };

        let config = load(Some(b"s3cret-T0ken\n")).unwrap();
        let token = config.proxy.admin_token.as_ref().unwrap();
        assert!(token.matches(b"s3cret-T0ken"));
        assert!(!token.matches(b"s3cret-T0ke"));
        assert!(!token.matches(b"s3cret-T0ken\n"));
        assert!(!token.matches(b""));
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("AdminToken([redacted])"), "{shown}");

        for (content, what) in [
            (None, "cannot read `admin_token_file`"),
            (Some(&b""[..]), "is empty"),
            (Some(&b" \n\t\n"[..]), "is empty"),
            (Some(&b"two words"[..]), "printable ASCII without spaces"),
            (Some(&b"caf\xc3\xa9"[..]), "printable ASCII without spaces"),
        ] {
            let errors = load(content).unwrap_err().0;
            assert_eq!(errors.len(), 1, "{errors:?}");
            let error = errors[0].to_string();
            assert!(
                error.starts_with(&format!("{config_name}:5:20: ")),
                "{content:?}: {error}"
            );
            assert!(error.contains(what), "{content:?}: {error}");
            assert!(
                !error.contains("words") && !error.contains("caf"),
                "the token leaked: {error}"
            );
        }

        // Without the setting there is nothing to read.
        let mut config = parse_str("routes.toml", GOOD).unwrap();
        config.read_admin_token().unwrap();
        assert_eq!(config.proxy.admin_token, None);
    }
}

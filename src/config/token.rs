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

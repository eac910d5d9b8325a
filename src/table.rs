//! The compiled routing table: a validated config and its [`RouteTable`].
//!
//! This is what `strangler check`, `explain`, `flip` and `parity` work with, and what a
//! reload builds (and validates completely) before the running proxy turns it into a
//! [`Snapshot`](crate::state::Snapshot). It does no network IO and starts nothing, so the
//! offline commands use it without the runtime.

use std::path::Path;

use crate::config::{self, Config, ConfigError, ConfigErrors, LoadError};
use crate::router::RouteTable;

/// A validated config and its compiled routes: what `strangler check` and `explain`
/// need, and what a reload builds before anything is swapped.
#[derive(Debug, Clone)]
pub struct Table {
    /// The validated file.
    pub config: Config,
    /// Its compiled routes; route ids index `config.routes`.
    pub routes: RouteTable,
}

impl Table {
    /// Validates config text completely, route conflicts included.
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigErrors> {
        let config = config::parse_str(file, text)?;
        let routes = RouteTable::build(&config.routes).map_err(|conflicts| {
            ConfigErrors(
                conflicts
                    .into_iter()
                    .map(|c| ConfigError {
                        file: file.to_owned(),
                        location: config.routes[c.route].location.clone(),
                        message: c.message,
                    })
                    .collect(),
            )
        })?;
        Ok(Self { config, routes })
    }

    /// Reads and validates a file. Blocking.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = Self::read(path)?;
        Self::parse(&path.display().to_string(), &text).map_err(LoadError::Invalid)
    }

    /// [`load`](Self::load) for serving: also reads the secrets the table names (the admin
    /// token file), again on every reload, so a rotated token takes effect. Blocking.
    pub fn load_for_serving(path: &Path) -> Result<Self, LoadError> {
        let mut table = Self::load(path)?;
        table.config.read_admin_token().map_err(LoadError::Invalid)?;
        Ok(table)
    }

    /// The text of a table file. Blocking.
    pub fn read(path: &Path) -> Result<String, LoadError> {
        std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })
    }
}

//! `strangler check FILE`: validates a routing table completely (every error, each with
//! file:line:column) and reads the certificate, key and CA files it names.

use std::io::Write;
use std::path::Path;

use crate::config::{Config, LoadError};
use crate::server::tls::pairs_of;
use crate::table::Table;
use crate::tls::{TlsError, load_pair};
use crate::upstream::tls::ClientTls;

/// Checks `file`; the report goes to `out`, the closing count to `err`. Returns whether the
/// table is usable.
pub fn run(file: &Path, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<bool> {
    match Table::load(file) {
        Ok(table) => {
            let c = &table.config;
            let problems = check_files(c);
            if !problems.is_empty() {
                for problem in &problems {
                    writeln!(out, "{problem}")?;
                }
                writeln!(err, "{}: {} error(s)", file.display(), problems.len())?;
                return Ok(false);
            }
            writeln!(
                out,
                "{}: ok: {} upstreams, {} routes, default upstream `{}`, version {}",
                file.display(),
                c.upstreams.len(),
                c.routes.len(),
                c.proxy.default_upstream,
                c.version
            )?;
            Ok(true)
        }
        Err(LoadError::Invalid(errors)) => {
            for error in &errors.0 {
                writeln!(out, "{error}")?;
            }
            writeln!(err, "{}: {} error(s)", file.display(), errors.0.len())?;
            Ok(false)
        }
        Err(e) => {
            writeln!(out, "{e}")?;
            Ok(false)
        }
    }
}

/// Reads every certificate, key and CA file a config names and reports what would keep it
/// from loading (`strangler check`): the files themselves are not part of the config's
/// validation, which does no IO. Blocking.
pub fn check_files(config: &Config) -> Vec<TlsError> {
    let mut problems = Vec::new();
    if let Some(settings) = &config.proxy.tls {
        let mut seen = Vec::new();
        for pair in pairs_of(settings) {
            if seen.contains(&pair) {
                continue;
            }
            seen.push(pair);
            if let Err(e) = load_pair(pair) {
                problems.push(e);
            }
        }
    }
    for upstream in config.upstreams.values() {
        if let Err(e) = ClientTls::for_upstream(upstream) {
            problems.push(e);
        }
    }
    problems
}

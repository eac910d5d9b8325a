//! Loading and validating `routes.toml`.
//!
//! ```text
//! routes.toml --(toml parser, recoverable)--> DeTable with spans
//!             --(serde, one section at a time)--> raw::* (deny_unknown_fields)
//!             --(validate)--> Config
//! ```
//!
//! Every problem is reported as a [`ConfigError`] that names `file:line:column` of the
//! offending value and says what is wrong in one line. Sections are deserialised one at a
//! time so that one bad route does not hide the errors of the next: `strangler check`
//! reports every error in the file. Nothing here does IO: [`crate::table::Table::load`] reads
//! the file, and its callers run it off the async workers.
//!
//! Route conflicts (two routes that match the same request with equal specificity) are
//! found when the routes are compiled by [`crate::router::RouteTable::build`], which
//! reports them with the locations kept in [`RouteConfig::location`].

mod error;
mod model;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use error::Errors;
pub use error::{ConfigError, ConfigErrors, LoadError, location_of};
pub use model::{
    AdminToken, CanaryConfig, CertKeyPair, Config, FileRef, HealthCheckConfig, Location, OutlierConfig, PathPattern,
    ProxySettings, RecordConfig, RouteConfig, ShadowConfig, SniCertificate, Stage, StickyKey, TlsSettings, TokenFile,
    UpstreamConfig, UpstreamTls, WorkerCpuAffinity,
};
pub use validate::parse_duration;
use validate::{validate_proxy, validate_record, validate_route, validate_upstream};

impl Config {
    /// Reads `admin_token_file` into [`ProxySettings::admin_token`] (blocking IO) with
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

/// Parses and validates config text. `file` is only used in error messages and
/// [`Config::source`].
pub fn parse_str(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Errors::new(file, text);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    for error in &syntax_errors {
        errors.push(
            error.span().map_or(0, |s| s.start),
            error.message().trim_end().replace('\n', "; "),
        );
    }
    if !syntax_errors.is_empty() {
        return Err(errors.finish());
    }
    let root_span = root.span();
    let root = root.into_inner();

    let mut proxy = None;
    let mut upstreams = None;
    let mut routes = None;
    let mut record = None;
    for (key, value) in root.iter() {
        match key.get_ref().as_ref() {
            "proxy" => proxy = Some(value),
            "upstreams" => upstreams = Some(value),
            "routes" => routes = Some(value),
            "record" => record = Some(value),
            other => errors.push(
                key.span().start,
                format!("unknown section `{other}`, expected one of `proxy`, `upstreams`, `routes`, `record`"),
            ),
        }
    }

    let proxy = match proxy {
        Some(value) => errors.deserialize::<raw::Proxy>(value),
        None => {
            errors.push(root_span.start, "missing section `[proxy]`".to_owned());
            None
        }
    };

    // Upstreams, each deserialised on its own so that every error is reported.
    let mut raw_upstreams: Vec<(String, usize, raw::Upstream)> = Vec::new();
    // Every upstream the file defines, also those with errors of their own: a reference to
    // one is not an error too (that would be reported first, and be misleading).
    let mut defined_upstreams: Vec<String> = Vec::new();
    match upstreams {
        Some(value) => match value.get_ref() {
            DeValue::Table(table) => {
                for (name, body) in table.iter() {
                    defined_upstreams.push(name.get_ref().to_string());
                    if let Some(upstream) = errors.deserialize::<raw::Upstream>(body) {
                        raw_upstreams.push((name.get_ref().to_string(), name.span().start, upstream));
                    }
                }
            }
            _ => errors.push(value.span().start, "`upstreams` must be a table of tables".to_owned()),
        },
        None => errors.push(root_span.start, "missing section `[upstreams]`".to_owned()),
    }

    let mut raw_routes: Vec<raw::Route> = Vec::new();
    if let Some(value) = routes {
        match value.get_ref() {
            DeValue::Array(array) => {
                for item in array.iter() {
                    if let Some(route) = errors.deserialize::<raw::Route>(item) {
                        raw_routes.push(route);
                    }
                }
            }
            _ => errors.push(
                value.span().start,
                "`routes` must be an array of tables (`[[routes]]`)".to_owned(),
            ),
        }
    }

    let upstream_names: Vec<&str> = defined_upstreams.iter().map(String::as_str).collect();
    let mut upstream_configs = BTreeMap::new();
    for (name, at, upstream) in &raw_upstreams {
        if let Some(config) = validate_upstream(&mut errors, file, name, *at, upstream) {
            upstream_configs.insert(name.clone(), config);
        }
    }

    let proxy = proxy.and_then(|p| validate_proxy(&mut errors, &p, &upstream_names, file));
    let default_upstream = proxy.as_ref().map(|p| p.default_upstream.clone());

    let mut route_configs = Vec::new();
    let mut seen_names: BTreeMap<String, Location> = BTreeMap::new();
    for route in &raw_routes {
        let name = route.name.get_ref();
        if let Some(first) = seen_names.get(name) {
            errors.push(
                route.name.span().start,
                format!("duplicate route name `{name}` (first defined at line {})", first.line),
            );
        } else {
            seen_names.insert(name.clone(), errors.location(route.name.span().start));
        }
        if let Some(config) = validate_route(&mut errors, route, &upstream_names, default_upstream.as_deref()) {
            route_configs.push(config);
        }
    }

    let record = record
        .and_then(|value| errors.deserialize::<raw::Record>(value))
        .and_then(|raw| validate_record(&mut errors, &raw, file));

    match proxy {
        Some(proxy) if errors.is_empty() => Ok(Config {
            source: file.to_owned(),
            version: version_of(text),
            proxy,
            upstreams: upstream_configs,
            routes: route_configs,
            record,
        }),
        _ => Err(errors.finish()),
    }
}

/// The version of a table: a short hex digest of its bytes.
pub fn version_of(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;

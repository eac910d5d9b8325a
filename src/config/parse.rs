//! [`parse_str`]: config text to a validated [`Config`] or every problem in it.
//!
//! The steps, in the order their errors are found (errors are reported sorted by position):
//! TOML syntax (nothing else is checked when it fails); the top-level sections by name; each
//! section, and each upstream and route on its own, deserialised into [`super::raw`] (a key
//! serde refuses is reported, taken out and the rest deserialised again, so that one unknown
//! key hides no other error: [`super::error`]'s `Errors::deserialize`); then
//! the upstreams, `[proxy]`, the routes and `[record]` validated by [`super::validate`].
//! Nothing here does IO.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigErrors, Errors};
use super::model::{Config, Location, RouteConfig, UpstreamConfig};
use super::raw;
use super::validate::validate_tracing;
use super::validate::{validate_proxy, validate_record, validate_route, validate_upstream};

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
    let root_start = root.span().start;
    let root = root.into_inner();
    let sections = Sections::find(&mut errors, &root);

    // `[proxy]` is optional: every key in it has a default (validate/proxy.rs).
    let proxy = match sections.proxy {
        Some(value) => errors.deserialize::<raw::Proxy>(value),
        None => Some(raw::Proxy::default()),
    };
    let raw_upstreams = RawUpstreams::deserialize(&mut errors, sections.upstreams, root_start);
    let raw_routes = deserialize_routes(&mut errors, sections.routes);

    let upstream_names: Vec<&str> = raw_upstreams.defined.iter().map(String::as_str).collect();
    let upstream_configs = validate_upstreams(&mut errors, file, &raw_upstreams.tables);
    let upstreams_at = sections.upstreams_at.unwrap_or(root_start);
    let proxy = proxy.and_then(|p| validate_proxy(&mut errors, &p, &upstream_names, upstreams_at, file));
    let default_upstream = proxy.as_ref().map(|p| p.default_upstream.clone());
    let route_configs = validate_routes(&mut errors, &raw_routes, &upstream_names, default_upstream.as_deref());
    let record = sections
        .record
        .and_then(|value| errors.deserialize::<raw::Record>(value))
        .and_then(|raw| validate_record(&mut errors, &raw, file));
    let tracing = sections
        .tracing
        .and_then(|value| errors.deserialize::<raw::Tracing>(value))
        .map(|raw| validate_tracing(&mut errors, &raw))
        .unwrap_or_default();

    match proxy {
        Some(proxy) if errors.is_empty() => Ok(Config {
            source: file.to_owned(),
            version: version_of(text),
            proxy,
            upstreams: upstream_configs,
            routes: route_configs,
            record,
            tracing,
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

/// The top-level tables of a file, by name, not yet deserialised.
struct Sections<'t, 'i> {
    proxy: Option<&'t Spanned<DeValue<'i>>>,
    upstreams: Option<&'t Spanned<DeValue<'i>>>,
    routes: Option<&'t Spanned<DeValue<'i>>>,
    record: Option<&'t Spanned<DeValue<'i>>>,
    tracing: Option<&'t Spanned<DeValue<'i>>>,
    /// Where the `upstreams` key is first written (`[upstreams.NAME]`).
    upstreams_at: Option<usize>,
}

impl<'t, 'i> Sections<'t, 'i> {
    /// Picks the known sections out of `root`; any other key is an error at the key.
    fn find(errors: &mut Errors<'_>, root: &'t DeTable<'i>) -> Self {
        let mut sections = Sections {
            proxy: None,
            upstreams: None,
            routes: None,
            record: None,
            tracing: None,
            upstreams_at: None,
        };
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "proxy" => sections.proxy = Some(value),
                "upstreams" => {
                    sections.upstreams = Some(value);
                    sections.upstreams_at = Some(key.span().start);
                }
                "routes" => sections.routes = Some(value),
                "record" => sections.record = Some(value),
                "tracing" => sections.tracing = Some(value),
                other => errors.push(
                    key.span().start,
                    format!(
                        "unknown section `{other}`, expected one of `proxy`, `upstreams`, `routes`, `record`, `tracing`"
                    ),
                ),
            }
        }
        sections
    }
}

/// `[upstreams]` deserialised, each upstream on its own so that every error is reported.
struct RawUpstreams {
    /// Every upstream the file defines, also those with errors of their own: a reference to
    /// one is not an error too (that would be reported first, and be misleading).
    defined: Vec<String>,
    /// The upstreams that deserialised: name, where the name is written, the table.
    tables: Vec<(String, usize, raw::Upstream)>,
}

impl RawUpstreams {
    /// Deserialises the `[upstreams]` section; a missing one is an error at `root_start`.
    fn deserialize<'i>(errors: &mut Errors<'i>, section: Option<&Spanned<DeValue<'i>>>, root_start: usize) -> Self {
        let mut upstreams = RawUpstreams {
            defined: Vec::new(),
            tables: Vec::new(),
        };
        match section {
            Some(value) => match value.get_ref() {
                DeValue::Table(table) => {
                    for (name, body) in table.iter() {
                        upstreams.defined.push(name.get_ref().to_string());
                        if let Some(upstream) = errors.deserialize::<raw::Upstream>(body) {
                            upstreams
                                .tables
                                .push((name.get_ref().to_string(), name.span().start, upstream));
                        }
                    }
                }
                _ => errors.push(value.span().start, "`upstreams` must be a table of tables".to_owned()),
            },
            None => errors.push(root_start, "missing section `[upstreams]`".to_owned()),
        }
        upstreams
    }
}

/// Deserialises `[[routes]]`, each route on its own so that every error is reported; no
/// routes at all is fine.
fn deserialize_routes<'i>(errors: &mut Errors<'i>, section: Option<&Spanned<DeValue<'i>>>) -> Vec<raw::Route> {
    let mut routes = Vec::new();
    if let Some(value) = section {
        match value.get_ref() {
            DeValue::Array(array) => {
                for item in array.iter() {
                    if let Some(route) = errors.deserialize::<raw::Route>(item) {
                        routes.push(route);
                    }
                }
            }
            _ => errors.push(
                value.span().start,
                "`routes` must be an array of tables (`[[routes]]`)".to_owned(),
            ),
        }
    }
    routes
}

/// Validates every deserialised upstream; those with errors are left out.
fn validate_upstreams(
    errors: &mut Errors<'_>,
    file: &str,
    tables: &[(String, usize, raw::Upstream)],
) -> BTreeMap<String, UpstreamConfig> {
    let mut upstreams = BTreeMap::new();
    for (name, at, upstream) in tables {
        if let Some(config) = validate_upstream(errors, file, name, *at, upstream) {
            upstreams.insert(name.clone(), config);
        }
    }
    upstreams
}

/// Validates every deserialised route, in file order, and that no name is used twice.
fn validate_routes(
    errors: &mut Errors<'_>,
    routes: &[raw::Route],
    upstream_names: &[&str],
    default_upstream: Option<&str>,
) -> Vec<RouteConfig> {
    let mut configs = Vec::new();
    let mut seen_names: BTreeMap<String, Location> = BTreeMap::new();
    for route in routes {
        let name = route.name.get_ref();
        if let Some(first) = seen_names.get(name) {
            errors.push(
                route.name.span().start,
                format!("duplicate route name `{name}` (first defined at line {})", first.line),
            );
        } else {
            seen_names.insert(name.clone(), errors.location(route.name.span().start));
        }
        if let Some(config) = validate_route(errors, route, upstream_names, default_upstream) {
            configs.push(config);
        }
    }
    configs
}

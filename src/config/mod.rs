//! Loading and validating `routes.toml`.
//!
//! ```text
//! routes.toml --(toml parser, recoverable)--> DeTable with spans           parse.rs
//!             --(serde, one section at a time)--> raw::* (deny_unknown_fields)   raw.rs
//!             --(validate, one file per section)--> Config                validate/ -> model.rs
//! ```
//!
//! | file         | owns |
//! |--------------|------|
//! | `model.rs`   | the validated types ([`Config`], [`RouteConfig`], [`Stage`], …): a leaf |
//! | `error.rs`   | [`ConfigError`] (`file:line:column: message`), [`ConfigErrors`], [`LoadError`], [`location_of`] |
//! | `raw.rs`     | the file as serde sees it, with spans |
//! | `parse.rs`   | [`parse_str`], [`version_of`]: text → sections → raw → validated |
//! | `validate/`  | one file per section: `[proxy]`, `[upstreams.*]`, `[[routes]]`, `[record]`, TLS |
//! | `diff.rs`    | [`RouteChanges`], [`RouteDiff`]: what one table changes in another's routes |
//! | `evidence.rs` | [`EvidenceIdentity`]: what a route's parity evidence is evidence of |
//! | `forwarding.rs` | [`Forwarding`]: `strip_prefix`, `rewrite`, `host`, header edits, an upstream's base path, and the pure functions that apply them |
//! | `token.rs`   | [`read_token_file`], [`Config::read_admin_token`]: IO, after validation |
//! | `pages.rs`   | [`Config::read_error_pages`]: the `[proxy.error_pages]` files, IO after validation |
//! | `schema.rs`  | [`routes_toml_schema`]: the JSON Schema of the file, for editors (`strangler schema`) |
//! | `shapes.rs`  | the JSON Schema of each kind of value, named by `raw.rs`'s fields |
//!
//! Every problem is reported as a [`ConfigError`] that names `file:line:column` of the
//! offending value and says what is wrong in one line. Sections are deserialised one at a
//! time so that one bad route does not hide the errors of the next: `strangler check`
//! reports every error in the file. Parsing does no IO: [`crate::table::Table::load`] reads
//! the file, and its callers run it off the async workers.
//!
//! Route conflicts (two routes that match the same request with equal specificity) are
//! found when the routes are compiled by [`crate::router::RouteTable::build`], which
//! reports them with the locations kept in [`RouteConfig::location`].

mod diff;
mod error;
mod evidence;
mod forwarding;
mod model;
mod pages;
mod parse;
mod raw;
mod schema;
mod shapes;
mod token;
mod validate;

pub use diff::{PropertyChange, RouteChanges, RouteDiff, RouteFacts, facts_of_table, settings_diff, settings_of};
pub use error::{ConfigError, ConfigErrors, LoadError, location_of};
pub use evidence::{EvidenceIdentity, EvidenceSide};
pub use forwarding::{
    AS_ROUTED, Forwarding, HeaderEdits, HostPolicy, PathRewrite, TemplateSegment, base_path_of, protected_header,
    under_base,
};
pub use model::DEFAULT_UPGRADES;
pub use model::TracingConfig;
pub use model::{ANSWERED_STATUSES, ErrorBodies, ErrorPage, MAX_ERROR_PAGE_BYTES, PageContent};
pub use model::{
    AdminToken, CanaryConfig, CertKeyPair, Config, FileRef, HealthCheckConfig, Location, OutlierConfig, PathPattern,
    ProxySettings, RecordConfig, RouteConfig, ShadowConfig, SniCertificate, Stage, StickyKey, TlsSettings, TokenFile,
    UnknownStage, UpstreamConfig, UpstreamTls, WorkerCpuAffinity,
};
pub use pages::REQUEST_ID_PLACEHOLDER;
pub use parse::{parse_str, version_of};
pub use schema::routes_toml_schema;
pub use token::read_token_file;
pub use validate::{DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN, base_path_problem, parse_duration};

#[cfg(test)]
mod tests;

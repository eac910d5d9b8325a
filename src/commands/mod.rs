//! The offline commands of the `strangler` binary (all but `serve`).
//!
//! They read routes.toml into a [`crate::table::Table`] (never the running proxy's
//! state) and, for `flip` and `status`, talk to the admin API over HTTP.
//!
//! - [`check`]: validate a table and the files it names;
//! - [`explain`]: why a request goes where it goes;
//! - [`flip`]: move a route to another stage in routes.toml, evidence first;
//! - [`status`]: the migration board across replicas, and the admin API client;
//! - [`parity`]: replay a corpus against both sides and report.

pub mod check;
pub mod explain;
pub mod flip;
pub mod parity;
pub mod status;

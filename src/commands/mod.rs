//! The offline commands of the `strangler` binary (all but `serve`).
//!
//! They read routes.toml into a [`crate::table::Table`] (never the running proxy's
//! state) and, for `flip` and `status`, talk to the admin API over HTTP.
//!
//! - [`check`]: validate a table and the files it names;
//! - [`init`]: write a first, commented table for a monolith;
//! - [`explain`]: why a request goes where it goes;
//! - [`flip`]: move a route to another stage in routes.toml, evidence first;
//! - [`status`]: the migration board across replicas;
//! - [`admin_client`]: the client side of the admin API (address, token, one replica's answer);
//! - [`fleet`]: the replicas asked (`--admin`, `--admin-dns`) and their summed evidence;
//! - [`evidence`]: which parity counts speak for the route of an edited table;
//! - [`prometheus`]: the same counts read from a Prometheus server's HTTP API;
//! - [`parity`]: replay a corpus against both sides and report;
//! - [`schema`]: the JSON Schema of routes.toml, for editors.

pub mod admin_client;
pub mod check;
pub mod evidence;
pub mod explain;
pub mod fleet;
pub mod flip;
pub mod init;
pub mod parity;
pub mod prometheus;
pub mod schema;
pub mod status;

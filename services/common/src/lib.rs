//! # mythoughts-common
//!
//! Code shared by the MyThoughts demo monolith (`legacy/`) and the microservices that replace it route by
//! route behind `strangler`. Anything two services must agree on byte for byte lives here, so that the
//! proxy's parity checks compare behaviour, not accidents of copy-paste.
//!
//! - [`model`]: the JSON shapes ([`Thought`], [`User`]) and the book's timestamp format ([`Timestamp`]).
//! - [`jwt`]: RS256 tokens: [`TokenIssuer`] (private key, users service), [`TokenVerifier`] (public key,
//!   every service), `Authorization: Bearer` parsing and development key generation.
//! - [`password`]: argon2 password hashing ([`PasswordHasher`]).
//! - [`seed`]: the fixed demo users and thoughts, with ids and timestamps.
//! - [`errors`]: the book's error bodies and [`ApiError`], the one place an API error becomes a response.
//! - [`telemetry`]: tracing setup, the Prometheus [`Metrics`] and the middleware that records them.
//! - [`startup`]: what every service does before its first request (keys, database, seed passwords,
//!   [`startup::VersionInfo`]); [`cli`]: the flags every binary shares; [`server`]: serving, and
//!   [`server::run_binary`], the life of a binary after its flags are parsed.
//!
//! Invariants: nothing here reads the environment or global state except [`telemetry::init_tracing`]; keys
//! and registries are values passed in, so tests build their own.

pub mod api;
pub mod cli;
pub mod db;
pub mod errors;
pub mod html;
pub mod input;
pub mod jwt;
pub mod model;
pub mod pages;
pub mod password;
pub mod seed;
pub mod server;
pub mod session;
pub mod startup;
pub mod telemetry;
pub mod thought_store;
pub mod thoughts_api;
pub mod user_store;

pub use errors::ApiError;
pub use jwt::{Claims, TokenIssuer, TokenVerifier};
pub use model::{Thought, Timestamp, User};
pub use password::PasswordHasher;
pub use telemetry::Metrics;

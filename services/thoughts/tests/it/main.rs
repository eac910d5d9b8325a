//! Integration tests for thoughts-service, in one test binary (one key generation, one link step).
//!
//! - `contract`: the thoughts API contract shared with the monolith ([`mythoughts_testkit::contract`]),
//!   through `app(state)` and `oneshot`, no sockets, in-memory SQLite.
//! - `parity`: the same requests sent to the monolith's app and to this service's, answers compared.
//! - `book`: the book's recorded answers replayed against this service, judged by the list of deliberate
//!   differences (`tests/parity/book-differences.toml`).
//! - `binary`: the real executable on an ephemeral loopback port, synchronised by its "listening" line, and
//!   the `import` subcommand.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod binary;
mod contract;
mod parity;
mod support;

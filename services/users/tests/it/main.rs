//! Integration tests for users-service, in one test binary (one key generation, one link step).
//!
//! - `api`: service tests through `app(state)` and `oneshot`, no sockets, in-memory SQLite.
//! - `parity`: the same requests sent to the monolith's app and to this service's, answers compared.
//! - `binary`: the real executable on an ephemeral loopback port, synchronised by its "listening" line.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod api;
mod binary;
mod parity;
mod support;

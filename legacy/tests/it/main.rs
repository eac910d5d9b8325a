//! Integration tests for mythoughts-legacy, in one test binary (one key generation, one link step).
//!
//! - `contract`: the thoughts and users API contracts shared with thoughts-service and users-service
//!   ([`mythoughts_testkit::contract`]); `pages`: the HTML side. Both through `app(state)` and `oneshot`, no
//!   sockets, in-memory SQLite.
//! - `binary`: the real executable on an ephemeral loopback port, synchronised by its "listening" line.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod binary;
mod contract;
mod pages;
mod support;

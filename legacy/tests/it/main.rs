//! Integration tests for mythoughts-legacy, in one test binary (one key generation, one link step).
//!
//! - `contract`: the thoughts API contract shared with thoughts-service ([`mythoughts_testkit::contract`]).
//! - `api` (the users API), `pages`: service tests through `app(state)` and `oneshot`, no sockets, in-memory
//!   SQLite.
//! - `binary`: the real executable on an ephemeral loopback port, synchronised by its "listening" line.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod api;
mod binary;
mod contract;
mod pages;
mod support;

//! Integration tests for frontend-service, in one test binary (one key generation, one link step).
//!
//! - `pages`: the pages through `app(state)` and `oneshot`, with the real monolith as both backends on an
//!   ephemeral loopback port (it serves `/api/login/` and the thoughts API, like the future services).
//! - `sessions`: the `session` cookie works across the monolith's pages and ours, both ways.
//! - `failures`: backends down, failing, slow or sending junk: 502/503/504 pages naming the backend.
//! - `parity`: the same data rendered by the frontend and by the monolith shows the same thoughts.
//! - `binary`: the real executable on an ephemeral port, synchronised by its "listening" line.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod binary;
mod failures;
mod pages;
mod parity;
mod sessions;
mod support;

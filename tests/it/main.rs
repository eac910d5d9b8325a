//! strangler's integration tests: one test binary (faster to build and link), a module
//! per area. Every test starts real servers on ephemeral loopback ports and talks real
//! HTTP; nothing sleeps to synchronise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod admin;
mod attacks;
mod browser;
mod canary;
mod cli;
mod common;
mod deploy;
mod fallback;
mod flip;
mod forwarding;
mod migration;
mod mythoughts;
mod parity_cli;
mod record;
mod reload;
mod shadow;
mod smoke;

//! strangler's integration tests: one test binary (faster to build and link), a module
//! per area, and their helpers in `support/`, one module per job. Every test starts real
//! servers on ephemeral loopback ports and talks real HTTP; nothing sleeps to synchronise
//! (where no signal exists, `support::wait` polls with back-off under a deadline).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod admin;
mod admin_auth;
mod admin_browser;
mod architecture;
mod attacks;
mod bad_configs;
mod body_timeouts;
mod book_parity;
mod browser;
mod canary;
mod check_against;
mod cli;
mod dashboard;
mod deploy;
mod error_pages;
mod evidence_periods;
mod fallback;
mod flip;
mod flip_evidence;
mod flip_prometheus;
mod forwarding;
mod hostile;
mod http2;
mod http2_timeouts;
mod init;
mod migration;
mod mirror_cap;
mod mythoughts;
mod parity_cli;
mod parity_divergences;
mod parity_replay;
mod parity_reports;
mod paths;
mod readme_monolith;
mod readme_tour;
mod record;
mod reliability;
mod reload;
mod reload_integrity;
mod resilience;
mod rewrite;
mod schema;
mod secrets;
mod shadow;
mod shutdown;
mod smoke;
mod support;
mod tls;
mod traces;
mod traffic_windows;
mod upgrades;
mod workers;

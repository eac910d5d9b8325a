//! Helpers for the integration tests, one module per job. Most tests start with
//! `use crate::support::*`, which brings in the everyday ones; the rest are named by
//! module (`support::binary`, `support::tls`, `support::browser`, `support::demo`).
//!
//! | module     | job                                                                   |
//! |------------|-----------------------------------------------------------------------|
//! | `upstream` | HTTP/1.1 test upstreams on 127.0.0.1:0; addresses where nothing listens |
//! | `tls`      | a test CA, TLS clients, TLS and HTTP/2 test upstreams, a TLS proxy      |
//! | `proxy`    | a proxy in the test's runtime (`TestProxy`), two-upstream setups        |
//! | `binary`   | the real `strangler serve` as a child process (`BinaryProxy`)           |
//! | `command`  | one-shot runs of `strangler` and other programs; `STRANGLER_REQUIRE_*`  |
//! | `routes`   | routes.toml texts, and where an error in one points                     |
//! | `files`    | files replaced as editors and Kubernetes volumes replace them           |
//! | `client`   | a hyper client and whole responses                                      |
//! | `raw`      | raw HTTP/1.1 over TCP, for requests no client sends as written          |
//! | `body`     | request and response bodies, whole or generated and counted             |
//! | `admin`    | the admin API: metrics, JSON views, waiting until they show something   |
//! | `fake_admin` | a fake admin API (version, canned parity with evidence) for flip tests |
//! | `prometheus` | a real Prometheus scraping the proxies' admin /metrics (skips without it) |
//! | `wait`     | polling with back-off under a deadline, when there is no signal         |
//! | `demo`     | the MyThoughts demo behind the proxy                                    |
//! | `browser`  | headless Chromium over WebDriver                                        |

pub mod admin;
pub mod binary;
pub mod body;
pub mod browser;
pub mod client;
pub mod command;
pub mod demo;
pub mod fake_admin;
pub mod files;
pub mod prometheus;
pub mod proxy;
pub mod raw;
pub mod routes;
pub mod tls;
pub mod upstream;
pub mod wait;

pub use admin::*;
pub use body::*;
pub use client::*;
pub use command::*;
pub use proxy::*;
pub use raw::*;
pub use routes::*;
pub use upstream::*;
pub use wait::*;

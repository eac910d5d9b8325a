//! `strangler parity`: replays a corpus of requests against legacy and new and reports.
//!
//! - [`corpus`]: reading request corpora (JSON lines, HAR);
//! - [`replay`]: sending each request to both sides and comparing with
//!   [`crate::parity::compare()`];
//! - [`recorded`]: recorded answers as legacy's (`--legacy-from`);
//! - [`report`]: the terminal and JSON reports; [`junit`]: the JUnit report.

pub mod corpus;
pub mod junit;
pub mod recorded;
pub mod replay;
pub mod report;

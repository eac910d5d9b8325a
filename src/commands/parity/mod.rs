//! `strangler parity`: replays a corpus of requests against legacy and new and reports.
//!
//! - [`corpus`]: reading request corpora (JSON lines, HAR);
//! - [`replay`]: sending each request to both sides and comparing with
//!   [`crate::parity::compare()`];
//! - [`report`]: the terminal, JUnit and JSON reports.

pub mod corpus;
pub mod replay;
pub mod report;

//! The migration features of the request path: each owns its decision and its effect.
//!
//! - [`canary`]: consistent placement of a request on a canary route's legacy or new side;
//! - [`fallback`]: replaying to legacy what the new upstream failed;
//! - [`shadow`]: mirroring to the new upstream, the capture of the legacy answer, and the
//!   live parity ledger;
//! - [`period`]: evidence periods, carried across reloads while a route's identity holds;
//! - [`record`]: sampled traffic written as a parity corpus (`[record]`), as JSON Lines
//!   or as HAR ([`har`]);
//! - [`replay`]: a request kept whole so that it can be sent twice (fallback, shadow).
//!
//! The decisions are pure: [`crate::proxy::plan`] asks them and puts their answers in the
//! request's plan; the executor carries out the effects they define here.

pub mod canary;
pub mod fallback;
pub mod har;
pub mod period;
pub mod record;
pub mod replay;
pub mod shadow;

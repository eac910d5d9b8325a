//! The migration features of the request path: each owns its decision and its effect.
//!
//! - [`canary`]: consistent placement of a request on a canary route's legacy or new side;
//! - [`shadow`]: mirroring to the new upstream, the capture of the legacy answer, and the
//!   live parity ledger;
//! - [`record`]: sampled traffic written as a parity corpus (`[record]`).

pub mod canary;
pub mod record;
pub mod shadow;

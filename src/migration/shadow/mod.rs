//! Shadow traffic: the client gets the legacy answer; a copy of the request goes to the
//! new upstream in the background, and the two answers are compared.
//!
//! The mirror must never delay, slow or fail the client's response. It runs in its own
//! task after the legacy request has been sent; the legacy body streams to the client as
//! usual while a bounded copy of it is captured ([`Capture`]); the comparison waits for
//! both sides off the request path. Every bound is per route: a sample share, a cap on
//! mirrors in flight (beyond it a mirror is dropped and counted), a body size cap
//! (larger requests are skipped and counted), a timeout, and only safe methods unless the
//! route opts in. Outcomes go to [`ParityLedger`] (served as `GET /admin/parity`) and to
//! `strangler_shadow_comparisons_total{route,result,period}`, in the route's evidence
//! period ([`crate::migration::period`]).
//!
//! - [`admission`]: the decision (which requests are mirrored) and the counting of those
//!   turned away; the route's count of mirrors in flight;
//! - [`mirror`]: the mirror task (send the copy, wait for the capture, compare, count);
//! - [`capture`]: the bounded copy of the legacy answer;
//! - [`ledger`]: the parity evidence per route and evidence period.

pub mod admission;
pub mod capture;
pub mod ledger;
pub mod mirror;

pub use admission::{Admission, MirrorPermit, MirrorsInFlight, ShadowRoute};
pub use capture::{CAPTURE_LIMIT, Capture};
pub use ledger::{KeptMismatch, ParityEvidence, ParityLedger, PeriodTally, RouteEvidence, RouteTally, ShadowResult};
pub use mirror::{MirrorContext, PendingMirror};

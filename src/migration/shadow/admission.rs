//! Which requests of a shadowed route are mirrored: the decision, and the counting of the
//! requests it turns away.
//!
//! A request is mirrored when its method is safe (or the route opts in with
//! `unsafe_methods`), it is sampled, its body has a known size within `max_body` (else it is
//! *skipped*) and fewer than `max_inflight` mirrors of the route are in flight (else it is
//! *dropped*). Skips and drops are counted by [`Admission::count`]; the decision itself
//! ([`ShadowRoute::admit`]) changes nothing but the slot it takes, which goes back when the
//! [`MirrorPermit`] is dropped.
//!
//! The count of mirrors in flight ([`MirrorsInFlight`]) belongs to the route, not to one
//! snapshot: a reload carries it over (by route name), so mirrors still running on the
//! previous table count against the cap of the new one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::Method;
use prometheus::IntCounterVec;

use super::ledger::{ParityLedger, ShadowResult};
use crate::config::ShadowConfig;
use crate::migration::canary::{BUCKETS, bucket};
use crate::migration::period::EvidencePeriod;
use crate::parity::CompareRules;

/// How a shadowed route mirrors its traffic.
#[derive(Debug)]
pub struct ShadowRoute {
    /// The new upstream that gets the copies (an index in the snapshot's upstreams).
    pub new: usize,
    /// Sample, caps and timeout.
    pub config: ShadowConfig,
    /// How the answers are compared.
    pub rules: Arc<CompareRules>,
    /// Mirrors of this route in flight, over every snapshot (bounded here by
    /// `config.max_inflight`).
    pub in_flight: Arc<MirrorsInFlight>,
    /// The route's evidence period in this snapshot: where its outcomes are counted.
    pub period: Arc<EvidencePeriod>,
}

/// The number of a route's mirrors in flight, shared by the snapshots that route appears in.
#[derive(Debug, Default)]
pub struct MirrorsInFlight(AtomicUsize);

impl MirrorsInFlight {
    /// A slot if fewer than `max` are taken.
    fn try_take(self: &Arc<Self>, max: usize) -> Option<MirrorPermit> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < max).then_some(taken + 1)
            })
            .ok()
            .map(|_| MirrorPermit(self.clone()))
    }

    /// Mirrors in flight now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One mirror's slot; freed when dropped (when the mirror is done).
#[derive(Debug)]
pub struct MirrorPermit(Arc<MirrorsInFlight>);

impl Drop for MirrorPermit {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The decision on one request of a shadowed route.
#[derive(Debug)]
pub enum Admission<'s> {
    /// Not a candidate: not shadowed, a protocol upgrade, an unsafe method or not sampled.
    /// Nothing is counted.
    No,
    /// Not mirrored: the body is larger than `max_body` or of unknown length (counted).
    Skipped(&'s ShadowRoute),
    /// Not mirrored: `max_inflight` mirrors are in flight (counted).
    Dropped(&'s ShadowRoute),
    /// Mirrored, holding one of the route's slots.
    Admitted(&'s ShadowRoute, MirrorPermit),
}

impl Admission<'_> {
    /// The effect of a refusal: a skip or a drop goes to the ledger and the metric, in the
    /// route's evidence period.
    pub fn count(&self, ledger: &ParityLedger, comparisons: &IntCounterVec, route: &str) {
        let (shadow, result) = match self {
            Admission::Skipped(shadow) => (shadow, ShadowResult::Skipped),
            Admission::Dropped(shadow) => (shadow, ShadowResult::Dropped),
            Admission::No | Admission::Admitted(..) => return,
        };
        ledger.count(comparisons, route, &shadow.period, result);
    }
}

impl ShadowRoute {
    /// Whether a request is mirrored (see the module docs); `sample_key` (the request id)
    /// decides the sample.
    pub fn admit(
        &self,
        route: &str,
        method: &Method,
        declared_length: Option<u64>,
        sample_key: &[u8],
    ) -> Admission<'_> {
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !self.config.unsafe_methods {
            return Admission::No;
        }
        let sampled =
            self.config.sample >= 1.0 || f64::from(bucket(route, sample_key)) < self.config.sample * f64::from(BUCKETS);
        if !sampled {
            return Admission::No;
        }
        match declared_length {
            Some(length) if length <= self.config.max_body as u64 => {
                match self.in_flight.try_take(self.config.max_inflight) {
                    Some(permit) => Admission::Admitted(self, permit),
                    None => Admission::Dropped(self),
                }
            }
            _ => Admission::Skipped(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_shared_and_each_table_applies_its_own_cap() {
        let count = Arc::new(MirrorsInFlight::default());
        let first = count.try_take(2).unwrap();
        let second = count.try_take(2).unwrap();
        assert!(count.try_take(2).is_none(), "two in flight under a cap of two");
        // A table with a lower cap sees the mirrors of the previous one.
        assert!(count.try_take(1).is_none());
        let third = count.try_take(3).unwrap();
        assert_eq!(count.get(), 3);
        drop((first, second));
        assert_eq!(count.get(), 1);
        assert!(count.try_take(1).is_none(), "one still in flight");
        drop(third);
        assert!(count.try_take(1).is_some());
    }
}

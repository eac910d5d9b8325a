//! Evidence periods: the stretch of time during which a route's evidence (parity counts,
//! and the traffic figures of its stage) was gathered against one [`EvidenceIdentity`].
//! (A route's traffic period starts with its evidence period and again whenever its canary
//! share or stickiness changes: see `state::Route::windows`.)
//!
//! A period is part of a route in the snapshot. A reload that leaves a route's identity as
//! it was carries the route's period over (same `since`); one that changes its stage, its
//! upstreams (name or URL) or its compare rules starts a new one. Whatever counts by period
//! reads the period of the snapshot a request was routed by, so an answer that arrives
//! after a reload is counted where it belongs.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::EvidenceIdentity;

/// One evidence period of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidencePeriod {
    /// What the evidence is gathered against.
    pub identity: EvidenceIdentity,
    /// Its name, [`EvidenceIdentity::period`] (the `period` label of the parity counters).
    pub id: String,
    /// When it started: when a table with this identity for the route came into force.
    pub since: SystemTime,
}

impl EvidencePeriod {
    /// The period of a route whose identity is `identity` in a table coming into force
    /// now: `previous` (the route's period in the table in force) when it has the same
    /// identity, else a new period starting now.
    pub fn carry(previous: Option<&Arc<EvidencePeriod>>, identity: EvidenceIdentity) -> Arc<EvidencePeriod> {
        match previous {
            Some(period) if period.identity == identity => period.clone(),
            _ => Arc::new(EvidencePeriod {
                id: identity.period(),
                identity,
                since: SystemTime::now(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EvidenceSide;

    fn identity(stage: &str) -> EvidenceIdentity {
        EvidenceIdentity {
            stage: stage.to_owned(),
            legacy: EvidenceSide {
                name: "legacy".to_owned(),
                url: "http://127.0.0.1:1/".to_owned(),
            },
            new: None,
            rules: "r".to_owned(),
            forwarding: None,
        }
    }

    #[test]
    fn a_period_lasts_while_its_identity_does() {
        let first = EvidencePeriod::carry(None, identity("shadow"));
        assert_eq!(first.id, identity("shadow").period());
        let kept = EvidencePeriod::carry(Some(&first), identity("shadow"));
        assert!(Arc::ptr_eq(&first, &kept));
        let next = EvidencePeriod::carry(Some(&first), identity("canary"));
        assert_ne!(next.id, first.id);
        assert!(next.since >= first.since);
    }
}

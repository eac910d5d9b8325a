//! Which parity counts are evidence for the route of the table `strangler flip` edits.
//!
//! ```text
//! RouteParity (current period + `previous`)  or  Prometheus periods ([`Period`] each)
//!   --(matching: keep the periods whose identity same_sides() the edited route)--> Matched
//! ```
//!
//! Counts gathered while the route pointed at other upstreams (names or URLs) or was judged
//! by other compare rules say nothing about the edited route, so they are never added. The
//! stage may differ: a shadow period speaks for a canary, since a flip changes the stage.
//! Counts that carry no identity at all (a replica or report of a build before evidence
//! periods) are refused as a whole: nothing says what they measured. Pure.

use crate::admin::api::RouteParity;
use crate::config::EvidenceIdentity;

/// One evidence period of a route: what it was gathered against, and its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// What the counts were gathered against; `None` from a build without periods.
    pub identity: Option<EvidenceIdentity>,
    /// Its name ([`EvidenceIdentity::period`]), for messages.
    pub name: Option<String>,
    /// The counts (only the counters are read).
    pub counts: RouteParity,
}

impl Period {
    /// The current period of an `/admin/parity` entry (or a report's), then its `previous`.
    pub fn of_route(parity: &RouteParity) -> Vec<Period> {
        let one = |p: &RouteParity| Period {
            identity: p.evidence.as_ref().map(|e| e.identity.clone()),
            name: p.evidence.as_ref().map(|e| e.period.clone()),
            counts: p.clone(),
        };
        let mut periods = vec![one(parity)];
        if let Some(previous) = &parity.previous {
            periods.push(one(previous));
        }
        periods
    }
}

/// Evidence that speaks for the edited route.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matched {
    /// The counts of every matching period, summed.
    pub counts: RouteParity,
    /// The names of the periods counted (`?` for one without a name).
    pub periods: Vec<String>,
    /// Periods left out because they were gathered against something else.
    pub ignored: Vec<EvidenceIdentity>,
}

/// Why no period speaks for the edited route.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unmatched {
    /// The counts say nothing about what they measured.
    #[error(
        "the parity counts carry no evidence identity (a proxy or report of a build before evidence \
         periods), so nothing says which upstreams and compare rules they measured"
    )]
    NoIdentity,
    /// Every period was gathered against other upstreams or rules.
    #[error(
        "the parity evidence was gathered against other upstreams or compare rules: {}; in full: \
         gathered against {}; the edited table has {}",
        differences(.gathered, .wanted), describe_all(.gathered), .wanted.describe()
    )]
    Elsewhere {
        /// What each period was gathered against, current first.
        gathered: Vec<EvidenceIdentity>,
        /// The edited table's route.
        wanted: Box<EvidenceIdentity>,
    },
}

/// The mismatches and errors of the periods whose identity has the same sides as `wanted`
/// (everything else zero): what replicas on another table version add to the evidence.
/// Their matches do not speak for the edited file, but their failures, gathered against
/// the same upstreams and rules, are failures of what the flip moves to. Periods without
/// an identity are left out.
pub fn failures(periods: &[Period], wanted: &EvidenceIdentity) -> RouteParity {
    let mut sum = RouteParity::default();
    for period in periods {
        if period
            .identity
            .as_ref()
            .is_some_and(|identity| identity.same_sides(wanted))
        {
            sum.add(&RouteParity {
                mismatch: period.counts.mismatch,
                error: period.counts.error,
                ..RouteParity::default()
            });
        }
    }
    sum
}

/// What differs between the current period (the first) and the edited route.
fn differences(gathered: &[EvidenceIdentity], wanted: &EvidenceIdentity) -> String {
    gathered
        .first()
        .map(|current| current.differences(wanted).join(", "))
        .unwrap_or_default()
}

fn describe_all(identities: &[EvidenceIdentity]) -> String {
    let all: Vec<String> = identities.iter().map(EvidenceIdentity::describe).collect();
    all.join("; previously ")
}

/// Sums the periods (current first) whose identity has the same sides as `wanted`.
/// A current period without identity refuses the lot; an empty list is no evidence at all
/// (zero counts, which the thresholds judge).
pub fn matching(periods: &[Period], wanted: &EvidenceIdentity) -> Result<Matched, Unmatched> {
    let mut matched = Matched::default();
    let mut gathered = Vec::new();
    for (index, period) in periods.iter().enumerate() {
        match &period.identity {
            None if index == 0 => return Err(Unmatched::NoIdentity),
            None => {}
            Some(identity) if identity.same_sides(wanted) => {
                matched.counts.add(&period.counts);
                matched
                    .periods
                    .push(period.name.clone().unwrap_or_else(|| "?".to_owned()));
            }
            Some(identity) => gathered.push(identity.clone()),
        }
    }
    if matched.periods.is_empty() && !gathered.is_empty() {
        return Err(Unmatched::Elsewhere {
            gathered,
            wanted: Box::new(wanted.clone()),
        });
    }
    matched.ignored = gathered;
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::Evidence;
    use crate::config::EvidenceSide;

    fn identity(stage: &str, new_url: &str, rules: &str) -> EvidenceIdentity {
        EvidenceIdentity {
            stage: stage.to_owned(),
            legacy: EvidenceSide {
                name: "legacy".to_owned(),
                url: "http://127.0.0.1:8001/".to_owned(),
            },
            new: Some(EvidenceSide {
                name: "thoughts".to_owned(),
                url: new_url.to_owned(),
            }),
            rules: rules.to_owned(),
            forwarding: None,
        }
    }

    fn counts(matched: u64, identity: Option<EvidenceIdentity>) -> RouteParity {
        RouteParity {
            matched,
            evidence: identity.map(|identity| Evidence {
                since: "2025-01-01T00:00:00Z".to_owned(),
                period: identity.period(),
                identity,
            }),
            ..RouteParity::default()
        }
    }

    const NEW: &str = "http://127.0.0.1:8002/";

    #[test]
    fn a_matching_current_period_counts_and_so_does_a_matching_previous_one() {
        let mut parity = counts(7, Some(identity("canary", NEW, "r1")));
        parity.previous = Some(Box::new(counts(150, Some(identity("shadow", NEW, "r1")))));
        parity.total = Some(Box::new(counts(1000, None)));
        let wanted = identity("new", NEW, "r1");
        let matched = matching(&Period::of_route(&parity), &wanted).unwrap();
        assert_eq!(matched.counts.matched, 157, "the lifetime total is never counted");
        assert_eq!(
            matched.periods,
            [
                identity("canary", NEW, "r1").period(),
                identity("shadow", NEW, "r1").period()
            ]
        );
        assert!(matched.ignored.is_empty());
    }

    #[test]
    fn a_previous_period_against_another_upstream_is_left_out_and_named() {
        let mut parity = counts(3, Some(identity("shadow", NEW, "r1")));
        parity.previous = Some(Box::new(counts(
            500,
            Some(identity("shadow", "http://10.0.0.9/", "r1")),
        )));
        let matched = matching(&Period::of_route(&parity), &identity("canary", NEW, "r1")).unwrap();
        assert_eq!(matched.counts.matched, 3);
        assert_eq!(matched.ignored, [identity("shadow", "http://10.0.0.9/", "r1")]);
    }

    #[test]
    fn evidence_against_another_url_or_rules_is_refused_naming_both() {
        let parity = counts(500, Some(identity("shadow", NEW, "r1")));
        for wanted in [
            identity("new", "http://127.0.0.1:9999/", "r1"),
            identity("new", NEW, "r2"),
        ] {
            let refused = matching(&Period::of_route(&parity), &wanted).unwrap_err();
            let said = refused.to_string();
            assert!(
                said.starts_with("the parity evidence was gathered against other upstreams or compare rules: "),
                "{said}"
            );
            let differs = parity.evidence.as_ref().unwrap().identity.differences(&wanted);
            assert!(said.contains(&differs.join(", ")) && !differs.is_empty(), "{said}");
            assert!(
                said.contains("in full: gathered against stage shadow, legacy legacy"),
                "{said}"
            );
            assert!(
                said.contains(&format!("the edited table has {}", wanted.describe())),
                "{said}"
            );
        }
    }

    #[test]
    fn failures_of_matching_periods_are_kept_and_their_matches_dropped() {
        let mut parity = counts(900, Some(identity("shadow", NEW, "r1")));
        parity.mismatch = 40;
        parity.error = 2;
        let mut other = counts(5, Some(identity("shadow", "http://10.0.0.9/", "r1")));
        other.mismatch = 1000;
        parity.previous = Some(Box::new(other));
        let sum = failures(&Period::of_route(&parity), &identity("new", NEW, "r1"));
        assert_eq!((sum.matched, sum.mismatch, sum.error), (0, 40, 2));
    }

    #[test]
    fn counts_without_identity_are_refused() {
        let parity = counts(500, None);
        assert_eq!(
            matching(&Period::of_route(&parity), &identity("new", NEW, "r1")),
            Err(Unmatched::NoIdentity)
        );
        assert_eq!(matching(&[], &identity("new", NEW, "r1")), Ok(Matched::default()));
    }
}

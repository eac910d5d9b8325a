//! The [`api`](crate::admin::api) documents built from the proxy's plain data: the route
//! table, the parity ledger's evidence, the upstreams' health reports.
//!
//! The lower modules (config, migration, upstream) hand out Rust values and know nothing
//! of the admin API; this is the one place that decides how those values look on the
//! wire (timestamps as RFC 3339, stages by their routes.toml names, the rates).

use std::time::SystemTime;

use crate::admin::api::{
    Evidence, HealthStatus, ListedCanary, ListedFallback, ListedForwarding, ListedHeaderEdits, ListedRoute, Mismatch,
    MismatchDiff, ParityReport, RouteParity, UpstreamStatus,
};
use crate::config::{EvidenceIdentity, RouteConfig};
use crate::migration::shadow::{KeptMismatch, ParityEvidence, PeriodTally, RouteEvidence, RouteTally};
use crate::upstream::health::{UpstreamReport, Verdict};

/// A route of `GET /admin/routes`.
pub fn listed_route(route: &RouteConfig) -> ListedRoute {
    ListedRoute {
        name: route.name.clone(),
        kind: route.pattern.kind().to_owned(),
        path: route.pattern.as_str().to_owned(),
        methods: route
            .methods
            .as_ref()
            .map(|methods| methods.iter().map(|m| m.as_str().to_owned()).collect()),
        stage: route.stage.as_str().to_owned(),
        legacy: route.legacy.clone(),
        new: route.new.clone(),
        canary: route.canary.as_ref().map(|canary| ListedCanary {
            percent: f64::from(canary.basis_points) / 100.0,
            sticky: canary.sticky.as_ref().map(ToString::to_string),
        }),
        fallback: route.fallback_max_body.map(|max_body| ListedFallback {
            max_body: max_body as u64,
        }),
        max_body: route.max_body,
        upgrades: (route.upgrades[..] != crate::config::DEFAULT_UPGRADES[..]).then(|| route.upgrades.clone()),
        case_insensitive: route.case_insensitive,
        forwarding: listed_forwarding(&route.forwarding),
    }
}

/// A route's forwarding settings as `GET /admin/routes` lists them, each only when set.
fn listed_forwarding(forwarding: &crate::config::Forwarding) -> ListedForwarding {
    let edits = |edits: &crate::config::HeaderEdits| {
        (!edits.is_empty()).then(|| ListedHeaderEdits {
            set: edits.shown_set().collect(),
            remove: edits.remove.iter().map(|name| name.as_str().to_owned()).collect(),
        })
    };
    ListedForwarding {
        strip_prefix: forwarding.rewrite.is_strip(),
        rewrite: (!forwarding.rewrite.is_strip())
            .then(|| forwarding.rewrite.written().map(str::to_owned))
            .flatten(),
        host: (forwarding.host != crate::config::HostPolicy::Preserve).then(|| forwarding.host.as_str().to_owned()),
        request_headers: edits(&forwarding.request_headers),
        response_headers: edits(&forwarding.response_headers),
    }
}

/// `GET /admin/parity`: the ledger's evidence; `stage_of` names each route's stage in
/// force (`None` for a route the table no longer has). Per route, the top-level counts are
/// the current period's, with its `evidence`; `previous` the previous period's (with its
/// own stage and `evidence`); `total` every count since the start.
pub fn parity_report<'a>(evidence: ParityEvidence, stage_of: impl Fn(&str) -> Option<&'a str>) -> ParityReport {
    ParityReport {
        routes: evidence
            .routes
            .into_iter()
            .map(|(name, route)| {
                let parity = route_evidence(&route, stage_of(&name));
                (name, parity)
            })
            .collect(),
        mismatches: evidence.mismatches.into_iter().map(Mismatch::from).collect(),
        mismatch_groups: Vec::new(),
    }
}

/// One route's evidence, `stage` its stage in force.
fn route_evidence(route: &RouteEvidence, stage: Option<&str>) -> RouteParity {
    RouteParity {
        previous: route.previous.as_ref().map(|previous| {
            let stage = previous.period.identity.stage.as_str();
            Box::new(period_parity(previous, Some(stage)))
        }),
        total: Some(Box::new(route_parity(&route.total, stage))),
        ..period_parity(&route.current, stage)
    }
}

/// One period's counts and what they are evidence of.
fn period_parity(period: &PeriodTally, stage: Option<&str>) -> RouteParity {
    RouteParity {
        evidence: Some(evidence(&period.period.identity, period.period.since)),
        ..route_parity(&period.counts, stage)
    }
}

/// The `evidence` of a period of `identity` that started at `since` (to the second).
pub fn evidence(identity: &EvidenceIdentity, since: SystemTime) -> Evidence {
    Evidence {
        since: humantime::format_rfc3339_seconds(since).to_string(),
        period: identity.period(),
        identity: identity.clone(),
    }
}

/// One route's counts; the proxy counts no `requests` (that is `strangler parity`'s).
fn route_parity(tally: &RouteTally, stage: Option<&str>) -> RouteParity {
    RouteParity {
        stage: stage.map(str::to_owned),
        matched: tally.matched,
        noise: tally.noise,
        mismatch: tally.mismatch,
        error: tally.error,
        dropped: tally.dropped,
        skipped: tally.skipped,
        requests: None,
        match_rate: tally.match_rate(),
        window_match_rate: tally.window_match_rate(),
        ..RouteParity::default()
    }
}

impl From<KeptMismatch> for Mismatch {
    /// The ledger keeps no `truncated` flag: a kept mismatch lists every diff it has.
    fn from(kept: KeptMismatch) -> Self {
        Mismatch {
            route: kept.route,
            method: kept.method,
            path: kept.path,
            at: humantime::format_rfc3339_seconds(kept.at).to_string(),
            status: kept.status,
            diffs: kept
                .diffs
                .into_iter()
                .map(|diff| MismatchDiff {
                    pointer: diff.pointer,
                    legacy: diff.legacy,
                    new: diff.new,
                })
                .collect(),
            truncated: false,
            period: Some(kept.period),
            request_id: kept.request_id,
        }
    }
}

impl From<UpstreamReport> for UpstreamStatus {
    /// Times to the millisecond; ejected while an ejection time is reported.
    fn from(report: UpstreamReport) -> Self {
        let millis = |at| humantime::format_rfc3339_millis(at).to_string();
        UpstreamStatus {
            name: report.name,
            url: report.url.to_string(),
            health: HealthStatus {
                checked: report.checked,
                healthy: match report.verdict {
                    Verdict::Unknown => None,
                    Verdict::Healthy => Some(true),
                    Verdict::Unhealthy => Some(false),
                },
                last_check: report.last_check.map(millis),
                last_error: report.last_check_error,
            },
            ejected: report.ejected_until.is_some(),
            ejected_until: report.ejected_until.map(millis),
            consecutive_failures: report.consecutive_failures,
        }
    }
}

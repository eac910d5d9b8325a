//! The [`api`](crate::admin::api) documents built from the proxy's plain data: the route
//! table, the parity ledger's evidence, the upstreams' health reports.
//!
//! The lower modules (config, migration, upstream) hand out Rust values and know nothing
//! of the admin API; this is the one place that decides how those values look on the
//! wire (timestamps as RFC 3339, stages by their routes.toml names, the rates).

use crate::admin::api::{
    HealthStatus, ListedCanary, ListedFallback, ListedRoute, Mismatch, MismatchDiff, ParityReport, RouteParity,
    UpstreamStatus,
};
use crate::config::RouteConfig;
use crate::migration::shadow::{KeptMismatch, ParityEvidence, RouteTally};
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
    }
}

/// `GET /admin/parity`: the ledger's evidence; `stage_of` names each route's stage in
/// force (`None` for a route the table no longer has).
pub fn parity_report<'a>(evidence: ParityEvidence, stage_of: impl Fn(&str) -> Option<&'a str>) -> ParityReport {
    ParityReport {
        routes: evidence
            .routes
            .into_iter()
            .map(|(name, tally)| {
                let parity = route_parity(&tally, stage_of(&name));
                (name, parity)
            })
            .collect(),
        mismatches: evidence.mismatches.into_iter().map(Mismatch::from).collect(),
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

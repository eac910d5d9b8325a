//! `strangler flip --prometheus URL`: a route's parity counts read from a Prometheus
//! server's HTTP API, the way a fleet is measured in production.
//!
//! ```text
//! GET URL/api/v1/query?query=max by (instance, version) (strangler_config_info == 1)
//!   --> which instances run the edited file's version V (none: refused), which run others
//! GET URL/api/v1/query?query=sum by (period, result) (max by (instance, period, result)
//!       (strangler_shadow_comparisons_total{route="R"} and on (instance) (strangler_config_info{version="V"} == 1)))
//! GET URL/api/v1/query?query=strangler_parity_period_info{route="R"}
//! GET URL/api/v1/query?query=sum by (period, result) (max by (instance, period, result)
//!       (strangler_shadow_comparisons_total{route="R", result=~"mismatch|error"} unless on (instance) (…{version="V"} == 1)))
//!   --(QueryResponse: the API's JSON, one serde type per wire format)-->
//!   --(periods: counts per `period` label, identity from the info series)--> PrometheusEvidence
//! ```
//!
//! Only instances that run the version of the file being edited are counted (`and on
//! (instance)` with their `strangler_config_info`), and an instance scraped by two jobs
//! (same `instance` label, another `job`) is counted once (`max by (instance, …)`). The
//! The mismatches and errors of instances on other versions are read too (the last query,
//! when there are some): in a period of the same sides they count against the flip. The
//! `period` label is [`crate::config::EvidenceIdentity::period`], equal on every replica,
//! so one sum covers the fleet; `strangler_parity_period_info` maps it back to the identity
//! (labels stage, legacy, legacy_url, new, new_url, rules; `new` and `new_url` are "" when
//! the route has no new upstream). Counts of a period without an info series (or without a
//! `period` label: a build before evidence periods) are left out and named. Only
//! [`route_evidence`] does IO.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::admin::api::RouteParity;
use crate::commands::admin_client;
use crate::commands::evidence::Period;
use crate::config::{EvidenceIdentity, EvidenceSide};

/// The answer of `GET /api/v1/query` (the Prometheus HTTP API), success or error.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueryResponse {
    /// `success` or `error`.
    pub status: String,
    /// The result, on success.
    #[serde(default)]
    pub data: Option<QueryData>,
    /// The kind of error (`bad_data`, `timeout`, …), on error.
    #[serde(default, rename = "errorType")]
    pub error_type: Option<String>,
    /// What went wrong, on error.
    #[serde(default)]
    pub error: Option<String>,
}

/// The `data` of a successful query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueryData {
    /// `vector` for an instant query of these expressions.
    #[serde(rename = "resultType")]
    pub result_type: String,
    /// One sample per series.
    pub result: Vec<VectorSample>,
}

/// One series of an instant vector: its labels and `[unix time, "value"]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VectorSample {
    /// The series' labels.
    pub metric: BTreeMap<String, String>,
    /// The evaluation time and the value, as Prometheus writes it (a string).
    pub value: (f64, String),
}

impl VectorSample {
    /// The value as a count: a finite, non-negative number below 2^64 (rounded), or an
    /// error naming the series. A `NaN`, an infinity, a negative or a `1e300` is not a
    /// count, and reading it as one (a cast saturates, a sum then wraps) would make up
    /// evidence.
    fn count(&self) -> Result<u64, String> {
        const TWO_TO_THE_64: f64 = 18_446_744_073_709_551_616.0;
        let text = self.value.1.as_str();
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 && v.round() < TWO_TO_THE_64 => Ok(v.round() as u64),
            _ => Err(format!(
                "Prometheus answered `{text}` for {}: not a count (a finite, non-negative number below 2^64)",
                self.series()
            )),
        }
    }

    /// The series as PromQL writes it: `{period="…", result="…"}`.
    fn series(&self) -> String {
        let labels: Vec<String> = self
            .metric
            .iter()
            .map(|(name, value)| format!("{name}={}", promql_string(value)))
            .collect();
        format!("{{{}}}", labels.join(", "))
    }

    fn label(&self, name: &str) -> &str {
        self.metric.get(name).map_or("", String::as_str)
    }
}

/// A route name as a PromQL string literal.
fn promql_string(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// `text` percent-encoded for a URL query value (everything but RFC 3986's unreserved).
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The expressions asked for `route` when the edited file has `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queries {
    /// Every instance and the version it runs.
    pub versions: String,
    /// The counts by period and result of the instances on `version`, each instance once.
    pub counts: String,
    /// The info series naming the periods.
    pub infos: String,
    /// The mismatches and errors by period of the instances on another version.
    pub failures_elsewhere: String,
}

/// The expressions asked for `route` when the edited file has `version`.
pub fn queries(route: &str, version: &str) -> Queries {
    let route = promql_string(route);
    let version = promql_string(version);
    Queries {
        versions: "max by (instance, version) (strangler_config_info == 1)".to_owned(),
        counts: format!(
            "sum by (period, result) (max by (instance, period, result) \
             (strangler_shadow_comparisons_total{{route={route}}} \
             and on (instance) (strangler_config_info{{version={version}}} == 1)))"
        ),
        infos: format!("strangler_parity_period_info{{route={route}}}"),
        failures_elsewhere: format!(
            "sum by (period, result) (max by (instance, period, result) \
             (strangler_shadow_comparisons_total{{route={route}, result=~\"mismatch|error\"}} \
             unless on (instance) (strangler_config_info{{version={version}}} == 1)))"
        ),
    }
}

/// Runs an instant query. Blocking; never sends the admin token.
fn query(base: &str, expression: &str) -> Result<Vec<VectorSample>, String> {
    let url = format!("{base}/api/v1/query?query={}", query_value(expression));
    let (code, body) = admin_client::http_get_as(&url, admin_client::TIMEOUT, None)
        .map_err(|e| format!("cannot reach Prometheus: {e}"))?;
    let answer: QueryResponse = serde_json::from_str(&body).map_err(|e| {
        format!("GET {base}/api/v1/query answered {code} with a body that is not a Prometheus API answer: {e}")
    })?;
    match (answer.status.as_str(), answer.data) {
        ("success", Some(data)) if data.result_type == "vector" => Ok(data.result),
        ("success", Some(data)) => Err(format!(
            "Prometheus answered `{expression}` with a {}, not a vector",
            data.result_type
        )),
        _ => Err(format!(
            "Prometheus at {base} answered {code} to `{expression}`: {}: {}",
            answer.error_type.as_deref().unwrap_or("error"),
            answer.error.as_deref().unwrap_or("no reason given")
        )),
    }
}

/// The identity an info series names.
fn identity_of(info: &VectorSample) -> EvidenceIdentity {
    EvidenceIdentity {
        stage: info.label("stage").to_owned(),
        legacy: EvidenceSide {
            name: info.label("legacy").to_owned(),
            url: info.label("legacy_url").to_owned(),
        },
        new: (!info.label("new").is_empty()).then(|| EvidenceSide {
            name: info.label("new").to_owned(),
            url: info.label("new_url").to_owned(),
        }),
        rules: info.label("rules").to_owned(),
        forwarding: Some(info.label("forwarding"))
            .filter(|f| !f.is_empty())
            .map(str::to_owned),
    }
}

/// The identity of each period, from its info series: the `period` label must be the
/// digest of the identity the other labels give ([`EvidenceIdentity::period`]), and two
/// series of one period must agree; otherwise the answer is an error naming the series (a
/// forged or mislabelled series must not vouch for counts).
fn identities(infos: &[VectorSample]) -> Result<BTreeMap<&str, EvidenceIdentity>, String> {
    let mut identities: BTreeMap<&str, EvidenceIdentity> = BTreeMap::new();
    for info in infos {
        let period = info.label("period");
        if period.is_empty() {
            continue; // names no period: vouches for nothing
        }
        let identity = identity_of(info);
        match identities.get(period) {
            Some(seen) if *seen != identity => {
                return Err(format!(
                    "Prometheus has two info series for period {period} with different identities: {} and {}",
                    seen.describe(),
                    identity.describe()
                ));
            }
            Some(_) => continue,
            None => {}
        }
        let digest = identity.period();
        if digest != period {
            return Err(format!(
                "Prometheus has an info series whose period label is not the digest of its identity \
                 ({digest}): {}",
                info.series()
            ));
        }
        identities.insert(period, identity);
    }
    Ok(identities)
}

/// The periods of a route, from the two query answers: every period that has both counts
/// and an identity, and the `period` labels of counts without an identity (`""` for
/// counts without a `period` label). A sample that is not a count is an error naming its
/// series; sums saturate at `u64::MAX`.
pub fn periods(counts: &[VectorSample], infos: &[VectorSample]) -> Result<(Vec<Period>, Vec<String>), String> {
    let mut by_period: BTreeMap<&str, RouteParity> = BTreeMap::new();
    for sample in counts {
        let n = sample.count()?;
        let sum = by_period.entry(sample.label("period")).or_default();
        let counter = match sample.label("result") {
            "match" => &mut sum.matched,
            "noise" => &mut sum.noise,
            "mismatch" => &mut sum.mismatch,
            "error" => &mut sum.error,
            "dropped" => &mut sum.dropped,
            "skipped" => &mut sum.skipped,
            _ => continue,
        };
        *counter = counter.saturating_add(n);
    }
    let identities = identities(infos)?;
    let mut found = Vec::new();
    let mut unidentified = Vec::new();
    for (period, counts) in by_period {
        match identities.get(period) {
            Some(identity) if !period.is_empty() => found.push(Period {
                identity: Some(identity.clone()),
                name: Some(period.to_owned()),
                counts,
            }),
            _ => unidentified.push(period.to_owned()),
        }
    }
    Ok((found, unidentified))
}

/// What Prometheus says about a route for the edited file's version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrometheusEvidence {
    /// The periods of the instances on the version, with their identity and counts.
    pub periods: Vec<Period>,
    /// The `period` labels of counts without an identity (`""`: without a `period` label).
    pub unidentified: Vec<String>,
    /// The instances on the version (their `instance` label).
    pub on_version: Vec<String>,
    /// `(instance, version)` of the instances on another version: their matches not counted.
    pub elsewhere: Vec<(String, String)>,
    /// The mismatches and errors of those instances, per identified period.
    pub elsewhere_failures: Vec<Period>,
}

impl PrometheusEvidence {
    /// `10.0.0.7:9100 runs 3c4d…; 10.0.0.8:9100 runs 3c4d…`.
    pub fn describe_elsewhere(&self) -> String {
        let list: Vec<String> = self
            .elsewhere
            .iter()
            .map(|(instance, version)| format!("{instance} runs {version}"))
            .collect();
        list.join("; ")
    }
}

/// The instances of a versions answer: `(on version, elsewhere)`.
fn split_versions(samples: &[VectorSample], version: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut on_version = Vec::new();
    let mut elsewhere = Vec::new();
    for sample in samples {
        let instance = sample.label("instance").to_owned();
        match sample.label("version") {
            v if v == version => on_version.push(instance),
            v => elsewhere.push((instance, v.to_owned())),
        }
    }
    (on_version, elsewhere)
}

/// Reads the evidence of `route` from the Prometheus at `base`, counting only the instances
/// that run `version` (that of the file being edited). No instance on the version, no
/// counts at all, or only counts without an identity, is an error that says what to check.
pub fn route_evidence(base: &str, route: &str, version: &str) -> Result<PrometheusEvidence, String> {
    let base = admin_client::admin_base(base);
    let queries = queries(route, version);
    let (on_version, elsewhere) = split_versions(&query(&base, &queries.versions)?, version);
    let mut evidence = PrometheusEvidence {
        on_version,
        elsewhere,
        ..PrometheusEvidence::default()
    };
    if evidence.on_version.is_empty() {
        let running = if evidence.elsewhere.is_empty() {
            format!("it has no `{}` series at all", queries.versions)
        } else {
            evidence.describe_elsewhere()
        };
        return Err(format!(
            "no instance Prometheus at {base} scrapes runs version {version}, that of the file being edited: \
             {running} (deploy the file first, or edit the copy that runs)"
        ));
    }
    let counts = query(&base, &queries.counts)?;
    if counts.is_empty() {
        return Err(format!(
            "Prometheus at {base} has no series for `{}`: is it scraping the proxies' admin \
             /metrics, and has the route been shadowed?",
            queries.counts
        ));
    }
    let infos = query(&base, &queries.infos)?;
    let (found, unidentified) = periods(&counts, &infos)?;
    if found.is_empty() {
        return Err(format!(
            "Prometheus at {base} has counts for route `{route}` but no `{}` series naming \
             their period{}: nothing says what they measured (proxies of a build before evidence periods?)",
            queries.infos,
            if unidentified.iter().any(String::is_empty) {
                " (some counts carry no `period` label)"
            } else {
                ""
            }
        ));
    }
    if !evidence.elsewhere.is_empty() {
        let failures = query(&base, &queries.failures_elsewhere)?;
        evidence.elsewhere_failures = periods(&failures, &infos)?.0;
    }
    evidence.periods = found;
    evidence.unidentified = unidentified;
    Ok(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTS: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"period":"aaaaaaaaaaaa","result":"match"},"value":[1700000000.5,"150"]},
        {"metric":{"period":"aaaaaaaaaaaa","result":"mismatch"},"value":[1700000000.5,"1"]},
        {"metric":{"period":"bbbbbbbbbbbb","result":"match"},"value":[1700000000.5,"40"]},
        {"metric":{"period":"cccccccccccc","result":"match"},"value":[1700000000.5,"7"]}
    ]}}"#;

    const INFOS: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"strangler_parity_period_info","instance":"a","route":"api","period":"aaaaaaaaaaaa",
          "stage":"shadow","legacy":"legacy","legacy_url":"http://l/","new":"thoughts","new_url":"http://n/","rules":"r1"},
         "value":[1700000000.5,"1"]},
        {"metric":{"__name__":"strangler_parity_period_info","instance":"b","route":"api","period":"aaaaaaaaaaaa",
          "stage":"shadow","legacy":"legacy","legacy_url":"http://l/","new":"thoughts","new_url":"http://n/","rules":"r1"},
         "value":[1700000000.5,"1"]},
        {"metric":{"route":"api","period":"bbbbbbbbbbbb","stage":"shadow","legacy":"legacy","legacy_url":"http://l/",
          "new":"","new_url":"","rules":"r1"},"value":[1700000000.5,"1"]}
    ]}}"#;

    /// The real names of the fixtures' periods `aaaaaaaaaaaa` (with a new upstream) and
    /// `bbbbbbbbbbbb` (without).
    fn real_period(placeholder: &str) -> String {
        let mut identity = EvidenceIdentity {
            stage: "shadow".to_owned(),
            legacy: EvidenceSide {
                name: "legacy".to_owned(),
                url: "http://l/".to_owned(),
            },
            new: Some(EvidenceSide {
                name: "thoughts".to_owned(),
                url: "http://n/".to_owned(),
            }),
            rules: "r1".to_owned(),
            forwarding: None,
        };
        match placeholder {
            "aaaaaaaaaaaa" => identity.period(),
            "bbbbbbbbbbbb" => {
                identity.new = None;
                identity.period()
            }
            other => other.to_owned(),
        }
    }

    fn samples(json: &str) -> Vec<VectorSample> {
        let json = json
            .replace("aaaaaaaaaaaa", &real_period("aaaaaaaaaaaa"))
            .replace("bbbbbbbbbbbb", &real_period("bbbbbbbbbbbb"));
        let answer: QueryResponse = serde_json::from_str(&json).unwrap();
        answer.data.unwrap().result
    }

    #[test]
    fn counts_are_summed_per_period_and_named_by_their_info_series() {
        let (found, unidentified) = periods(&samples(COUNTS), &samples(INFOS)).unwrap();
        assert_eq!(unidentified, ["cccccccccccc"]);
        assert_eq!(found.len(), 2);
        let named = |placeholder: &str| {
            let name = Some(real_period(placeholder));
            found.iter().find(|p| p.name == name).unwrap()
        };
        let a = named("aaaaaaaaaaaa");
        assert_eq!((a.counts.matched, a.counts.mismatch), (150, 1));
        let identity = a.identity.as_ref().unwrap();
        assert_eq!(identity.new.as_ref().unwrap().url, "http://n/");
        assert_eq!(identity.legacy.url, "http://l/");
        assert_eq!(identity.rules, "r1");
        assert_eq!(named("bbbbbbbbbbbb").identity.as_ref().unwrap().new, None);
    }

    fn one_count(period: &str, result: &str, value: &str) -> VectorSample {
        VectorSample {
            metric: [("period", real_period(period).as_str()), ("result", result)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            value: (1_700_000_000.5, value.to_owned()),
        }
    }

    #[test]
    fn samples_that_are_not_counts_are_errors_naming_the_series() {
        for bad in ["1e300", "18446744073709551616", "+Inf", "NaN", "-1", "many"] {
            let said = periods(&[one_count("aaaaaaaaaaaa", "match", bad)], &samples(INFOS)).unwrap_err();
            assert_eq!(
                said,
                format!(
                    "Prometheus answered `{bad}` for {{period=\"{}\", result=\"match\"}}: not a count \
                     (a finite, non-negative number below 2^64)",
                    real_period("aaaaaaaaaaaa")
                )
            );
        }
    }

    #[test]
    fn an_info_series_must_name_the_period_of_its_identity() {
        let forged = INFOS.replacen("\"period\":\"aaaaaaaaaaaa\"", "\"period\":\"ffffffffffff\"", 1);
        let counts = [one_count("ffffffffffff", "match", "500")];
        let said = periods(&counts, &samples(&forged)).unwrap_err();
        assert!(
            said.starts_with(&format!(
                "Prometheus has an info series whose period label is not the digest of its identity ({}): {{",
                real_period("aaaaaaaaaaaa")
            )),
            "{said}"
        );
        assert!(said.contains("period=\"ffffffffffff\""), "{said}");

        // Two series of one period that disagree: whichever comes first, an error.
        let other_url =
            INFOS
                .replacen("http://n/", "http://elsewhere/", 2)
                .replacen("http://elsewhere/", "http://n/", 1);
        let said = periods(&[one_count("aaaaaaaaaaaa", "match", "5")], &samples(&other_url)).unwrap_err();
        assert!(
            said.starts_with(&format!(
                "Prometheus has two info series for period {} with different identities: ",
                real_period("aaaaaaaaaaaa")
            )),
            "{said}"
        );
        assert!(said.contains("http://elsewhere/"), "{said}");
    }

    #[test]
    fn sums_near_the_top_of_u64_saturate() {
        let top = "18446744073709549568"; // the largest f64 below 2^64
        let counts = [
            one_count("aaaaaaaaaaaa", "match", top),
            one_count("aaaaaaaaaaaa", "match", top),
            one_count("aaaaaaaaaaaa", "mismatch", "2"),
        ];
        let (found, _) = periods(&counts, &samples(INFOS)).unwrap();
        assert_eq!((found[0].counts.matched, found[0].counts.mismatch), (u64::MAX, 2));
    }

    #[test]
    fn queries_are_escaped_promql_in_an_encoded_url() {
        let q = queries("my\"route", "v\"1");
        assert_eq!(
            q.counts,
            r#"sum by (period, result) (max by (instance, period, result) (strangler_shadow_comparisons_total{route="my\"route"} and on (instance) (strangler_config_info{version="v\"1"} == 1)))"#
        );
        assert_eq!(q.infos, r#"strangler_parity_period_info{route="my\"route"}"#);
        assert_eq!(q.versions, "max by (instance, version) (strangler_config_info == 1)");
        assert_eq!(
            q.failures_elsewhere,
            r#"sum by (period, result) (max by (instance, period, result) (strangler_shadow_comparisons_total{route="my\"route", result=~"mismatch|error"} unless on (instance) (strangler_config_info{version="v\"1"} == 1)))"#
        );
        assert_eq!(query_value("a b{c=\"d\"}"), "a%20b%7Bc%3D%22d%22%7D");
    }

    #[test]
    fn instances_are_split_by_the_version_they_run() {
        const VERSIONS: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"10.0.0.7:9100","version":"v1"},"value":[1700000000.5,"1"]},
            {"metric":{"instance":"10.0.0.8:9100","version":"v2"},"value":[1700000000.5,"1"]}
        ]}}"#;
        let (on, elsewhere) = split_versions(&samples(VERSIONS), "v1");
        assert_eq!(on, ["10.0.0.7:9100"]);
        assert_eq!(elsewhere, [("10.0.0.8:9100".to_owned(), "v2".to_owned())]);
    }

    #[test]
    fn errors_are_read_too() {
        let answer: QueryResponse =
            serde_json::from_str(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#).unwrap();
        assert_eq!(answer.error.as_deref(), Some("parse error"));
        assert_eq!(answer.error_type.as_deref(), Some("bad_data"));
        assert!(answer.data.is_none());
    }

    #[test]
    fn an_unreachable_prometheus_is_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let said = route_evidence(&format!("http://{addr}"), "api", "v1").unwrap_err();
        assert!(said.starts_with("cannot reach Prometheus: GET http://"), "{said}");
    }
}

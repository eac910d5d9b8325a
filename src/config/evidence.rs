//! What a route's parity evidence is evidence of.
//!
//! Comparisons gathered while `new` pointed at one upstream say nothing about another, and
//! comparisons judged by one set of compare rules say nothing about a stricter set. So
//! evidence belongs to an [`EvidenceIdentity`]: the route's stage, its legacy and new
//! upstreams (name and URL), the digest of its compare rules and, when the route rewrites
//! what it forwards (path, Host, headers), the digest of that. The running proxy starts a
//! new evidence period whenever the identity of a route changes; `strangler flip` accepts
//! only evidence whose identity matches the route of the table it edits
//! ([`EvidenceIdentity::same_sides`]: the stage aside, since a flip changes the stage).
//!
//! A period is named by [`EvidenceIdentity::period`], a short digest that every replica of
//! a table computes alike: the `period` label of the parity counters, which lets a
//! Prometheus query sum one period over a fleet.

use serde::{Deserialize, Serialize};

use super::model::{Config, RouteConfig};

/// One side of a route, as evidence names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvidenceSide {
    /// The upstream's name in routes.toml.
    pub name: String,
    /// Its URL (scheme and authority).
    pub url: String,
}

/// What one period of a route's parity evidence was gathered against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvidenceIdentity {
    /// The route's stage, as written in routes.toml (a string, so that a reader of another
    /// build reads stages it does not know).
    pub stage: String,
    /// The legacy upstream.
    pub legacy: EvidenceSide,
    /// The new upstream; `None` when the route names none.
    pub new: Option<EvidenceSide>,
    /// The digest of the route's compare rules.
    pub rules: String,
    /// The digest of the route's forwarding ([`Forwarding::digest`](super::forwarding::Forwarding::digest));
    /// `None` when it forwards as routed (so the periods of such routes are as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<String>,
}

impl EvidenceIdentity {
    /// The identity of `route` in `config` (whose upstreams it names; a name the config
    /// does not define is kept with an empty URL, which matches no real upstream).
    pub fn of(config: &Config, route: &RouteConfig) -> Self {
        let side = |name: &str| EvidenceSide {
            name: name.to_owned(),
            url: config
                .upstreams
                .get(name)
                .map(|upstream| upstream.url.to_string())
                .unwrap_or_default(),
        };
        Self {
            stage: route.stage.as_str().to_owned(),
            legacy: side(&route.legacy),
            new: route.new.as_deref().map(side),
            rules: route.compare.digest().to_owned(),
            forwarding: (!route.forwarding.is_default()).then(|| route.forwarding.digest()),
        }
    }

    /// The period's name: a 12-hex-digit digest of every field, equal on every replica.
    pub fn period(&self) -> String {
        use sha2::Digest;
        let new = self.new.as_ref().map_or("", |side| side.url.as_str());
        let new_name = self.new.as_ref().map_or("", |side| side.name.as_str());
        // Fields separated by a byte no name, URL or digest contains.
        let mut canonical = [
            self.stage.as_str(),
            &self.legacy.name,
            &self.legacy.url,
            new_name,
            new,
            &self.rules,
        ]
        .join("\n");
        if let Some(forwarding) = &self.forwarding {
            canonical.push('\n');
            canonical.push_str(forwarding);
        }
        let digest = sha2::Sha256::digest(canonical.as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    /// Whether evidence of `self` speaks for `other`: the same upstreams (names and URLs)
    /// and the same compare rules, whatever the stages.
    pub fn same_sides(&self, other: &Self) -> bool {
        self.legacy == other.legacy
            && self.new == other.new
            && self.rules == other.rules
            && self.forwarding == other.forwarding
    }

    /// What differs between `self` (what evidence was gathered against) and `edited` (the
    /// route of the table being edited), stage aside: `new thoughts URL http://a/ (evidence)
    /// vs http://b/ (table)`, one entry per differing field. Empty when
    /// [`EvidenceIdentity::same_sides`] holds.
    pub fn differences(&self, edited: &Self) -> Vec<String> {
        let mut found = Vec::new();
        let mut side = |which: &str, evidence: Option<&EvidenceSide>, table: Option<&EvidenceSide>| {
            let name = |s: Option<&EvidenceSide>| s.map_or_else(|| "none".to_owned(), |s| s.name.clone());
            let url = |s: Option<&EvidenceSide>| s.map_or_else(|| "none".to_owned(), |s| s.url.clone());
            if name(evidence) != name(table) {
                found.push(format!(
                    "{which} upstream {} (evidence) vs {} (table)",
                    name(evidence),
                    name(table)
                ));
            } else if url(evidence) != url(table) {
                found.push(format!(
                    "{which} {} URL {} (evidence) vs {} (table)",
                    name(table),
                    url(evidence),
                    url(table)
                ));
            }
        };
        side("legacy", Some(&self.legacy), Some(&edited.legacy));
        side("new", self.new.as_ref(), edited.new.as_ref());
        if self.rules != edited.rules {
            found.push(format!(
                "compare rules {} (evidence) vs {} (table)",
                self.rules, edited.rules
            ));
        }
        if self.forwarding != edited.forwarding {
            let shown = |f: &Option<String>| f.clone().unwrap_or_else(|| "none".to_owned());
            found.push(format!(
                "forwarding (rewrite, host, header edits) {} (evidence) vs {} (table)",
                shown(&self.forwarding),
                shown(&edited.forwarding)
            ));
        }
        found
    }

    /// One line for an operator: `stage shadow, legacy legacy (http://…), new thoughts
    /// (http://…), rules 3f2a…`.
    pub fn describe(&self) -> String {
        let new = self
            .new
            .as_ref()
            .map_or_else(|| "none".to_owned(), |side| format!("{} ({})", side.name, side.url));
        let forwarding = self
            .forwarding
            .as_ref()
            .map_or_else(String::new, |digest| format!(", forwarding {digest}"));
        format!(
            "stage {}, legacy {} ({}), new {new}, rules {}{forwarding}",
            self.stage, self.legacy.name, self.legacy.url, self.rules
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(new_url: &str, rules: &str, stage: &str) -> EvidenceIdentity {
        EvidenceIdentity {
            stage: stage.to_owned(),
            legacy: EvidenceSide {
                name: "legacy".to_owned(),
                url: "http://127.0.0.1:9001/".to_owned(),
            },
            new: Some(EvidenceSide {
                name: "thoughts".to_owned(),
                url: new_url.to_owned(),
            }),
            rules: rules.to_owned(),
            forwarding: None,
        }
    }

    #[test]
    fn a_period_changes_with_every_field() {
        let base = identity("http://127.0.0.1:9002/", "abc", "shadow");
        assert_eq!(base.period(), base.clone().period());
        assert_eq!(base.period().len(), 12);
        for other in [
            identity("http://127.0.0.1:9003/", "abc", "shadow"),
            identity("http://127.0.0.1:9002/", "abd", "shadow"),
            identity("http://127.0.0.1:9002/", "abc", "canary"),
            EvidenceIdentity {
                new: None,
                ..base.clone()
            },
        ] {
            assert_ne!(base.period(), other.period(), "{other:?}");
        }
    }

    #[test]
    fn same_sides_ignores_the_stage_only() {
        let shadow = identity("http://127.0.0.1:9002/", "abc", "shadow");
        assert!(shadow.same_sides(&identity("http://127.0.0.1:9002/", "abc", "canary")));
        assert!(!shadow.same_sides(&identity("http://127.0.0.1:9003/", "abc", "shadow")));
        assert!(!shadow.same_sides(&identity("http://127.0.0.1:9002/", "xyz", "shadow")));
        let json = serde_json::to_value(&shadow).unwrap();
        assert_eq!(json["new"]["name"], "thoughts");
        assert_eq!(json["rules"], "abc");
        assert!(shadow.describe().contains("new thoughts (http://127.0.0.1:9002/)"));
        let moved = identity("http://127.0.0.1:9003/", "xyz", "canary");
        assert_eq!(
            shadow.differences(&moved),
            [
                "new thoughts URL http://127.0.0.1:9002/ (evidence) vs http://127.0.0.1:9003/ (table)",
                "compare rules abc (evidence) vs xyz (table)"
            ]
        );
        assert!(
            shadow
                .differences(&identity("http://127.0.0.1:9002/", "abc", "new"))
                .is_empty()
        );
    }

    #[test]
    fn a_route_that_rewrites_what_it_forwards_has_evidence_of_its_own() {
        let plain = identity("http://127.0.0.1:9002/", "abc", "shadow");
        let stripped = EvidenceIdentity {
            forwarding: Some("0123456789ab".to_owned()),
            ..plain.clone()
        };
        assert_ne!(plain.period(), stripped.period());
        assert!(!plain.same_sides(&stripped));
        assert_eq!(
            plain.differences(&stripped),
            ["forwarding (rewrite, host, header edits) none (evidence) vs 0123456789ab (table)"]
        );
        assert!(stripped.describe().ends_with(", forwarding 0123456789ab"));
        // A route forwarded as routed serialises as before, and old documents read as such.
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("forwarding").is_none(), "{json}");
        let back: EvidenceIdentity = serde_json::from_value(json).unwrap();
        assert_eq!(back, plain);

        let table = |extra: &str| {
            let text = format!(
                "[upstreams.legacy]\nurl = \"http://127.0.0.1:9001\"\n[upstreams.new]\nurl = \"http://127.0.0.1:9002\"\n\
                 [[routes]]\nname = \"r\"\npath = \"/api/\"\nstage = \"shadow\"\nnew = \"new\"\n{extra}"
            );
            let config = crate::config::parse_str("routes.toml", &text).unwrap();
            EvidenceIdentity::of(&config, &config.routes[0])
        };
        assert_eq!(table("").forwarding, None);
        let strip = table("strip_prefix = true\n");
        assert_eq!(strip.forwarding.as_ref().map(String::len), Some(12));
        assert_ne!(strip.forwarding, table("host = \"upstream\"\n").forwarding);
        let token = |value: &str| {
            table(&format!(
                "request_headers = {{ set = {{ Authorization = \"{value}\" }} }}\n"
            ))
        };
        assert_eq!(
            token("Bearer a").forwarding,
            token("Bearer b").forwarding,
            "a rotated credential is the same forwarding"
        );
    }
}

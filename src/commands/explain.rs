//! `strangler explain`: which route a request takes, and why.
//!
//! For operators about to flip a route: the answer uses the same normaliser and the same
//! [`RouteTable`](crate::router::RouteTable) as the proxy, so what it says is what the
//! proxy does; and the same rewrite, base path and `host` policy
//! ([`crate::config::Forwarding`]) for what each upstream receives.

use http::Method;
use serde::Serialize;

use crate::path::normalize_path;
use crate::router::{AmbiguousPath, Candidate, MatchKind, RouteId};
use crate::table::Table;

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The method.
    pub method: String,
    /// The path as given (query stripped).
    pub path: String,
    /// The path after normalisation, as matched (what each upstream receives, after the
    /// route's rewrite and under its base path, is in `forwarded`).
    pub normalized_path: String,
    /// The route taken, or `None` for the default upstream.
    pub route: Option<String>,
    /// `exact`, `template`, `prefix`, or `default`.
    pub kind: String,
    /// The route's pattern.
    pub pattern: Option<String>,
    /// The route's stage (`legacy` for the default upstream).
    pub stage: String,
    /// The upstream the request goes to.
    pub upstream: String,
    /// Its URL.
    pub upstream_url: String,
    /// Why this route wins, in one sentence.
    pub reason: String,
    /// Other routes whose path matched, and why each lost.
    pub also_matched: Vec<Loser>,
    /// What each upstream the request may reach receives: its target (after the route's
    /// `strip_prefix` or `rewrite`, under the upstream URL's base path) and `Host`.
    pub forwarded: Vec<Forwarded>,
    /// The route's `request_headers`, when it has any.
    #[serde(skip_serializing_if = "ShownEdits::is_empty")]
    pub request_headers: ShownEdits,
    /// The route's `response_headers`, when it has any.
    #[serde(skip_serializing_if = "ShownEdits::is_empty")]
    pub response_headers: ShownEdits,
}

/// What one upstream receives of the explained request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forwarded {
    /// Its part: `legacy`, `new`, `shadow copy`, `fallback` or `default`.
    pub side: String,
    /// The upstream.
    pub upstream: String,
    /// The path and query it receives.
    pub target: String,
    /// The `Host` it receives; `None`: the client's (`host = "preserve"`).
    pub host: Option<String>,
}

/// A route's header edits as `explain` shows them (values of credentials redacted).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ShownEdits {
    /// Headers set: name and value.
    pub set: Vec<(String, String)>,
    /// Headers removed.
    pub remove: Vec<String>,
}

impl ShownEdits {
    fn of(edits: &crate::config::HeaderEdits) -> Self {
        Self {
            set: edits.shown_set().collect(),
            remove: edits.remove.iter().map(|name| name.as_str().to_owned()).collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// A route whose path matched but that did not win.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loser {
    /// Route name.
    pub route: String,
    /// Its kind.
    pub kind: String,
    /// Its pattern.
    pub pattern: String,
    /// Why it lost.
    pub reason: String,
}

/// Why a request cannot be explained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// Not a method token.
    #[error("bad method `{0}`")]
    Method(String),
    /// The proxy would answer 400 or 405 itself.
    #[error("the proxy refuses this request itself: {0}")]
    Refused(String),
}

/// Explains where `METHOD target` goes under `table`. `target` is a path with an optional
/// query, like `/api/thoughts/?search=x`.
pub fn explain(table: &Table, method: &str, target: &str) -> Result<Explanation, ExplainError> {
    let method = forwarded_method(method)?;
    let query = target
        .split('#')
        .next()
        .unwrap_or(target)
        .split_once('?')
        .map(|(_, query)| query);
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let path = if path.is_empty() { "/" } else { path };
    let normalized = normalize_path(path).map_err(|e| ExplainError::Refused(format!("400: bad request path: {e}")))?;
    let config = &table.config;
    let candidates = table.routes.candidates(&method, &normalized);
    let winner = table
        .routes
        .route(&method, &normalized)
        .map_err(|ambiguous| refused_as_ambiguous(table, &ambiguous))?;

    let (route, kind, pattern, stage, upstream, reason) = match winner {
        Some(m) => {
            let r = &config.routes[m.route];
            let reason = match m.kind {
                MatchKind::Exact => "an exact route on this path beats templates and prefixes".to_owned(),
                MatchKind::Template => {
                    "its template matches the whole path; templates beat prefixes, exact routes would beat it"
                        .to_owned()
                }
                MatchKind::Prefix => {
                    "it is the longest prefix that matches; exact routes and templates would beat it".to_owned()
                }
            };
            let beat_a_catch_all = candidates
                .iter()
                .any(|c| c.route != m.route && !c.by_method && config.routes[c.route].pattern == r.pattern);
            let reason = if m.by_method && beat_a_catch_all {
                format!("{reason}; it lists {method}, which beats routes for every method on the same path")
            } else {
                reason
            };
            let reason = if r.case_insensitive {
                format!("{reason}; it is case_insensitive: its pattern matched ignoring ASCII case")
            } else {
                reason
            };
            let reason = match (&r.canary, &r.new) {
                (Some(split), Some(new)) if r.stage == crate::config::Stage::Canary => format!(
                    "{reason}; stage canary: {}% of requests go to `{new}`{}, the rest to `{}`",
                    f64::from(split.basis_points) / 100.0,
                    split
                        .sticky
                        .as_ref()
                        .map(|k| format!(" (sticky by {k})"))
                        .unwrap_or_default(),
                    r.legacy
                ),
                (_, Some(new)) if r.stage == crate::config::Stage::Shadow => {
                    format!("{reason}; {}", shadow_note(r, new, &method))
                }
                _ => reason,
            };
            (
                Some(r.name.clone()),
                m.kind.as_str().to_owned(),
                Some(r.pattern.as_str().to_owned()),
                r.stage.as_str().to_owned(),
                r.target().to_owned(),
                reason,
            )
        }
        None => (
            None,
            "default".to_owned(),
            None,
            "legacy".to_owned(),
            config.proxy.default_upstream.clone(),
            if candidates.is_empty() {
                "no route matches this path, so it goes to `proxy.default_upstream`".to_owned()
            } else {
                format!("routes match this path but none accepts {method}, so it goes to `proxy.default_upstream`")
            },
        ),
    };

    let winner_id = winner.map(|m| m.route);
    let also_matched = candidates
        .iter()
        .filter(|c| Some(c.route) != winner_id)
        .map(|c| loser(table, c, winner, &method))
        .collect();
    let upstream_url = config
        .upstreams
        .get(&upstream)
        .map(|u| u.url.to_string())
        .unwrap_or_default();
    let route_config = winner.map(|m| &config.routes[m.route]);
    let forwarding = route_config.map_or(&crate::config::AS_ROUTED, |r| &r.forwarding);
    let forwarded = forwarded(table, route_config, &normalized, query);
    Ok(Explanation {
        method: method.to_string(),
        path: path.to_owned(),
        normalized_path: normalized.into_owned(),
        route,
        kind,
        pattern,
        stage,
        upstream,
        upstream_url,
        reason,
        also_matched,
        forwarded,
        request_headers: ShownEdits::of(&forwarding.request_headers),
        response_headers: ShownEdits::of(&forwarding.response_headers),
    })
}

/// What each upstream `route` (the default upstream when `None`) may send a request
/// routed at `routed` to receives, as [`crate::upstream::Upstream::address`] addresses it.
/// `path` and `query` are the routed path and the query, if any.
fn forwarded(
    table: &Table,
    route: Option<&crate::config::RouteConfig>,
    path: &str,
    query: Option<&str>,
) -> Vec<Forwarded> {
    use crate::config::{AS_ROUTED, HostPolicy, Stage};
    let routed = match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let routed = routed.as_str();
    let config = &table.config;
    let forwarding = route.map_or(&AS_ROUTED, |r| &r.forwarding);
    let rewritten = http::uri::PathAndQuery::try_from(routed)
        .ok()
        .and_then(|pq| forwarding.rewrite.apply(&pq))
        .map_or_else(|| routed.to_owned(), |pq| pq.as_str().to_owned());
    let sides: Vec<(&str, &str)> = match route {
        None => vec![("default", &config.proxy.default_upstream)],
        Some(r) => match (r.stage, r.new.as_deref()) {
            (Stage::New, Some(new)) if r.fallback_max_body.is_some() => vec![("new", new), ("fallback", &r.legacy)],
            (Stage::New, Some(new)) => vec![("new", new)],
            (Stage::Canary, Some(new)) => vec![("legacy", &r.legacy), ("new", new)],
            (Stage::Shadow, Some(new)) => vec![("legacy", &r.legacy), ("shadow copy", new)],
            _ => vec![("legacy", &r.legacy)],
        },
    };
    sides
        .into_iter()
        .map(|(side, name)| {
            let url = config.upstreams.get(name).map(|u| &u.url);
            let base = url.map_or("", crate::config::base_path_of);
            Forwarded {
                side: side.to_owned(),
                upstream: name.to_owned(),
                target: crate::config::under_base(base, &rewritten),
                host: match forwarding.host {
                    HostPolicy::Preserve => None,
                    HostPolicy::Upstream => url.and_then(|u| u.authority()).map(|a| a.as_str().to_owned()),
                },
            }
        })
        .collect()
}

/// `written` as a method the proxy forwards; the proxy's own refusal otherwise.
fn forwarded_method(written: &str) -> Result<Method, ExplainError> {
    let method = Method::from_bytes(written.as_bytes()).map_err(|_| ExplainError::Method(written.to_owned()))?;
    if let Err(violation) = crate::server::conn::guard::check_method(&method) {
        let upper = written.to_ascii_uppercase();
        let hint = if upper != written {
            format!(" (did you mean {upper}?)")
        } else {
            String::new()
        };
        return Err(ExplainError::Refused(format!("400: {violation}: `{written}`{hint}")));
    }
    if method == Method::CONNECT {
        return Err(ExplainError::Refused("405: CONNECT is never proxied".to_owned()));
    }
    Ok(method)
}

/// What stage shadow does with this request: whether a copy goes to `new`, and when not,
/// why (the shadow admits only safe methods unless `unsafe_methods`).
fn shadow_note(route: &crate::config::RouteConfig, new: &str, method: &Method) -> String {
    let shadow = &route.shadow;
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !shadow.unsafe_methods {
        return format!(
            "stage shadow: clients get `{}`'s answer; {method} is not mirrored to `{new}` (only GET, HEAD \
             and OPTIONS are, unless shadow.unsafe_methods = true)",
            route.legacy
        );
    }
    let share = if shadow.sample >= 1.0 {
        "a copy".to_owned()
    } else {
        format!("for {}% of requests, a copy", shadow.sample * 100.0)
    };
    format!(
        "stage shadow: clients get `{}`'s answer; {share} (body up to {} bytes) goes to `{new}` and the \
         two answers are compared",
        route.legacy, shadow.max_body
    )
}

/// What `explain` says of a path whose `;params` change its route: the proxy's 400, and
/// the two routes.
fn refused_as_ambiguous(table: &Table, ambiguous: &AmbiguousPath) -> ExplainError {
    let name = |route: Option<RouteId>| {
        route.map_or_else(
            || "no route (the default upstream)".to_owned(),
            |id| format!("route `{}`", table.config.routes[id].name),
        )
    };
    ExplainError::Refused(format!(
        "400: ambiguous path: as sent it matches {}, but without its ;parameters ({}, as Tomcat, \
         Jetty and Spring read it) {}",
        name(ambiguous.as_sent),
        ambiguous.without_params,
        name(ambiguous.without_params_route)
    ))
}

fn loser(table: &Table, c: &Candidate, winner: Option<crate::router::RouteMatch>, method: &Method) -> Loser {
    let r = &table.config.routes[c.route];
    let reason = if !c.accepts_method {
        format!("it does not accept {method}")
    } else {
        let winner_pattern = winner.map(|w| table.config.routes[w.route].pattern.as_str());
        match winner {
            Some(w)
                if w.kind == MatchKind::Prefix
                    && c.kind == MatchKind::Prefix
                    && winner_pattern != Some(r.pattern.as_str()) =>
            {
                "a longer prefix matches".to_owned()
            }
            Some(w) if w.kind == c.kind => format!("the winner lists {method}; this one accepts every method"),
            Some(w) => format!("{} beats {}", w.kind.as_str(), c.kind.as_str()),
            None => "not chosen".to_owned(),
        }
    };
    Loser {
        route: r.name.clone(),
        kind: c.kind.as_str().to_owned(),
        pattern: r.pattern.as_str().to_owned(),
        reason,
    }
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.route, &self.pattern) {
            (Some(route), Some(pattern)) => writeln!(
                f,
                "{} {} -> route `{route}` ({} `{pattern}`), stage {} -> upstream `{}` ({})",
                self.method, self.normalized_path, self.kind, self.stage, self.upstream, self.upstream_url
            )?,
            _ => writeln!(
                f,
                "{} {} -> no route -> default upstream `{}` ({})",
                self.method, self.normalized_path, self.upstream, self.upstream_url
            )?,
        }
        if self.normalized_path != self.path {
            writeln!(f, "  path normalised from {}", self.path)?;
        }
        writeln!(f, "  why: {}", self.reason)?;
        for loser in &self.also_matched {
            writeln!(
                f,
                "  also matched: route `{}` ({} `{}`): {}",
                loser.route, loser.kind, loser.pattern, loser.reason
            )?;
        }
        for sent in &self.forwarded {
            let host = sent
                .host
                .as_deref()
                .map_or_else(|| "the client's".to_owned(), |h| format!("`{h}`"));
            writeln!(
                f,
                "  {} `{}` receives: {} {}, Host {host}",
                sent.side, sent.upstream, self.method, sent.target
            )?;
        }
        for (what, edits) in [("request", &self.request_headers), ("response", &self.response_headers)] {
            for (name, value) in &edits.set {
                writeln!(f, "  {what} header set: {name}: {value}")?;
            }
            for name in &edits.remove {
                writeln!(f, "  {what} header removed: {name}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"
[proxy]
listen = "127.0.0.1:8000"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:8001"
[upstreams.thoughts]
url = "http://127.0.0.1:8002"

[[routes]]
name = "api"
path = "/api/"

[[routes]]
name = "thoughts-api"
path = "/api/thoughts/"
methods = ["GET", "HEAD"]
stage = "new"
new = "thoughts"

[[routes]]
name = "login"
exact = "/api/login/"
methods = ["POST"]
"#;

    /// The proxy answers a lower-case method with 400 (`get` would miss `methods = ["GET"]`):
    /// explain says so instead of routing it as GET (issue 20 papercut).
    #[test]
    fn a_method_the_proxy_refuses_is_explained_as_refused() {
        let table = Table::parse("routes.toml", TABLE).unwrap();
        let refused = explain(&table, "get", "/").unwrap_err().to_string();
        assert!(
            refused.contains("400") && refused.contains("did you mean GET?"),
            "{refused}"
        );
        assert!(explain(&table, "PURGE", "/").is_ok());
    }

    #[test]
    fn a_shadow_route_says_what_is_mirrored() {
        let table = Table::parse(
            "routes.toml",
            &format!(
                "{TABLE}\n[[routes]]\nname = \"s\"\npath = \"/shadowed/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n"
            ),
        )
        .unwrap();
        let get = explain(&table, "GET", "/shadowed/1").unwrap().to_string();
        assert!(
            get.contains("a copy (body up to 65536 bytes) goes to `thoughts`"),
            "{get}"
        );
        let post = explain(&table, "POST", "/shadowed/1").unwrap().to_string();
        assert!(post.contains("POST is not mirrored to `thoughts`"), "{post}");
    }

    #[test]
    fn explains_longest_prefix() {
        let table = Table::parse("routes.toml", TABLE).unwrap();
        let e = explain(&table, "GET", "/api//thoughts/5?x=1").unwrap();
        assert_eq!(e.route.as_deref(), Some("thoughts-api"));
        assert_eq!(e.upstream, "thoughts");
        assert_eq!(e.stage, "new");
        assert_eq!(e.normalized_path, "/api/thoughts/5");
        assert_eq!(e.also_matched.len(), 1);
        assert_eq!(e.also_matched[0].route, "api");
        assert_eq!(e.also_matched[0].reason, "a longer prefix matches");
        let text = e.to_string();
        assert!(text.contains("route `thoughts-api`"), "{text}");
    }

    #[test]
    fn explains_method_fallthrough_and_default() {
        let table = Table::parse("routes.toml", TABLE).unwrap();
        let e = explain(&table, "POST", "/api/thoughts/").unwrap();
        assert_eq!(e.route.as_deref(), Some("api"));
        assert!(
            e.also_matched
                .iter()
                .any(|l| l.route == "thoughts-api" && l.reason.contains("does not accept POST"))
        );
        let e = explain(&table, "GET", "/thoughts/").unwrap();
        assert_eq!(e.route, None);
        assert_eq!(e.upstream, "legacy");
        assert_eq!(e.kind, "default");
    }

    #[test]
    fn refuses_what_the_proxy_refuses() {
        let table = Table::parse("routes.toml", TABLE).unwrap();
        assert!(matches!(
            explain(&table, "GET", "/api/..%2f..%2fadmin"),
            Err(ExplainError::Refused(_))
        ));
        assert!(matches!(explain(&table, "CONNECT", "/"), Err(ExplainError::Refused(_))));
    }

    #[test]
    fn refuses_a_path_whose_params_change_its_route() {
        let table = Table::parse("routes.toml", TABLE).unwrap();
        assert_eq!(
            explain(&table, "GET", "/api;x/thoughts/5"),
            Err(ExplainError::Refused(
                "400: ambiguous path: as sent it matches no route (the default upstream), but without its \
                 ;parameters (/api/thoughts/5, as Tomcat, Jetty and Spring read it) route `thoughts-api`"
                    .to_owned()
            ))
        );
        // A case-insensitive route says so.
        let table = Table::parse(
            "routes.toml",
            &format!("{TABLE}\n[[routes]]\nname = \"secure\"\npath = \"/secure/\"\ncase_insensitive = true\n"),
        )
        .unwrap();
        let e = explain(&table, "GET", "/SECURE/x").unwrap();
        assert_eq!(e.route.as_deref(), Some("secure"));
        assert!(e.reason.contains("case_insensitive"), "{}", e.reason);
        // Parameters that leave the route as it is are explained as usual.
        let e = explain(&table, "GET", "/api/thoughts/5;v=1").unwrap();
        assert_eq!(e.route.as_deref(), Some("thoughts-api"));
        assert_eq!(e.normalized_path, "/api/thoughts/5;v=1");
    }

    #[test]
    fn each_upstream_is_shown_what_it_receives() {
        let text = TABLE
            .replace("url = \"http://127.0.0.1:8001\"", "url = \"http://127.0.0.1:8001/app/\"")
            .replace(
                "methods = [\"GET\", \"HEAD\"]\nstage = \"new\"",
                "methods = [\"GET\", \"HEAD\"]\nstage = \"shadow\"\nstrip_prefix = true\nhost = \"upstream\"\n\
                 request_headers = { set = { x-api = \"2\", authorization = \"Basic c2VjcmV0\" }, remove = [\"cookie\"] }\n\
                 response_headers = { remove = [\"server\"] }",
            );
        let table = Table::parse("routes.toml", &text).unwrap();
        let e = explain(&table, "GET", "/api/thoughts/5?full=1").unwrap();
        let shown: Vec<(&str, &str, &str, Option<&str>)> = e
            .forwarded
            .iter()
            .map(|f| (&*f.side, &*f.upstream, &*f.target, f.host.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("legacy", "legacy", "/app/5?full=1", Some("127.0.0.1:8001")),
                ("shadow copy", "thoughts", "/5?full=1", Some("127.0.0.1:8002")),
            ]
        );
        assert_eq!(e.request_headers.remove, ["cookie"]);
        assert!(e.request_headers.set.contains(&("x-api".to_owned(), "2".to_owned())));
        assert!(
            e.request_headers
                .set
                .contains(&("authorization".to_owned(), "[redacted]".to_owned())),
            "{e:?}"
        );
        let printed = e.to_string();
        assert!(
            printed.contains("  legacy `legacy` receives: GET /app/5?full=1, Host `127.0.0.1:8001`"),
            "{printed}"
        );
        assert!(printed.contains("  request header removed: cookie"), "{printed}");
        assert!(printed.contains("  response header removed: server"), "{printed}");
        assert!(!printed.contains("c2VjcmV0"), "{printed}");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["forwarded"][1]["target"], "/5?full=1");
        assert_eq!(json["response_headers"]["remove"][0], "server");

        // No forwarding settings: the routed path under the base, the client's Host, no edits shown.
        let e = explain(&table, "GET", "/elsewhere").unwrap();
        assert_eq!(e.forwarded.len(), 1);
        assert_eq!(e.forwarded[0].target, "/app/elsewhere");
        assert_eq!(e.forwarded[0].host, None);
        assert!(e.to_string().contains("Host the client's"));
        let json = serde_json::to_value(&e).unwrap();
        assert!(json.get("request_headers").is_none(), "{json}");
    }
}

//! The compiled routing table: which route a request belongs to.
//!
//! Matching is by specificity, never by file order:
//! 1. an `exact` route on the request path;
//! 2. a `path` template (`/api/thoughts/{id}/`, `/static/{*rest}`), matched against the
//!    whole path by a radix tree ([`matchit`]), where a literal segment beats a parameter;
//! 3. the longest segment-aware `path` prefix, found by walking a segment trie;
//! 4. otherwise the default upstream.
//!
//! At each of these levels a route that lists the request's method beats one that
//! accepts every method; a route whose methods exclude the request's method does not
//! match, and the search goes on to the next level. Two routes that could match the same
//! request with equal specificity are refused when the table is built.
//!
//! Lookup costs one hash lookup, one radix-tree walk and one trie walk over the path's
//! segments: it does not grow with the number of routes. The table is immutable; a reload
//! builds a new one.

use std::collections::HashMap;

use http::Method;

use crate::config::{PathPattern, RouteConfig};

/// Index of a route in the slice the table was built from.
pub type RouteId = usize;

/// Which level of the search matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// An `exact` route.
    Exact,
    /// A template route.
    Template,
    /// A prefix route.
    Prefix,
}

impl MatchKind {
    /// Name as used in the admin API and `explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Template => "template",
            MatchKind::Prefix => "prefix",
        }
    }
}

/// The route a request matched, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch {
    /// The route.
    pub route: RouteId,
    /// The level that matched.
    pub kind: MatchKind,
    /// Whether the route lists the request's method (rather than accepting all).
    pub by_method: bool,
}

/// A route whose path matches a request, in the order [`RouteTable::candidates`] ranks
/// them; used to explain a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The route.
    pub route: RouteId,
    /// The level its path matched at.
    pub kind: MatchKind,
    /// Whether the route lists the method explicitly.
    pub by_method: bool,
    /// Whether the route accepts the request's method.
    pub accepts_method: bool,
}

/// Two routes that would match the same requests with equal specificity, or a template
/// the radix tree refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConflict {
    /// The route that could not be added (the later one in file order).
    pub route: RouteId,
    /// One line, naming the other route.
    pub message: String,
}

/// Routes of one path, split by method.
#[derive(Debug, Default, Clone)]
struct MethodSet {
    /// Routes that list methods, one entry per method.
    by_method: Vec<(Method, RouteId)>,
    /// The route that accepts every method on this path, if any.
    any: Option<RouteId>,
}

impl MethodSet {
    #[inline]
    fn get(&self, method: &Method) -> Option<(RouteId, bool)> {
        for (m, id) in &self.by_method {
            if m == method {
                return Some((*id, true));
            }
        }
        self.any.map(|id| (id, false))
    }

    fn insert(&mut self, route: &RouteConfig, id: RouteId, names: &[&str]) -> Result<(), RouteConflict> {
        let what = format!("{} `{}`", route.pattern.kind(), route.pattern.as_str());
        match &route.methods {
            None => match self.any {
                Some(other) => Err(RouteConflict {
                    route: id,
                    message: format!(
                        "route `{}` is ambiguous with route `{}`: both match {what} for every method",
                        route.name, names[other]
                    ),
                }),
                None => {
                    self.any = Some(id);
                    Ok(())
                }
            },
            Some(methods) => {
                for method in methods {
                    if let Some((_, other)) = self.by_method.iter().find(|(m, _)| m == method) {
                        return Err(RouteConflict {
                            route: id,
                            message: format!(
                                "route `{}` is ambiguous with route `{}`: both match {method} {what}",
                                route.name, names[*other]
                            ),
                        });
                    }
                }
                self.by_method.extend(methods.iter().map(|m| (m.clone(), id)));
                Ok(())
            }
        }
    }

    fn all(&self) -> impl Iterator<Item = (RouteId, bool)> + '_ {
        let mut seen: Vec<RouteId> = Vec::new();
        let specific = self.by_method.iter().filter_map(move |(_, id)| {
            if seen.contains(id) {
                None
            } else {
                seen.push(*id);
                Some((*id, true))
            }
        });
        specific.chain(self.any.map(|id| (id, false)))
    }
}

/// The maps looked up for every request, by the request's path and its segments: built
/// from routes.toml only, so a fast (foldhash) hasher is enough; a client's path can only
/// be looked up in them, never add keys that collide.
type PathMap<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// A node of the prefix trie, keyed by path segment.
#[derive(Debug, Default, Clone)]
struct PrefixNode {
    children: PathMap<PrefixNode>,
    routes: Option<MethodSet>,
}

/// The compiled, immutable routing table.
#[derive(Debug, Clone)]
pub struct RouteTable {
    exact: PathMap<MethodSet>,
    templates: matchit::Router<usize>,
    template_sets: Vec<MethodSet>,
    prefixes: PrefixNode,
    len: usize,
}

impl RouteTable {
    /// Compiles routes. Route ids are indices into `routes`. Reports every conflict.
    pub fn build(routes: &[RouteConfig]) -> Result<Self, Vec<RouteConflict>> {
        let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        let mut conflicts = Vec::new();
        let mut exact: PathMap<MethodSet> = PathMap::default();
        let mut templates = matchit::Router::new();
        let mut template_sets: Vec<MethodSet> = Vec::new();
        // Canonical template (parameter names erased) → index into template_sets.
        let mut template_index: HashMap<String, usize> = HashMap::new();
        // Canonical template → the first route that used it, to name it in conflicts.
        let mut template_owner: HashMap<String, RouteId> = HashMap::new();
        let mut prefixes = PrefixNode::default();

        for (id, route) in routes.iter().enumerate() {
            let result = match &route.pattern {
                PathPattern::Exact(path) => exact.entry(path.as_str().into()).or_default().insert(route, id, &names),
                PathPattern::Prefix(path) => {
                    let mut node = &mut prefixes;
                    for segment in segments(path) {
                        node = node.children.entry(segment.into()).or_default();
                    }
                    node.routes
                        .get_or_insert_with(MethodSet::default)
                        .insert(route, id, &names)
                }
                PathPattern::Template(template) => {
                    let canonical = canonical_template(template);
                    match template_index.get(&canonical) {
                        Some(&index) => template_sets[index].insert(route, id, &names),
                        None => {
                            let index = template_sets.len();
                            match templates.insert(canonical.clone(), index) {
                                Ok(()) => {
                                    let mut set = MethodSet::default();
                                    let inserted = set.insert(route, id, &names);
                                    template_sets.push(set);
                                    template_index.insert(canonical.clone(), index);
                                    template_owner.insert(canonical, id);
                                    inserted
                                }
                                Err(matchit::InsertError::Conflict { with }) => {
                                    let other = template_owner
                                        .get(&with)
                                        .map_or_else(|| with.clone(), |o| format!("route `{}`", names[*o]));
                                    Err(RouteConflict {
                                        route: id,
                                        message: format!(
                                            "route `{}` is ambiguous with {other}: templates `{template}` and `{}` match the same paths",
                                            route.name,
                                            template_owner
                                                .get(&with)
                                                .map_or(with.as_str(), |o| routes[*o].pattern.as_str())
                                        ),
                                    })
                                }
                                Err(e) => Err(RouteConflict {
                                    route: id,
                                    message: format!("bad template `{template}`: {e}"),
                                }),
                            }
                        }
                    }
                }
            };
            if let Err(conflict) = result {
                conflicts.push(conflict);
            }
        }

        if conflicts.is_empty() {
            Ok(Self {
                exact,
                templates,
                template_sets,
                prefixes,
                len: routes.len(),
            })
        } else {
            Err(conflicts)
        }
    }

    /// Number of routes in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no routes (every request goes to the default upstream).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The route for a request, or `None` for the default upstream. `path` must be
    /// normalised (see [`crate::path`]).
    #[inline]
    pub fn lookup(&self, method: &Method, path: &str) -> Option<RouteMatch> {
        if let Some(set) = self.exact.get(path)
            && let Some((route, by_method)) = set.get(method)
        {
            return Some(RouteMatch {
                route,
                kind: MatchKind::Exact,
                by_method,
            });
        }
        if let Ok(found) = self.templates.at(path)
            && let Some(set) = self.template_sets.get(*found.value)
            && let Some((route, by_method)) = set.get(method)
        {
            return Some(RouteMatch {
                route,
                kind: MatchKind::Template,
                by_method,
            });
        }
        let mut node = &self.prefixes;
        let mut best = node.routes.as_ref().and_then(|set| set.get(method));
        for segment in segments(path) {
            match node.children.get(segment) {
                Some(child) => {
                    node = child;
                    if let Some(found) = node.routes.as_ref().and_then(|set| set.get(method)) {
                        best = Some(found);
                    }
                }
                None => break,
            }
        }
        best.map(|(route, by_method)| RouteMatch {
            route,
            kind: MatchKind::Prefix,
            by_method,
        })
    }

    /// Every route whose path matches, best first, whether or not it accepts the method.
    /// The first one that accepts the method is what [`lookup`](Self::lookup) returns.
    pub fn candidates(&self, method: &Method, path: &str) -> Vec<Candidate> {
        let mut out = Vec::new();
        let mut push = |set: &MethodSet, kind: MatchKind| {
            for (route, by_method) in set.all() {
                let accepts_method = !by_method || set.by_method.iter().any(|(m, id)| *id == route && m == method);
                out.push(Candidate {
                    route,
                    kind,
                    by_method,
                    accepts_method,
                });
            }
        };
        if let Some(set) = self.exact.get(path) {
            push(set, MatchKind::Exact);
        }
        if let Ok(found) = self.templates.at(path)
            && let Some(set) = self.template_sets.get(*found.value)
        {
            push(set, MatchKind::Template);
        }
        let mut chain = Vec::new();
        let mut node = &self.prefixes;
        chain.push(node);
        for segment in segments(path) {
            match node.children.get(segment) {
                Some(child) => {
                    node = child;
                    chain.push(node);
                }
                None => break,
            }
        }
        for node in chain.iter().rev() {
            if let Some(set) = &node.routes {
                push(set, MatchKind::Prefix);
            }
        }
        // Within a level, routes that list the method come before catch-all ones, and
        // among those the ones that accept the method first.
        out
    }
}

/// Non-empty segments of a path: `/api//thoughts/` → `api`, `thoughts`. A byte scan:
/// `str::split` with a char pattern costs about 90 instructions per segment, and this runs
/// for every request.
#[inline]
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let bytes = path.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() {
            let start = at;
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(bytes.len(), |length| start + length);
            at = end + 1;
            // `/` is ASCII: both ends are char boundaries.
            if end > start {
                return path.get(start..end);
            }
        }
        None
    })
}

/// A template with parameter names replaced by position, so that `/a/{id}` and
/// `/a/{key}` are recognised as the same shape.
fn canonical_template(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut param = 0;
    for (i, segment) in template.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if segment.starts_with("{*") {
            out.push_str("{*rest}");
        } else if segment.starts_with('{') {
            out.push_str(&format!("{{p{param}}}"));
            param += 1;
        } else {
            out.push_str(segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_the_non_empty_pieces_between_slashes() {
        for path in [
            "",
            "/",
            "//",
            "/api",
            "/api/",
            "//api//thoughts/",
            "a/b",
            "/ü/x/ñ",
            "/a/b/c/d/e/f/g",
        ] {
            let expected: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            assert_eq!(segments(path).collect::<Vec<_>>(), expected, "{path:?}");
        }
    }
    use crate::config::{Location, Stage};

    fn route(name: &str, pattern: PathPattern, methods: Option<&[&str]>) -> RouteConfig {
        RouteConfig {
            name: name.to_owned(),
            pattern,
            methods: methods.map(|ms| ms.iter().map(|m| Method::from_bytes(m.as_bytes()).unwrap()).collect()),
            stage: Stage::Legacy,
            legacy: "legacy".to_owned(),
            new: None,
            canary: None,
            fallback_max_body: None,
            max_body: None,
            compare: Default::default(),
            shadow: Default::default(),
            location: Location::default(),
            upgrades: Vec::new(),
        }
    }

    fn prefix(name: &str, p: &str) -> RouteConfig {
        route(name, PathPattern::Prefix(p.to_owned()), None)
    }

    fn name_of(routes: &[RouteConfig], table: &RouteTable, method: &str, path: &str) -> Option<String> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        table.lookup(&method, path).map(|m| routes[m.route].name.clone())
    }

    #[test]
    fn prefix_is_segment_aware() {
        let routes = vec![prefix("thoughts", "/api/thoughts/")];
        let table = RouteTable::build(&routes).unwrap();
        for path in [
            "/api/thoughts",
            "/api/thoughts/",
            "/api/thoughts/5",
            "/api/thoughts/5/x/",
        ] {
            assert_eq!(
                name_of(&routes, &table, "GET", path).as_deref(),
                Some("thoughts"),
                "{path}"
            );
        }
        for path in ["/api/thoughtsX", "/api/thought", "/api/", "/", "/other/api/thoughts"] {
            assert_eq!(name_of(&routes, &table, "GET", path), None, "{path}");
        }
    }

    #[test]
    fn longer_prefix_wins_whatever_the_file_order() {
        for routes in [
            vec![prefix("api", "/api/"), prefix("thoughts", "/api/thoughts/")],
            vec![prefix("thoughts", "/api/thoughts/"), prefix("api", "/api/")],
        ] {
            let table = RouteTable::build(&routes).unwrap();
            assert_eq!(
                name_of(&routes, &table, "GET", "/api/thoughts/1").as_deref(),
                Some("thoughts")
            );
            assert_eq!(name_of(&routes, &table, "GET", "/api/users/1").as_deref(), Some("api"));
            assert_eq!(name_of(&routes, &table, "GET", "/api").as_deref(), Some("api"));
        }
    }

    #[test]
    fn root_prefix_matches_everything() {
        let routes = vec![prefix("all", "/")];
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(name_of(&routes, &table, "GET", "/").as_deref(), Some("all"));
        assert_eq!(name_of(&routes, &table, "POST", "/x/y").as_deref(), Some("all"));
    }

    #[test]
    fn exact_beats_template_beats_prefix() {
        let routes = vec![
            prefix("prefix", "/api/thoughts/"),
            route("template", PathPattern::Template("/api/thoughts/{id}/".into()), None),
            route("exact", PathPattern::Exact("/api/thoughts/latest/".into()), None),
        ];
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(
            name_of(&routes, &table, "GET", "/api/thoughts/latest/").as_deref(),
            Some("exact")
        );
        assert_eq!(
            name_of(&routes, &table, "GET", "/api/thoughts/7/").as_deref(),
            Some("template")
        );
        assert_eq!(
            name_of(&routes, &table, "GET", "/api/thoughts/7").as_deref(),
            Some("prefix")
        );
        assert_eq!(
            name_of(&routes, &table, "GET", "/api/thoughts/latest").as_deref(),
            Some("prefix")
        );
        let method = Method::GET;
        assert_eq!(
            table.lookup(&method, "/api/thoughts/7/").map(|m| m.kind),
            Some(MatchKind::Template)
        );
    }

    #[test]
    fn exact_is_exact() {
        let routes = vec![route("login", PathPattern::Exact("/api/login/".into()), None)];
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(
            name_of(&routes, &table, "POST", "/api/login/").as_deref(),
            Some("login")
        );
        assert_eq!(name_of(&routes, &table, "POST", "/api/login"), None);
        assert_eq!(name_of(&routes, &table, "POST", "/api/login/x"), None);
    }

    #[test]
    fn catch_all_template() {
        let routes = vec![route("static", PathPattern::Template("/static/{*path}".into()), None)];
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(
            name_of(&routes, &table, "GET", "/static/css/site.css").as_deref(),
            Some("static")
        );
        assert_eq!(name_of(&routes, &table, "GET", "/other/css"), None);
    }

    #[test]
    fn method_restricted_beats_method_less_on_same_path() {
        for routes in [
            vec![
                route(
                    "reads",
                    PathPattern::Prefix("/api/thoughts/".into()),
                    Some(&["GET", "HEAD"]),
                ),
                prefix("all", "/api/thoughts/"),
            ],
            vec![
                prefix("all", "/api/thoughts/"),
                route(
                    "reads",
                    PathPattern::Prefix("/api/thoughts/".into()),
                    Some(&["GET", "HEAD"]),
                ),
            ],
        ] {
            let table = RouteTable::build(&routes).unwrap();
            assert_eq!(
                name_of(&routes, &table, "GET", "/api/thoughts/").as_deref(),
                Some("reads")
            );
            assert_eq!(
                name_of(&routes, &table, "HEAD", "/api/thoughts/").as_deref(),
                Some("reads")
            );
            assert_eq!(
                name_of(&routes, &table, "POST", "/api/thoughts/").as_deref(),
                Some("all")
            );
        }
    }

    #[test]
    fn method_mismatch_falls_through_to_next_level() {
        let routes = vec![
            route("login-post", PathPattern::Exact("/api/login/".into()), Some(&["POST"])),
            prefix("api", "/api/"),
        ];
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(
            name_of(&routes, &table, "POST", "/api/login/").as_deref(),
            Some("login-post")
        );
        assert_eq!(name_of(&routes, &table, "GET", "/api/login/").as_deref(), Some("api"));
        // A deeper prefix that refuses the method gives way to a shallower one.
        let routes = vec![
            route("writes", PathPattern::Prefix("/api/thoughts/".into()), Some(&["POST"])),
            prefix("api", "/api/"),
        ];
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(
            name_of(&routes, &table, "GET", "/api/thoughts/").as_deref(),
            Some("api")
        );
        assert_eq!(
            name_of(&routes, &table, "POST", "/api/thoughts/").as_deref(),
            Some("writes")
        );
    }

    #[test]
    fn ambiguous_routes_are_refused() {
        let cases: Vec<Vec<RouteConfig>> = vec![
            vec![prefix("a", "/api/"), prefix("b", "/api/")],
            vec![prefix("a", "/api/"), prefix("b", "/api")],
            vec![
                route("a", PathPattern::Exact("/x".into()), Some(&["GET", "POST"])),
                route("b", PathPattern::Exact("/x".into()), Some(&["PUT", "POST"])),
            ],
            vec![
                route("a", PathPattern::Template("/t/{id}/".into()), None),
                route("b", PathPattern::Template("/t/{key}/".into()), None),
            ],
        ];
        for routes in cases {
            let conflicts = RouteTable::build(&routes).unwrap_err();
            assert_eq!(conflicts.len(), 1, "{routes:?}");
            assert_eq!(conflicts[0].route, 1);
            assert!(
                conflicts[0].message.contains("`b`") && conflicts[0].message.contains("`a`"),
                "{}",
                conflicts[0].message
            );
        }
    }

    #[test]
    fn disjoint_methods_on_same_path_are_fine() {
        let routes = vec![
            route("reads", PathPattern::Template("/t/{id}/".into()), Some(&["GET"])),
            route(
                "writes",
                PathPattern::Template("/t/{key}/".into()),
                Some(&["PUT", "DELETE"]),
            ),
        ];
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(name_of(&routes, &table, "GET", "/t/1/").as_deref(), Some("reads"));
        assert_eq!(name_of(&routes, &table, "DELETE", "/t/1/").as_deref(), Some("writes"));
        assert_eq!(name_of(&routes, &table, "POST", "/t/1/"), None);
    }

    #[test]
    fn candidates_rank_like_lookup() {
        let routes = vec![
            prefix("api", "/api/"),
            prefix("thoughts", "/api/thoughts/"),
            route(
                "one",
                PathPattern::Template("/api/thoughts/{id}/".into()),
                Some(&["DELETE"]),
            ),
        ];
        let table = RouteTable::build(&routes).unwrap();
        let c = table.candidates(&Method::GET, "/api/thoughts/3/");
        let names: Vec<&str> = c.iter().map(|c| routes[c.route].name.as_str()).collect();
        assert_eq!(names, ["one", "thoughts", "api"]);
        assert!(!c[0].accepts_method);
        assert!(c[1].accepts_method);
        let first_ok = c.iter().find(|c| c.accepts_method).map(|c| c.route);
        assert_eq!(
            first_ok,
            table.lookup(&Method::GET, "/api/thoughts/3/").map(|m| m.route)
        );
    }

    #[test]
    fn many_routes_build_and_match() {
        let routes: Vec<RouteConfig> = (0..2000)
            .map(|i| prefix(&format!("r{i}"), &format!("/svc{i}/api/")))
            .collect();
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(table.len(), 2000);
        assert_eq!(
            name_of(&routes, &table, "GET", "/svc1999/api/x").as_deref(),
            Some("r1999")
        );
        assert_eq!(name_of(&routes, &table, "GET", "/svc2000/api/x"), None);
    }
}

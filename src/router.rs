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
//! A `case_insensitive` route matches the path in ASCII lowercase: those
//! routes are compiled apart, with lowercased patterns, and a request's best match there
//! competes with its best match among the others by the same order (exact, template
//! with literal segments before parameters, longer prefix, listing the method). A `case_insensitive` route and another whose
//! patterns are equal case aside are refused, as equal specificity. A table without
//! such routes pays one branch for them.
//!
//! [`RouteTable::route`] also refuses a path whose `;params` would change its route
//! (see [`crate::path::without_params`]).
//!
//! Lookup costs one hash lookup, one radix-tree walk and one trie walk over the path's
//! segments: it does not grow with the number of routes. The table is immutable; a reload
//! builds a new one.

use std::borrow::Cow;
use std::collections::HashMap;

use http::Method;

use crate::config::{PathPattern, RouteConfig};
use crate::path::without_params;

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

/// A path whose `;params` decide its route: as sent it matches one route, read the way
/// Tomcat, Jetty and Spring read it (parameters removed) another. Forwarding it would let
/// `/secure;x/y` reach the route of `/` while the upstream serves `/secure/y`; see
/// [`RouteTable::route`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmbiguousPath {
    /// The route the path matches as sent; `None`: the default upstream.
    pub as_sent: Option<RouteId>,
    /// The path without its parameters.
    pub without_params: String,
    /// The route that one matches; `None`: the default upstream. Never `as_sent`.
    pub without_params_route: Option<RouteId>,
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
    /// Every route but the `case_insensitive` ones, matched on the path as sent.
    literal: Levels,
    /// The `case_insensitive` routes; `None` (the usual case) when there are none.
    folded: Option<Box<Folded>>,
    len: usize,
}

/// The three levels of the search (exact, template, prefix) over some of the routes.
#[derive(Debug, Clone, Default)]
struct Levels {
    exact: PathMap<MethodSet>,
    templates: matchit::Router<usize>,
    template_sets: Vec<MethodSet>,
    prefixes: PrefixNode,
}

/// The `case_insensitive` routes, their patterns in ASCII lowercase, looked up with the
/// path in ASCII lowercase; and what it takes to rank one of their matches against the
/// literal table's.
#[derive(Debug, Clone)]
struct Folded {
    levels: Levels,
    /// For every route (by id): the number of segments of its prefix (0 for others).
    depth: Vec<usize>,
    /// For every route (by id): the kind of each segment of its template, in the order
    /// the radix tree prefers them (2 literal, 1 `{param}`, 0 `{*rest}`; empty for others).
    shape: Vec<Vec<u8>>,
}

impl RouteTable {
    /// Compiles routes. Route ids are indices into `routes`. Reports every conflict,
    /// including a `case_insensitive` route whose pattern, case aside, is another route's
    /// (for a method both take).
    pub fn build(routes: &[RouteConfig]) -> Result<Self, Vec<RouteConflict>> {
        let folds = |route: &RouteConfig| route.case_insensitive;
        let (literal, mut conflicts) = Levels::compile(routes, |route| !folds(route), false);
        let folded = if routes.iter().any(folds) {
            let (levels, folded_conflicts) = Levels::compile(routes, folds, true);
            conflicts.extend(folded_conflicts);
            conflicts.extend(case_collisions(routes));
            conflicts.extend(inside_case_insensitive_prefixes(routes));
            let depth = routes
                .iter()
                .map(|route| match &route.pattern {
                    PathPattern::Prefix(path) => segments(path).count(),
                    _ => 0,
                })
                .collect();
            let shape = routes
                .iter()
                .map(|route| match &route.pattern {
                    PathPattern::Template(template) => template_shape(template),
                    _ => Vec::new(),
                })
                .collect();
            Some(Box::new(Folded { levels, depth, shape }))
        } else {
            None
        };
        if conflicts.is_empty() {
            Ok(Self {
                literal,
                folded,
                len: routes.len(),
            })
        } else {
            conflicts.sort_by_key(|conflict| conflict.route);
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
    /// normalised (see [`crate::path`]). A `case_insensitive` route matches the path in
    /// ASCII lowercase; between it and a route matched as sent, the more specific one wins
    /// (exact, then template, then the longer prefix, then the route listing the method).
    #[inline]
    pub fn lookup(&self, method: &Method, path: &str) -> Option<RouteMatch> {
        let literal = self.literal.lookup(method, path);
        match &self.folded {
            None => literal,
            Some(folded) => folded.best(literal, method, path),
        }
    }

    /// The route for a request, like [`lookup`](Self::lookup), unless the path's `;params`
    /// decide it: when the path with every segment's parameters removed
    /// ([`without_params`]) matches a different route than the path as sent, the answer is
    /// [`AmbiguousPath`], to be refused. Both spellings are matched before any rewrite.
    /// A path without `;` costs one scan more than `lookup`.
    ///
    /// # Errors
    ///
    /// [`AmbiguousPath`], as above.
    #[inline]
    pub fn route(&self, method: &Method, path: &str) -> Result<Option<RouteMatch>, AmbiguousPath> {
        let matched = self.lookup(method, path);
        let Some(stripped) = without_params(path) else {
            return Ok(matched);
        };
        let as_sent = matched.map(|m| m.route);
        let without_params_route = self.lookup(method, &stripped).map(|m| m.route);
        if without_params_route == as_sent {
            Ok(matched)
        } else {
            Err(AmbiguousPath {
                as_sent,
                without_params: stripped,
                without_params_route,
            })
        }
    }

    /// Every route whose path matches, best first, whether or not it accepts the method.
    /// The first one that accepts the method is what [`lookup`](Self::lookup) returns.
    pub fn candidates(&self, method: &Method, path: &str) -> Vec<Candidate> {
        let mut out = self.literal.candidates(method, path);
        if let Some(folded) = &self.folded {
            out.extend(folded.levels.candidates(method, &fold_case(path)));
            // Best first across both tables; a stable sort keeps each level's own order.
            out.sort_by_key(|c| std::cmp::Reverse(folded.rank(c.kind, c.route, c.by_method)));
        }
        out
    }
}

impl Levels {
    /// Compiles the routes `include` picks (ids stay indices into `routes`), with their
    /// patterns in ASCII lowercase when `fold`. Returns the conflicts found.
    fn compile(
        routes: &[RouteConfig],
        include: impl Fn(&RouteConfig) -> bool,
        fold: bool,
    ) -> (Self, Vec<RouteConflict>) {
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

        for (id, route) in routes.iter().enumerate().filter(|(_, route)| include(route)) {
            let result = match &route.pattern {
                PathPattern::Exact(path) => {
                    let path = if fold {
                        fold_case(path)
                    } else {
                        Cow::Borrowed(path.as_str())
                    };
                    exact.entry(path.into()).or_default().insert(route, id, &names)
                }
                PathPattern::Prefix(path) => {
                    let path = if fold {
                        fold_case(path)
                    } else {
                        Cow::Borrowed(path.as_str())
                    };
                    let mut node = &mut prefixes;
                    for segment in segments(&path) {
                        node = node.children.entry(segment.into()).or_default();
                    }
                    node.routes
                        .get_or_insert_with(MethodSet::default)
                        .insert(route, id, &names)
                }
                PathPattern::Template(template) => {
                    let canonical = canonical_template(&if fold {
                        fold_case(template)
                    } else {
                        Cow::Borrowed(template.as_str())
                    });
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

        (
            Self {
                exact,
                templates,
                template_sets,
                prefixes,
            },
            conflicts,
        )
    }

    /// The best route of these levels for `path`.
    #[inline]
    fn lookup(&self, method: &Method, path: &str) -> Option<RouteMatch> {
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

    /// Every route of these levels whose path matches, best first.
    fn candidates(&self, method: &Method, path: &str) -> Vec<Candidate> {
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

impl Folded {
    /// The better of `literal` (from the literal table) and this table's match for `path`.
    #[inline(never)]
    fn best(&self, literal: Option<RouteMatch>, method: &Method, path: &str) -> Option<RouteMatch> {
        let folded = self.levels.lookup(method, &fold_case(path));
        match (literal, folded) {
            (Some(l), Some(f)) if self.rank(f.kind, f.route, f.by_method) > self.rank(l.kind, l.route, l.by_method) => {
                Some(f)
            }
            (Some(l), _) => Some(l),
            (None, f) => f,
        }
    }

    /// How specific a match is, larger first: its level (exact, template, prefix), the
    /// length of its prefix, its template's segments (a literal beats a parameter, which
    /// beats a catch-all), whether it lists the method. Each table's own search follows
    /// this order; two routes of the two tables never tie ([`case_collisions`]).
    fn rank(&self, kind: MatchKind, route: RouteId, by_method: bool) -> (u8, usize, &[u8], bool) {
        let level = match kind {
            MatchKind::Exact => 2,
            MatchKind::Template => 1,
            MatchKind::Prefix => 0,
        };
        let depth = self.depth.get(route).copied().unwrap_or(0);
        let shape = self.shape.get(route).map_or(&[][..], Vec::as_slice);
        (level, depth, shape, by_method)
    }
}

/// `path` in ASCII lowercase, borrowed when it already is (non-ASCII text and `%XX`
/// escapes aside, which fold the same way in patterns and paths).
fn fold_case(path: &str) -> Cow<'_, str> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(path.to_ascii_lowercase())
    } else {
        Cow::Borrowed(path)
    }
}

/// A `case_insensitive` route and another that is not, whose patterns are the same case
/// aside (`/secure/` and `/Secure/`, of the same kind) for a method both take: both would
/// match `/SECURE/x` equally well, or (one listing the method, the other not) the one
/// keeping case would lose its other spellings to the other. Refused, one conflict per pair.
fn case_collisions(routes: &[RouteConfig]) -> Vec<RouteConflict> {
    let key = |route: &RouteConfig| match &route.pattern {
        PathPattern::Exact(path) => (0, fold_case(path).into_owned()),
        PathPattern::Prefix(path) => (1, segments(&fold_case(path)).collect::<Vec<_>>().join("/")),
        PathPattern::Template(template) => (2, canonical_template(&fold_case(template))),
    };
    let mut conflicts = Vec::new();
    for (later, route) in routes.iter().enumerate() {
        let route_key = key(route);
        for earlier in routes.iter().take(later) {
            if route.case_insensitive != earlier.case_insensitive
                && key(earlier) == route_key
                && share_a_method(route, earlier)
            {
                conflicts.push(RouteConflict {
                    route: later,
                    message: format!(
                        "route `{}` is ambiguous with route `{}`: {} `{}` and `{}` are the same path case aside, \
                         and one of them is case_insensitive",
                        route.name,
                        earlier.name,
                        route.pattern.kind(),
                        route.pattern.as_str(),
                        earlier.pattern.as_str()
                    ),
                });
            }
        }
    }
    conflicts
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

/// A route that keeps case inside a `case_insensitive` prefix (`/secure/reports/` inside
/// `/secure/`), for a method both take: its other spellings (`/SECURE/reports/`) would go
/// to the prefix's route, on a legacy stack that ignores case the very endpoint the inner
/// route moved away. Refused: the inner route must be `case_insensitive` too. (A route
/// without ASCII letters in its literal segments has no other spelling.)
fn inside_case_insensitive_prefixes(routes: &[RouteConfig]) -> Vec<RouteConflict> {
    let mut conflicts = Vec::new();
    for (id, inner) in routes.iter().enumerate().filter(|(_, r)| !r.case_insensitive) {
        let inner_segments: Vec<&str> = segments(inner.pattern.as_str()).collect();
        let is_param = |segment: &str| segment.starts_with('{');
        if !inner_segments
            .iter()
            .any(|s| !is_param(s) && s.bytes().any(|b| b.is_ascii_alphabetic()))
        {
            continue;
        }
        for outer in routes.iter().filter(|r| r.case_insensitive) {
            let PathPattern::Prefix(outer_path) = &outer.pattern else {
                continue;
            };
            let outer_path = fold_case(outer_path);
            let outer_segments: Vec<&str> = segments(&outer_path).collect();
            let deeper = match inner.pattern {
                PathPattern::Prefix(_) => inner_segments.len() > outer_segments.len(),
                _ => inner_segments.len() >= outer_segments.len(),
            };
            let inside = deeper
                && outer_segments
                    .iter()
                    .zip(&inner_segments)
                    .all(|(o, i)| is_param(i) || i.eq_ignore_ascii_case(o));
            if inside && share_a_method(inner, outer) {
                conflicts.push(RouteConflict {
                    route: id,
                    message: format!(
                        "route `{}` ({} `{}`) lies inside case_insensitive route `{}` (`{}`): its other spellings \
                         would go to `{}`; make it case_insensitive too",
                        inner.name,
                        inner.pattern.kind(),
                        inner.pattern.as_str(),
                        outer.name,
                        outer.pattern.as_str(),
                        outer.name
                    ),
                });
                break;
            }
        }
    }
    conflicts
}

/// Whether some method is taken by both routes (a route without `methods` takes all).
fn share_a_method(a: &RouteConfig, b: &RouteConfig) -> bool {
    match (&a.methods, &b.methods) {
        (Some(a), Some(b)) => a.iter().any(|m| b.contains(m)),
        _ => true,
    }
}

/// The kind of each segment of a template, as [`Folded::rank`] compares them.
fn template_shape(template: &str) -> Vec<u8> {
    segments(template)
        .map(|segment| match segment.as_bytes() {
            [b'{', b'*', ..] => 0,
            [b'{', ..] => 1,
            _ => 2,
        })
        .collect()
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
            case_insensitive: false,
            forwarding: Default::default(),
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
    fn params_that_change_the_route_are_ambiguous() {
        let routes = vec![
            prefix("all", "/"),
            prefix("secure", "/secure/"),
            route("login", PathPattern::Exact("/secure/login".into()), Some(&["POST"])),
            route("item", PathPattern::Template("/items/{id}/".into()), None),
        ];
        let table = RouteTable::build(&routes).unwrap();
        let name = |id: Option<RouteId>| id.map_or("default", |id| routes[id].name.as_str());
        let verdict = |method: &Method, path: &str| match table.route(method, path) {
            Ok(found) => format!("ok {}", name(found.map(|m| m.route))),
            Err(a) => format!(
                "ambiguous {} vs {} {}",
                name(a.as_sent),
                name(a.without_params_route),
                a.without_params
            ),
        };
        #[rustfmt::skip]
        let cases = [
            (Method::GET, "/secure/y", "ok secure"),
            // As sent `secure;x` is not the segment `secure`: route `all`; without: `secure`.
            (Method::GET, "/secure;x/y", "ambiguous all vs secure /secure/y"),
            (Method::GET, "/;x/secure/y", "ambiguous all vs secure /secure/y"),
            (Method::GET, "/secure;x", "ambiguous all vs secure /secure"),
            // Same route both ways: fine, forwarded as sent.
            (Method::GET, "/secure/y;jsessionid=1", "ok secure"),
            (Method::GET, "/secure/a;b/c", "ok secure"),
            (Method::GET, "/other;x/y", "ok all"),
            // In the last segment of an exact route, per method.
            (Method::POST, "/secure/login;x", "ambiguous secure vs login /secure/login"),
            (Method::GET, "/secure/login;x", "ok secure"),
            // A template parameter may hold `;`: the same template matches both ways.
            (Method::GET, "/items/7;v=2/", "ok item"),
            (Method::GET, "/items;v=2/7/", "ambiguous all vs item /items/7/"),
            // `%3B` is not a delimiter.
            (Method::GET, "/secure%3Bx/y", "ok all"),
        ];
        for (method, path, want) in cases {
            assert_eq!(verdict(&method, path), want, "{method} {path}");
        }
        // The default upstream counts as a route of its own.
        let routes = vec![prefix("secure", "/secure/")];
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(
            table.route(&Method::GET, "/secure;x/y"),
            Err(AmbiguousPath {
                as_sent: None,
                without_params: "/secure/y".to_owned(),
                without_params_route: Some(0),
            })
        );
        assert_eq!(table.route(&Method::GET, "/x;y/z"), Ok(None));
    }

    fn case_insensitive(mut route: RouteConfig) -> RouteConfig {
        route.case_insensitive = true;
        route
    }

    #[test]
    fn a_case_insensitive_route_matches_any_ascii_case() {
        let routes = vec![
            prefix("all", "/"),
            case_insensitive(prefix("secure", "/secure/")),
            case_insensitive(route("login", PathPattern::Exact("/Account/Login".into()), None)),
            case_insensitive(prefix("reports", "/secure/reports/")),
            case_insensitive(route("item", PathPattern::Template("/secure/items/{id}".into()), None)),
            prefix("other", "/Other/"),
        ];
        let table = RouteTable::build(&routes).unwrap();
        #[rustfmt::skip]
        let cases = [
            ("/secure/x", "secure"),
            ("/SECURE/x", "secure"),
            ("/Secure", "secure"),
            ("/sEcUrE/a/B", "secure"),
            ("/secureX/y", "all"),
            ("/account/login", "login"),
            ("/ACCOUNT/LOGIN", "login"),
            ("/account/login/", "all"),
            // Longer prefixes and templates inside it beat it, whatever the spelling.
            ("/secure/reports/1", "reports"),
            ("/SECURE/Reports/1", "reports"),
            ("/secure/items/7", "item"),
            ("/SECURE/ITEMS/7", "item"),
            ("/SECURE/ITEMS/7/x", "secure"),
            // A route that keeps case matches as written only.
            ("/Other/x", "other"),
            ("/other/x", "all"),
            // Non-ASCII letters are not folded.
            ("/sécure/x", "all"),
        ];
        for (path, want) in cases {
            assert_eq!(name_of(&routes, &table, "GET", path).as_deref(), Some(want), "{path}");
        }
        // Both spellings, with `;params` too.
        assert_eq!(
            table.route(&Method::GET, "/SECURE/x;v=1").map(|m| m.map(|m| m.route)),
            Ok(Some(1))
        );
        assert!(table.route(&Method::GET, "/SECURE;v=1/x").is_err());
        // Templates: the literal segments fold; literal beats parameter across tables.
        let routes = vec![
            case_insensitive(route("item", PathPattern::Template("/Items/{id}/".into()), None)),
            route("edit", PathPattern::Template("/{kind}/{id}/edit".into()), None),
            case_insensitive(route("new", PathPattern::Template("/{kind}/new/{*rest}".into()), None)),
        ];
        let table = RouteTable::build(&routes).unwrap();
        #[rustfmt::skip]
        let cases = [
            ("/items/7/", Some("item")),
            ("/ITEMS/AbC/", Some("item")),
            ("/x/7/edit", Some("edit")),
            ("/x/7/EDIT", None),
            ("/x/NEW/a", Some("new")),
            // `/{kind}/new/…` beats `/{kind}/{id}/…` at the second segment.
            ("/x/new/edit", Some("new")),
        ];
        for (path, want) in cases {
            assert_eq!(name_of(&routes, &table, "GET", path).as_deref(), want, "{path}");
        }
        let routes = vec![
            prefix("all", "/"),
            case_insensitive(prefix("secure", "/secure/")),
            case_insensitive(prefix("reports", "/secure/reports/")),
        ];
        let table = RouteTable::build(&routes).unwrap();
        // explain's candidates rank like lookup across both tables.
        let c = table.candidates(&Method::GET, "/SECURE/reports/1");
        let names: Vec<&str> = c.iter().map(|c| routes[c.route].name.as_str()).collect();
        assert_eq!(names, ["reports", "secure", "all"]);
    }

    #[test]
    fn a_case_insensitive_route_with_a_pattern_equal_case_aside_is_refused() {
        for routes in [
            vec![prefix("a", "/Secure/"), case_insensitive(prefix("b", "/secure"))],
            vec![case_insensitive(prefix("a", "/secure/")), prefix("b", "/SECURE/")],
            vec![
                case_insensitive(prefix("a", "/secure/")),
                case_insensitive(prefix("b", "/SECURE/")),
            ],
            vec![
                route("a", PathPattern::Exact("/Login".into()), Some(&["GET", "POST"])),
                case_insensitive(route("b", PathPattern::Exact("/login".into()), Some(&["POST"]))),
            ],
            vec![
                route("a", PathPattern::Template("/Items/{id}".into()), None),
                case_insensitive(route("b", PathPattern::Template("/items/{key}".into()), None)),
            ],
            vec![
                route("a", PathPattern::Exact("/Login".into()), Some(&["GET"])),
                case_insensitive(route("b", PathPattern::Exact("/login".into()), None)),
            ],
        ] {
            let conflicts = RouteTable::build(&routes).unwrap_err();
            assert_eq!(conflicts.len(), 1, "{conflicts:?}");
            assert_eq!(conflicts[0].route, 1);
            assert!(
                conflicts[0].message.contains("`b`") && conflicts[0].message.contains("`a`"),
                "{}",
                conflicts[0].message
            );
        }
        // Fine: disjoint methods, a different kind, or two routes that both keep case.
        for routes in [
            vec![
                route("a", PathPattern::Exact("/Login".into()), Some(&["GET"])),
                case_insensitive(route("b", PathPattern::Exact("/login".into()), Some(&["POST"]))),
            ],
            vec![prefix("a", "/Secure/"), prefix("b", "/secure/")],
        ] {
            assert!(RouteTable::build(&routes).is_ok(), "{routes:?}");
        }
        // A method-listing route beats a catch-all, as on one path.
        let routes = vec![
            case_insensitive(prefix("any", "/Secure/")),
            case_insensitive(route("reads", PathPattern::Prefix("/secure/".into()), Some(&["GET"]))),
        ];
        let table = RouteTable::build(&routes).unwrap();
        assert_eq!(name_of(&routes, &table, "GET", "/Secure/x").as_deref(), Some("reads"));
        assert_eq!(name_of(&routes, &table, "POST", "/Secure/x").as_deref(), Some("any"));
        assert_eq!(name_of(&routes, &table, "POST", "/SECURE/x").as_deref(), Some("any"));
    }

    #[test]
    fn a_route_that_keeps_case_inside_a_case_insensitive_prefix_is_refused() {
        let secure = || case_insensitive(prefix("secure", "/secure/"));
        for inner in [
            prefix("reports", "/secure/Reports/"),
            route("login", PathPattern::Exact("/SECURE".into()), None),
            route("login", PathPattern::Exact("/secure/login".into()), Some(&["POST"])),
            route("item", PathPattern::Template("/secure/items/{id}".into()), None),
            route("item", PathPattern::Template("/{kind}/items/".into()), None),
            route("item", PathPattern::Template("/secure/{id}".into()), None),
        ] {
            let name = inner.name.clone();
            let conflicts = RouteTable::build(&[secure(), inner]).unwrap_err();
            assert_eq!(conflicts.len(), 1, "{conflicts:?}");
            assert_eq!(conflicts[0].route, 1);
            assert!(
                conflicts[0].message.contains(&format!("route `{name}`"))
                    && conflicts[0].message.contains("make it case_insensitive too"),
                "{}",
                conflicts[0].message
            );
        }
        for inner in [
            // Made case-insensitive itself; outside; shallower.
            case_insensitive(prefix("reports", "/secure/reports/")),
            prefix("other", "/Other/secure/"),
            prefix("all", "/"),
        ] {
            assert!(RouteTable::build(&[secure(), inner.clone()]).is_ok(), "{inner:?}");
        }
        // Without ASCII letters, or for a method the prefix does not take.
        let root = case_insensitive(prefix("root", "/"));
        assert!(RouteTable::build(&[root, prefix("digits", "/2024/-/")]).is_ok());
        let reads = case_insensitive(route("reads", PathPattern::Prefix("/secure/".into()), Some(&["GET"])));
        let writes = route("writes", PathPattern::Prefix("/secure/Admin/".into()), Some(&["POST"]));
        assert!(RouteTable::build(&[reads, writes]).is_ok());
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

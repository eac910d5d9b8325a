//! Comparison rules: the [`CompareSpec`] a route writes in its config, and the
//! [`CompareRules`] compiled from it once per route per reload.
//!
//! ```text
//! compare = { ... } --(serde, deny_unknown_fields)--> CompareSpec
//!                   --(CompareRules::from_spec)-----> CompareRules (regexes compiled, pointer trie built)
//! ```
//!
//! Pointer patterns (`ignore`, `unordered_arrays`, a `normalize` entry's `pointer`) are
//! JSON Pointers (RFC 6901) where a segment `*` matches exactly one segment, any key or
//! index. They are kept in their escaped form (`~0`, `~1`) and matched against the escaped
//! segments of the pointer being walked, so a key is never unescaped to be looked up. A
//! pattern applies to the node it matches and to everything below it: `ignore` and
//! `unordered_arrays` because the walk stops or switches mode there, a scoped `normalize`
//! because its trie node has a "subtree" node that every descendant's states carry.
//!
//! Headers are compared as one value each (all values joined with `", "`), after, in
//! order: `location = "path"` (for `location`: scheme and host dropped), the `normalize`
//! entries scoped to that header, and `unordered_headers` (a comma list as a set).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use http::{HeaderName, Method};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::divergence::{Divergence, RouteDivergenceSpec};

/// How two responses of one route are compared, as written in the config. Every field is
/// optional; the defaults compare the status, `content-type` and the whole body.
///
/// Its `Debug` form is the canonical form the rules' digest is taken of: the keys added
/// since the digest was introduced (`location`, `unordered_headers`, `key_order`, `divergences`, a
/// `normalize` entry's `pointer` and `header`) appear only when set, so a table that does
/// not use them keeps its digest, and its parity evidence, across the upgrade.
#[derive(Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareSpec {
    /// JSON Pointer patterns of body fields never compared (`/timestamp`, `/items/*/created`).
    /// `""` ignores the whole body.
    pub ignore: Vec<String>,
    /// Header names removed from the compared set.
    pub ignore_headers: Vec<String>,
    /// Header names compared (case-insensitive); `None` means `["content-type"]`.
    pub headers: Option<Vec<String>>,
    /// Regex replacements applied to both sides before comparing: to every JSON string
    /// value, or to the whole body when it is not JSON; an entry with `pointer` only at
    /// and below those JSON Pointer patterns, one with `header` only to that header.
    pub normalize: Vec<NormalizeSpec>,
    /// How `location` is compared: `exact` (the default) or `path` (path and query only,
    /// so an absolute and a relative redirect to the same place agree). `path` adds
    /// `location` to the compared headers.
    pub location: LocationMode,
    /// Headers compared as comma-separated sets (`allow`, `vary`): order, repeats and
    /// whitespace ignored. Each is added to the compared headers.
    pub unordered_headers: Vec<String>,
    /// Whether the order of an object's keys on the wire is compared too (see
    /// [`super::key_order`]); by default JSON objects are unordered.
    pub key_order: bool,
    /// Known, deliberate differences of single requests of the route (see
    /// [`super::divergence`]): a replayed request they cover is `expected` when the answers
    /// differ exactly so, and `resolved` (a failure) when they no longer differ.
    pub divergences: Vec<RouteDivergenceSpec>,
    /// Arrays whose order does not matter: all of them, or those at these pointer patterns.
    pub unordered_arrays: UnorderedArrays,
    /// Two JSON numbers are equal when they differ by at most this much. Without it,
    /// numbers are equal only when they are the same number of the same kind (`1` ≠ `1.0`).
    pub numeric_tolerance: Option<f64>,
}

/// One `normalize` entry: every match of `pattern` becomes `replace`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeSpec {
    /// A regex in the syntax of the `regex` crate.
    pub pattern: String,
    /// The replacement; `$1` or `${name}` refer to capture groups.
    pub replace: String,
    /// Only JSON string values at or below this pointer pattern (`*` = one segment);
    /// `""` also covers a whole non-JSON body. Without `pointer` and `header`: every
    /// JSON string value and a whole non-JSON body.
    #[serde(default)]
    pub pointer: Option<String>,
    /// Only this header's value (the header must be compared).
    #[serde(default)]
    pub header: Option<String>,
}

impl fmt::Debug for CompareSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("CompareSpec");
        s.field("ignore", &self.ignore)
            .field("ignore_headers", &self.ignore_headers)
            .field("headers", &self.headers)
            .field("normalize", &self.normalize)
            .field("unordered_arrays", &self.unordered_arrays)
            .field("numeric_tolerance", &self.numeric_tolerance);
        if self.location != LocationMode::default() {
            s.field("location", &self.location);
        }
        if !self.unordered_headers.is_empty() {
            s.field("unordered_headers", &self.unordered_headers);
        }
        if self.key_order {
            s.field("key_order", &self.key_order);
        }
        if !self.divergences.is_empty() {
            s.field("divergences", &self.divergences);
        }
        s.finish()
    }
}

impl fmt::Debug for NormalizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("NormalizeSpec");
        s.field("pattern", &self.pattern).field("replace", &self.replace);
        if let Some(pointer) = &self.pointer {
            s.field("pointer", pointer);
        }
        if let Some(header) = &self.header {
            s.field("header", header);
        }
        s.finish()
    }
}

/// How the `location` header is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationMode {
    /// As any other header: the whole value.
    #[default]
    Exact,
    /// Path and query only: scheme, host and fragment dropped.
    Path,
}

/// Where array order is irrelevant: `unordered_arrays = true`, `false`, or a list of
/// pointer patterns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UnorderedArrays {
    /// Order matters everywhere (`false`, the default).
    #[default]
    Nowhere,
    /// Every array is a multiset (`true`).
    Everywhere,
    /// Arrays at these pointer patterns are multisets.
    At(Vec<String>),
}

impl<'de> Deserialize<'de> for UnorderedArrays {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UnorderedVisitor;

        impl<'de> Visitor<'de> for UnorderedVisitor {
            type Value = UnorderedArrays;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean or a list of JSON Pointer patterns")
            }

            fn visit_bool<E: de::Error>(self, everywhere: bool) -> Result<Self::Value, E> {
                Ok(if everywhere {
                    UnorderedArrays::Everywhere
                } else {
                    UnorderedArrays::Nowhere
                })
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut pointers = Vec::new();
                while let Some(pointer) = seq.next_element::<String>()? {
                    pointers.push(pointer);
                }
                Ok(UnorderedArrays::At(pointers))
            }
        }

        deserializer.deserialize_any(UnorderedVisitor)
    }
}

/// A [`CompareSpec`] entry that cannot be compiled. Names the field and, for lists, the
/// entry (from 0), so the config loader can say which one is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CompareRuleError {
    /// The field of [`CompareSpec`], as written in the config.
    pub field: &'static str,
    /// The entry of a list field, from 0.
    pub index: Option<usize>,
    /// What is wrong, in one line, quoting the offending value.
    pub message: String,
}

impl fmt::Display for CompareRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field)?;
        if let Some(index) = self.index {
            write!(f, "[{index}]")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl CompareRuleError {
    fn entry(field: &'static str, index: usize, message: String) -> Self {
        Self {
            field,
            index: Some(index),
            message,
        }
    }
}

/// Compiled comparison rules of one route: an immutable value, built once per reload and
/// shared by every comparison of the route.
#[derive(Debug, Clone)]
pub struct CompareRules {
    /// Compared headers, lower-case, without duplicates, in the order written.
    pub(super) headers: Vec<HeaderName>,
    /// Applied in order, each to the output of the previous one (to what its scope covers).
    pub(super) normalizers: Vec<Normalizer>,
    /// `ignore`, `unordered_arrays` and scoped `normalize` patterns.
    pub(super) patterns: PatternTrie,
    /// `unordered_arrays = true`.
    pub(super) unordered_everywhere: bool,
    /// `numeric_tolerance`.
    pub(super) tolerance: Option<f64>,
    /// `location = "path"`.
    location_path: bool,
    /// `unordered_headers`.
    unordered_headers: Vec<HeaderName>,
    /// `key_order = true`.
    pub(super) key_order: bool,
    /// `divergences`, in the order written.
    divergences: Vec<RouteDivergence>,
    /// Short hex digest of the spec the rules were compiled from (see [`CompareRules::digest`]).
    digest: String,
}

/// One compiled `[[routes.compare.divergences]]` entry: the requests it covers and what it
/// expects of them.
#[derive(Debug, Clone)]
struct RouteDivergence {
    /// `None`: any method.
    method: Option<Method>,
    /// `None`: any request of that method and path.
    name: Option<String>,
    /// The exact path; with a `?`, the exact path and query.
    path: String,
    divergence: Arc<Divergence>,
}

impl Default for CompareRules {
    /// The rules of an empty [`CompareSpec`]: status, `content-type` and the whole body.
    fn default() -> Self {
        Self {
            headers: vec![http::header::CONTENT_TYPE],
            normalizers: Vec::new(),
            patterns: PatternTrie::default(),
            unordered_everywhere: false,
            tolerance: None,
            location_path: false,
            unordered_headers: Vec::new(),
            key_order: false,
            divergences: Vec::new(),
            digest: spec_digest(&CompareSpec::default()),
        }
    }
}

/// The digest of a spec's canonical form (its `Debug` rendering: every field that is set,
/// in declaration order, so two specs written differently in TOML but equal as values
/// agree).
fn spec_digest(spec: &CompareSpec) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{spec:?}").as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl CompareRules {
    /// Compiles a spec. Fails on the first bad entry, in field order: `ignore`,
    /// `unordered_arrays`, `headers`, `unordered_headers`, `ignore_headers`, `normalize`,
    /// `numeric_tolerance`, `divergences`.
    pub fn from_spec(spec: &CompareSpec) -> Result<Self, CompareRuleError> {
        let mut patterns = PatternTrie::default();
        let unordered_everywhere = compile_patterns(spec, &mut patterns)?;
        let (headers, unordered_headers) = compile_headers(spec)?;
        let normalizers = compile_normalizers(spec, &headers, &mut patterns)?;
        let tolerance = match spec.numeric_tolerance {
            Some(t) if !(t.is_finite() && t >= 0.0) => {
                return Err(CompareRuleError {
                    field: "numeric_tolerance",
                    index: None,
                    message: format!("must be a finite number >= 0, got {t}"),
                });
            }
            other => other,
        };
        let divergences = compile_divergences(&spec.divergences)?;
        Ok(Self {
            headers,
            normalizers,
            patterns,
            unordered_everywhere,
            tolerance,
            location_path: spec.location == LocationMode::Path,
            unordered_headers,
            key_order: spec.key_order,
            divergences,
            digest: spec_digest(spec),
        })
    }

    /// A short hex digest of the spec these rules were compiled from: equal specs give
    /// equal digests on every replica of one build, and any change of a rule changes it.
    /// Parity evidence is evidence of one set of rules; this names the set.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The compared headers, lower-case, in the order written.
    pub fn headers(&self) -> &[HeaderName] {
        &self.headers
    }

    /// The route's `divergence` that covers a request: its method and name (when the entry
    /// names them) and its path as routed. An entry with a query covers that exact path and
    /// query, and is preferred over one without, which covers the path with any query; of
    /// equals, the first written.
    pub fn divergence_for(&self, method: &Method, target: &str, name: &str) -> Option<&Arc<Divergence>> {
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        let covers = |d: &&RouteDivergence| {
            d.method.as_ref().is_none_or(|m| m == method) && d.name.as_deref().is_none_or(|n| n == name)
        };
        let with_query = self
            .divergences
            .iter()
            .filter(covers)
            .find(|d| d.path.contains('?') && d.path == target);
        with_query
            .or_else(|| {
                self.divergences
                    .iter()
                    .filter(covers)
                    .find(|d| !d.path.contains('?') && d.path == path)
            })
            .map(|d| &d.divergence)
    }

    /// Applies the normalisers that cover the JSON string value at the pattern `states`
    /// (unscoped ones and those whose pointer is at or above it). Borrows when nothing
    /// matched.
    pub(super) fn normalize_str<'s>(&self, s: &'s str, states: &[usize]) -> Cow<'s, str> {
        self.apply(Cow::Borrowed(s), |i, scope| match scope {
            Scope::Body => true,
            Scope::Pointer { .. } => self.patterns.normalizes(states, i),
            Scope::Header(_) => false,
        })
    }

    /// Applies the normalisers of a whole non-JSON body (unscoped ones and those scoped to
    /// pointer `""`). Borrows when nothing matched.
    pub(super) fn normalize_bytes<'b>(&self, b: &'b [u8]) -> Cow<'b, [u8]> {
        let mut out = Cow::Borrowed(b);
        for n in &self.normalizers {
            if matches!(n.scope, Scope::Body | Scope::Pointer { whole_body: true })
                && let Cow::Owned(replaced) = n.bytes.replace_all(&out, n.replace.as_bytes())
            {
                out = Cow::Owned(replaced);
            }
        }
        out
    }

    fn apply<'s>(&self, mut out: Cow<'s, str>, applies: impl Fn(usize, &Scope) -> bool) -> Cow<'s, str> {
        for (i, n) in self.normalizers.iter().enumerate() {
            if applies(i, &n.scope)
                && let Cow::Owned(replaced) = n.text.replace_all(&out, n.replace.as_str())
            {
                out = Cow::Owned(replaced);
            }
        }
        out
    }

    /// A header's value as compared: `location = "path"`, the header's normalisers, then
    /// `unordered_headers` (sorted distinct items, joined with `,`).
    pub(super) fn header_form<'v>(&self, name: &HeaderName, value: &'v str) -> Cow<'v, str> {
        let mut out = Cow::Borrowed(value);
        if self.location_path && *name == http::header::LOCATION {
            out = location_path(value);
        }
        out = self.apply(out, |_, scope| matches!(scope, Scope::Header(h) if h == name));
        if self.unordered_headers.contains(name) {
            let mut items: Vec<&str> = out.split(',').map(str::trim).filter(|i| !i.is_empty()).collect();
            items.sort_unstable();
            items.dedup();
            out = Cow::Owned(items.join(","));
        }
        out
    }

    /// Whether two values of a header (`None`: absent) are equal under the rules.
    pub(super) fn header_equal(&self, name: &HeaderName, a: Option<&str>, b: Option<&str>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => a == b || self.header_form(name, a) == self.header_form(name, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// Whether the array reached with these pattern states is compared as a multiset.
    pub(super) fn unordered_at(&self, states: &[usize]) -> bool {
        self.unordered_everywhere || self.patterns.any(states, |n| n.unordered)
    }
}

/// The path, query included, of a `Location` value: an absolute (`https://host/p?q`) or
/// scheme-relative (`//host/p`) reference loses its scheme and host, any reference its
/// fragment; a relative one stays as it is otherwise.
pub(super) fn location_path(value: &str) -> Cow<'_, str> {
    let value = value.trim();
    let value = value.split_once('#').map_or(value, |(before, _)| before);
    let scheme_end = value.find("://").filter(|&i| {
        i > 0
            && value
                .get(..i)
                .is_some_and(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
    });
    let rest = match scheme_end {
        Some(i) => value.get(i + 3..).unwrap_or_default(),
        None => match value.strip_prefix("//") {
            Some(rest) => rest,
            None => return Cow::Borrowed(value),
        },
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.get(i..).is_some_and(|p| p.starts_with('/')) => Cow::Borrowed(rest.get(i..).unwrap_or("/")),
        Some(i) => Cow::Owned(format!("/{}", rest.get(i..).unwrap_or_default())),
        None => Cow::Borrowed("/"),
    }
}

/// `ignore` and `unordered_arrays` into the trie; whether every array is unordered.
fn compile_patterns(spec: &CompareSpec, patterns: &mut PatternTrie) -> Result<bool, CompareRuleError> {
    for (index, pattern) in spec.ignore.iter().enumerate() {
        let segments = parse_pattern(pattern).map_err(|message| CompareRuleError::entry("ignore", index, message))?;
        patterns.insert(&segments, Mark::Ignore);
    }
    match &spec.unordered_arrays {
        UnorderedArrays::Nowhere => Ok(false),
        UnorderedArrays::Everywhere => Ok(true),
        UnorderedArrays::At(list) => {
            for (index, pattern) in list.iter().enumerate() {
                let segments = parse_pattern(pattern)
                    .map_err(|message| CompareRuleError::entry("unordered_arrays", index, message))?;
                patterns.insert(&segments, Mark::Unordered);
            }
            Ok(false)
        }
    }
}

/// The compared headers (`headers`, then `location` with `location = "path"`, then
/// `unordered_headers`, less `ignore_headers`) and the unordered ones.
fn compile_headers(spec: &CompareSpec) -> Result<(Vec<HeaderName>, Vec<HeaderName>), CompareRuleError> {
    let mut headers = Vec::new();
    let mut add = |name: HeaderName| {
        if !headers.contains(&name) {
            headers.push(name);
        }
    };
    match &spec.headers {
        None => add(http::header::CONTENT_TYPE),
        Some(names) => {
            for (index, name) in names.iter().enumerate() {
                add(parse_header_name(name).map_err(|m| CompareRuleError::entry("headers", index, m))?);
            }
        }
    }
    if spec.location == LocationMode::Path {
        add(http::header::LOCATION);
    }
    let mut unordered = Vec::new();
    for (index, name) in spec.unordered_headers.iter().enumerate() {
        let name = parse_header_name(name).map_err(|m| CompareRuleError::entry("unordered_headers", index, m))?;
        add(name.clone());
        unordered.push(name);
    }
    for (index, name) in spec.ignore_headers.iter().enumerate() {
        let name = parse_header_name(name).map_err(|m| CompareRuleError::entry("ignore_headers", index, m))?;
        headers.retain(|h| *h != name);
    }
    Ok((headers, unordered))
}

fn compile_normalizers(
    spec: &CompareSpec,
    headers: &[HeaderName],
    patterns: &mut PatternTrie,
) -> Result<Vec<Normalizer>, CompareRuleError> {
    let mut normalizers = Vec::with_capacity(spec.normalize.len());
    for (index, entry) in spec.normalize.iter().enumerate() {
        let fail = |message: String| CompareRuleError::entry("normalize", index, message);
        let bad = |e: regex::Error| {
            fail(format!(
                "`pattern` `{}` is not a valid regex: {}",
                entry.pattern,
                one_line(&e)
            ))
        };
        let scope = match (&entry.pointer, &entry.header) {
            (Some(_), Some(_)) => return Err(fail("give `pointer` or `header`, not both".to_owned())),
            (Some(pointer), None) => {
                let segments = parse_pattern(pointer).map_err(|m| fail(format!("`pointer`: {m}")))?;
                patterns.insert(&segments, Mark::Normalize(index));
                Scope::Pointer {
                    whole_body: segments.is_empty(),
                }
            }
            (None, Some(header)) => {
                let name = parse_header_name(header).map_err(|m| fail(format!("`header`: {m}")))?;
                if !headers.contains(&name) {
                    return Err(fail(format!("`header` `{name}` is not compared: add it to `headers`")));
                }
                Scope::Header(name)
            }
            (None, None) => Scope::Body,
        };
        normalizers.push(Normalizer {
            text: regex::Regex::new(&entry.pattern).map_err(bad)?,
            bytes: regex::bytes::Regex::new(&entry.pattern).map_err(bad)?,
            replace: entry.replace.clone(),
            scope,
        });
    }
    Ok(normalizers)
}

fn compile_divergences(specs: &[RouteDivergenceSpec]) -> Result<Vec<RouteDivergence>, CompareRuleError> {
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let fail = |message: String| CompareRuleError::entry("divergences", index, message);
            let method = spec
                .method
                .as_deref()
                .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| fail(format!("bad method `{m}`"))))
                .transpose()?;
            if !spec.path.starts_with('/') {
                return Err(fail(format!("`path` `{}` must start with `/`", spec.path)));
            }
            let divergence = Divergence::from_spec(&spec.expectation()).map_err(fail)?;
            if spec.name.as_deref().is_some_and(str::is_empty) {
                return Err(fail("`name` is empty".to_owned()));
            }
            Ok(RouteDivergence {
                method,
                name: spec.name.clone(),
                path: spec.path.clone(),
                divergence: Arc::new(divergence),
            })
        })
        .collect()
}

/// One compiled `normalize` entry: the same regex for string values and for raw bodies.
#[derive(Debug, Clone)]
pub(super) struct Normalizer {
    text: regex::Regex,
    bytes: regex::bytes::Regex,
    replace: String,
    scope: Scope,
}

/// What a `normalize` entry applies to.
#[derive(Debug, Clone)]
enum Scope {
    /// Every JSON string value and a whole non-JSON body.
    Body,
    /// JSON string values at or below a pointer pattern (the trie knows which); the whole
    /// non-JSON body too when the pattern is `""`.
    Pointer { whole_body: bool },
    /// One header's value.
    Header(HeaderName),
}

#[derive(Debug, Clone, Copy)]
enum Mark {
    Ignore,
    Unordered,
    /// The scoped `normalize` entry of this index.
    Normalize(usize),
}

/// The pointer patterns as a trie of escaped segments. A walk keeps the set of trie nodes
/// its current pointer reaches ("states"); that set is empty, and costs nothing, wherever
/// no pattern can match.
#[derive(Debug, Clone, Default)]
pub(super) struct PatternTrie {
    /// Node 0 is the root (the empty pointer) once a pattern is inserted.
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct TrieNode {
    literal: HashMap<Box<str>, usize>,
    wildcard: Option<usize>,
    /// An `ignore` pattern ends here.
    pub(super) ignore: bool,
    /// An `unordered_arrays` pattern ends here.
    pub(super) unordered: bool,
    /// Scoped `normalize` entries (their indices) covering this node's subtree: only on
    /// subtree nodes, which match every descendant through a wildcard to themselves.
    normalize: Vec<usize>,
    /// The subtree node of a pattern ending here, carried by every state below.
    subtree: Option<usize>,
}

impl PatternTrie {
    fn insert(&mut self, segments: &[&str], mark: Mark) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut at = 0;
        for segment in segments {
            let next = self.nodes.len();
            let node = &mut self.nodes[at];
            let child = if *segment == "*" {
                *node.wildcard.get_or_insert(next)
            } else {
                *node.literal.entry((*segment).into()).or_insert(next)
            };
            if child == next {
                self.nodes.push(TrieNode::default());
            }
            at = child;
        }
        match mark {
            Mark::Ignore => self.nodes[at].ignore = true,
            Mark::Unordered => self.nodes[at].unordered = true,
            Mark::Normalize(index) => {
                let subtree = match self.nodes[at].subtree {
                    Some(subtree) => subtree,
                    None => {
                        let subtree = self.nodes.len();
                        self.nodes.push(TrieNode {
                            wildcard: Some(subtree),
                            ..TrieNode::default()
                        });
                        self.nodes[at].subtree = Some(subtree);
                        subtree
                    }
                };
                self.nodes[subtree].normalize.push(index);
            }
        }
    }

    /// The states of the empty pointer (the whole body).
    pub(super) fn root(&self) -> Vec<usize> {
        let mut states = Vec::new();
        self.enter(&mut states, 0);
        states
    }

    /// Adds `state` and its subtree node, if any.
    fn enter(&self, states: &mut Vec<usize>, state: usize) {
        if let Some(node) = self.nodes.get(state) {
            states.push(state);
            if let Some(subtree) = node.subtree {
                states.push(subtree);
            }
        }
    }

    /// The states one escaped segment below `states`.
    pub(super) fn child(&self, states: &[usize], segment: &str) -> Vec<usize> {
        let mut next = Vec::new();
        for &state in states {
            if let Some(node) = self.nodes.get(state) {
                if let Some(&c) = node.literal.get(segment) {
                    self.enter(&mut next, c);
                }
                if let Some(c) = node.wildcard {
                    self.enter(&mut next, c);
                }
            }
        }
        if next.len() > 1 {
            next.sort_unstable();
            next.dedup();
        }
        next
    }

    /// The states of an escaped pointer (`""` or `/a/0`).
    pub(super) fn states_at(&self, pointer: &str) -> Vec<usize> {
        let mut states = self.root();
        for segment in pointer.split('/').skip(1) {
            if states.is_empty() {
                break;
            }
            states = self.child(&states, segment);
        }
        states
    }

    /// Whether the scoped `normalize` entry `index` covers the node of these states.
    fn normalizes(&self, states: &[usize], index: usize) -> bool {
        self.any(states, |n| n.normalize.contains(&index))
    }

    /// Whether the states include an ignored node.
    pub(super) fn ignored(&self, states: &[usize]) -> bool {
        self.any(states, |n| n.ignore)
    }

    fn any(&self, states: &[usize], f: impl Fn(&TrieNode) -> bool) -> bool {
        states.iter().any(|&s| self.nodes.get(s).is_some_and(&f))
    }
}

/// Splits a pointer pattern into its escaped segments, checking RFC 6901 syntax.
fn parse_pattern(pattern: &str) -> Result<Vec<&str>, String> {
    if pattern.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err(format!(
            "`{pattern}` is not a JSON Pointer: it must be empty or start with `/`"
        ));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    for segment in &segments {
        let mut chars = segment.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(format!(
                    "`{pattern}` is not a JSON Pointer: `~` must be followed by `0` (for `~`) or `1` (for `/`)"
                ));
            }
        }
    }
    Ok(segments)
}

fn parse_header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("`{name}` is not a valid header name"))
}

/// A regex error in one line: the syntax errors of `regex` end with `error: WHAT` after a
/// multi-line picture of the pattern.
fn one_line(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    last.trim().trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_names_the_rules_as_values() {
        let empty = CompareRules::from_spec(&CompareSpec::default()).unwrap();
        assert_eq!(empty.digest(), CompareRules::default().digest());
        assert_eq!(empty.digest().len(), 12);
        let ignoring = |pointer: &str| CompareSpec {
            ignore: vec![pointer.to_owned()],
            ..CompareSpec::default()
        };
        let a = CompareRules::from_spec(&ignoring("/a")).unwrap();
        let again = CompareRules::from_spec(&ignoring("/a")).unwrap();
        let b = CompareRules::from_spec(&ignoring("/b")).unwrap();
        assert_eq!(a.digest(), again.digest());
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.digest(), empty.digest());
    }

    #[test]
    fn patterns_parse_escaped_segments() {
        let cases: &[(&str, Result<Vec<&str>, ()>)] = &[
            ("", Ok(vec![])),
            ("/", Ok(vec![""])),
            ("/a/b", Ok(vec!["a", "b"])),
            ("/*/id", Ok(vec!["*", "id"])),
            ("/a~1b/m~0n", Ok(vec!["a~1b", "m~0n"])),
            ("a", Err(())),
            ("/a~2", Err(())),
            ("/a~", Err(())),
        ];
        for (pattern, expected) in cases {
            let got = parse_pattern(pattern).map_err(|_| ());
            assert_eq!(&got, expected, "{pattern}");
        }
    }

    #[test]
    fn trie_states_follow_literals_and_wildcards() {
        let mut trie = PatternTrie::default();
        trie.insert(&["items", "*", "created"], Mark::Ignore);
        trie.insert(&["*", "id"], Mark::Ignore);
        trie.insert(&["items"], Mark::Unordered);
        let root = trie.root();
        let items = trie.child(&root, "items");
        assert_eq!(items.len(), 2);
        assert!(trie.any(&items, |n| n.unordered));
        assert!(!trie.ignored(&items));
        let id = trie.child(&items, "id");
        assert!(trie.ignored(&id), "/*/id matches /items/id");
        let zero = trie.child(&items, "0");
        assert!(trie.ignored(&trie.child(&zero, "created")));
        assert!(!trie.ignored(&trie.child(&zero, "name")));
        assert!(trie.child(&[], "anything").is_empty());
    }

    fn rules(spec: &str) -> CompareRules {
        CompareRules::from_spec(&toml::from_str::<CompareSpec>(spec).unwrap()).unwrap()
    }

    #[test]
    fn location_path_keeps_path_and_query_only() {
        let cases = [
            ("http://book.local:5000/api/thoughts/", "/api/thoughts/"),
            ("https://h/a?b=1#frag", "/a?b=1"),
            ("//h:1/x", "/x"),
            ("http://h", "/"),
            ("http://h?q", "/?q"),
            ("/api/thoughts/", "/api/thoughts/"),
            ("  /a#f ", "/a"),
            ("../up", "../up"),
            ("weird:/x", "weird:/x"),
        ];
        for (value, want) in cases {
            assert_eq!(location_path(value), want, "{value}");
        }
    }

    #[test]
    fn location_and_unordered_headers_are_compared_as_configured() {
        let r = rules("location = \"path\"\nunordered_headers = [\"allow\", \"Vary\"]");
        let names: Vec<&str> = r.headers().iter().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "location", "allow", "vary"]);
        let location = http::header::LOCATION;
        assert!(r.header_equal(&location, Some("http://h:5000/a/?x=1"), Some("/a/?x=1")));
        assert!(!r.header_equal(&location, Some("http://h/a/"), Some("/b/")));
        assert!(!r.header_equal(&location, Some("/a/"), None));
        let allow = HeaderName::from_static("allow");
        assert!(r.header_equal(&allow, Some("GET, HEAD, OPTIONS"), Some("OPTIONS,GET,HEAD, HEAD")));
        assert!(!r.header_equal(&allow, Some("GET, HEAD, OPTIONS"), Some("GET,HEAD")));
        // Without the settings, the values are compared as they are.
        let plain = rules("headers = [\"location\", \"allow\"]");
        assert!(!plain.header_equal(&location, Some("http://h/a/"), Some("/a/")));
        assert!(!plain.header_equal(&allow, Some("GET, HEAD"), Some("GET,HEAD")));
        // ignore_headers still wins.
        let ignored = rules("location = \"path\"\nignore_headers = [\"location\"]");
        assert!(!ignored.headers().contains(&location));
    }

    #[test]
    fn scoped_normalizers_cover_their_subtree_or_their_header() {
        let r = rules(
            r##"headers = ["content-type", "x-id"]
normalize = [
  { pattern = "\\d+", replace = "N", pointer = "/items/*/id" },
  { pattern = "^v", replace = "", pointer = "" },
  { pattern = "[0-9]+", replace = "#", header = "x-id" },
]"##,
        );
        let states = r.patterns.states_at("/items/3/id");
        assert_eq!(r.normalize_str("a1", &states), "aN");
        let below = r.patterns.states_at("/items/3/id/deeper");
        assert_eq!(r.normalize_str("a1", &below), "aN");
        let elsewhere = r.patterns.states_at("/items/3/name");
        assert_eq!(r.normalize_str("va1", &elsewhere), "a1", "only the root-scoped entry");
        assert_eq!(
            r.normalize_bytes(b"v12"),
            &b"12"[..],
            "pointer \"\" covers a non-JSON body"
        );
        let id = HeaderName::from_static("x-id");
        assert!(r.header_equal(&id, Some("req-12"), Some("req-7")));
        assert!(!r.header_equal(&http::header::CONTENT_TYPE, Some("a1"), Some("a2")));
    }

    #[test]
    fn bad_scopes_and_divergences_name_the_entry() {
        let cases = [
            (
                "normalize = [{ pattern = \"a\", replace = \"\", pointer = \"/a\", header = \"x\" }]",
                "normalize[0]: give `pointer` or `header`, not both",
            ),
            (
                "normalize = [{ pattern = \"a\", replace = \"\", pointer = \"a\" }]",
                "normalize[0]: `pointer`: `a` is not a JSON Pointer",
            ),
            (
                "normalize = [{ pattern = \"a\", replace = \"\", header = \"x-id\" }]",
                "normalize[0]: `header` `x-id` is not compared",
            ),
            (
                "unordered_headers = [\"a b\"]",
                "unordered_headers[0]: `a b` is not a valid header name",
            ),
            (
                "divergences = [{ path = \"x\", reason = \"r\", status = { legacy = 1, new = 2 } }]",
                "divergences[0]: `path` `x` must start with `/`",
            ),
            (
                "divergences = [{ path = \"/x\", reason = \"r\" }]",
                "divergences[0]: lists no difference",
            ),
            (
                "divergences = [{ path = \"/x\", method = \"G T\", reason = \"r\", status = { legacy = 500, new = 401 } }]",
                "divergences[0]: bad method `G T`",
            ),
        ];
        for (spec, want) in cases {
            let spec: CompareSpec = toml::from_str(spec).unwrap();
            let got = CompareRules::from_spec(&spec).unwrap_err().to_string();
            assert!(got.starts_with(want), "{got}");
        }
        assert!(toml::from_str::<CompareSpec>("location = \"host\"").is_err());
    }

    #[test]
    fn a_routes_divergence_covers_its_method_and_path() {
        let r = rules(
            r#"[[divergences]]
method = "GET"
path = "/api/thoughts/abc/"
reason = "the book has no such route"
headers = { "content-type" = { legacy = "text/html", new = "application/json" } }

[[divergences]]
path = "/search?q=_"
reason = "wildcards"
status = { legacy = 200, new = 400 }

[[divergences]]
path = "/api/thoughts/abc/?q=exact"
reason = "the exact query"
status = { legacy = 500, new = 401 }

[[divergences]]
name = "GET /me (line 7)"
path = "/me"
reason = "another token"
status = { legacy = 500, new = 401 }
"#,
        );
        let found = |m: Method, t: &str| r.divergence_for(&m, t, "some name").map(|d| d.reason.clone());
        assert_eq!(
            found(Method::GET, "/api/thoughts/abc/").as_deref(),
            Some("the book has no such route")
        );
        assert_eq!(
            found(Method::GET, "/api/thoughts/abc/?x=1").as_deref(),
            Some("the book has no such route")
        );
        assert_eq!(found(Method::POST, "/api/thoughts/abc/"), None);
        assert_eq!(found(Method::GET, "/api/thoughts/abc"), None);
        assert_eq!(found(Method::POST, "/search?q=_").as_deref(), Some("wildcards"));
        assert_eq!(found(Method::GET, "/search?q=a"), None);
        assert_eq!(found(Method::GET, "/search"), None);
        assert_eq!(
            found(Method::GET, "/api/thoughts/abc/?q=_").as_deref(),
            Some("the book has no such route")
        );
        // An entry with the exact query wins over an earlier one for the path alone.
        assert_eq!(
            found(Method::GET, "/api/thoughts/abc/?q=exact").as_deref(),
            Some("the exact query")
        );
        // A named entry covers only the request of that name.
        assert_eq!(found(Method::GET, "/me"), None);
        let named = r.divergence_for(&Method::GET, "/me", "GET /me (line 7)");
        assert_eq!(named.map(|d| d.reason.as_str()), Some("another token"));
    }

    #[test]
    fn regex_errors_are_one_line() {
        let spec = CompareSpec {
            normalize: vec![NormalizeSpec {
                pattern: "(".into(),
                replace: String::new(),
                pointer: None,
                header: None,
            }],
            ..CompareSpec::default()
        };
        let error = CompareRules::from_spec(&spec).unwrap_err();
        assert!(!error.to_string().contains('\n'), "{error}");
    }
}

//! Comparison rules: the [`CompareSpec`] a route writes in its config, and the
//! [`CompareRules`] compiled from it once per route per reload.
//!
//! ```text
//! compare = { ... } --(serde, deny_unknown_fields)--> CompareSpec
//!                   --(CompareRules::from_spec)-----> CompareRules (regexes compiled, pointer trie built)
//! ```
//!
//! Pointer patterns (`ignore`, `unordered_arrays`) are JSON Pointers (RFC 6901) where a
//! segment `*` matches exactly one segment, any key or index. They are kept in their
//! escaped form (`~0`, `~1`) and matched against the escaped segments of the pointer being
//! walked, so a key is never unescaped to be looked up. A pattern applies to the node it
//! matches and, because the walk stops or switches mode there, to everything below it.

use std::collections::HashMap;
use std::fmt;

use http::HeaderName;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// How two responses of one route are compared, as written in the config. Every field is
/// optional; the defaults compare the status, `content-type` and the whole body.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
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
    /// value, or to the whole body when it is not JSON.
    pub normalize: Vec<NormalizeSpec>,
    /// Arrays whose order does not matter: all of them, or those at these pointer patterns.
    pub unordered_arrays: UnorderedArrays,
    /// Two JSON numbers are equal when they differ by at most this much. Without it,
    /// numbers are equal only when they are the same number of the same kind (`1` ≠ `1.0`).
    pub numeric_tolerance: Option<f64>,
}

/// One `normalize` entry: every match of `pattern` becomes `replace`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeSpec {
    /// A regex in the syntax of the `regex` crate.
    pub pattern: String,
    /// The replacement; `$1` or `${name}` refer to capture groups.
    pub replace: String,
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
    /// Applied in order, each to the output of the previous one.
    pub(super) normalizers: Vec<Normalizer>,
    /// `ignore` and `unordered_arrays` patterns.
    pub(super) patterns: PatternTrie,
    /// `unordered_arrays = true`.
    pub(super) unordered_everywhere: bool,
    /// `numeric_tolerance`.
    pub(super) tolerance: Option<f64>,
    /// Short hex digest of the spec the rules were compiled from (see [`CompareRules::digest`]).
    digest: String,
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
            digest: spec_digest(&CompareSpec::default()),
        }
    }
}

/// The digest of a spec's canonical form (its `Debug` rendering: every field, in
/// declaration order, so two specs written differently in TOML but equal as values agree).
fn spec_digest(spec: &CompareSpec) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{spec:?}").as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl CompareRules {
    /// Compiles a spec. Fails on the first bad entry, in field order: `ignore`,
    /// `unordered_arrays`, `headers`, `ignore_headers`, `normalize`, `numeric_tolerance`.
    pub fn from_spec(spec: &CompareSpec) -> Result<Self, CompareRuleError> {
        let mut patterns = PatternTrie::default();
        for (index, pattern) in spec.ignore.iter().enumerate() {
            let segments =
                parse_pattern(pattern).map_err(|message| CompareRuleError::entry("ignore", index, message))?;
            patterns.insert(&segments, Mark::Ignore);
        }
        let mut unordered_everywhere = false;
        match &spec.unordered_arrays {
            UnorderedArrays::Nowhere => {}
            UnorderedArrays::Everywhere => unordered_everywhere = true,
            UnorderedArrays::At(list) => {
                for (index, pattern) in list.iter().enumerate() {
                    let segments = parse_pattern(pattern)
                        .map_err(|message| CompareRuleError::entry("unordered_arrays", index, message))?;
                    patterns.insert(&segments, Mark::Unordered);
                }
            }
        }

        let mut headers = Vec::new();
        match &spec.headers {
            None => headers.push(http::header::CONTENT_TYPE),
            Some(names) => {
                for (index, name) in names.iter().enumerate() {
                    let name = parse_header_name(name).map_err(|m| CompareRuleError::entry("headers", index, m))?;
                    if !headers.contains(&name) {
                        headers.push(name);
                    }
                }
            }
        }
        for (index, name) in spec.ignore_headers.iter().enumerate() {
            let name = parse_header_name(name).map_err(|m| CompareRuleError::entry("ignore_headers", index, m))?;
            headers.retain(|h| *h != name);
        }

        let mut normalizers = Vec::with_capacity(spec.normalize.len());
        for (index, entry) in spec.normalize.iter().enumerate() {
            let bad = |e: regex::Error| {
                CompareRuleError::entry(
                    "normalize",
                    index,
                    format!("`pattern` `{}` is not a valid regex: {}", entry.pattern, one_line(&e)),
                )
            };
            normalizers.push(Normalizer {
                text: regex::Regex::new(&entry.pattern).map_err(bad)?,
                bytes: regex::bytes::Regex::new(&entry.pattern).map_err(bad)?,
                replace: entry.replace.clone(),
            });
        }

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

        Ok(Self {
            headers,
            normalizers,
            patterns,
            unordered_everywhere,
            tolerance,
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

    /// Applies the normalisers to a JSON string value. Borrows when nothing matched.
    pub(super) fn normalize_str<'s>(&self, s: &'s str) -> std::borrow::Cow<'s, str> {
        let mut out = std::borrow::Cow::Borrowed(s);
        for n in &self.normalizers {
            if let std::borrow::Cow::Owned(replaced) = n.text.replace_all(&out, n.replace.as_str()) {
                out = std::borrow::Cow::Owned(replaced);
            }
        }
        out
    }

    /// Applies the normalisers to a whole non-JSON body. Borrows when nothing matched.
    pub(super) fn normalize_bytes<'b>(&self, b: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        let mut out = std::borrow::Cow::Borrowed(b);
        for n in &self.normalizers {
            if let std::borrow::Cow::Owned(replaced) = n.bytes.replace_all(&out, n.replace.as_bytes()) {
                out = std::borrow::Cow::Owned(replaced);
            }
        }
        out
    }

    /// Whether the array reached with these pattern states is compared as a multiset.
    pub(super) fn unordered_at(&self, states: &[usize]) -> bool {
        self.unordered_everywhere || self.patterns.any(states, |n| n.unordered)
    }
}

/// One compiled `normalize` entry: the same regex for string values and for raw bodies.
#[derive(Debug, Clone)]
pub(super) struct Normalizer {
    text: regex::Regex,
    bytes: regex::bytes::Regex,
    replace: String,
}

#[derive(Debug, Clone, Copy)]
enum Mark {
    Ignore,
    Unordered,
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
        let node = &mut self.nodes[at];
        match mark {
            Mark::Ignore => node.ignore = true,
            Mark::Unordered => node.unordered = true,
        }
    }

    /// The states of the empty pointer (the whole body).
    pub(super) fn root(&self) -> Vec<usize> {
        if self.nodes.is_empty() { Vec::new() } else { vec![0] }
    }

    /// The states one escaped segment below `states`.
    pub(super) fn child(&self, states: &[usize], segment: &str) -> Vec<usize> {
        let mut next = Vec::new();
        for &state in states {
            if let Some(node) = self.nodes.get(state) {
                if let Some(&c) = node.literal.get(segment) {
                    next.push(c);
                }
                if let Some(c) = node.wildcard {
                    next.push(c);
                }
            }
        }
        next
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

    #[test]
    fn regex_errors_are_one_line() {
        let spec = CompareSpec {
            normalize: vec![NormalizeSpec {
                pattern: "(".into(),
                replace: String::new(),
            }],
            ..CompareSpec::default()
        };
        let error = CompareRules::from_spec(&spec).unwrap_err();
        assert!(!error.to_string().contains('\n'), "{error}");
    }
}

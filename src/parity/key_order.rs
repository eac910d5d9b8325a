//! `compare.key_order = true`: the order of an object's keys on the wire is part of the
//! answer. JSON objects are unordered by RFC 8259, and the comparison ignores order by
//! default; a client that reads keys positionally (a hand-written parser, a CSV export of
//! the JSON, a golden-file test) breaks when a port reorders them, so a migration may ask
//! for the order to be kept. Compared on the [`Wire`] trees of the two bodies: for every
//! object both sides have at the same pointer, the keys both have must come in the same
//! order (a key only one side has is the value comparison's to report). Ignored pointers
//! are skipped with everything below them; arrays are followed index by index, unless the
//! rules compare them unordered (their elements are then paired by value, not position).

use super::rules::CompareRules;
use super::wire::{Wire, push_escaped};

/// An object whose shared keys come in another order on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyOrder {
    /// The object's JSON Pointer (`""`: the whole body).
    pub pointer: String,
    /// Its shared keys in legacy's order, then in new's, `", "`-separated.
    pub legacy: String,
    pub new: String,
}

/// Every object of `legacy` and `new` (the two bodies' wire trees) whose shared keys differ
/// in order, outermost first.
pub(super) fn differences(rules: &CompareRules, legacy: &Wire, new: &Wire) -> Vec<KeyOrder> {
    let mut walk = Walk {
        rules,
        pointer: String::new(),
        found: Vec::new(),
    };
    let root = rules.patterns.root();
    if !rules.patterns.ignored(&root) {
        walk.value(legacy, new, &root);
    }
    walk.found
}

struct Walk<'r> {
    rules: &'r CompareRules,
    pointer: String,
    found: Vec<KeyOrder>,
}

impl Walk<'_> {
    fn value(&mut self, a: &Wire, b: &Wire, states: &[usize]) {
        match (a, b) {
            (Wire::Object(x), Wire::Object(y)) => self.object(x, y, states),
            (Wire::Array(x), Wire::Array(y)) if !self.rules.unordered_at(states) => {
                for (i, (a, b)) in x.iter().zip(y).enumerate() {
                    self.child(&i.to_string(), states, |walk, child| walk.value(a, b, child));
                }
            }
            _ => {}
        }
    }

    fn object(&mut self, x: &[(String, Wire)], y: &[(String, Wire)], states: &[usize]) {
        let shared = |of: &[(String, Wire)], other: &[(String, Wire)]| -> Vec<String> {
            of.iter()
                .filter(|(key, _)| other.iter().any(|(k, _)| k == key))
                .filter(|(key, _)| !self.ignored(key, states))
                .map(|(key, _)| key.clone())
                .collect()
        };
        let (in_x, in_y) = (shared(x, y), shared(y, x));
        if in_x != in_y {
            self.found.push(KeyOrder {
                pointer: self.pointer.clone(),
                legacy: in_x.join(", "),
                new: in_y.join(", "),
            });
        }
        for key in &in_x {
            // A repeated key: the last one counts, as for the value comparison.
            if let (Some(a), Some(b)) = (last_of(x, key), last_of(y, key)) {
                self.child(key, states, |walk, child| walk.value(a, b, child));
            }
        }
    }

    /// Whether the pattern states below `key` say it is ignored.
    fn ignored(&self, key: &str, states: &[usize]) -> bool {
        let mut segment = String::new();
        push_escaped(&mut segment, key);
        !states.is_empty()
            && self
                .rules
                .patterns
                .ignored(&self.rules.patterns.child(states, &segment))
    }

    /// Runs `then` one segment down (`key` unescaped), unless that is ignored.
    fn child(&mut self, key: &str, states: &[usize], then: impl FnOnce(&mut Self, &[usize])) {
        let len = self.pointer.len();
        self.pointer.push('/');
        push_escaped(&mut self.pointer, key);
        let segment = self.pointer.get(len + 1..).unwrap_or_default().to_owned();
        let child = if states.is_empty() {
            Vec::new()
        } else {
            self.rules.patterns.child(states, &segment)
        };
        if !self.rules.patterns.ignored(&child) {
            then(self, &child);
        }
        self.pointer.truncate(len);
    }
}

/// The value of `key` in an object (the last, when the key is repeated).
fn last_of<'w>(object: &'w [(String, Wire)], key: &str) -> Option<&'w Wire> {
    object.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::CompareSpec;

    fn rules(toml: &str) -> CompareRules {
        let spec: CompareSpec = toml::from_str(toml).unwrap();
        CompareRules::from_spec(&spec).unwrap()
    }

    fn wire(json: &str) -> Wire {
        serde_json::from_str(json).unwrap()
    }

    fn found(rules: &CompareRules, a: &str, b: &str) -> Vec<(String, String, String)> {
        differences(rules, &wire(a), &wire(b))
            .into_iter()
            .map(|d| (d.pointer, d.legacy, d.new))
            .collect()
    }

    #[test]
    fn reordered_objects_are_found_at_every_depth() {
        let r = rules("key_order = true");
        let legacy = r#"{"id": 1, "user": {"name": "a", "id": 2}, "items": [{"x": 1, "y": 2}]}"#;
        let new = r#"{"user": {"id": 2, "name": "a"}, "id": 1, "items": [{"y": 2, "x": 1}]}"#;
        assert_eq!(
            found(&r, legacy, new),
            [
                (
                    "".to_owned(),
                    "id, user, items".to_owned(),
                    "user, id, items".to_owned()
                ),
                ("/user".to_owned(), "name, id".to_owned(), "id, name".to_owned()),
                ("/items/0".to_owned(), "x, y".to_owned(), "y, x".to_owned()),
            ]
        );
        assert!(found(&r, legacy, legacy).is_empty());
    }

    #[test]
    fn keys_of_one_side_ignored_pointers_and_unordered_arrays_are_not_order() {
        let r = rules("key_order = true\nignore = [\"/b\"]\nunordered_arrays = [\"/list\"]");
        // `extra` is the value comparison's; `/b` is ignored, so a, c keep their order.
        assert!(
            found(
                &r,
                r#"{"a": 1, "b": 2, "c": 3}"#,
                r#"{"b": 2, "extra": 0, "a": 1, "c": 3}"#
            )
            .is_empty()
        );
        assert!(found(&r, r#"{"list": [{"p": 1, "q": 2}]}"#, r#"{"list": [{"q": 2, "p": 1}]}"#).is_empty());
        assert_eq!(
            found(&r, r#"{"a": 1, "c": 3}"#, r#"{"c": 3, "a": 1}"#),
            [("".to_owned(), "a, c".to_owned(), "c, a".to_owned())]
        );
    }
}

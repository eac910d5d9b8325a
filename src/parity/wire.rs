//! JSON as it came on the wire, for showing a difference: [`serde_json::Value`] keeps object
//! keys sorted (the comparison needs no order), so a value rendered from it shows keys in
//! an order neither side sent. A [`Wire`] tree keeps each object's keys in the order of the
//! body; the report looks a difference's pointer up in it and renders that.
//!
//! Parsed only when a difference holding an object or array is kept, at most once per
//! side. Numbers are kept as serde_json reads them and strings decoded (re-encoded when
//! shown): the order of keys is what is kept, not the exact bytes.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;

/// A JSON value with the order of object keys as in its text.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Wire {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Wire>),
    /// Keys in the order of the text; a repeated key is kept twice (lookup takes the last,
    /// as [`serde_json::Value`] does).
    Object(Vec<(String, Wire)>),
}

impl Wire {
    /// The value at an RFC 6901 pointer (`""` is the whole value), if there is one.
    pub fn at(&self, pointer: &str) -> Option<&Wire> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut node = self;
        for segment in pointer.strip_prefix('/')?.split('/') {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            node = match node {
                Wire::Object(entries) => entries.iter().rev().find(|(key, _)| *key == segment).map(|(_, v)| v)?,
                Wire::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
pub(super) fn push_escaped(out: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

impl Serialize for Wire {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Wire::Null => serializer.serialize_unit(),
            Wire::Bool(b) => serializer.serialize_bool(*b),
            Wire::Number(n) => n.serialize(serializer),
            Wire::String(s) => serializer.serialize_str(s),
            Wire::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Wire::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Wire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Wire;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Wire, E> {
        Ok(Wire::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Wire, E> {
        Ok(Wire::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Wire, E> {
        Ok(Wire::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Wire, E> {
        Ok(Wire::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Wire, E> {
        Ok(Number::from_f64(n).map_or(Wire::Null, Wire::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Wire, E> {
        Ok(Wire::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Wire, E> {
        Ok(Wire::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Wire, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Wire::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Wire>()? {
            entries.push(entry);
        }
        Ok(Wire::Object(entries))
    }
}

/// A body's [`Wire`] tree, parsed on first use; `None` when the body is not JSON.
#[derive(Debug, Default)]
pub(super) struct LazyWire {
    parsed: Option<Option<Wire>>,
}

impl LazyWire {
    /// The tree of `body`, parsed the first time.
    pub fn get(&mut self, body: &[u8]) -> Option<&Wire> {
        self.parsed
            .get_or_insert_with(|| serde_json::from_slice(body).ok())
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(text: &str) -> Wire {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn keys_keep_their_order() {
        let text = r#"{"zeta":1,"alpha":{"b":[1,2.5,"x\n"],"a":null},"mid":true}"#;
        assert_eq!(serde_json::to_string(&wire(text)).unwrap(), text);
        // serde_json's Value sorts them.
        let sorted: serde_json::Value = serde_json::from_str(text).unwrap();
        assert!(sorted.to_string().starts_with(r#"{"alpha""#));
    }

    #[test]
    fn pointers_find_values() {
        let w = wire(r#"{"a/b":{"c~d":[10,{"z":1,"y":2}]},"k":1,"k":2}"#);
        let at = |p: &str| w.at(p).map(|v| serde_json::to_string(v).unwrap());
        assert_eq!(at("/a~1b/c~0d/1").as_deref(), Some(r#"{"z":1,"y":2}"#));
        assert_eq!(at("/a~1b/c~0d/0").as_deref(), Some("10"));
        assert_eq!(at("/k").as_deref(), Some("2"), "the last of a repeated key");
        assert_eq!(at("").as_deref().map(|s| s.len()), Some(w.to_string_len()));
        assert_eq!(at("/nope"), None);
        assert_eq!(at("/k/0"), None);
        assert_eq!(at("/a~1b/c~0d/9"), None);
        assert_eq!(at("no-slash"), None);
    }

    impl Wire {
        fn to_string_len(&self) -> usize {
            serde_json::to_string(self).unwrap().len()
        }
    }

    #[test]
    fn lazy_parses_once_and_refuses_non_json() {
        let mut lazy = LazyWire::default();
        assert!(lazy.get(b"{\"b\":1,\"a\":2}").is_some());
        // Parsed already: another body is not looked at.
        assert!(lazy.get(b"not json").is_some());
        assert!(LazyWire::default().get(b"not json").is_none());
    }
}

//! Divergences: known, deliberate differences between the legacy and the new answer to one
//! request, stated so that a replay can prove them instead of hiding them with `ignore`.
//!
//! ```text
//! corpus line "expect": {...}          --(serde)--> DivergenceSpec      --\
//! [[routes.compare.divergences]] entry --(serde)--> RouteDivergenceSpec --+--> Divergence (checked)
//! ```
//!
//! A divergence lists fields: the status pair, JSON Pointers into the body (`""` is the
//! whole body) and headers, each with the value it has on each side, or `"*"` ("any value,
//! as long as the two differ"). [`super::compare_expecting`] judges a request against it,
//! after the route's own rules:
//!
//! - `expected`: every listed field is as stated and nothing else differs;
//! - `resolved` (a failure): no listed field differs any more, nor anything else: the
//!   list must be kept true;
//! - `mismatch`: anything else (another field differs, or a listed one differs otherwise).
//!
//! A stated status pair whose two codes are equal is a condition (`404` on both sides),
//! not a difference; a divergence must list at least one difference.

use std::collections::BTreeMap;

use http::HeaderName;
use serde::Deserialize;
use serde_json::Value;

/// What a side is stated to have for a header that it does not send, in TOML (which has no
/// `null`); JSON may say `null` or this.
pub const ABSENT_HEADER: &str = "(absent)";

/// A corpus line's `expect`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DivergenceSpec {
    /// Why this difference is deliberate (required, not blank).
    pub reason: String,
    /// The exact status pair.
    #[serde(default)]
    pub status: Option<StatusPair>,
    /// JSON Pointer (`""`: the whole body) → the two values.
    #[serde(default)]
    pub pointers: BTreeMap<String, ValuePair>,
    /// Header name → the two values (`null` or `"(absent)"`: not sent).
    #[serde(default)]
    pub headers: BTreeMap<String, ValuePair>,
}

/// A route's `[[routes.compare.divergences]]` entry: a [`DivergenceSpec`] and the requests
/// it covers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDivergenceSpec {
    /// Only requests of this method (default: any).
    #[serde(default)]
    pub method: Option<String>,
    /// Only the request of this name (a corpus line's `name`, else its default name
    /// `METHOD path (line N)`): for a request that shares its method and path with others
    /// (another token, another body).
    #[serde(default)]
    pub name: Option<String>,
    /// The exact path as routed (normalised); with a `?`, the exact path and query.
    pub path: String,
    /// Why this difference is deliberate.
    pub reason: String,
    /// The exact status pair.
    #[serde(default)]
    pub status: Option<StatusPair>,
    /// JSON Pointer → the two values.
    #[serde(default)]
    pub pointers: BTreeMap<String, ValuePair>,
    /// Header name → the two values.
    #[serde(default)]
    pub headers: BTreeMap<String, ValuePair>,
}

impl RouteDivergenceSpec {
    /// What the entry expects, without the requests it covers.
    pub fn expectation(&self) -> DivergenceSpec {
        DivergenceSpec {
            reason: self.reason.clone(),
            status: self.status,
            pointers: self.pointers.clone(),
            headers: self.headers.clone(),
        }
    }
}

/// `{legacy = 500, new = 401}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPair {
    /// The legacy status.
    pub legacy: u16,
    /// The new status.
    pub new: u16,
}

/// `{legacy = …, new = …}`: a JSON value per side; `"*"` is any value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuePair {
    /// The legacy value.
    pub legacy: Value,
    /// The new value.
    pub new: Value,
}

/// One side of a listed field.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Stated {
    /// `"*"`: any value, as long as the two sides differ.
    Any,
    /// This JSON value (a header: a string, or `Null` for absent).
    Is(Value),
}

impl Stated {
    fn of(value: &Value) -> Self {
        match value {
            Value::String(s) if s == "*" => Stated::Any,
            other => Stated::Is(other.clone()),
        }
    }

    /// How reports show it: `*`, compact JSON, or [`ABSENT_HEADER`] for a header's `Null`.
    pub(super) fn shown(&self, header: bool) -> String {
        match self {
            Stated::Any => "*".to_owned(),
            Stated::Is(Value::Null) if header => ABSENT_HEADER.to_owned(),
            Stated::Is(Value::String(s)) if header => s.clone(),
            Stated::Is(value) => value.to_string(),
        }
    }
}

/// A checked divergence: what [`super::compare_expecting`] judges a request against.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// Why the difference is deliberate.
    pub reason: String,
    /// `[legacy, new]`.
    pub(super) status: Option<[u16; 2]>,
    /// Escaped JSON Pointers, sorted, with the two sides.
    pub(super) pointers: Vec<(String, Stated, Stated)>,
    /// Lower-case header names, sorted, with the two sides.
    pub(super) headers: Vec<(HeaderName, Stated, Stated)>,
}

impl Divergence {
    /// Checks a spec. The error is one line naming the field at fault.
    pub fn from_spec(spec: &DivergenceSpec) -> Result<Self, String> {
        if spec.reason.trim().is_empty() {
            return Err("`reason` must say why the difference is deliberate".to_owned());
        }
        let status = match spec.status {
            Some(StatusPair { legacy, new }) => {
                for code in [legacy, new] {
                    if !(100..=999).contains(&code) {
                        return Err(format!("`status`: {code} is not an HTTP status"));
                    }
                }
                Some([legacy, new])
            }
            None => None,
        };
        let mut pointers = Vec::with_capacity(spec.pointers.len());
        for (pointer, pair) in &spec.pointers {
            check_pointer(pointer).map_err(|m| format!("`pointers`: {m}"))?;
            let sides = sides(&pair.legacy, &pair.new).map_err(|m| format!("`pointers` `{pointer}`: {m}"))?;
            pointers.push((pointer.clone(), sides.0, sides.1));
        }
        let mut headers = Vec::with_capacity(spec.headers.len());
        for (name, pair) in &spec.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`headers`: `{name}` is not a valid header name"))?;
            let side = |v: &Value| match v {
                Value::Null => Ok(Value::Null),
                Value::String(s) if s == ABSENT_HEADER => Ok(Value::Null),
                Value::String(s) => Ok(Value::String(s.clone())),
                _ => Err(format!(
                    "`headers` `{name}`: each side is a string, \"*\", or null / \"{ABSENT_HEADER}\" for absent"
                )),
            };
            let (legacy, new) = (side(&pair.legacy)?, side(&pair.new)?);
            let sides = sides(&legacy, &new).map_err(|m| format!("`headers` `{name}`: {m}"))?;
            headers.push((header, sides.0, sides.1));
        }
        headers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        headers.dedup_by(|a, b| a.0 == b.0);
        if status.is_none_or(|[l, n]| l == n) && pointers.is_empty() && headers.is_empty() {
            return Err(
                "lists no difference: give `status` with two different codes, `pointers` or `headers`".to_owned(),
            );
        }
        Ok(Self {
            reason: spec.reason.trim().to_owned(),
            status,
            pointers,
            headers,
        })
    }
}

/// The two sides of a listed field; equal stated values are no divergence.
fn sides(legacy: &Value, new: &Value) -> Result<(Stated, Stated), String> {
    let (legacy, new) = (Stated::of(legacy), Stated::of(new));
    if let (Stated::Is(a), Stated::Is(b)) = (&legacy, &new)
        && a == b
    {
        return Err("`legacy` and `new` are the same value: that is no divergence".to_owned());
    }
    Ok((legacy, new))
}

/// RFC 6901 syntax: empty, or `/`-separated segments where `~` is followed by `0` or `1`.
fn check_pointer(pointer: &str) -> Result<(), String> {
    if !(pointer.is_empty() || pointer.starts_with('/')) {
        return Err(format!(
            "`{pointer}` is not a JSON Pointer: it must be empty or start with `/`"
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "`{pointer}` is not a JSON Pointer: `~` must be followed by `0` or `1`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::{Captured, CompareRules, Outcome, compare_expecting};
    use serde_json::json;

    fn spec(value: Value) -> Result<Divergence, String> {
        let spec: DivergenceSpec = serde_json::from_value(value).map_err(|e| e.to_string())?;
        Divergence::from_spec(&spec)
    }

    #[test]
    fn a_divergence_lists_sides_and_any() {
        let d = spec(json!({
            "reason": " book answers HTML ",
            "status": {"legacy": 404, "new": 404},
            "pointers": {"/message": {"legacy": "*", "new": "Not found"}},
            "headers": {"Content-Type": {"legacy": "text/html", "new": null}, "x-a": {"legacy": "(absent)", "new": "1"}}
        }))
        .unwrap();
        assert_eq!(d.reason, "book answers HTML");
        assert_eq!(d.status, Some([404, 404]));
        assert_eq!(
            d.pointers,
            [("/message".to_owned(), Stated::Any, Stated::Is(json!("Not found")))]
        );
        assert_eq!(d.headers[0].0, "content-type");
        assert_eq!(d.headers[0].2, Stated::Is(Value::Null));
        assert_eq!(d.headers[1].1, Stated::Is(Value::Null));
        assert_eq!(d.headers[0].2.shown(true), ABSENT_HEADER);
        assert_eq!(d.pointers[0].2.shown(false), "\"Not found\"");
    }

    fn answer(status: u16, content_type: Option<&str>, body: &str) -> Captured {
        let mut captured = Captured::new(http::StatusCode::from_u16(status).unwrap(), body.to_owned());
        if let Some(ct) = content_type {
            captured
                .headers
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_str(ct).unwrap());
        }
        captured
    }

    fn judged(rules: &str, expect: Value, legacy: &Captured, new: &Captured) -> (Outcome, Vec<String>) {
        let rules = CompareRules::from_spec(&toml::from_str(rules).unwrap()).unwrap();
        let divergence = spec(expect).unwrap();
        let judged = compare_expecting(&rules, legacy, new, None, Some(&divergence));
        (judged.comparison.outcome, judged.unmet)
    }

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn expected_resolved_or_mismatch() {
        let expect = json!({
            "reason": "authorisation first",
            "status": {"legacy": 401, "new": 400},
            "pointers": {"/message": {"legacy": "*", "new": "bad text"}}
        });
        let legacy = answer(401, JSON, r#"{"message": "no token", "code": 1}"#);
        let new = answer(400, JSON, r#"{"message": "bad text", "code": 1}"#);
        assert_eq!(judged("", expect.clone(), &legacy, &new), (Outcome::Expected, vec![]));

        // Something else differs too: a mismatch, whatever the listed fields do.
        let other = answer(400, JSON, r#"{"message": "bad text", "code": 2}"#);
        assert_eq!(judged("", expect.clone(), &legacy, &other).0, Outcome::Mismatch);
        // ... unless the route's rules ignore it.
        assert_eq!(
            judged("ignore = [\"/code\"]", expect.clone(), &legacy, &other).0,
            Outcome::Expected
        );

        // A listed field differs otherwise.
        let otherwise = answer(403, JSON, r#"{"message": "bad text", "code": 1}"#);
        let (outcome, unmet) = judged("", expect.clone(), &legacy, &otherwise);
        assert_eq!(outcome, Outcome::Mismatch);
        assert_eq!(unmet, ["status: stated legacy 401 new 400, got legacy 401 new 403"]);

        // Nothing differs any more: resolved, each listed field said.
        let (outcome, unmet) = judged("", expect.clone(), &legacy, &legacy.clone());
        assert_eq!(outcome, Outcome::Resolved);
        assert_eq!(unmet.len(), 2, "{unmet:?}");
        assert!(
            unmet[1].starts_with("/message: stated legacy * new \"bad text\", got legacy \"no token\""),
            "{unmet:?}"
        );

        // Fixed, but something else broke: a mismatch (the more urgent failure).
        let broken = answer(401, JSON, r#"{"message": "no token", "code": 9}"#);
        assert_eq!(judged("", expect, &legacy, &broken).0, Outcome::Mismatch);
    }

    #[test]
    fn stated_values_pass_through_the_rules() {
        let expect = json!({
            "reason": "ids differ in kind",
            "pointers": {"/id": {"legacy": "u-1", "new": 7}}
        });
        let legacy = answer(200, JSON, r#"{"id": "u-42"}"#);
        let new = answer(200, JSON, r#"{"id": 7}"#);
        let normalize = "normalize = [{ pattern = \"\\\\d+\", replace = \"N\", pointer = \"/id\" }]";
        assert_eq!(judged(normalize, expect.clone(), &legacy, &new).0, Outcome::Expected);
        assert_eq!(judged("", expect, &legacy, &new).0, Outcome::Mismatch);
    }

    #[test]
    fn a_whole_non_json_body_and_headers() {
        let expect = json!({
            "reason": "Werkzeug's HTML 404",
            "status": {"legacy": 404, "new": 404},
            "pointers": {"": {"legacy": "<h1>Not Found</h1>", "new": {"message": "not found"}}},
            "headers": {"content-type": {"legacy": "text/html", "new": "application/json"},
                        "x-powered-by": {"legacy": "*", "new": null}}
        });
        let mut legacy = answer(404, Some("text/html"), "<h1>Not Found</h1>");
        legacy
            .headers
            .insert("x-powered-by", http::HeaderValue::from_static("Werkzeug"));
        let new = answer(404, JSON, r#"{"message": "not found"}"#);
        assert_eq!(judged("", expect.clone(), &legacy, &new), (Outcome::Expected, vec![]));
        // The condition on the status fails: a mismatch naming it.
        let moved = answer(200, Some("text/html"), "<h1>Not Found</h1>");
        let (outcome, unmet) = judged("", expect.clone(), &moved, &new);
        assert_eq!(outcome, Outcome::Mismatch);
        assert!(unmet.iter().any(|u| u.starts_with("status:")), "{unmet:?}");
        assert!(
            unmet
                .iter()
                .any(|u| u.starts_with("header:x-powered-by: stated legacy * new (absent), got legacy (absent)")),
            "{unmet:?}"
        );
        // The stated pair is a condition: statuses that differ now are no resolution.
        let condition = json!({"reason": "r", "status": {"legacy": 404, "new": 404},
                               "pointers": {"/m": {"legacy": 1, "new": 2}}});
        let (legacy, new) = (answer(404, JSON, r#"{"m": 1}"#), answer(200, JSON, r#"{"m": 1}"#));
        assert_eq!(judged("", condition.clone(), &legacy, &new).0, Outcome::Mismatch);
        assert_eq!(judged("", condition, &legacy, &legacy.clone()).0, Outcome::Resolved);
    }

    #[test]
    fn a_listed_field_filling_the_diffs_does_not_hide_another() {
        let items: Vec<u32> = (0..300).collect();
        let legacy = answer(200, JSON, &json!({"items": items, "z": 1}).to_string());
        let shifted: Vec<u32> = (1..301).collect();
        let new = answer(200, JSON, &json!({"items": shifted, "z": 2}).to_string());
        let expect = json!({"reason": "r", "pointers": {"/items": {"legacy": "*", "new": "*"}}});
        assert_eq!(judged("", expect.clone(), &legacy, &new).0, Outcome::Mismatch);
        let same_z = answer(
            200,
            JSON,
            &json!({"items": (1..301).collect::<Vec<u32>>(), "z": 1}).to_string(),
        );
        assert_eq!(judged("", expect, &legacy, &same_z).0, Outcome::Expected);
    }

    #[test]
    fn bad_divergences_say_what_is_wrong() {
        let cases = [
            (
                json!({"reason": " ", "status": {"legacy": 500, "new": 401}}),
                "`reason`",
            ),
            (json!({"reason": "r"}), "lists no difference"),
            (
                json!({"reason": "r", "status": {"legacy": 404, "new": 404}}),
                "lists no difference",
            ),
            (
                json!({"reason": "r", "status": {"legacy": 5, "new": 401}}),
                "not an HTTP status",
            ),
            (
                json!({"reason": "r", "pointers": {"a": {"legacy": 1, "new": 2}}}),
                "not a JSON Pointer",
            ),
            (
                json!({"reason": "r", "pointers": {"/a~2": {"legacy": 1, "new": 2}}}),
                "`~` must be",
            ),
            (
                json!({"reason": "r", "pointers": {"/a": {"legacy": 1, "new": 1}}}),
                "same value",
            ),
            (
                json!({"reason": "r", "headers": {"a b": {"legacy": "1", "new": "2"}}}),
                "not a valid header",
            ),
            (
                json!({"reason": "r", "headers": {"a": {"legacy": 1, "new": "2"}}}),
                "each side is a string",
            ),
            (
                json!({"reason": "r", "headers": {"a": {"legacy": null, "new": "(absent)"}}}),
                "same value",
            ),
            (
                json!({"reason": "r", "pointers": {"/a": {"legacy": 1}}}),
                "missing field `new`",
            ),
            (json!({"reason": "r", "colour": 1}), "unknown field `colour`"),
        ];
        for (value, want) in cases {
            let got = spec(value.clone()).unwrap_err();
            assert!(got.contains(want), "{value}: {got}");
            assert!(!got.contains('\n'), "{got}");
        }
    }
}

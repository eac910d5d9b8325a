//! The JSON Schema of routes.toml, for editors (taplo, Even Better TOML): completion, hover
//! documentation and red squiggles as a table is written. `strangler schema` prints it;
//! docs/routes-toml.schema.json is its checked-in copy.
//!
//! ```text
//! raw::* (#[derive(JsonSchema)], field docs = descriptions) --+
//! the value shapes below (durations, counts, stage names…)  --+--> routes_toml_schema()
//! RoutesFile (the top-level sections, as parse.rs finds them) -+
//! ```
//!
//! The schema is derived from the same serde types that read the file, so a key serde
//! accepts is a key the schema lists, and `deny_unknown_fields` becomes
//! `additionalProperties: false`. The raw types wrap values in `toml::Spanned`, which has no
//! `JsonSchema` impl (and cannot get one here: both are foreign), so each such field says
//! its shape with `#[schemars(with = "…")]`, naming one of the shapes below. A shape
//! restates a check of [`super::validate`] only where it is a fixed bound or a plain
//! pattern; the other checks (conflicts, references to upstreams, paths on disk) stay
//! `strangler check`'s. The schema never refuses a table `check` accepts (tests/it/schema.rs
//! validates every table of the repository against it).
//!
//! Draft 07, not 2020-12: taplo (the TOML language server behind Even Better TOML) reads
//! draft 07 fully.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::Stage;
use super::raw;

/// The JSON Schema (draft 07) of routes.toml.
pub fn routes_toml_schema() -> Value {
    let generator = SchemaSettings::draft07()
        .with_transform(schemars::transform::RecursiveTransform(for_toml))
        .into_generator();
    generator.into_root_schema_for::<RoutesFile>().to_value()
}

/// TOML has no null: an `Option` field is one that may be left out, never one that may be
/// `null`, so the `null` that schemars allows for `Option<T>` is taken out again.
///
/// Also joins the lines of a doc comment back into paragraphs: an editor shows a
/// description as one text, wrapped to its own width.
fn for_toml(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::String(description)) = object.get_mut("description") {
        let paragraphs: Vec<String> = description.split("\n\n").map(|p| p.replace('\n', " ")).collect();
        *description = paragraphs.join("\n\n");
    }
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".to_owned(), only);
        }
    }
    if let Some(Value::Array(choices)) = object.get_mut("enum") {
        choices.retain(|choice| !choice.is_null());
    }
    let is_null = |s: &Value| s.get("type").is_some_and(|t| t == "null");
    if let Some(Value::Array(choices)) = object.get_mut("anyOf") {
        choices.retain(|choice| !is_null(choice));
        if let [only] = choices.as_slice() {
            let only = only.clone();
            object.remove("anyOf");
            if let Value::Object(inner) = only {
                for (key, value) in inner {
                    object.entry(key).or_insert(value);
                }
            }
        }
    }
}

/// A schema from a JSON object literal (never panics, unlike `schemars::json_schema!`).
fn object(value: Value) -> Schema {
    match value {
        Value::Object(map) => Schema::from(map),
        _ => Schema::default(),
    }
}

/// The whole file: the sections `parse.rs` (`Sections::find`) knows. Only the schema uses
/// this type: the file is read a section at a time so that every error is reported.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "only its schema is used, and a test's deserialisation")]
#[schemars(
    title = "strangler routes.toml",
    description = "strangler's routing table: the proxy's settings, the upstreams, the routes that move \
                   requests from legacy to new, and traffic recording. Validate it with `strangler check`."
)]
pub(super) struct RoutesFile {
    /// Listeners, admin API, timeouts and limits; optional, like every key in it.
    pub proxy: Option<raw::Proxy>,
    /// The upstreams by name (letters, digits, `-`, `_`): `[upstreams.legacy] url = "http://127.0.0.1:3000"`.
    /// `proxy.default_upstream` and the routes' `legacy`/`new` refer to them.
    #[schemars(extend("propertyNames" = { "pattern": NAME_PATTERN }, "minProperties" = 1))]
    pub upstreams: BTreeMap<String, raw::Upstream>,
    /// `[[routes]]`: each moves the requests it matches by path (and method) from legacy to new,
    /// stage by stage. Requests no route matches go to `proxy.default_upstream`.
    pub routes: Option<Vec<raw::Route>>,
    /// Optional: sampled real traffic written as a `strangler parity` corpus.
    pub record: Option<raw::Record>,
}

/// Upstream and route names: letters, digits, `-` and `_` (they become metric labels).
const NAME_PATTERN: &str = "^[A-Za-z0-9_-]+$";

/// Durations as `humantime` reads them (`250ms`, `2s`, `1m30s`, `1h`); whether one is more
/// than zero and at most a week is `check`'s to say.
pub(super) const DURATION_PATTERN: &str = "^\\s*([0-9]+(\\.[0-9]+)?\\s*(nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)\\s*)+$";

/// Declares a value shape: a unit type whose JSON Schema is the given object, inlined
/// wherever a field names it with `#[schemars(with = "…")]`.
macro_rules! value_shape {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(super) struct $name;

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                object($schema)
            }
        }
    };
}

value_shape!(
    /// `"75s"`, `"500ms"`, `"2m"`: a number and a unit.
    DurationText => json!({ "type": "string", "pattern": DURATION_PATTERN, "examples": ["2s", "500ms", "1m30s"] })
);
value_shape!(
    /// `IP:PORT`.
    SocketAddress => json!({ "type": "string", "pattern": "^(\\[[0-9A-Fa-f:.%]+\\]|[0-9.]+):[0-9]+$", "examples": ["127.0.0.1:8000", "[::]:8000"] })
);
value_shape!(
    /// The name of an upstream or a route.
    Name => json!({ "type": "string", "pattern": NAME_PATTERN })
);
value_shape!(
    /// A share, 0.0 to 1.0.
    Share => json!({ "type": "number", "minimum": 0.0, "maximum": 1.0 })
);
value_shape!(
    /// A percentage, 0 to 100.
    Percent => json!({ "type": "number", "minimum": 0.0, "maximum": 100.0 })
);
value_shape!(
    /// A route's stage, in migration order.
    StageName => json!({ "type": "string", "enum": Stage::ALL.map(Stage::as_str) })
);
value_shape!(
    /// `worker_cpu_affinity`.
    CpuAffinity => json!({ "type": "string", "enum": ["auto", "off"] })
);
value_shape!(
    /// `canary.sticky`.
    StickyKey => json!({ "type": "string", "pattern": "^(client_ip|cookie:[!-:<>-~]+|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$", "examples": ["cookie:session", "header:x-user-id", "client_ip"] })
);
value_shape!(
    /// A request method: an upper-case token other than `CONNECT`.
    MethodName => json!({ "type": "string", "pattern": "^[A-Z]+$", "not": { "const": "CONNECT" }, "examples": ["GET", "POST"] })
);
value_shape!(
    /// An HTTP header name (a token).
    HeaderName => json!({ "type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" })
);
value_shape!(
    /// A protocol a route may upgrade to (a token, never `h2c`).
    Protocol => json!({ "type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", "not": { "pattern": "^[hH]2[cC]$" } })
);
value_shape!(
    /// An absolute URL path.
    AbsolutePath => json!({ "type": "string", "pattern": "^/" })
);
value_shape!(
    /// An upstream URL.
    UpstreamUrl => json!({ "type": "string", "pattern": "^https?://[^/?#]+", "examples": ["http://127.0.0.1:3000"] })
);
value_shape!(
    /// A file path, relative to routes.toml's directory unless absolute.
    FilePath => json!({ "type": "string", "minLength": 1 })
);
value_shape!(
    /// A host name for the admin API.
    HostName => json!({ "type": "string", "pattern": "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*\\.?$" })
);
value_shape!(
    /// A DNS name of a certificate; `*.` matches one label.
    CertHost => json!({ "type": "string", "minLength": 1 })
);

/// A whole number within `MIN..=MAX` (`check`'s `count_in`).
#[derive(Debug)]
pub(super) struct Count<const MIN: i64, const MAX: i64>;

impl<const MIN: i64, const MAX: i64> JsonSchema for Count<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        Cow::Owned(format!("Count_{MIN}_{MAX}"))
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        object(json!({ "type": "integer", "minimum": MIN, "maximum": MAX }))
    }
}

/// A whole number of at least `MIN`.
#[derive(Debug)]
pub(super) struct AtLeast<const MIN: i64>;

impl<const MIN: i64> JsonSchema for AtLeast<MIN> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        Cow::Owned(format!("AtLeast_{MIN}"))
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        object(json!({ "type": "integer", "minimum": MIN }))
    }
}

/// A route's `compare` table: the keys of [`crate::parity::CompareSpec`] (which lives in the
/// pure `parity` layer and has no schema derive of its own); the unit test
/// `compare_lists_the_keys_compare_spec_reads` keeps the two in step.
#[derive(Debug)]
pub(super) struct CompareTable;

impl JsonSchema for CompareTable {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("CompareTable")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let strings = json!({ "type": "array", "items": { "type": "string" } });
        object(json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "ignore": { "description": "JSON Pointer patterns of body fields never compared (`/timestamp`, `/items/*/created`; `*` is one segment); `\"\"` ignores the whole body. Default: none.", "type": "array", "items": { "type": "string", "pattern": "^(/.*)?$" } },
                "ignore_headers": { "description": "Header names removed from the compared set. Default: none.", "type": "array", "items": HeaderName::json_schema(&mut SchemaGenerator::default()) },
                "headers": { "description": "Header names compared (case-insensitive). Default: [\"content-type\"].", "type": "array", "items": HeaderName::json_schema(&mut SchemaGenerator::default()) },
                "normalize": {
                    "description": "Regex replacements applied to both answers before comparing: to every JSON string value, or to the whole body when it is not JSON.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["pattern", "replace"],
                        "properties": {
                            "pattern": { "description": "A regex (Rust `regex` syntax).", "type": "string" },
                            "replace": { "description": "The replacement; `$1` or `${name}` refer to capture groups.", "type": "string" }
                        }
                    }
                },
                "unordered_arrays": { "description": "Arrays whose order does not matter: true (all), false (none, the default), or a list of JSON Pointer patterns.", "anyOf": [{ "type": "boolean" }, strings] },
                "numeric_tolerance": { "description": "Two JSON numbers are equal when they differ by at most this much. Default: equal only when the same number of the same kind (1 ≠ 1.0).", "type": "number", "minimum": 0.0 }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The property names of the object schema at `pointer` in `schema`, following `$ref`s.
    fn properties_at(schema: &Value, pointer: &str) -> Vec<String> {
        let mut node = schema.pointer(pointer).unwrap_or_else(|| panic!("no {pointer}"));
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            node = schema.pointer(&reference[1..]).unwrap();
        }
        let mut names: Vec<String> = node["properties"].as_object().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    /// The fields serde accepts for `T`, read off its unknown-field error (`expected one of …`).
    fn fields_serde_reads<T: for<'de> Deserialize<'de> + std::fmt::Debug>() -> Vec<String> {
        let error = toml::from_str::<T>("zz_unknown = 1").unwrap_err().to_string();
        let line = error
            .lines()
            .find(|l| l.starts_with("unknown field"))
            .unwrap_or_else(|| panic!("{error}"));
        let listed = line.split_once("expected ").unwrap().1.trim_start_matches("one of ");
        let mut names: Vec<String> = listed
            .replace(" or ", ", ")
            .split(", ")
            .map(|n| n.trim().trim_matches('`').to_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_table_lists_exactly_the_keys_serde_reads() {
        let schema = routes_toml_schema();
        let defs = "/definitions";
        assert_eq!(
            properties_at(&schema, &format!("{defs}/Proxy")),
            fields_serde_reads::<raw::Proxy>()
        );
        assert_eq!(
            properties_at(&schema, &format!("{defs}/Upstream")),
            fields_serde_reads::<raw::Upstream>()
        );
        assert_eq!(
            properties_at(&schema, &format!("{defs}/Route")),
            fields_serde_reads::<raw::Route>()
        );
        assert_eq!(
            properties_at(&schema, &format!("{defs}/Record")),
            fields_serde_reads::<raw::Record>()
        );
        assert_eq!(
            properties_at(&schema, &format!("{defs}/Health")),
            fields_serde_reads::<raw::Health>()
        );
        assert_eq!(
            properties_at(&schema, &format!("{defs}/Outlier")),
            fields_serde_reads::<raw::Outlier>()
        );
        assert_eq!(
            properties_at(&schema, &format!("{defs}/Shadow")),
            fields_serde_reads::<raw::Shadow>()
        );
        assert_eq!(
            properties_at(&schema, &format!("{defs}/Canary")),
            fields_serde_reads::<raw::Canary>()
        );
        assert_eq!(
            properties_at(&schema, &format!("{defs}/ProxyTls")),
            fields_serde_reads::<raw::ProxyTls>()
        );
        assert_eq!(
            properties_at(&schema, &format!("{defs}/SniCert")),
            fields_serde_reads::<raw::SniCert>()
        );
    }

    #[test]
    fn compare_lists_the_keys_compare_spec_reads() {
        let schema = routes_toml_schema();
        assert_eq!(
            properties_at(&schema, "/definitions/Route/properties/compare"),
            fields_serde_reads::<crate::parity::CompareSpec>()
        );
    }

    #[test]
    fn the_top_level_lists_the_sections_parse_knows() {
        // parse.rs names the sections it knows in its error for any other one.
        let error = super::super::parse_str("routes.toml", "[zz_unknown]\n")
            .unwrap_err()
            .to_string();
        let listed = error.split("expected one of ").nth(1).unwrap().lines().next().unwrap();
        let mut sections: Vec<String> = listed.split(", ").map(|s| s.trim_matches('`').to_owned()).collect();
        sections.sort();
        assert_eq!(
            properties_at(&routes_toml_schema(), ""),
            sections,
            "a new top-level section needs a field in config/schema.rs's RoutesFile"
        );
    }

    #[test]
    fn the_duration_pattern_accepts_what_check_accepts() {
        let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
        for good in [
            "250ms", "2s", "1m", "1h", "1m30s", "7d", "1h 30m", "1.5s", "2 s", "10min",
        ] {
            assert!(super::super::parse_duration(good).is_ok(), "{good}");
            assert!(pattern.is_match(good), "the schema refuses {good}");
        }
        for bad in ["5", "", "never", "2 apples", "-1s", "s", "1s!"] {
            assert!(super::super::parse_duration(bad).is_err(), "{bad}");
            assert!(!pattern.is_match(bad), "the schema accepts {bad}");
        }
    }

    #[test]
    fn no_schema_allows_null() {
        let text = routes_toml_schema().to_string();
        assert!(
            !text.contains("\"null\"") && !text.contains("null,") && !text.contains("null]"),
            "{text}"
        );
    }
}

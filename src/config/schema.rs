//! The JSON Schema of routes.toml, for editors (taplo, Even Better TOML): completion, hover
//! documentation and red squiggles as a table is written. `strangler schema` prints it;
//! docs/routes-toml.schema.json is its checked-in copy.
//!
//! ```text
//! raw::* (#[derive(JsonSchema)], field docs = descriptions) --+
//! shapes.rs: each value's shape (durations, counts, stages…) --+--> routes_toml_schema()
//! RoutesFile (the top-level sections, as parse.rs finds them) -+
//! ```
//!
//! The schema is derived from the same serde types that read the file, so a key serde
//! accepts is a key the schema lists, and `deny_unknown_fields` becomes
//! `additionalProperties: false`. The raw types wrap values in `toml::Spanned`, which has no
//! `JsonSchema` impl (and cannot get one here: both are foreign), so each such field says
//! its shape with `#[schemars(with = "…")]`, naming one of [`super::shapes`]. The schema
//! never refuses a table `check` accepts (tests/it/schema.rs validates every table of the
//! repository against it).
//!
//! Draft 07, not 2020-12: taplo (the TOML language server behind Even Better TOML) reads
//! draft 07 fully.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde::Deserialize;
use serde_json::Value;

use super::raw;
use super::shapes::NAME_PATTERN;

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
    /// Optional: OTLP/HTTP export of a span per request.
    pub tracing: Option<raw::Tracing>,
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
        let pattern = regex::Regex::new(super::super::shapes::DURATION_PATTERN).unwrap();
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

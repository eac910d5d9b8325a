//! The JSON Schema of each kind of value in routes.toml (a duration, a count within
//! bounds, a stage name, an upstream name, the `compare` table…), for the fields of
//! [`super::raw`] to name with `#[schemars(with = "…")]`: `toml::Spanned` has no
//! `JsonSchema` impl, so each spanned field says its shape here. A shape restates a check of
//! [`super::validate`] only where it is a fixed bound or a plain pattern; references between
//! tables, conflicts and files on disk stay `strangler check`'s. [`super::schema`] puts the
//! whole schema together.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

use super::model::Stage;

/// A schema from a JSON object literal (never panics, unlike `schemars::json_schema!`).
fn object(value: Value) -> Schema {
    match value {
        Value::Object(map) => Schema::from(map),
        _ => Schema::default(),
    }
}

/// Upstream and route names: letters, digits, `-` and `_` (they become metric labels).
pub(super) const NAME_PATTERN: &str = "^[A-Za-z0-9_-]+$";

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
    /// `error_bodies`.
    ErrorBodiesName => json!({ "type": "string", "enum": ["detailed", "minimal"] })
);
value_shape!(
    /// A route's `host`.
    HostPolicyName => json!({ "type": "string", "enum": ["preserve", "upstream"] })
);
value_shape!(
    /// `[proxy.error_pages]`: a page file per status strangler answers itself.
    ErrorPages => json!({
        "type": "object",
        "propertyNames": { "enum": super::model::ANSWERED_STATUSES.map(|status| status.to_string()) },
        "additionalProperties": { "type": "string", "minLength": 1 }
    })
);
value_shape!(
    /// `set = { name = "value" }` of a route's header edits.
    HeaderValues => json!({
        "type": "object",
        "propertyNames": { "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
        "additionalProperties": { "type": "string" }
    })
);
value_shape!(
    /// An OTLP/HTTP collector: `http://host:port`, optionally with a path.
    OtlpEndpoint => json!({ "type": "string", "pattern": "^http://[^/?#]+", "examples": ["http://127.0.0.1:4318"] })
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

/// One `[[routes.compare.divergences]]` entry.
fn divergence() -> Value {
    let pair = |what: &str| {
        json!({
            "type": "object", "additionalProperties": false, "required": ["legacy", "new"],
            "properties": { "legacy": { "description": format!("The legacy {what}") }, "new": { "description": format!("The new {what}") } }
        })
    };
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["path", "reason"],
        "properties": {
            "method": { "description": "Only requests of this method (default: any).", "type": "string" },
            "name": { "description": "Only the request of this name (a corpus line's `name`, else `METHOD path (line N)`): for requests that share a method and path.", "type": "string", "minLength": 1 },
            "path": { "description": "The exact path as routed; with a `?`, the exact path and query.", "type": "string", "pattern": "^/" },
            "reason": { "description": "Why this difference is deliberate.", "type": "string", "minLength": 1 },
            "status": { "description": "The exact status pair.", "type": "object", "additionalProperties": false, "required": ["legacy", "new"],
                        "properties": { "legacy": { "type": "integer", "minimum": 100, "maximum": 999 }, "new": { "type": "integer", "minimum": 100, "maximum": 999 } } },
            "pointers": { "description": "JSON Pointer (\"\" = the whole body) -> the two values; \"*\" is any value, as long as the two differ.", "type": "object", "additionalProperties": pair("value (any TOML value; \"*\": any).") },
            "headers": { "description": "Header name -> the two values; \"(absent)\" is not sent, \"*\" any value, as long as the two differ.", "type": "object", "additionalProperties": pair("value (a string).") }
        }
    })
}

/// A route's `compare` table: the keys of [`crate::parity::CompareSpec`] (which lives in the
/// pure `parity` layer and has no schema derive of its own); schema.rs's unit test
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
                    "description": "Regex replacements applied to both answers before comparing: to every JSON string value, or to the whole body when it is not JSON; with `pointer` only at and below that JSON Pointer pattern, with `header` only to that header.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["pattern", "replace"],
                        "properties": {
                            "pattern": { "description": "A regex (Rust `regex` syntax).", "type": "string" },
                            "replace": { "description": "The replacement; `$1` or `${name}` refer to capture groups.", "type": "string" },
                            "pointer": { "description": "Only JSON string values at or below this JSON Pointer pattern (`*` is one segment); `\"\"` also covers a whole non-JSON body.", "type": "string", "pattern": "^(/.*)?$" },
                            "header": { "description": "Only this header's value (a compared header).", "type": "string" }
                        }
                    }
                },
                "location": { "description": "How `location` is compared: \"exact\" (the default) or \"path\" (path and query only: scheme and host ignored, so absolute and relative redirects agree; adds `location` to the compared headers).", "enum": ["exact", "path"] },
                "key_order": { "description": "Compare the order of each JSON object's keys too (a difference `keys:POINTER` lists both orders); default false: objects are unordered.", "type": "boolean" },
                "unordered_headers": { "description": "Headers compared as comma-separated sets (order, repeats and whitespace ignored), e.g. [\"allow\", \"vary\"]; each is compared.", "type": "array", "items": HeaderName::json_schema(&mut SchemaGenerator::default()) },
                "divergences": { "description": "Known, deliberate differences of single requests: `strangler parity` reports a covered request as `expected` when the answers differ exactly so, `resolved` (a failure) when they no longer differ.", "type": "array", "items": divergence() },
                "unordered_arrays": { "description": "Arrays whose order does not matter: true (all), false (none, the default), or a list of JSON Pointer patterns.", "anyOf": [{ "type": "boolean" }, strings] },
                "numeric_tolerance": { "description": "Two JSON numbers are equal when they differ by at most this much. Default: equal only when the same number of the same kind (1 ≠ 1.0).", "type": "number", "minimum": 0.0 }
            }
        }))
    }
}

//! `strangler schema`: prints the JSON Schema (draft 07) of routes.toml for editors
//! ([`crate::config::routes_toml_schema`]), pretty-printed, one trailing newline. The
//! repository's checked-in copy, docs/routes-toml.schema.json, is this output byte for byte
//! (tests/it/schema.rs).

use std::io::Write;

/// Writes the schema to `out`.
pub fn run(out: &mut dyn Write) -> std::io::Result<()> {
    let schema = crate::config::routes_toml_schema();
    let text = serde_json::to_string_pretty(&schema).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}

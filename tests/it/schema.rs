//! `strangler schema` and docs/routes-toml.schema.json, the JSON Schema editors read: the
//! checked-in file is the command's output (it cannot drift from the config types); every
//! table of the repository, `strangler init`'s, the tables the docs show and a table with
//! every key validate against it; and the bad configs whose fault is a key or a value's
//! type or shape fail it too.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::*;

/// The checked-in schema, the path that `#:schema` lines name.
const CHECKED_IN: &str = "docs/routes-toml.schema.json";

/// How to regenerate the checked-in copy after a change to the config types.
const REGENERATE: &str = "cargo run --quiet --bin strangler -- schema > docs/routes-toml.schema.json";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn schema() -> Value {
    strangler::config::routes_toml_schema()
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).unwrap_or_else(|e| panic!("the schema is not a valid JSON Schema: {e}"))
}

/// A TOML text as the JSON the schema describes.
fn as_json(what: &str, text: &str) -> Value {
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{what} is not TOML: {e}"));
    serde_json::to_value(table).unwrap()
}

/// The schema's complaints about `text`, one line each (empty: valid).
fn schema_errors(validator: &jsonschema::Validator, what: &str, text: &str) -> Vec<String> {
    let instance = as_json(what, text);
    validator
        .iter_errors(&instance)
        .map(|e| format!("{what}: {} at {}", e, e.instance_path()))
        .collect()
}

#[tokio::test]
async fn the_checked_in_schema_is_what_strangler_schema_prints() {
    let output = strangler(&["schema"]).await;
    assert!(output.status.success(), "{}", both(&output));
    let printed = stdout(&output);
    assert_eq!(
        printed,
        format!("{:#}\n", schema()),
        "the command prints the library's schema"
    );
    let draft = &schema()["$schema"];
    assert_eq!(draft, "http://json-schema.org/draft-07/schema#");
    let checked_in = std::fs::read_to_string(repo(CHECKED_IN)).unwrap_or_default();
    assert!(
        checked_in == printed,
        "{CHECKED_IN} is not `strangler schema`'s output (a config key changed?); regenerate it with\n    {REGENERATE}"
    );
}

#[test]
fn the_schema_documents_keys_for_an_editor() {
    let schema = schema();
    let definitions = &schema["definitions"];
    let route = &definitions["Route"];
    assert_eq!(route["additionalProperties"], false, "deny_unknown_fields");
    assert_eq!(definitions["Proxy"]["additionalProperties"], false);
    assert_eq!(schema["additionalProperties"], false, "unknown sections are errors");
    assert_eq!(
        route["properties"]["stage"]["enum"],
        serde_json::json!(["legacy", "shadow", "canary", "new"])
    );
    assert_eq!(
        definitions["Proxy"]["properties"]["worker_cpu_affinity"]["enum"],
        serde_json::json!(["auto", "off"])
    );
    let workers = &definitions["Proxy"]["properties"]["workers"];
    assert_eq!(
        (workers["minimum"].as_i64(), workers["maximum"].as_i64()),
        (Some(1), Some(1024))
    );
    let idle = &definitions["Proxy"]["properties"]["client_idle_timeout"];
    assert!(idle["pattern"].is_string(), "{idle}");
    assert!(
        idle["description"].as_str().unwrap().contains("default \"75s\""),
        "a key's description says its default: {idle}"
    );
    // Every key of every table says what it does.
    for (table, definition) in definitions.as_object().unwrap() {
        for (key, property) in definition["properties"].as_object().unwrap() {
            let description = property["description"].as_str().unwrap_or_default();
            assert!(description.len() > 20, "{table}.{key} has no description");
            assert!(
                !description.contains("\n"),
                "{table}.{key}: one paragraph: {description:?}"
            );
        }
    }
    let text = schema.to_string();
    assert!(!text.contains("null"), "TOML has no null: {text}");
}

/// The tables the repository ships.
fn repository_tables() -> Vec<(String, String)> {
    let mut tables = vec![(
        "routes.toml".to_owned(),
        std::fs::read_to_string(repo("routes.toml")).unwrap(),
    )];
    let mut pending = vec![repo("deploy")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == "routes.toml") {
                let name = path.strip_prefix(repo("")).unwrap().display().to_string();
                tables.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    assert!(
        tables.len() >= 2,
        "{:?}",
        tables.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    tables
}

/// The ```toml blocks of README.md and docs/*.md, each with an upstream added when it
/// shows none (a snippet of `[record]` alone is not a whole table).
fn documented_tables() -> Vec<(String, String)> {
    let mut files = vec![repo("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut tables = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut block: Option<(usize, String, usize)> = None;
        for (number, line) in text.lines().enumerate() {
            let indent = line.len() - line.trim_start().len();
            match &mut block {
                None if line.trim_start() == "```toml" => block = Some((number + 1, String::new(), indent)),
                Some((start, body, _)) if line.trim_start() == "```" => {
                    let mut table = std::mem::take(body);
                    if !table.parse::<toml::Table>().unwrap().contains_key("upstreams") {
                        table.push_str("\n[upstreams.legacy]\nurl = \"http://127.0.0.1:3000\"\n");
                    }
                    tables.push((format!("{}:{start}", file.display()), table));
                    block = None;
                }
                Some((_, body, indent)) => {
                    body.push_str(line.get(*indent..).unwrap_or(line.trim_start()));
                    body.push('\n');
                }
                None => {}
            }
        }
    }
    assert!(tables.len() >= 4, "{} toml blocks in the docs", tables.len());
    tables
}

/// A valid table that writes every key the schema lists (besides `[proxy.tls]`, whose files
/// `check` would read): the schema must not refuse any of them.
const EVERY_KEY: &str = r#"
[proxy]
listen = "127.0.0.1:8000"
admin_listen = "[::1]:9100"
default_upstream = "legacy"
client_header_timeout = "10s"
max_header_bytes = 65536
drain_timeout = "1m30s"
reload_settle = "300ms"
workers = 2
worker_cpu_affinity = "off"
ready_requires_healthy_default = false
max_connections = 10000
admin_token_file = "admin-token"
admin_hosts = ["strangler-admin.example", "localhost."]
client_idle_timeout = "75s"
http2_max_concurrent_streams = 128
send_timeout = "60s"
client_body_timeout = "2 s"
error_bodies = "minimal"

[proxy.error_pages]
"502" = "errors/502.html"
"504" = "errors/504.json"

[upstreams.legacy]
url = "http://127.0.0.1:8001/app"
connect_timeout = "2s"
request_timeout = "30s"
pool_idle_timeout = "90s"
pool_max_idle = 0
http2 = true
retry_budget = 0.2
max_connections = 256
read_timeout = "1h"
health = { path = "/healthz", interval = "5s", timeout = "1s", healthy_threshold = 2, unhealthy_threshold = 3 }
outlier = { enabled = true, consecutive_failures = 5, interval = "10s", base_ejection = "10s", max_ejection = "5m" }

[upstreams.new-api_2]
url = "https://127.0.0.1:8443"
ca_file = "certs/internal-ca.pem"
client_cert = "certs/strangler.pem"
client_key = "certs/strangler.key"

[[routes]]
name = "api"
path = "/api/items/{id}"
methods = ["GET", "HEAD", "PURGE"]
stage = "canary"
new = "new-api_2"
legacy = "legacy"
canary = { percent = 12.5, sticky = "cookie:session" }
fallback = true
fallback_max_body = 0
compare = { ignore = ["/timestamp", "/*/id", ""], ignore_headers = ["date"], headers = ["content-type"], normalize = [{ pattern = "[0-9a-f-]{36}", replace = "<uuid>" }, { pattern = "^/app", replace = "", pointer = "/items/*/href" }, { pattern = ";.*", replace = "", header = "content-type" }], unordered_arrays = ["/items"], numeric_tolerance = 0.001, location = "path", unordered_headers = ["allow", "vary"], key_order = true, divergences = [{ method = "GET", path = "/api/items/abc", reason = "the book answers an HTML 404", status = { legacy = 404, new = 404 }, pointers = { "" = { legacy = "*", new = { message = "not found" } } }, headers = { "content-type" = { legacy = "text/html; charset=utf-8", new = "(absent)" } } }] }
shadow = { sample = 1.0, max_inflight = 64, max_body = 65536, timeout = "2s", unsafe_methods = true, noise_sample = 0.05 }
max_body = 1048576
upgrades = ["websocket", "Custom-Proto"]
case_insensitive = true
rewrite = "/items/{id}"
host = "upstream"
request_headers = { set = { "X-Api-Version" = "2" }, remove = ["Cookie"] }
response_headers = { set = { "X-Frame-Options" = "DENY" }, remove = ["Server"] }

[[routes]]
name = "login"
exact = "/login"
stage = "shadow"
new = "new-api_2"
canary = { percent = 0, sticky = "header:x-user" }
compare = { unordered_arrays = true }
upgrades = []

[[routes]]
name = "by-ip"
path = "/by-ip/"
canary = { percent = 100, sticky = "client_ip" }
strip_prefix = true

[record]
path = "traffic.jsonl"
sample = 0.01
max_bytes = 4096
redact_headers = ["x-api-key"]
responses = true

[tracing]
otlp_endpoint = "http://127.0.0.1:4318"
"#;

#[tokio::test]
async fn every_valid_table_in_the_repository_validates_against_the_schema() {
    let validator = validator();
    let init_dir = tempfile::tempdir().unwrap();
    let mut tables = repository_tables();
    for (n, extra) in [
        &[][..],
        &["--listen", "127.0.0.1:8080", "--admin-listen", "127.0.0.1:9190"][..],
    ]
    .into_iter()
    .enumerate()
    {
        let out = init_dir.path().join(format!("init-{n}.toml"));
        let mut args = vec![
            "init",
            "--legacy",
            "http://127.0.0.1:3000",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let output = strangler(&args).await;
        assert!(output.status.success(), "{}", both(&output));
        tables.push((
            format!("strangler init {extra:?}"),
            std::fs::read_to_string(&out).unwrap(),
        ));
    }
    tables.push((
        "support::routes_toml".to_owned(),
        routes_toml(
            &[("legacy", "http://127.0.0.1:1"), ("thoughts", "http://127.0.0.1:2")],
            "[[routes]]\nname = \"t\"\npath = \"/t/\"\nstage = \"new\"\nnew = \"thoughts\"\n",
        ),
    ));
    tables.push(("EVERY_KEY".to_owned(), EVERY_KEY.to_owned()));
    // Each of these `check` accepts (the docs' snippets are pieces: the schema only).
    for (what, text) in &tables {
        if let Err(e) = strangler::config::parse_str(what, text) {
            panic!("{what} is not a valid table: {e}");
        }
    }
    tables.extend(documented_tables());

    let errors: Vec<String> = tables
        .iter()
        .flat_map(|(what, text)| schema_errors(&validator, what, text))
        .collect();
    assert!(
        errors.is_empty(),
        "the schema refuses valid tables:\n{}",
        errors.join("\n")
    );

    // And EVERY_KEY does write every key of the schema's tables (except the TLS ones).
    let every_key = as_json("EVERY_KEY", EVERY_KEY);
    let definitions = schema()["definitions"].as_object().unwrap().clone();
    let written = every_key.to_string();
    for (table, definition) in definitions
        .iter()
        .filter(|(name, _)| !["ProxyTls", "SniCert"].contains(&name.as_str()))
    {
        for key in definition["properties"].as_object().unwrap().keys() {
            if table == "Proxy" && key == "tls" {
                continue;
            }
            assert!(
                written.contains(&format!("\"{key}\":")),
                "EVERY_KEY (tests/it/schema.rs) does not write {table}.{key}: add it with a valid value"
            );
        }
    }
}

#[test]
fn the_schema_points_editors_at_mistakes_in_the_bad_configs() {
    // Bad configs whose fault is a key, a type, a choice, a shape or a fixed bound: the
    // schema refuses each as `check` does. The others (references between tables,
    // conflicts, path normalisation, zero durations) are `check`'s alone.
    const REFUSED_BY_THE_SCHEMA: &[&str] = &[
        "admin-token-file-empty",
        "bad-header-timeout",
        "bad-listen",
        "canary-bad-sticky",
        "canary-percent-too-high",
        "case-insensitive-string",
        "connect-method",
        "lower-case-method",
        "max-body-string",
        "max-header-bytes-too-small",
        "negative-max-body",
        "record-bad-header",
        "record-sample",
        "route-path-and-exact",
        "route-relative-path",
        "route-without-path",
        "shadow-sample-too-high",
        "unknown-proxy-key",
        "unknown-section",
        "unknown-stage",
        "upgrades-h2c",
        "upgrades-not-a-token",
        "upstream-bad-name",
        "upstream-ftp",
        "upstream-timeout-number",
        "upstream-unknown-key",
        "upstreams-not-tables",
        "worker-cpu-affinity-unknown",
        "zero-workers",
    ];
    let validator = validator();
    let mut accepted = Vec::new();
    for name in REFUSED_BY_THE_SCHEMA {
        let path = format!("tests/bad-configs/{name}.toml");
        let text = std::fs::read_to_string(repo(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            strangler::config::parse_str(&path, &text).is_err(),
            "{path} is accepted by check"
        );
        if schema_errors(&validator, &path, &text).is_empty() {
            accepted.push(path);
        }
    }
    assert!(accepted.is_empty(), "the schema accepts {accepted:?}");
}

#[test]
fn the_repository_tables_name_the_checked_in_schema() {
    for (name, text) in repository_tables() {
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("#:schema ")
            .unwrap_or_else(|| panic!("{name}: the first line is not `#:schema PATH`: {first:?}"));
        let resolved = repo(&name).parent().unwrap().join(target.trim());
        assert_eq!(
            resolved
                .canonicalize()
                .unwrap_or_else(|e| panic!("{name}: {target}: {e}")),
            repo(CHECKED_IN).canonicalize().unwrap(),
            "{name}"
        );
    }
}

//! Request corpora for `strangler parity`: JSON Lines written by hand, or HAR files saved
//! from a browser or a recording proxy.
//!
//! ```text
//! FILE --(.har, or a JSON object with log.entries)--> HAR entries  --\
//!      --(otherwise)--> one JSON object per line ---------------------+--> [CorpusRequest]
//! ```
//!
//! A JSON Lines corpus has one request per line:
//! `{"method": "GET", "path": "/api/thoughts/?search=x", "headers": {"accept": "application/json"}, "body": "..."}`.
//! `headers` is optional, each value a string or a list of strings; an empty list means
//! "this request has no such header", so `--header` does not add one either. `body` (text)
//! or `body_base64` (bytes) is optional. `expect` states a known, deliberate difference of
//! the two answers (see [`crate::parity::DivergenceSpec`]): `{"reason": "…", "status":
//! {"legacy": 500, "new": 401}, "pointers": {…}, "headers": {…}}`. `name` names the
//! request in reports (default: [`default_name`]). `response` is the answer recorded for it
//! (`{"status", "headers", "body" | "body_base64"}`, as `[record] responses = true` writes
//! it; a HAR entry's `response` likewise), which `--legacy-from` compares with. Blank lines
//! and lines starting with `#` are ignored. Every problem names `file:line`.
//!
//! `${NAME}` in a request's strings (path, header values, text body; a HAR entry's URL,
//! header values, `postData.text`) is the environment variable NAME ([`expand`]), so a
//! checked-in corpus holds no token that expires; `$${` is a literal `${`.
//!
//! Headers that describe one connection or one encoding of the body are dropped from both
//! formats, because the replaying client sets its own: hop-by-hop headers,
//! `content-length`, HTTP/2 pseudo-headers (`:authority`, …), and `accept-encoding` (the
//! answers must come back uncompressed to be compared field by field).
//!
//! Parsing ([`parse`]) is pure; only [`load`] reads the file.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize as _;
use serde_json::Value;

use crate::parity::{Captured, Divergence, DivergenceSpec};

/// One request of a corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusRequest {
    /// Where it is written: the line of a JSON Lines file, the entry of a HAR file (from 1).
    pub line: usize,
    /// The method.
    pub method: Method,
    /// Path and query as written (normalised later, the way the proxy does).
    pub target: String,
    /// Its headers, connection headers already dropped.
    pub headers: HeaderMap,
    /// Headers this request must not have (an empty list in the corpus): `--header`
    /// does not add them.
    pub without: Vec<HeaderName>,
    /// The body (empty when none).
    pub body: Bytes,
    /// The line's `expect`: the divergence its answers are judged against.
    pub expect: Option<Arc<Divergence>>,
    /// The corpus's `name` for it (`None`: reports use [`default_name`]).
    pub name: Option<String>,
    /// The answer recorded with it: a JSON Lines `response`, a HAR entry's `response`
    /// (what `--legacy-from` compares with).
    pub recorded: Option<Captured>,
}

/// The name reports give a request the corpus does not name: `METHOD path (line N)`.
pub fn default_name(method: &str, target: &str, line: usize) -> String {
    format!("{method} {target} (line {line})")
}

/// Why a corpus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file as named on the command line.
        file: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// One request is malformed: `file:line: message` (for a HAR file, `line` is the entry,
    /// from 1).
    #[error("{file}:{line}{}: {message}", column.map(|c| format!(":{c}")).unwrap_or_default())]
    Request {
        /// The file.
        file: String,
        /// The line (JSON Lines) or entry (HAR), from 1.
        line: usize,
        /// The column, from 1, where a JSON parser stopped.
        column: Option<usize>,
        /// What is wrong, in one line.
        message: String,
    },
    /// The file as a whole is not a corpus.
    #[error("{file}: {message}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// The two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// HTTP Archive 1.2.
    Har,
}

/// Reads and parses a corpus file. Blocking.
pub fn load(path: &Path) -> Result<Vec<CorpusRequest>, CorpusError> {
    load_with(path, &mut Placeholders::default())
}

/// The values that `${NAME}` placeholders of the corpora stood for: reports show them as
/// `${NAME}` again ([`Placeholders::conceal`]), so a token given through the environment
/// does not end up in a CI log, a JUnit file or a JSON report.
#[derive(Debug, Default, Clone)]
pub struct Placeholders(Vec<(String, String)>);

impl Placeholders {
    /// Values shorter than this are not concealed: a placeholder for an id (`7`) would
    /// turn every `7` of a report into `${ID}`; secrets are longer.
    pub const MIN_CONCEALED: usize = 8;

    /// `text` with every value of [`Self::MIN_CONCEALED`] characters or more, as written,
    /// JSON-escaped or XML-escaped, replaced by its `${NAME}` (the longest values first).
    pub fn conceal(&self, text: &str) -> String {
        let mut values: Vec<&(String, String)> = self
            .0
            .iter()
            .filter(|(_, v)| v.chars().count() >= Self::MIN_CONCEALED)
            .collect();
        values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        let mut out = text.to_owned();
        for (name, value) in values {
            let json = serde_json::to_string(value).unwrap_or_default();
            let json = json.trim_matches('"').to_owned();
            let xml = value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&apos;");
            for form in [value.as_str(), json.as_str(), xml.as_str()] {
                if !form.is_empty() && out.contains(form) {
                    out = out.replace(form, &format!("${{{name}}}"));
                }
            }
        }
        out
    }
}

/// [`load`], adding the values its placeholders stood for to `placeholders`.
pub fn load_with(path: &Path, placeholders: &mut Placeholders) -> Result<Vec<CorpusRequest>, CorpusError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Read {
        file: file.clone(),
        source,
    })?;
    let har_extension = path
        .extension()
        .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case("har"));
    let used = std::cell::RefCell::new(Vec::new());
    let vars = |name: &str| {
        let value = std::env::var(name).ok();
        if let Some(value) = &value {
            used.borrow_mut().push((name.to_owned(), value.clone()));
        }
        value
    };
    let parsed = parse_with(&file, &text, har_extension, &vars);
    placeholders.0.extend(used.into_inner());
    parsed
}

/// Parses a corpus; `har_extension` says that the file name ends in `.har`. Fails on an
/// empty corpus: a replay of nothing proves nothing.
pub fn parse(file: &str, text: &str, har_extension: bool) -> Result<Vec<CorpusRequest>, CorpusError> {
    parse_with(file, text, har_extension, &|name| std::env::var(name).ok())
}

/// [`parse`], with `${NAME}` placeholders looked up in `vars` (the environment for
/// [`parse`]).
pub fn parse_with(
    file: &str,
    text: &str,
    har_extension: bool,
    vars: Vars<'_>,
) -> Result<Vec<CorpusRequest>, CorpusError> {
    let requests = match detect(text, har_extension) {
        (Format::Har, Some(doc)) => parse_har(file, &doc, vars)?,
        (Format::Har, None) => {
            let doc: Value = serde_json::from_str(text).map_err(|e| CorpusError::Request {
                file: file.to_owned(),
                line: e.line(),
                column: Some(e.column()),
                message: format!("not a HAR file (JSON): {}", without_position(&e)),
            })?;
            parse_har(file, &doc, vars)?
        }
        (Format::JsonLines, _) => parse_json_lines(file, text, vars)?,
    };
    if requests.is_empty() {
        return Err(CorpusError::File {
            file: file.to_owned(),
            message: "no requests in the corpus".to_owned(),
        });
    }
    Ok(requests)
}

/// Which format `text` is in, with the parsed document when it was parsed to find out.
fn detect(text: &str, har_extension: bool) -> (Format, Option<Value>) {
    if har_extension {
        return (Format::Har, None);
    }
    // A HAR file is one JSON object with `log.entries`; a corpus line never has `log`.
    if text.trim_start().starts_with('{')
        && let Ok(doc) = serde_json::from_str::<Value>(text)
        && doc.get("log").is_some_and(Value::is_object)
    {
        return (Format::Har, Some(doc));
    }
    (Format::JsonLines, None)
}

/// A JSON error's message without serde_json's ` at line L column C` (the caller says
/// where, as `file:line:column`).
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn parse_json_lines(file: &str, text: &str, vars: Vars<'_>) -> Result<Vec<CorpusRequest>, CorpusError> {
    let mut requests = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let error = |column: Option<usize>, message: String| CorpusError::Request {
            file: file.to_owned(),
            line,
            column,
            message,
        };
        let mut value: Value = serde_json::from_str(trimmed).map_err(|e| {
            // The column in the line as written (the parser saw it without its indentation).
            let indent = raw.len() - raw.trim_start().len();
            error(Some(indent + e.column()), format!("not JSON: {}", without_position(&e)))
        })?;
        expand_json_line(&mut value, vars).map_err(|message| error(None, message))?;
        requests.push(json_line(line, &value).map_err(|message| error(None, message))?);
    }
    Ok(requests)
}

/// One JSON Lines request.
fn json_line(line: usize, value: &Value) -> Result<CorpusRequest, String> {
    let object = value
        .as_object()
        .ok_or("a request must be a JSON object like {\"method\": \"GET\", \"path\": \"/\"}")?;
    for key in object.keys() {
        if !matches!(
            key.as_str(),
            "method" | "path" | "headers" | "body" | "body_base64" | "expect" | "name" | "response"
        ) {
            return Err(format!(
                "unknown field `{key}`, expected one of `method`, `path`, `headers`, `body`, `body_base64`, `expect`, `name`, `response`"
            ));
        }
    }
    let string = |key: &str| -> Result<Option<&str>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let method = parse_method(string("method")?.ok_or("missing field `method`")?)?;
    let target = parse_target(string("path")?.ok_or("missing field `path`")?)?;
    let body = match (string("body")?, string("body_base64")?) {
        (Some(_), Some(_)) => return Err("give `body` or `body_base64`, not both".to_owned()),
        (Some(text), None) => Bytes::from(text.to_owned()),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map(Bytes::from)
            .map_err(|e| format!("`body_base64` is not base64: {e}"))?,
        (None, None) => Bytes::new(),
    };
    let mut headers = HeaderMap::new();
    let mut without = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, values) in map {
                let values: Vec<&str> = match values {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(items) => items
                        .iter()
                        .map(|v| v.as_str().ok_or(()))
                        .collect::<Result<_, ()>>()
                        .map_err(|()| format!("header `{name}`: a list must hold strings only"))?,
                    _ => return Err(format!("header `{name}`: must be a string or a list of strings")),
                };
                let Some(name) = header_name(name)? else { continue };
                if values.is_empty() {
                    without.push(name);
                    continue;
                }
                for value in values.into_iter().filter(|v| !is_redacted(v)) {
                    headers.append(name.clone(), header_value(&name, value)?);
                }
            }
        }
        Some(_) => return Err("`headers` must be an object of name: value".to_owned()),
    }
    let name = match string("name")? {
        Some(name) if name.trim().is_empty() => return Err("`name` is empty".to_owned()),
        name => name.map(str::to_owned),
    };
    let recorded = match object.get("response") {
        None | Some(Value::Null) => None,
        Some(response) => Some(json_response(response).map_err(|e| format!("`response`: {e}"))?),
    };
    Ok(CorpusRequest {
        line,
        method,
        target,
        headers,
        without,
        body,
        expect: expect_of(object.get("expect"))?,
        name,
        recorded,
    })
}

/// A line's `expect`, checked.
fn expect_of(value: Option<&Value>) -> Result<Option<Arc<Divergence>>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let spec = DivergenceSpec::deserialize(value).map_err(|e| format!("`expect`: {e}"))?;
    let divergence = Divergence::from_spec(&spec).map_err(|e| format!("`expect`: {e}"))?;
    Ok(Some(Arc::new(divergence)))
}

fn parse_har(file: &str, doc: &Value, vars: Vars<'_>) -> Result<Vec<CorpusRequest>, CorpusError> {
    let whole = |message: &str| CorpusError::File {
        file: file.to_owned(),
        message: format!("not a HAR file: {message}"),
    };
    let entries = doc
        .get("log")
        .ok_or_else(|| whole("no `log`"))?
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(|| whole("no `log.entries` list"))?;
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let error = |message: String| CorpusError::Request {
                file: file.to_owned(),
                line: index + 1,
                column: None,
                message,
            };
            let mut entry = entry.clone();
            expand_har_entry(&mut entry, vars).map_err(error)?;
            har_entry(index + 1, &entry).map_err(|message| error(format!("log.entries[{index}]: {message}")))
        })
        .collect()
}

/// One HAR entry: `request.method`, `request.url` (its path and query), `request.headers`,
/// `request.postData.text`; the answer in `response`; and the entry's own `_name` and
/// `_expect` (HAR 1.2 lets a tool add fields whose names start with `_`), the HAR form of
/// a JSON Lines `name` and `expect`.
fn har_entry(number: usize, entry: &Value) -> Result<CorpusRequest, String> {
    let request = entry.get("request").ok_or("no `request`")?;
    let field = |key: &str| {
        request
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`request.{key}` must be a string"))
    };
    let method = parse_method(field("method")?)?;
    let url = field("url")?;
    let uri: http::Uri = url.parse().map_err(|e| format!("bad `request.url` `{url}`: {e}"))?;
    let target = parse_target(uri.path_and_query().map_or("/", PathAndQuery::as_str))?;
    let mut headers = HeaderMap::new();
    if let Some(list) = request.get("headers") {
        let list = list.as_array().ok_or("`request.headers` must be a list")?;
        for header in list {
            let (Some(name), Some(value)) = (
                header.get("name").and_then(Value::as_str),
                header.get("value").and_then(Value::as_str),
            ) else {
                return Err("each of `request.headers` needs a string `name` and `value`".to_owned());
            };
            if let Some(name) = header_name(name)?
                && !is_redacted(value)
            {
                let value = header_value(&name, value)?;
                headers.append(name, value);
            }
        }
    }
    let body = request
        .get("postData")
        .and_then(|p| p.get("text"))
        .and_then(Value::as_str)
        .map_or_else(Bytes::new, |text| Bytes::from(text.to_owned()));
    Ok(CorpusRequest {
        line: number,
        method,
        target,
        headers,
        without: Vec::new(),
        body,
        expect: expect_of(entry.get("_expect"))?,
        name: har_name(entry.get("_name"))?,
        recorded: entry.get("response").map(har_response).transpose()?.flatten(),
    })
}

/// A HAR entry's `_name`: a non-empty string, when given.
fn har_name(value: Option<&Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if !name.trim().is_empty() => Ok(Some(name.clone())),
        Some(_) => Err("`_name` must be a non-empty string".to_owned()),
    }
}

/// Whether a request header's value is the recorder's `[redacted]`: such a header is
/// left out of the request (it never held the real value), so `--header` or the route's
/// own defaults can give it one.
fn is_redacted(value: &str) -> bool {
    value == crate::parity::REDACTED
}

/// Looks up the value of a `${NAME}` placeholder.
pub type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `text` with every `${NAME}` replaced by `vars(NAME)`; `$${` is a literal `${`. A
/// missing variable: `${NAME} is not set`.
pub fn expand(text: &str, vars: Vars<'_>) -> Result<String, String> {
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(format!(
                    "`{}` is an unterminated placeholder (`${{NAME}}`; `$${{` for a literal `${{`)",
                    tail.chars().take(40).collect::<String>()
                ));
            };
            let name = &after[..end];
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "`${{{name}}}` is not a placeholder (a variable name: letters, digits, `_`; `$${{` for a literal `${{`)"
                ));
            }
            out.push_str(&vars(name).ok_or_else(|| format!("${{{name}}} is not set"))?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands the string at `value`, or every string of a list or object at `value`.
fn expand_value(value: &mut Value, vars: Vars<'_>) -> Result<(), String> {
    match value {
        Value::String(text) => *text = expand(text, vars)?,
        Value::Array(items) => items.iter_mut().try_for_each(|item| expand_value(item, vars))?,
        Value::Object(map) => map.values_mut().try_for_each(|item| expand_value(item, vars))?,
        _ => {}
    }
    Ok(())
}

/// Expands the placeholders of a JSON Lines request: in `path`, header values and `body`
/// (not in `body_base64`, nor in a recorded `response`).
fn expand_json_line(value: &mut Value, vars: Vars<'_>) -> Result<(), String> {
    for key in ["path", "headers", "body"] {
        if let Some(field) = value.get_mut(key) {
            expand_value(field, vars)?;
        }
    }
    Ok(())
}

/// Expands the placeholders of a HAR entry's request: `url`, header values,
/// `postData.text`.
fn expand_har_entry(entry: &mut Value, vars: Vars<'_>) -> Result<(), String> {
    let Some(request) = entry.get_mut("request") else {
        return Ok(());
    };
    if let Some(url) = request.get_mut("url") {
        expand_value(url, vars)?;
    }
    if let Some(Value::Array(headers)) = request.get_mut("headers") {
        for header in headers {
            if let Some(value) = header.get_mut("value") {
                expand_value(value, vars)?;
            }
        }
    }
    if let Some(text) = request.get_mut("postData").and_then(|p| p.get_mut("text")) {
        expand_value(text, vars)?;
    }
    Ok(())
}

/// A recorded answer of a JSON Lines corpus:
/// `{"status": 200, "headers": {"content-type": "…"}, "body": "…"}` (`body_base64` for
/// bytes; header values strings or lists of strings).
fn json_response(value: &Value) -> Result<Captured, String> {
    let object = value.as_object().ok_or("must be an object like {\"status\": 200}")?;
    for key in object.keys() {
        if !matches!(key.as_str(), "status" | "headers" | "body" | "body_base64") {
            return Err(format!(
                "unknown field `{key}`, expected one of `status`, `headers`, `body`, `body_base64`"
            ));
        }
    }
    let status = object
        .get("status")
        .and_then(Value::as_u64)
        .filter(|s| (100..=999).contains(s))
        .ok_or("`status` must be a number from 100 to 999")?;
    let mut headers = HeaderMap::new();
    if let Some(map) = object.get("headers").filter(|h| !h.is_null()) {
        let map = map.as_object().ok_or("`headers` must be an object of name: value")?;
        for (name, values) in map {
            let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("bad header name `{name}`"))?;
            let values: Vec<&Value> = match values {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            for value in values {
                let text = value
                    .as_str()
                    .ok_or_else(|| format!("header `{name}`: must be a string or a list of strings"))?;
                headers.append(parsed.clone(), header_value(&parsed, text)?);
            }
        }
    }
    let body = match (object.get("body"), object.get("body_base64")) {
        (Some(_), Some(_)) => return Err("give `body` or `body_base64`, not both".to_owned()),
        (Some(text), None) => Bytes::from(text.as_str().ok_or("`body` must be a string")?.to_owned()),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().ok_or("`body_base64` must be a string")?.trim())
            .map(Bytes::from)
            .map_err(|e| format!("`body_base64` is not base64: {e}"))?,
        (None, None) => Bytes::new(),
    };
    Ok(Captured {
        status: status as u16,
        headers,
        body,
    })
}

/// A HAR entry's `response`: `status`, `headers`, `content.text` (base64 when
/// `content.encoding` says so). `None` when there is no usable answer (a browser's HAR
/// has status 0 for a request that never got one); headers that cannot be carried are
/// left out.
fn har_response(response: &Value) -> Result<Option<Captured>, String> {
    let Some(status) = response
        .get("status")
        .and_then(Value::as_u64)
        .filter(|s| (100..=999).contains(s))
    else {
        // Status 0: a request the browser (or the recorder) got no answer to.
        return Ok(None);
    };
    let mut headers = HeaderMap::new();
    for header in response.get("headers").and_then(Value::as_array).into_iter().flatten() {
        let name = header.get("name").and_then(Value::as_str);
        let value = header.get("value").and_then(Value::as_str);
        if let (Some(name), Some(value)) = (name, value)
            && let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            headers.append(name, value);
        }
    }
    let content = response.get("content");
    let text = content
        .and_then(|c| c.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let base64 = content
        .and_then(|c| c.get("encoding"))
        .and_then(Value::as_str)
        .is_some_and(|e| e.eq_ignore_ascii_case("base64"));
    let body = if base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("`response.content.text` is not base64 (its `encoding` says it is): {e}"))?;
        Bytes::from(bytes)
    } else {
        Bytes::from(text.to_owned())
    };
    Ok(Some(Captured {
        status: status as u16,
        headers,
        body,
    }))
}

fn parse_method(method: &str) -> Result<Method, String> {
    Method::from_bytes(method.as_bytes()).map_err(|_| format!("bad method `{method}`"))
}

/// A request target as the proxy would receive it: origin form, path and optional query.
fn parse_target(target: &str) -> Result<String, String> {
    if !target.starts_with('/') {
        return Err(format!(
            "path `{target}` must start with `/` (a path and optional query, not a URL)"
        ));
    }
    PathAndQuery::try_from(target).map_err(|e| format!("path `{target}` is not a valid request target: {e}"))?;
    Ok(target.to_owned())
}

/// The header's name, or `None` for a header the replaying client sets itself.
fn header_name(name: &str) -> Result<Option<HeaderName>, String> {
    if name.starts_with(':') {
        return Ok(None);
    }
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("bad header name `{name}`"))?;
    Ok((!is_connection_header(&name)).then_some(name))
}

fn header_value(name: &HeaderName, value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value).map_err(|_| format!("header `{name}`: the value has characters a header cannot carry"))
}

/// Headers about the connection or the body's encoding, which the replaying client owns.
pub fn is_connection_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
            | "accept-encoding"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Result<Vec<CorpusRequest>, String> {
        parse("c.jsonl", text, false).map_err(|e| e.to_string())
    }

    #[test]
    fn json_lines_with_comments_headers_and_bodies() {
        let text = r#"
# reads
{"method": "GET", "path": "/api/thoughts/?search=x", "headers": {"Accept": "application/json"}}

{"method": "POST", "path": "/api/login/", "headers": {"x-a": ["1", "2"], "authorization": [], "Content-Length": "9"}, "body": "a=1"}
  # indented comment
{"method": "PUT", "path": "/b", "body_base64": "AAEC/w=="}
"#;
        let got = lines(text).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].line, 3);
        assert_eq!(got[0].method, Method::GET);
        assert_eq!(got[0].target, "/api/thoughts/?search=x");
        assert_eq!(got[0].headers["accept"], "application/json");
        assert_eq!(got[1].line, 5);
        let values: Vec<_> = got[1].headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(got[1].without, [http::header::AUTHORIZATION]);
        assert!(!got[1].headers.contains_key("content-length"), "the client sets it");
        assert_eq!(got[1].body, "a=1");
        assert_eq!(got[2].line, 7);
        assert_eq!(&got[2].body[..], [0, 1, 2, 255]);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let cases = [
            ("{\"method\": \"GET\"}", "c.jsonl:1: missing field `path`"),
            (
                "\n\n{\"method\": \"GET\", \"path\": \"/\", \"hedaers\": {}}",
                "c.jsonl:3: unknown field `hedaers`",
            ),
            (
                "{\"method\": \"GET\", \"path\": \"/\"\n",
                "c.jsonl:1:29: not JSON: EOF while parsing an object",
            ),
            ("[1]", "c.jsonl:1: a request must be a JSON object"),
            (
                "{\"method\": \"G ET\", \"path\": \"/\"}",
                "c.jsonl:1: bad method `G ET`",
            ),
            (
                "{\"method\": \"GET\", \"path\": \"api\"}",
                "c.jsonl:1: path `api` must start with `/`",
            ),
            (
                "{\"method\": \"GET\", \"path\": \"/a b\"}",
                "c.jsonl:1: path `/a b` is not a valid request target",
            ),
            (
                "{\"method\": \"GET\", \"path\": \"/\", \"headers\": {\"a\": 1}}",
                "c.jsonl:1: header `a`: must be a string or a list of strings",
            ),
            (
                "{\"method\": \"GET\", \"path\": \"/\", \"headers\": {\"a\": \"x\\ny\"}}",
                "c.jsonl:1: header `a`: the value",
            ),
            (
                "{\"method\": \"GET\", \"path\": \"/\", \"body\": \"a\", \"body_base64\": \"YQ==\"}",
                "c.jsonl:1: give `body` or `body_base64`, not both",
            ),
            (
                "{\"method\": \"GET\", \"path\": \"/\", \"body_base64\": \"!!\"}",
                "c.jsonl:1: `body_base64` is not base64",
            ),
            ("# only a comment\n", "c.jsonl: no requests in the corpus"),
        ];
        for (text, want) in cases {
            let got = lines(text).unwrap_err();
            assert!(got.starts_with(want), "{text:?}: got {got:?}, want {want:?}");
            assert!(!got.contains('\n'), "{got:?}");
        }
    }

    #[test]
    fn a_line_may_expect_a_divergence() {
        let text = r#"{"method": "GET", "path": "/a", "expect": {"reason": "the book answers 500", "status": {"legacy": 500, "new": 401}}}
{"method": "GET", "path": "/b", "expect": null}
"#;
        let got = lines(text).unwrap();
        let expect = got[0].expect.as_deref().unwrap();
        assert_eq!(expect.reason, "the book answers 500");
        assert!(got[1].expect.is_none());
        let cases = [
            (
                r#"{"method": "GET", "path": "/", "expect": {"status": {"legacy": 500, "new": 401}}}"#,
                "c.jsonl:1: `expect`: missing field `reason`",
            ),
            (
                r#"{"method": "GET", "path": "/", "expect": {"reason": "r"}}"#,
                "c.jsonl:1: `expect`: lists no difference",
            ),
            (
                r#"{"method": "GET", "path": "/", "expect": {"reason": "r", "pointers": {"x": {"legacy": 1, "new": 2}}}}"#,
                "c.jsonl:1: `expect`: `pointers`: `x` is not a JSON Pointer",
            ),
        ];
        for (text, want) in cases {
            let got = lines(text).unwrap_err();
            assert!(got.starts_with(want), "{got}");
        }
    }

    const HAR: &str = r#"{"log": {"version": "1.2", "entries": [
        {"request": {"method": "GET", "url": "https://example.com/api/thoughts/?search=x",
                     "headers": [{"name": ":authority", "value": "example.com"},
                                 {"name": "Accept", "value": "application/json"},
                                 {"name": "Accept-Encoding", "value": "gzip, br"},
                                 {"name": "Cookie", "value": "session=s"}]}},
        {"request": {"method": "POST", "url": "http://example.com/api/login/", "headers": [],
                     "postData": {"mimeType": "application/x-www-form-urlencoded", "text": "username=bruce"}}},
        {"request": {"method": "GET", "url": "http://example.com", "headers": []}}
    ]}}"#;

    #[test]
    fn har_entries_by_extension_or_content() {
        for (file, by_extension) in [("x.har", true), ("x.json", false)] {
            let got = parse(file, HAR, by_extension).unwrap();
            assert_eq!(got.len(), 3);
            assert_eq!(got[0].target, "/api/thoughts/?search=x");
            assert_eq!(got[0].headers.len(), 2, "{:?}", got[0].headers);
            assert_eq!(got[0].headers["cookie"], "session=s");
            assert_eq!(got[1].method, Method::POST);
            assert_eq!(got[1].body, "username=bruce");
            assert_eq!((got[2].line, got[2].target.as_str()), (3, "/"));
        }
    }

    #[test]
    fn bad_har_entries_are_named() {
        let bad = HAR.replace("\"POST\"", "1");
        let got = parse("x.har", &bad, true).unwrap_err().to_string();
        assert_eq!(got, "x.har:2: log.entries[1]: `request.method` must be a string");
        let got = parse("x.har", "{\"log\": {}}", true).unwrap_err().to_string();
        assert_eq!(got, "x.har: not a HAR file: no `log.entries` list");
        let got = parse("x.har", "{\n\"log\": ", true).unwrap_err().to_string();
        assert_eq!(got, "x.har:2:7: not a HAR file (JSON): EOF while parsing a value");
    }

    fn vars(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0k\"en".to_owned()),
            "ID" => Some("7".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn placeholders_are_expanded_in_paths_headers_and_bodies() {
        let text = r#"{"method": "POST", "path": "/api/${ID}/", "headers": {"authorization": "Bearer ${TOKEN}", "x": ["${ID}", "a$b"]}, "body": "{\"id\": ${ID}, \"literal\": \"$${ID}\"}"}
{"method": "PUT", "path": "/b", "body_base64": "JHtJRH0="}"#;
        let got = parse_with("c.jsonl", text, false, &vars).unwrap();
        assert_eq!(got[0].target, "/api/7/");
        assert_eq!(got[0].headers["authorization"], "Bearer t0k\"en");
        let xs: Vec<_> = got[0].headers.get_all("x").iter().collect();
        assert_eq!(xs, ["7", "a$b"]);
        assert_eq!(got[0].body, "{\"id\": 7, \"literal\": \"${ID}\"}");
        assert_eq!(&got[1].body[..], b"${ID}", "bytes are not expanded");
        assert_eq!(expand("$ ${ID}$ $x", &vars).unwrap(), "$ 7$ $x");
        assert!(
            expand("/a?t=${ID", &vars)
                .unwrap_err()
                .contains("`${ID` is an unterminated placeholder")
        );
        assert!(expand("${a b}", &vars).unwrap_err().contains("not a placeholder"));
    }

    #[test]
    fn a_missing_variable_names_it_and_the_line() {
        let text = "\n{\"method\": \"GET\", \"path\": \"/\", \"headers\": {\"authorization\": \"Bearer ${NOPE}\"}}";
        let got = parse_with("c.jsonl", text, false, &vars).unwrap_err().to_string();
        assert_eq!(got, "c.jsonl:2: ${NOPE} is not set");
        let har = HAR.replace("session=s", "session=${NOPE}");
        let got = parse_with("x.har", &har, true, &vars).unwrap_err().to_string();
        assert_eq!(got, "x.har:1: ${NOPE} is not set");
        let har = HAR.replace("http://example.com/api/login/", "http://legacy/api/${ID}/");
        assert_eq!(parse_with("x.har", &har, true, &vars).unwrap()[1].target, "/api/7/");
    }

    #[test]
    fn names_and_recorded_answers_of_json_lines() {
        let text = r#"{"method": "GET", "path": "/a", "name": "the list", "response": {"status": 404, "headers": {"content-type": "application/json", "vary": ["a", "b"]}, "body": "{}"}}
{"method": "GET", "path": "/b", "response": {"status": 200, "body_base64": "AP8="}}
{"method": "GET", "path": "/c"}"#;
        let got = lines(text).unwrap();
        assert_eq!(got[0].name.as_deref(), Some("the list"));
        let answer = got[0].recorded.as_ref().unwrap();
        assert_eq!((answer.status, &answer.body[..]), (404, &b"{}"[..]));
        assert_eq!(answer.headers["content-type"], "application/json");
        assert_eq!(answer.headers.get_all("vary").iter().count(), 2);
        assert_eq!(&got[1].recorded.as_ref().unwrap().body[..], [0, 255]);
        assert_eq!((got[2].name.as_ref(), got[2].recorded.as_ref()), (None, None));
        assert_eq!(default_name("GET", "/c", 3), "GET /c (line 3)");
        for (bad, want) in [
            (r#""name": """#, "c.jsonl:1: `name` is empty"),
            (
                r#""response": {"status": 42}"#,
                "c.jsonl:1: `response`: `status` must be a number",
            ),
            (
                r#""response": {"status": 200, "bdy": ""}"#,
                "c.jsonl:1: `response`: unknown field `bdy`",
            ),
            (r#""response": 1"#, "c.jsonl:1: `response`: must be an object"),
        ] {
            let text = format!("{{\"method\": \"GET\", \"path\": \"/\", {bad}}}");
            let got = lines(&text).unwrap_err();
            assert!(got.starts_with(want), "{bad}: {got}");
        }
    }

    #[test]
    fn har_responses_are_the_recorded_answers() {
        // The shape of ../shared/parity/book-chapter11.har.
        let har = r#"{"log": {"version": "1.2", "entries": [
          {"request": {"method": "GET", "url": "http://legacy/api/thoughts/0/", "httpVersion": "HTTP/1.1", "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
           "response": {"status": 404, "statusText": "NOT FOUND", "httpVersion": "HTTP/1.1",
             "headers": [{"name": "content-type", "value": "application/json"}, {"name": "x-request-id", "value": "913c"}],
             "cookies": [], "content": {"size": 64, "mimeType": "application/json", "text": "{\"id\": null}\n"},
             "redirectURL": "", "headersSize": -1, "bodySize": 64},
           "cache": {}, "timings": {"send": 0, "wait": 0, "receive": 0}, "startedDateTime": "2026-12-07T00:00:00Z", "time": 0, "comment": "single"},
          {"request": {"method": "GET", "url": "http://legacy/logo.png", "headers": []},
           "response": {"status": 200, "headers": [], "content": {"mimeType": "image/png", "text": "AP8=", "encoding": "base64"}}},
          {"request": {"method": "GET", "url": "http://legacy/blocked", "headers": []},
           "response": {"status": 0, "headers": [], "content": {}}}
        ]}}"#;
        let got = parse("book.har", har, true).unwrap();
        let answer = got[0].recorded.as_ref().unwrap();
        assert_eq!(answer.status, 404);
        assert_eq!(answer.headers["x-request-id"], "913c");
        assert_eq!(answer.body, "{\"id\": null}\n");
        assert_eq!(&got[1].recorded.as_ref().unwrap().body[..], [0, 255]);
        assert!(got[2].recorded.is_none(), "a browser's status 0 is no answer");
        let named = har.replace(
            "\"comment\": \"single\"",
            "\"comment\": \"single\", \"_name\": \"thought 0 is not found\", \"_expect\": {\"reason\": \"r\", \"status\": {\"legacy\": 404, \"new\": 400}}",
        );
        let got = parse("book.har", &named, true).unwrap();
        assert_eq!(got[0].name.as_deref(), Some("thought 0 is not found"));
        assert_eq!(got[0].expect.as_deref().map(|e| e.reason.as_str()), Some("r"));
        let bad = har.replace("\"comment\": \"single\"", "\"_name\": 1");
        let got = parse("book.har", &bad, true).unwrap_err().to_string();
        assert_eq!(got, "book.har:1: log.entries[0]: `_name` must be a non-empty string");
        // A binary answer that is not base64 says so (it read as "no recorded answer").
        let broken = har.replace("\"text\": \"AP8=\"", "\"text\": \"not base64!\"");
        let got = parse("book.har", &broken, true).unwrap_err().to_string();
        assert!(
            got.contains("log.entries[1]: `response.content.text` is not base64"),
            "{got}"
        );
    }
}

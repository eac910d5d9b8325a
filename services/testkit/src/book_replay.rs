//! The book's recorded answers (`tests/parity/book-chapter11.har`) replayed against one of our apps,
//! in process, and judged by the deliberate differences of `tests/parity/book-differences.toml`.
//!
//! This is the services' own check of that list, independent of `strangler parity`: every request
//! of the HAR whose route there sends it to the app's upstream is sent to the app (tokens minted by
//! [`crate::book::book_tokens`]), and its answer compared with the book's under the route's compare
//! rules (`headers`, `ignore_headers`, `normalize`). A request with a divergence must differ exactly
//! as listed (`expected`); one that differs otherwise, or no longer differs, is a failure, so the list
//! stays true in both directions.
//!
//! A divergence applies to the requests of its `method` and `path` (query included), and when it has
//! a `name`, only to the request of that name (`METHOD path (line N)`, N counting the HAR's entries
//! from 1).

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use regex::Regex;
use serde_json::Value;

use crate::{TestResponse, send};

/// Where the files are, from this crate's directory.
const HAR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/parity/book-chapter11.har");
const DIFFERENCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/parity/book-differences.toml");

/// What a replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Requests whose answers matched the book's.
    pub matched: usize,
    /// Requests that differed exactly as a divergence says, by name.
    pub expected: Vec<String>,
    /// Everything else, one line each.
    pub failures: Vec<String>,
}

/// One side's answer, as compared.
#[derive(Debug)]
struct Answer {
    status: u64,
    headers: HashMap<String, String>,
    body: Value,
}

/// One route of the differences file.
#[derive(Debug)]
struct Route {
    new: String,
    exact: Option<String>,
    prefix: Option<String>,
    headers: Vec<String>,
    normalize: Vec<(Regex, String)>,
    divergences: Vec<Value>,
}

impl Route {
    fn covers(&self, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or_default();
        match (&self.exact, &self.prefix) {
            (Some(exact), _) => path == exact,
            (None, Some(prefix)) => path == prefix.trim_end_matches('/') || path.starts_with(prefix.as_str()),
            _ => false,
        }
    }
}

fn routes() -> Vec<Route> {
    let text = std::fs::read_to_string(DIFFERENCES).unwrap();
    let table: Value = toml::from_str(&text).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_ascii_lowercase()).collect())
            .unwrap_or_default()
    };
    table["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let compare = &r["compare"];
            let ignored = strings(&compare["ignore_headers"]);
            let mut headers = if compare["headers"].is_null() {
                vec!["content-type".to_owned()]
            } else {
                strings(&compare["headers"])
            };
            headers.retain(|h| !ignored.contains(h));
            let normalize = compare["normalize"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|n| {
                            let pattern = Regex::new(n["pattern"].as_str().unwrap()).unwrap();
                            (pattern, n["replace"].as_str().unwrap().to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            Route {
                new: r["new"].as_str().unwrap().to_owned(),
                exact: r["exact"].as_str().map(str::to_owned),
                prefix: r["path"].as_str().map(str::to_owned),
                headers,
                normalize,
                divergences: compare["divergences"].as_array().cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// `${NAME}` replaced from `tokens`; an unknown name fails the test.
fn expand(text: &str, tokens: &HashMap<&str, String>) -> String {
    let mut out = text.to_owned();
    while let Some(start) = out.find("${") {
        let end = start + out[start..].find('}').unwrap();
        let name = &out[start + 2..end];
        let value = tokens.get(name).unwrap_or_else(|| panic!("no token for ${{{name}}}"));
        out.replace_range(start..=end, value);
    }
    out
}

fn request_of(entry: &Value, tokens: &HashMap<&str, String>) -> (String, String, Request<Body>) {
    let request = &entry["request"];
    let method = request["method"].as_str().unwrap().to_owned();
    let url = request["url"].as_str().unwrap();
    let path = url.strip_prefix("http://legacy").unwrap().to_owned();
    let mut builder = Request::builder().method(method.as_str()).uri(&path);
    for header in request["headers"].as_array().unwrap() {
        let value = expand(header["value"].as_str().unwrap(), tokens);
        builder = builder.header(header["name"].as_str().unwrap(), value);
    }
    let body = request["postData"]["text"].as_str().unwrap_or_default().to_owned();
    (method, path, builder.body(Body::from(body)).unwrap())
}

fn normalized(value: Value, rules: &[(Regex, String)]) -> Value {
    match value {
        Value::String(text) => Value::String(rules.iter().fold(text, |text, (re, with)| {
            re.replace_all(&text, with.as_str()).into_owned()
        })),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| normalized(v, rules)).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, normalized(v, rules))).collect()),
        other => other,
    }
}

fn body_value(text: &str, content_type: Option<&String>, rules: &[(Regex, String)]) -> Value {
    let is_json = content_type.is_some_and(|ct| ct.starts_with("application/json"));
    let value = match serde_json::from_str(text) {
        Ok(json) if is_json && !text.is_empty() => json,
        _ => Value::String(text.to_owned()),
    };
    normalized(value, rules)
}

fn recorded(entry: &Value, route: &Route) -> Answer {
    let response = &entry["response"];
    let headers: HashMap<String, String> = response["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let name = h["name"].as_str().unwrap().to_ascii_lowercase();
            (name, h["value"].as_str().unwrap().to_owned())
        })
        .collect();
    let text = response["content"]["text"].as_str().unwrap_or_default();
    Answer {
        status: response["status"].as_u64().unwrap(),
        body: body_value(text, headers.get("content-type"), &route.normalize),
        headers,
    }
}

fn ours(response: &TestResponse, route: &Route) -> Answer {
    let headers: HashMap<String, String> = response
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
        .collect();
    Answer {
        status: u64::from(response.status.as_u16()),
        body: body_value(&response.text(), headers.get("content-type"), &route.normalize),
        headers,
    }
}

/// The differences between two answers under the route's rules, as `(field, book, ours)`.
fn differences(book: &Answer, ours: &Answer, route: &Route) -> Vec<(String, Value, Value)> {
    let mut found = Vec::new();
    if book.status != ours.status {
        found.push(("status".to_owned(), book.status.into(), ours.status.into()));
    }
    let header = |a: &Answer, name: &str| {
        a.headers
            .get(name)
            .map_or(Value::from("(absent)"), |v| v.clone().into())
    };
    for name in &route.headers {
        if header(book, name) != header(ours, name) {
            found.push((format!("header {name}"), header(book, name), header(ours, name)));
        }
    }
    if book.body != ours.body {
        found.push(("body".to_owned(), book.body.clone(), ours.body.clone()));
    }
    found
}

/// Whether `differences` are exactly what `divergence` lists.
fn as_listed(book: &Answer, ours: &Answer, divergence: &Value, route: &Route) -> Result<(), String> {
    let side = |stated: &Value, actual: &Value| stated == "*" || stated == actual;
    let mut book = clone_answer(book);
    let mut ours = clone_answer(ours);
    if let Some(status) = divergence.get("status") {
        if status["legacy"] != book.status || status["new"] != ours.status {
            return Err(format!("status {} / {}, listed {status}", book.status, ours.status));
        }
        ours.status = book.status;
    }
    for (name, stated) in divergence
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let get = |a: &Answer| {
            a.headers
                .get(name)
                .map_or(Value::from("(absent)"), |v| v.clone().into())
        };
        let (b, o) = (get(&book), get(&ours));
        if b == o || !side(&stated["legacy"], &b) || !side(&stated["new"], &o) {
            return Err(format!("header {name}: {b} / {o}, listed {stated}"));
        }
        ours.headers.remove(name);
        book.headers.remove(name);
    }
    for (pointer, stated) in divergence
        .get("pointers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let (b, o) = (
            book.body.pointer(pointer).cloned().unwrap_or(Value::Null),
            ours.body.pointer(pointer).cloned().unwrap_or(Value::Null),
        );
        if b == o || !side(&stated["legacy"], &b) || !side(&stated["new"], &o) {
            return Err(format!("{pointer:?}: {b} / {o}, listed {stated}"));
        }
        for answer in [&mut book, &mut ours] {
            if pointer.is_empty() {
                answer.body = Value::Null;
            } else if let Some(place) = answer.body.pointer_mut(pointer) {
                *place = Value::Null;
            }
        }
    }
    match differences(&book, &ours, route).as_slice() {
        [] => Ok(()),
        more => Err(format!("differs beyond the list: {more:?}")),
    }
}

fn clone_answer(a: &Answer) -> Answer {
    Answer {
        status: a.status,
        headers: a.headers.clone(),
        body: a.body.clone(),
    }
}

/// Replays, in order, every HAR entry whose route sends it to `upstream` (`thoughts`, `users`),
/// against `router`, with `tokens` for the placeholders; see the module's doc for the verdicts.
pub async fn replay_book(router: &Router, upstream: &str, tokens: &HashMap<&str, String>) -> Replay {
    let har: Value = serde_json::from_str(&std::fs::read_to_string(HAR).unwrap()).unwrap();
    let routes = routes();
    let mut replay = Replay::default();
    for (index, entry) in har["log"]["entries"].as_array().unwrap().iter().enumerate() {
        let (method, path, request) = request_of(entry, tokens);
        let route = routes
            .iter()
            .find(|r| r.covers(&path))
            .unwrap_or_else(|| panic!("no route for {path}"));
        if route.new != upstream {
            continue;
        }
        let name = format!("{method} {path} (line {})", index + 1);
        let book = recorded(entry, route);
        let ours = ours(&send(router, request).await, route);
        let divergence = route.divergences.iter().find(|d| {
            d["path"] == path.as_str()
                && d.get("method").is_none_or(|m| m == method.as_str())
                && d.get("name").is_none_or(|n| n == name.as_str())
        });
        match (divergence, differences(&book, &ours, route).is_empty()) {
            (None, true) => replay.matched += 1,
            (None, false) => replay
                .failures
                .push(format!("{name}: mismatch {:?}", differences(&book, &ours, route))),
            (Some(_), true) => replay
                .failures
                .push(format!("{name}: resolved, remove it from the list")),
            (Some(d), false) => match as_listed(&book, &ours, d, route) {
                Ok(()) => replay.expected.push(name),
                Err(why) => replay.failures.push(format!("{name}: not as listed: {why}")),
            },
        }
    }
    replay
}

//! The traffic recording as HAR 1.2 (`[record] path` ending in `.har`): the same
//! requests and answers as the JSON Lines form, as a file that browsers' tools, HAR
//! viewers and `strangler parity --requests` / `--legacy-from` read.
//!
//! A recorded line (see [`crate::migration::record`]) is the one source: [`entry`] turns
//! it into a HAR entry. The file is a valid HAR document after every write: it is
//! [`HEADER`], the entries one per line separated by `,`, then [`TRAILER`]; an entry is
//! appended by cutting the trailer off and writing the entry and the trailer again
//! ([`append`]). A file at the path that is not such a document is moved aside to
//! `PATH.1`, never appended to.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::SystemTime;

use serde_json::{Map, Value, json};

/// How a recording starts (up to and including the `[` of `entries`).
pub const HEADER: &str = concat!(
    "{\"log\": {\"version\": \"1.2\", \"creator\": {\"name\": \"strangler\", \"version\": \"",
    env!("CARGO_PKG_VERSION"),
    "\"}, \"entries\": ["
);

/// How a recording ends.
pub const TRAILER: &str = "\n]}}\n";

/// What a recording starts with, whatever version of strangler wrote it.
const OURS: &str = "{\"log\": {\"version\": \"1.2\", \"creator\": {\"name\": \"strangler\"";

/// The HAR entry of a recorded line (`method`, `path`, `headers`, and `response` when
/// answers are kept; without one the entry's response has status 0, as a browser writes a
/// request that got no answer). `host` makes the URL absolute, as HAR wants it.
pub fn entry(line: &Map<String, Value>, host: &str, at: SystemTime) -> Value {
    let text = |key: &str| line.get(key).and_then(Value::as_str).unwrap_or_default();
    let path = text("path");
    let query: Vec<Value> = path
        .split_once('?')
        .map(|(_, query)| query)
        .into_iter()
        .flat_map(|query| query.split('&'))
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            json!({"name": name, "value": value})
        })
        .collect();
    let request = json!({
        "method": text("method"),
        "url": format!("http://{host}{path}"),
        "httpVersion": "HTTP/1.1",
        "headers": header_list(line.get("headers")),
        "queryString": query,
        "cookies": [],
        "headersSize": -1,
        "bodySize": 0,
    });
    let response = line.get("response").map_or_else(no_response, response);
    json!({
        "startedDateTime": humantime::format_rfc3339_millis(at).to_string(),
        "time": 0,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
    })
}

/// A recorded answer (`{"status", "headers", "body" | "body_base64"}`) as a HAR response.
fn response(recorded: &Value) -> Value {
    let status = recorded.get("status").and_then(Value::as_u64).unwrap_or(0);
    let headers = recorded.get("headers");
    let header = |name: &str| {
        headers
            .and_then(|h| h.get(name))
            .and_then(|v| v.as_str().or_else(|| v.get(0).and_then(Value::as_str)))
            .unwrap_or_default()
    };
    let mut content = Map::new();
    let (text, size) = match (recorded.get("body"), recorded.get("body_base64")) {
        (Some(Value::String(text)), _) => (text.clone(), text.len()),
        (_, Some(Value::String(encoded))) => {
            content.insert("encoding".to_owned(), "base64".into());
            (encoded.clone(), encoded.len() / 4 * 3)
        }
        _ => (String::new(), 0),
    };
    content.insert("size".to_owned(), size.into());
    content.insert("mimeType".to_owned(), header("content-type").into());
    content.insert("text".to_owned(), text.into());
    let reason = u16::try_from(status)
        .ok()
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or_default();
    json!({
        "status": status,
        "statusText": reason,
        "httpVersion": "HTTP/1.1",
        "headers": header_list(headers),
        "cookies": [],
        "content": content,
        "redirectURL": header("location"),
        "headersSize": -1,
        "bodySize": size,
    })
}

/// The response of an entry recorded without its answer.
fn no_response() -> Value {
    json!({
        "status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
        "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1, "bodySize": -1,
    })
}

/// Headers as a recorded line holds them (name: value or [values]) as HAR's list.
fn header_list(headers: Option<&Value>) -> Vec<Value> {
    let mut list = Vec::new();
    for (name, values) in headers.and_then(Value::as_object).into_iter().flatten() {
        let values: Vec<&Value> = match values {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for value in values.into_iter().filter_map(Value::as_str) {
            list.push(json!({"name": name, "value": value}));
        }
    }
    list
}

/// Makes `file` (opened for reading and appending) a recording: writes [`HEADER`] and
/// [`TRAILER`] when it is empty. Returns whether it holds entries already, or `None`
/// when it is something else (the caller moves it aside).
pub fn start(file: &mut File) -> std::io::Result<Option<bool>> {
    let length = file.metadata()?.len();
    if length == 0 {
        file.write_all(HEADER.as_bytes())?;
        file.write_all(TRAILER.as_bytes())?;
        return Ok(Some(false));
    }
    let mut head = vec![0; OURS.len().min(length as usize)];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    if head != OURS.as_bytes() {
        return Ok(None);
    }
    ending(file, length)
}

/// The length of a recording that holds no entry.
pub const EMPTY: u64 = (HEADER.len() + TRAILER.len()) as u64;

/// Whether `file` (of `length` bytes) ends as a recording does: `Some(has_entries)`, or
/// `None` when it does not end with [`TRAILER`].
fn ending(file: &mut File, length: u64) -> std::io::Result<Option<bool>> {
    let tail_length = (TRAILER.len() as u64 + 1).min(length);
    let mut tail = vec![0; tail_length as usize];
    file.seek(SeekFrom::Start(length - tail_length))?;
    file.read_exact(&mut tail)?;
    if !tail.ends_with(TRAILER.as_bytes()) {
        return Ok(None);
    }
    Ok(Some(tail.first() != Some(&b'[')))
}

/// Appends one entry (one line of JSON) to the recording `file`; returns its new length.
/// Where the trailer is and whether a separator is needed are read from the file itself
/// (its length and its last bytes as they are now), never from a length remembered
/// since an earlier write. A file that no longer ends as a recording is left as it is:
/// an [`std::io::ErrorKind::InvalidData`] error.
pub fn append(file: &mut File, entry: &str) -> std::io::Result<u64> {
    let length = file.metadata()?.len();
    let Some(has_entries) = ending(file, length)? else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the recording no longer ends as a HAR document",
        ));
    };
    let kept = length - TRAILER.len() as u64;
    file.set_len(kept)?;
    let separator = if has_entries { ",\n" } else { "\n" };
    let text = format!("{separator}{entry}{TRAILER}");
    file.write_all(text.as_bytes())?;
    Ok(kept + text.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn entries_carry_the_request_and_the_answer() {
        let recorded = line(
            r#"{"method": "GET", "path": "/api/thoughts/?search=a&x", "headers": {"accept": ["a", "b"]},
                "response": {"status": 404, "headers": {"content-type": "application/json", "location": "/x"}, "body": "{}"}}"#,
        );
        let got = entry(&recorded, "example.com", SystemTime::UNIX_EPOCH);
        assert_eq!(got["request"]["url"], "http://example.com/api/thoughts/?search=a&x");
        assert_eq!(got["request"]["headers"].as_array().unwrap().len(), 2);
        assert_eq!(got["request"]["queryString"][1], json!({"name": "x", "value": ""}));
        assert_eq!(got["response"]["status"], 404);
        assert_eq!(got["response"]["statusText"], "Not Found");
        assert_eq!(got["response"]["content"]["text"], "{}");
        assert_eq!(got["response"]["content"]["mimeType"], "application/json");
        assert_eq!(got["response"]["redirectURL"], "/x");
        assert_eq!(got["startedDateTime"], "1970-01-01T00:00:00.000Z");
        let binary = line(r#"{"method": "GET", "path": "/", "response": {"status": 200, "body_base64": "AP8="}}"#);
        let got = entry(&binary, "h", SystemTime::UNIX_EPOCH);
        assert_eq!(got["response"]["content"]["encoding"], "base64");
        let unanswered = entry(&line(r#"{"method": "GET", "path": "/"}"#), "h", SystemTime::UNIX_EPOCH);
        assert_eq!(unanswered["response"]["status"], 0);
    }

    #[test]
    fn the_file_is_a_har_document_after_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.har");
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&path)
                .unwrap()
        };
        let mut file = open();
        assert_eq!(start(&mut file).unwrap(), Some(false));
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["log"]["entries"], json!([]));
        assert_eq!(file.metadata().unwrap().len(), EMPTY);
        let mut length = 0;
        for i in 1..=2 {
            length = append(&mut file, &format!("{{\"n\": {i}}}")).unwrap();
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(doc["log"]["entries"].as_array().unwrap().len(), i);
        }
        assert_eq!(length, std::fs::metadata(&path).unwrap().len());
        assert_eq!(start(&mut open()).unwrap(), Some(true), "reopened: it has entries");
        // Another handle's append is seen: the length is the file's, not remembered.
        let other = append(&mut open(), "{\"n\": 3}").unwrap();
        assert_eq!(
            append(&mut file, "{\"n\": 4}").unwrap(),
            other + "{\"n\": 4}".len() as u64 + 2
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["log"]["entries"], json!([{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]));
        std::fs::write(&path, "cut").unwrap();
        let refused = append(&mut file, "{\"n\": 5}").unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cut", "left as it is");
        std::fs::write(&path, "not a recording").unwrap();
        assert_eq!(start(&mut open()).unwrap(), None);
    }
}

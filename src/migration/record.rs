//! Recording sampled real traffic as a parity corpus (`[record]` in routes.toml).
//!
//! Each sampled request becomes one JSON line in the format `strangler parity --requests`
//! reads: `{"method", "path", "headers"}` with secrets redacted (`authorization`,
//! `cookie`, `proxy-authorization`, `set-cookie` and the configured headers). Recording
//! never blocks or fails a request: lines go through a bounded queue to a writer thread,
//! and when the queue is full the line is dropped and counted. The file is rotated to
//! `PATH.1` when it would grow past `max_bytes`. Requests with a body are not recorded
//! (their body is streamed, never held), and are counted as skipped.
//!
//! With `responses = true` a line also keeps the answer the client got, as
//! `"response": {"status", "headers", "body"}` (`body_base64` when the body is not UTF-8;
//! headers redacted like the request's; `content-length` left out): a golden corpus for
//! `strangler parity --legacy-from`. The answer is read from the bounded copy a shadow
//! comparison also reads ([`crate::migration::shadow::Capture`], at most
//! [`crate::migration::shadow::CAPTURE_LIMIT`] = 1 MiB of body): the
//! line is written once the body has reached the client. An answer the proxy made itself
//! (502, 504 …), one larger than the bound, one the client abandoned, or a compressed one
//! (`Content-Encoding`: a replay asks for uncompressed answers) is not recorded: the
//! request is counted as skipped.
//!
//! A `path` ending in `.har` makes the recording a HAR 1.2 file instead: the same
//! requests and answers as entries ([`super::har`]), a valid document after every write.
//!
//! A file has one writer for the whole process, whatever the reloads: a reloaded
//! `[record]` with the same path (other sampling, redaction or `max_bytes`) sends to the
//! writer already running, and one with another path starts a writer for that file while
//! the old one finishes the answers still in flight (they keep its queue open) and then
//! stops. Should a table bring a path back while its old writer still drains, the new
//! writer shares that writer's file (one file state, one lock), so no two handles ever
//! write to a recording each from its own idea of its length.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::SystemTime;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, Method};
use prometheus::IntCounterVec;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::har;
use crate::config::RecordConfig;
use crate::parity::Captured;

/// Lines waiting for the writer; beyond this, lines are dropped.
const QUEUE: usize = 4096;

/// A running recorder; the writer thread of its file stops once the last recorder and
/// the last [`PendingAnswer`] sending to it are gone (and its queue is written).
#[derive(Debug)]
pub struct Recorder {
    config: RecordConfig,
    writer: Arc<Writer>,
    counts: IntCounterVec,
}

impl Recorder {
    /// A recorder for `config`: it sends to the writer of `config.path` already running in
    /// this process (taking on `config.max_bytes`), or starts one.
    pub fn start(config: RecordConfig, counts: IntCounterVec) -> std::io::Result<Self> {
        let writer = Writer::for_path(&config.path, config.max_bytes)?;
        Ok(Self { config, writer, counts })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &RecordConfig {
        &self.config
    }

    /// Offers one request; never blocks. With `responses = true`, the line waits for the
    /// answer: the returned [`PendingAnswer`] is given it (or dropped: counted as skipped).
    pub fn offer(
        &self,
        route: &str,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        sample_key: &[u8],
    ) -> Option<PendingAnswer> {
        let sampled = self.config.sample >= 1.0
            || f64::from(crate::migration::canary::bucket(route, sample_key))
                < self.config.sample * f64::from(crate::migration::canary::BUCKETS);
        if !sampled {
            return None;
        }
        if has_body(headers) {
            self.counts.with_label_values(&["skipped"]).inc();
            return None;
        }
        let request = request_fields(method, path_and_query, headers, &self.config.redact);
        // HAR wants an absolute URL: the host the client asked for.
        let har_host = is_har(&self.config.path).then(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost")
                .to_owned()
        });
        if self.config.responses {
            return Some(PendingAnswer {
                request,
                har_host,
                lines: self.writer.lines.clone(),
                counts: self.counts.clone(),
                redact: self.config.redact.clone(),
                done: false,
            });
        }
        send(&self.writer.lines, &self.counts, render(request, har_host.as_deref()));
        None
    }
}

/// The writers running in this process, by recording file: at most one per file.
static WRITERS: Mutex<Option<HashMap<PathBuf, Slot>>> = Mutex::new(None);

/// What runs for one recording file: its writer while a recorder holds it, and its file
/// while a writer thread (perhaps one still draining its queue) holds it.
struct Slot {
    writer: Weak<Writer>,
    file: Weak<Mutex<RotatingFile>>,
}

/// The writer thread of one recording file, as its recorders hold it.
struct Writer {
    /// The file's path as first given.
    path: PathBuf,
    /// Its queue.
    lines: SyncSender<String>,
    /// The file it writes, shared with the thread (and with a thread still draining
    /// before it, if any).
    file: Arc<Mutex<RotatingFile>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// The writer of the recording at `path`, with `max_bytes` from now on: the running
    /// one, or a new thread (on the file of a thread that still drains, if there is one).
    fn for_path(path: &Path, max_bytes: u64) -> std::io::Result<Arc<Self>> {
        let key = file_key(path);
        let mut writers = lock(&WRITERS);
        let writers = writers.get_or_insert_with(HashMap::new);
        writers.retain(|_, slot| slot.file.strong_count() > 0);
        let slot = writers.get(&key);
        if let Some(running) = slot.and_then(|s| s.writer.upgrade()) {
            lock(&running.file).max_bytes = max_bytes;
            return Ok(running);
        }
        let file = match slot.and_then(|s| s.file.upgrade()) {
            Some(draining) => {
                lock(&draining).max_bytes = max_bytes;
                draining
            }
            None => Arc::new(Mutex::new(RotatingFile::open(path.to_path_buf(), max_bytes)?)),
        };
        let (lines, queue) = sync_channel::<String>(QUEUE);
        let thread_file = file.clone();
        std::thread::Builder::new()
            .name("strangler-record".to_owned())
            .spawn(move || {
                for line in queue {
                    let mut file = lock(&thread_file);
                    if let Err(e) = file.write_line(&line) {
                        tracing::warn!(path = %file.path.display(), error = %e, "cannot write the traffic recording");
                    }
                }
            })?;
        let writer = Arc::new(Self {
            path: path.to_path_buf(),
            lines,
            file,
        });
        writers.insert(
            key,
            Slot {
                writer: Arc::downgrade(&writer),
                file: Arc::downgrade(&writer.file),
            },
        );
        Ok(writer)
    }
}

/// Locks `mutex`; a writer that panicked holding it left nothing half-done that the next
/// write does not check (the file's state is read from the file).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The file `path` names, as one key whatever the spelling: its directory resolved
/// (symbolic links, `..`) when it exists, else the path made absolute.
fn file_key(path: &Path) -> PathBuf {
    let resolved = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .and_then(|dir| std::fs::canonicalize(dir).ok())
        .zip(path.file_name())
        .map(|(dir, name)| dir.join(name));
    resolved.unwrap_or_else(|| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// A recorded line as written: itself (JSON Lines), or its HAR entry when the recording
/// is HAR (`har_host`: the host of the entry's URL).
fn render(line: Map<String, Value>, har_host: Option<&str>) -> String {
    match har_host {
        Some(host) => har::entry(&line, host, SystemTime::now()).to_string(),
        None => Value::Object(line).to_string(),
    }
}

/// Queues one line for the writer, counting it as recorded or dropped.
fn send(lines: &SyncSender<String>, counts: &IntCounterVec, line: String) {
    let result = match lines.try_send(line) {
        Ok(()) => "recorded",
        Err(TrySendError::Full(_)) => "dropped",
        Err(TrySendError::Disconnected(_)) => "dropped",
    };
    counts.with_label_values(&[result]).inc();
}

/// A recorded request waiting for its answer (`responses = true`). Dropped without one
/// (the proxy answered itself, or the upstream switched protocols), it is counted as
/// skipped.
#[derive(Debug)]
pub struct PendingAnswer {
    request: Map<String, Value>,
    har_host: Option<String>,
    lines: SyncSender<String>,
    counts: IntCounterVec,
    redact: Vec<HeaderName>,
    done: bool,
}

impl PendingAnswer {
    /// Writes the line once `answer` delivers the copy of the response (on a task of its
    /// own: the response streams on meanwhile). Outside a tokio runtime there is no task
    /// to wait on: the line is dropped, counted as skipped.
    pub fn answer_from(mut self, answer: oneshot::Receiver<Option<Captured>>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.done = true;
        runtime.spawn(async move {
            match answer.await {
                Ok(Some(captured)) if !encoded(&captured.headers) => {
                    self.request
                        .insert("response".to_owned(), response(&captured, &self.redact));
                    let line = render(std::mem::take(&mut self.request), self.har_host.as_deref());
                    send(&self.lines, &self.counts, line);
                }
                _ => self.counts.with_label_values(&["skipped"]).inc(),
            }
        });
    }
}

impl Drop for PendingAnswer {
    fn drop(&mut self) {
        if !self.done {
            self.counts.with_label_values(&["skipped"]).inc();
        }
    }
}

/// Whether an answer's body is compressed (`Content-Encoding` other than `identity`):
/// such an answer is not recorded, since a replay asks for uncompressed answers and
/// compares them field by field.
fn encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

/// A recorded answer: `{"status", "headers", "body" | "body_base64"}`, secrets redacted.
fn response(captured: &Captured, redact: &[HeaderName]) -> Value {
    let mut fields = Map::new();
    fields.insert("status".to_owned(), captured.status.into());
    let mut headers = captured.headers.clone();
    headers.remove(http::header::CONTENT_LENGTH);
    fields.insert("headers".to_owned(), Value::Object(header_fields(&headers, redact)));
    match std::str::from_utf8(&captured.body) {
        Ok(text) => fields.insert("body".to_owned(), text.into()),
        Err(_) => fields.insert(
            "body_base64".to_owned(),
            base64::engine::general_purpose::STANDARD.encode(&captured.body).into(),
        ),
    };
    Value::Object(fields)
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) != Some(0))
}

/// One corpus line, secrets redacted.
#[cfg(test)]
fn line(method: &Method, path_and_query: &str, headers: &HeaderMap, redact: &[HeaderName]) -> String {
    Value::Object(request_fields(method, path_and_query, headers, redact)).to_string()
}

/// The fields of a corpus line: `method`, `path`, `headers` (secrets redacted, `host`
/// and `content-length` left out).
fn request_fields(
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    redact: &[HeaderName],
) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("method".to_owned(), method.as_str().into());
    fields.insert("path".to_owned(), as_data(path_and_query).into());
    let mut kept = headers.clone();
    kept.remove(http::header::HOST);
    let mut headers = header_fields(&kept, redact);
    for value in headers.values_mut() {
        match value {
            Value::String(text) => *text = as_data(text),
            Value::Array(values) => values.iter_mut().for_each(|v| {
                if let Value::String(text) = v {
                    *text = as_data(text);
                }
            }),
            _ => {}
        }
    }
    fields.insert("headers".to_owned(), Value::Object(headers));
    fields
}

/// A client's text as corpus data: `strangler parity` expands `${NAME}` in a corpus's
/// requests from the environment, so a recorded `${` is written `$${` (a literal `${`);
/// else a client sending `User-Agent: ${CI_TOKEN}` would have the replay send, and print,
/// the CI's secret.
fn as_data(text: &str) -> String {
    text.replace("${", "$${")
}

/// Headers as a JSON object, secrets redacted; a repeated header is a list.
fn header_fields(headers: &HeaderMap, redact: &[HeaderName]) -> Map<String, Value> {
    let mut fields = Map::new();
    for (name, value) in crate::parity::redact_headers(headers, redact) {
        if name == "content-length" {
            continue;
        }
        match fields.get_mut(&name) {
            Some(serde_json::Value::Array(values)) => values.push(value.into()),
            Some(existing) => {
                let first = existing.take();
                *existing = serde_json::Value::Array(vec![first, value.into()]);
            }
            None => {
                fields.insert(name, value.into());
            }
        }
    }
    fields
}

/// Whether a recording at `path` is HAR (its name ends in `.har`) rather than JSON Lines.
pub fn is_har(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("har"))
}

/// A recording file. What it holds (its length; for HAR, where the trailer is) is read
/// from the file at every write, never remembered between writes.
struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    file: File,
    /// Whether it is a HAR recording (see [`super::har`]) rather than JSON Lines.
    har: bool,
}

impl RotatingFile {
    fn open(path: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        let file = Self::open_file(&path)?;
        Ok(Self {
            har: is_har(&path),
            path,
            max_bytes,
            file,
        })
    }

    /// Opens the file; a HAR recording is started, and a file at its path that is not one
    /// is moved aside to `PATH.1` first.
    fn open_file(path: &Path) -> std::io::Result<File> {
        let open = || OpenOptions::new().create(true).read(true).append(true).open(path);
        let mut file = open()?;
        if !is_har(path) || har::start(&mut file)?.is_some() {
            return Ok(file);
        }
        std::fs::rename(path, Self::rotated(path))?;
        let mut file = open()?;
        har::start(&mut file)?;
        Ok(file)
    }

    fn rotated(path: &Path) -> PathBuf {
        let mut rotated = path.to_path_buf().into_os_string();
        rotated.push(".1");
        PathBuf::from(rotated)
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let size = line.len() as u64 + 2;
        let written = self.file.metadata()?.len();
        let has_lines = written > if self.har { har::EMPTY } else { 0 };
        if has_lines && written + size > self.max_bytes {
            std::fs::rename(&self.path, Self::rotated(&self.path))?;
            self.file = Self::open_file(&self.path)?;
        }
        if !self.har {
            // One write: the line and its end arrive together.
            return self.file.write_all(format!("{line}\n").as_bytes());
        }
        match har::append(&mut self.file, line) {
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                // Changed under us (not by a writer of ours): moved aside, begun again.
                self.file = Self::open_file(&self.path)?;
                har::append(&mut self.file, line).map(drop)
            }
            written => written.map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_placeholders_are_recorded_as_data() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", "${CI_SECRET} $${x}".parse().unwrap());
        let text = line(&Method::GET, "/a?t=${HOME}", &headers, &[]);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["path"], "/a?t=$${HOME}");
        assert_eq!(value["headers"]["user-agent"], "$${CI_SECRET} $$${x}");
        // Replayed, they are what the client sent, whatever the environment holds.
        let vars = |_: &str| Some("leaked".to_owned());
        let expand =
            |v: &serde_json::Value| crate::commands::parity::corpus::expand(v.as_str().unwrap(), &vars).unwrap();
        assert_eq!(expand(&value["path"]), "/a?t=${HOME}");
        assert_eq!(expand(&value["headers"]["user-agent"]), "${CI_SECRET} $${x}");
    }

    #[test]
    fn lines_redact_secrets_and_keep_repeated_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer secret".parse().unwrap());
        headers.insert("cookie", "session=secret".parse().unwrap());
        headers.insert("x-api-key", "secret".parse().unwrap());
        headers.append("accept", "text/html".parse().unwrap());
        headers.append("accept", "application/json".parse().unwrap());
        headers.insert("host", "example".parse().unwrap());
        let text = line(
            &Method::GET,
            "/api/thoughts/?search=x",
            &headers,
            &[HeaderName::from_static("x-api-key")],
        );
        assert!(!text.contains("secret"), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["method"], "GET");
        assert_eq!(value["path"], "/api/thoughts/?search=x");
        assert_eq!(value["headers"]["authorization"], "[redacted]");
        assert_eq!(value["headers"]["x-api-key"], "[redacted]");
        assert_eq!(
            value["headers"]["accept"],
            serde_json::json!(["text/html", "application/json"])
        );
        assert!(value["headers"].get("host").is_none());
    }

    #[test]
    fn files_rotate_at_max_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.jsonl");
        let mut file = RotatingFile::open(path.clone(), 100).unwrap();
        for i in 0..10 {
            file.write_line(&format!("{{\"line\": {i:020}}}")).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let rotated = std::fs::read_to_string(dir.path().join("traffic.jsonl.1")).unwrap();
        assert!(current.len() <= 100 && rotated.len() <= 100, "{current}\n{rotated}");
        assert!(current.ends_with("{\"line\": 00000000000000000009}\n"), "{current}");
    }

    #[test]
    fn bodies_are_detected() {
        let mut headers = HeaderMap::new();
        assert!(!has_body(&headers));
        headers.insert("content-length", "0".parse().unwrap());
        assert!(!has_body(&headers));
        headers.insert("content-length", "5".parse().unwrap());
        assert!(has_body(&headers));
        let mut headers = HeaderMap::new();
        headers.insert("transfer-encoding", "chunked".parse().unwrap());
        assert!(has_body(&headers));
    }

    #[test]
    fn answers_are_redacted_and_binary_bodies_base64() {
        let mut headers = HeaderMap::new();
        headers.insert("set-cookie", "session=secret".parse().unwrap());
        headers.insert("x-api-key", "secret".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("content-length", "2".parse().unwrap());
        let text = Captured {
            status: 201,
            headers,
            body: bytes::Bytes::from_static(b"{}"),
        };
        let value = response(&text, &[HeaderName::from_static("x-api-key")]);
        assert!(!value.to_string().contains("secret"), "{value}");
        assert_eq!(value["status"], 201);
        assert_eq!(value["body"], "{}");
        assert_eq!(value["headers"]["content-type"], "application/json");
        assert!(value["headers"].get("content-length").is_none());
        let binary = Captured::new(http::StatusCode::OK, vec![0u8, 255]);
        let value = response(&binary, &[]);
        assert_eq!((value["body_base64"].as_str(), value.get("body")), (Some("AP8="), None));
    }

    #[test]
    fn compressed_answers_are_not_recorded() {
        let mut headers = HeaderMap::new();
        assert!(!encoded(&headers));
        headers.insert("content-encoding", "identity".parse().unwrap());
        assert!(!encoded(&headers));
        headers.append("content-encoding", "gzip".parse().unwrap());
        assert!(encoded(&headers));
    }

    #[test]
    fn har_recordings_rotate_as_whole_documents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.har");
        std::fs::write(&path, "left by someone else").unwrap();
        let mut file = RotatingFile::open(path.clone(), 600).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("traffic.har.1")).unwrap(),
            "left by someone else",
            "moved aside, never appended to"
        );
        for i in 0..12 {
            file.write_line(&format!("{{\"entry\": \"{i:040}\"}}")).unwrap();
        }
        let entries = |name: &str| {
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
            assert!(text.len() <= 600, "{text}");
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            doc["log"]["entries"].as_array().unwrap().len()
        };
        let (current, rotated) = (entries("traffic.har"), entries("traffic.har.1"));
        assert!(current >= 1 && rotated >= 1, "{current} {rotated}");
        std::fs::write(&path, "cut short by someone else").unwrap();
        file.write_line("{\"entry\": \"after\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("traffic.har.1")).unwrap(),
            "cut short by someone else",
            "a recording changed under the writer is moved aside, never appended to"
        );
        assert_eq!(entries("traffic.har"), 1);
    }

    #[test]
    fn one_writer_per_file_whatever_the_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let counts = IntCounterVec::new(prometheus::Opts::new("recorded", "test"), &["result"]).unwrap();
        let config = |path: PathBuf, max_bytes| RecordConfig {
            path,
            sample: 1.0,
            max_bytes,
            redact: Vec::new(),
            responses: false,
        };
        let path = dir.path().join("t.har");
        let first = Recorder::start(config(path.clone(), 4096), counts.clone()).unwrap();
        let spelled = dir.path().join(".").join("t.har");
        let reloaded = Recorder::start(config(spelled, 8192), counts.clone()).unwrap();
        assert!(Arc::ptr_eq(&first.writer, &reloaded.writer), "same file, same writer");
        assert_eq!(lock(&first.writer.file).max_bytes, 8192, "the reloaded settings");
        // Its recorders gone while its thread still has a sender: a new recorder shares
        // that thread's file.
        let draining = first.writer.lines.clone();
        let file = Arc::downgrade(&first.writer.file);
        drop((first, reloaded));
        let back = Recorder::start(config(path, 4096), counts).unwrap();
        assert!(Arc::ptr_eq(&back.writer.file, &file.upgrade().unwrap()));
        drop(draining);
    }

    fn pending(har_host: Option<&str>) -> (PendingAnswer, std::sync::mpsc::Receiver<String>, IntCounterVec) {
        let (lines, queue) = sync_channel(4);
        let counts = IntCounterVec::new(prometheus::Opts::new("recorded", "test"), &["result"]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer secret".parse().unwrap());
        let answer = PendingAnswer {
            request: request_fields(&Method::GET, "/a?b=1", &headers, &[]),
            har_host: har_host.map(str::to_owned),
            lines,
            counts: counts.clone(),
            redact: Vec::new(),
            done: false,
        };
        (answer, queue, counts)
    }

    #[tokio::test]
    async fn a_pending_line_is_written_with_its_answer_or_counted_skipped() {
        for har in [None, Some("example.com")] {
            let (answer, queue, counts) = pending(har);
            let (done, receiver) = oneshot::channel();
            answer.answer_from(receiver);
            done.send(Some(Captured::new(http::StatusCode::CREATED, "made")))
                .unwrap();
            let line = tokio::task::spawn_blocking(move || queue.recv().unwrap())
                .await
                .unwrap();
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            let response = if har.is_some() {
                &value["response"]["content"]["text"]
            } else {
                &value["response"]["body"]
            };
            assert_eq!(response, "made", "{line}");
            assert!(!line.contains("secret"), "{line}");
            assert_eq!(counts.with_label_values(&["recorded"]).get(), 1);
        }
        let (answer, _queue, counts) = pending(None);
        let (done, receiver) = oneshot::channel();
        answer.answer_from(receiver);
        done.send(None).unwrap();
        let skipped = counts.with_label_values(&["skipped"]);
        // The task runs when this one yields (a current-thread runtime).
        for _ in 0..100 {
            if skipped.get() > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(skipped.get(), 1, "no copy of the answer: skipped");
        let (answer, _queue, counts) = pending(None);
        drop(answer);
        assert_eq!(counts.with_label_values(&["skipped"]).get(), 1, "no answer: skipped");
    }

    #[test]
    fn outside_a_runtime_the_line_is_skipped() {
        let (answer, queue, counts) = pending(None);
        let (_done, receiver) = oneshot::channel();
        answer.answer_from(receiver);
        assert_eq!(counts.with_label_values(&["skipped"]).get(), 1);
        assert!(queue.try_recv().is_err());
    }
}

//! Recording sampled real traffic as a parity corpus (`[record]` in routes.toml).
//!
//! Each sampled request becomes one JSON line in the format `strangler parity --requests`
//! reads: `{"method", "path", "headers"}` with secrets redacted (`authorization`,
//! `cookie`, `proxy-authorization`, `set-cookie` and the configured headers). Recording
//! never blocks or fails a request: lines go through a bounded queue to a writer thread,
//! and when the queue is full the line is dropped and counted. The file is rotated to
//! `PATH.1` when it would grow past `max_bytes`. Requests with a body are not recorded
//! (their body is streamed, never held), and are counted as skipped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use http::{HeaderMap, HeaderName, Method};
use prometheus::IntCounterVec;

use crate::config::RecordConfig;

/// Lines waiting for the writer; beyond this, lines are dropped.
const QUEUE: usize = 4096;

/// A running recorder; dropping the last handle stops its writer thread.
#[derive(Debug)]
pub struct Recorder {
    config: RecordConfig,
    lines: SyncSender<String>,
    counts: IntCounterVec,
}

impl Recorder {
    /// Starts the writer thread for `config`.
    pub fn start(config: RecordConfig, counts: IntCounterVec) -> std::io::Result<Self> {
        let (lines, queue) = sync_channel::<String>(QUEUE);
        let mut writer = RotatingFile::open(config.path.clone(), config.max_bytes)?;
        std::thread::Builder::new()
            .name("strangler-record".to_owned())
            .spawn(move || {
                for line in queue {
                    if let Err(e) = writer.write_line(&line) {
                        tracing::warn!(path = %writer.path.display(), error = %e, "cannot write the traffic recording");
                    }
                }
            })?;
        Ok(Self { config, lines, counts })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &RecordConfig {
        &self.config
    }

    /// Offers one request; never blocks.
    pub fn offer(&self, route: &str, method: &Method, path_and_query: &str, headers: &HeaderMap, sample_key: &[u8]) {
        let sampled = self.config.sample >= 1.0
            || f64::from(crate::migration::canary::bucket(route, sample_key))
                < self.config.sample * f64::from(crate::migration::canary::BUCKETS);
        if !sampled {
            return;
        }
        if has_body(headers) {
            self.counts.with_label_values(&["skipped"]).inc();
            return;
        }
        let line = line(method, path_and_query, headers, &self.config.redact);
        let result = match self.lines.try_send(line) {
            Ok(()) => "recorded",
            Err(TrySendError::Full(_)) => "dropped",
            Err(TrySendError::Disconnected(_)) => "dropped",
        };
        self.counts.with_label_values(&[result]).inc();
    }
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) != Some(0))
}

/// One corpus line, secrets redacted.
fn line(method: &Method, path_and_query: &str, headers: &HeaderMap, redact: &[HeaderName]) -> String {
    let mut fields = serde_json::Map::new();
    for (name, value) in crate::parity::redact_headers(headers, redact) {
        if name == "host" || name == "content-length" {
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
    serde_json::json!({ "method": method.as_str(), "path": path_and_query, "headers": fields }).to_string()
}

struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    file: File,
    written: u64,
}

impl RotatingFile {
    fn open(path: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path,
            max_bytes,
            file,
            written,
        })
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let size = line.len() as u64 + 1;
        if self.written > 0 && self.written + size > self.max_bytes {
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            std::fs::rename(&self.path, rotated)?;
            self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
            self.written = 0;
        }
        self.file.write_all(line.as_bytes())?;
        self.file.write_all(b"\n")?;
        self.written += size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

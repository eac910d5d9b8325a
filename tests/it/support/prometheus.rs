//! A real Prometheus server (Debian package `prometheus`) as a child process, scraping the
//! admin `/metrics` of the given proxies every second; killed on drop. Without the binary
//! a test is skipped, unless `STRANGLER_REQUIRE_TOOLS=1` (as in CI `.ci/run`), which fails it.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use http::Request;
use http_body_util::BodyExt;
use serde_json::Value;

use super::body::full;
use super::client::client;
use super::command::required;
use super::wait::Backoff;

/// How long Prometheus may take to answer `/-/ready`.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A running Prometheus.
pub struct Prometheus {
    child: tokio::process::Child,
    pub addr: SocketAddr,
    /// Its config, data and log; removed on drop.
    _dir: tempfile::TempDir,
}

/// `text` percent-encoded for a URL query value.
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET url`: the status and body, or `None` when nothing answered.
async fn try_get(url: &str) -> Option<(u16, String)> {
    let response = client().request(Request::get(url).body(full("")).unwrap()).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A port nothing listens on right now (bound, read, released: another process may take
/// it before Prometheus does, so [`Prometheus::start_jobs`] retries).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Prometheus {
    /// Starts Prometheus scraping `/metrics` of the admin addresses of every `(job name,
    /// targets)` each second (a target in two jobs is scraped twice: same `instance` label,
    /// two `job`s); `None` (after printing why) when the binary is missing and not required.
    pub async fn start_jobs(jobs: &[(&str, &[SocketAddr])]) -> Option<Prometheus> {
        let found = std::process::Command::new("prometheus")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            assert!(
                !required("STRANGLER_REQUIRE_TOOLS"),
                "`prometheus` is not installed and STRANGLER_REQUIRE_TOOLS=1 (apt-get install prometheus)"
            );
            eprintln!("skipped: `prometheus` is not installed (apt-get install prometheus)");
            return None;
        }
        let mut config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n".to_owned();
        for (job, targets) in jobs {
            let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ));
        }
        // The port may be taken between free_port() and Prometheus binding it: retry.
        let mut last_log = String::new();
        for _attempt in 0..3 {
            match Prometheus::spawn(&config).await {
                Ok(prometheus) => return Some(prometheus),
                Err(log) => last_log = log,
            }
        }
        panic!("prometheus did not start: {last_log}");
    }

    /// One start on a fresh port and a fresh data dir, waiting for `/-/ready`; on
    /// failure, its log.
    async fn spawn(config: &str) -> Result<Prometheus, String> {
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.path().join("prometheus.log");
        let child = tokio::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus did not run: {e}"));
        let mut prometheus = Prometheus { child, addr, _dir: dir };
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        let mut backoff = Backoff::default();
        loop {
            if let Some((200, _)) = try_get(&prometheus.url("/-/ready")).await {
                return Ok(prometheus);
            }
            let exited = prometheus.child.try_wait().unwrap().is_some();
            if exited || tokio::time::Instant::now() >= deadline {
                let _ = prometheus.child.kill().await;
                return Err(std::fs::read_to_string(&log).unwrap_or_default());
            }
            backoff.pause().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// An instant query's `data.result`, asserting a success.
    pub async fn query(&self, expression: &str) -> Vec<Value> {
        let url = self.url(&format!("/api/v1/query?query={}", query_value(expression)));
        let (status, body) = try_get(&url)
            .await
            .unwrap_or_else(|| panic!("prometheus does not answer {url}"));
        let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(
            (status, &answer["status"]),
            (200, &Value::from("success")),
            "{expression}: {body}"
        );
        answer["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

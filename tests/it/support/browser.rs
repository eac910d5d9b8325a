//! A real browser for the tests: headless Chromium driven over WebDriver by chromedriver,
//! and the few WebDriver steps the browser tests share. Needs Debian's `chromium` and
//! `chromium-driver`; without them a browser test is skipped, unless
//! `STRANGLER_REQUIRE_BROWSER=1` (as in CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use super::body::full;
use super::client::client;
use super::command::required;

/// Set to `1` to fail, rather than skip, when the browser is missing.
const REQUIRE_BROWSER: &str = "STRANGLER_REQUIRE_BROWSER";
const INSTALL_HINT: &str = "apt-get install chromium chromium-driver";

/// How long chromedriver may take to start and answer `/status`.
const DRIVER_READY_WITHIN: Duration = Duration::from_secs(20);
/// How long one page may take to show what the test waits for.
pub const PAGE_WITHIN: Duration = Duration::from_secs(15);

/// The first of `names` found on `PATH` (or in /usr/bin).
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// The chromium and chromedriver programs. If either is missing: None, and the caller
/// skips its test (the reason is printed), unless `STRANGLER_REQUIRE_BROWSER=1`, where
/// this fails the test.
pub fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let (Some(chromium), Some(chromedriver)) = (
        find_program(&["chromium", "chromium-browser"]),
        find_program(&["chromedriver"]),
    ) else {
        assert!(
            !required(REQUIRE_BROWSER),
            "{REQUIRE_BROWSER}=1 but chromium or chromedriver is not installed; install them with `{INSTALL_HINT}`"
        );
        eprintln!("skipped: chromium not installed ({INSTALL_HINT})");
        return None;
    };
    Some((chromium, chromedriver))
}

/// Where screenshots go: the workspace's `target/screenshots`, even when builds go to a
/// `CARGO_TARGET_DIR` elsewhere (CI keeps them as artifacts of the clone).
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("screenshots")
}

/// A running chromedriver in its own process group. Dropping it kills the group, so a
/// browser it started does not outlive a failed test.
pub struct ChromeDriver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port (chromedriver has no `--port=0`: a port
    /// is found by binding `127.0.0.1:0`, and the start retried once if another process
    /// took it meanwhile) and waits until `/status` says it is ready.
    pub async fn start(program: &Path, dir: &Path) -> ChromeDriver {
        let log = dir.join("chromedriver.log");
        for attempt in 1..=2 {
            let port = {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                listener.local_addr().unwrap().port()
            };
            let mut child = Command::new(program)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
            let stdout = child.stdout.take().unwrap();
            let mut lines = BufReader::new(stdout).lines();
            // It prints "ChromeDriver was started successfully on port N." once listening,
            // and exits if the port is taken.
            let started = tokio::time::timeout(DRIVER_READY_WITHIN, async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("started successfully") {
                        return true;
                    }
                }
                false
            })
            .await
            .unwrap_or_else(|_| panic!("chromedriver did not start within {DRIVER_READY_WITHIN:?}"));
            if !started {
                // Its stdout closed: it exited, or is about to.
                let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                assert!(attempt < 2, "chromedriver stopped ({status:?}) twice; log:\n{log_text}");
                continue;
            }
            // Keep draining its stdout so that it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            let driver = ChromeDriver {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log,
            };
            driver.until_ready().await;
            return driver;
        }
        unreachable!("the loop returns or panics")
    }

    /// Polls `/status` (every 100 ms, at most [`DRIVER_READY_WITHIN`]) until `ready`.
    async fn until_ready(&self) {
        let http = client();
        let status_url = format!("{}/status", self.url);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let attempts = DRIVER_READY_WITHIN.as_millis() / 100;
        let mut last = String::from("no answer");
        for _ in 0..attempts {
            tick.tick().await;
            let request = http::Request::get(&status_url).body(full("")).unwrap();
            let answer = tokio::time::timeout(Duration::from_secs(2), http.request(request)).await;
            if let Ok(Ok(response)) = answer {
                use http_body_util::BodyExt;
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let status: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if status["value"]["ready"] == json!(true) {
                    return;
                }
                last = String::from_utf8_lossy(&body).into_owned();
            }
        }
        panic!(
            "chromedriver at {} not ready within {DRIVER_READY_WITHIN:?}: {last}\nlog:\n{}",
            self.url,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub async fn stop(mut self) {
        self.kill_group();
        let _ = self.child.kill().await;
    }

    /// Kills chromedriver's process group: chromedriver and the browser it launched.
    fn kill_group(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Opens a WebDriver session on headless Chromium with a profile in `profile`.
pub async fn open_browser(driver: &ChromeDriver, chromium: &Path, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connect = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await;
    connect.unwrap_or_else(|e| {
        panic!(
            "no browser session: {e}\nchromedriver log:\n{}",
            std::fs::read_to_string(&driver.log).unwrap_or_default()
        )
    })
}

/// Saves a screenshot of the current page as `dir/name` and returns the path.
pub async fn screenshot(browser: &Client, dir: &Path, name: &str) -> PathBuf {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {} bytes", png.len());
    let path = dir.join(name);
    std::fs::write(&path, &png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    println!("screenshot: {}", path.display());
    path
}

/// Finds the element `css` selects (failing the test if there is none).
pub async fn element(browser: &Client, css: &str) -> fantoccini::elements::Element {
    let found = browser.find(Locator::Css(css)).await;
    found.unwrap_or_else(|e| panic!("no element `{css}`: {e}"))
}

pub async fn type_into(browser: &Client, css: &str, text: &str) {
    element(browser, css).await.send_keys(text).await.unwrap();
}

pub async fn click(browser: &Client, css: &str) {
    element(browser, css).await.click().await.unwrap();
}

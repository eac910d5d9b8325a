//! The real `strangler serve` as a child process: for tests that measure the process
//! (peak RSS, open file descriptors, threads), need it isolated from the test's own
//! runtime, or test the binary itself (ready line, signals, logs). One-shot commands
//! (`check`, `flip`, `status`, ...) are in [`super::command`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::mpsc;

use super::admin::{AdminAddr, admin_json};
use super::command::STRANGLER;
use super::files::replace_file;
use super::proxy::ProxyAddr;
use super::wait::poll;

/// How long `strangler serve` may take to print its ready line.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Where the child's stderr (its log) goes.
pub enum Stderr {
    /// Nowhere.
    Null,
    /// Read line by line, for [`BinaryProxy::stderr_until`] and [`BinaryProxy::stderr_so_far`].
    Lines,
    /// Into this file (created).
    File(PathBuf),
}

/// How to start `strangler serve`.
pub struct ServeOptions {
    /// Arguments before `serve`, e.g. `["--log-format", "json"]`.
    pub global_args: &'static [&'static str],
    /// `RUST_LOG` of the child.
    pub rust_log: &'static str,
    pub stderr: Stderr,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            global_args: &[],
            rust_log: "warn",
            stderr: Stderr::Null,
        }
    }
}

/// The `strangler` binary, serving a routes file. Killed on drop.
pub struct BinaryProxy {
    child: tokio::process::Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub config: PathBuf,
    /// The first line of stdout, as printed.
    pub ready_line: String,
    /// The stderr lines read so far (with [`Stderr::Lines`]).
    pub stderr_seen: Vec<String>,
    stderr_log: Option<PathBuf>,
    stderr: Option<mpsc::UnboundedReceiver<String>>,
    stdout_rest: Option<tokio::task::JoinHandle<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl BinaryProxy {
    /// Starts `strangler serve` on `routes` (written to a temp dir) and waits for its ready
    /// line.
    pub async fn start(routes: &str) -> BinaryProxy {
        BinaryProxy::start_with(routes, ServeOptions::default()).await
    }

    /// Like [`BinaryProxy::start`], started as `options` says.
    pub async fn start_with(routes: &str, options: ServeOptions) -> BinaryProxy {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("routes.toml");
        std::fs::write(&config, routes).unwrap();
        BinaryProxy::spawn(config, Some(dir), options).await
    }

    /// Starts `strangler serve` on the routes file `config`, which the caller laid out, and
    /// waits for its ready line.
    pub async fn serve(config: PathBuf, options: ServeOptions) -> BinaryProxy {
        BinaryProxy::spawn(config, None, options).await
    }

    async fn spawn(config: PathBuf, dir: Option<tempfile::TempDir>, options: ServeOptions) -> BinaryProxy {
        let (stderr_to, stderr_log) = match &options.stderr {
            Stderr::Null => (Stdio::null(), None),
            Stderr::Lines => (Stdio::piped(), None),
            Stderr::File(path) => (Stdio::from(std::fs::File::create(path).unwrap()), Some(path.clone())),
        };
        let mut child = tokio::process::Command::new(STRANGLER)
            .args(options.global_args)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", options.rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr_to)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let stderr = child.stderr.take().map(|stderr| {
            let (tx, rx) = mpsc::unbounded_channel();
            let mut lines = BufReader::new(stderr).lines();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        // Built before the ready line is read, so that a failure to start can show the log;
        // the addresses are set from the ready line below.
        let mut proxy = BinaryProxy {
            child,
            pid,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            admin: SocketAddr::from(([0, 0, 0, 0], 0)),
            config,
            ready_line: String::new(),
            stderr_seen: Vec::new(),
            stderr_log,
            stderr,
            stdout_rest: None,
            _dir: dir,
        };
        let mut stdout = BufReader::new(proxy.child.stdout.take().unwrap());
        let mut line = String::new();
        let read = tokio::time::timeout(READY_WITHIN, stdout.read_line(&mut line)).await;
        match read {
            Err(_) => panic!("no ready line within {READY_WITHIN:?}{}", proxy.log_context()),
            Ok(Ok(0)) => {
                // The process is ending: let its last stderr lines come in (bounded).
                if let Some(stderr) = &mut proxy.stderr {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
                    while let Ok(Some(line)) = tokio::time::timeout_at(deadline, stderr.recv()).await {
                        proxy.stderr_seen.push(line);
                    }
                }
                panic!("stdout closed before the ready line{}", proxy.log_context())
            }
            Ok(read) => read.unwrap(),
        };
        // The rest of stdout, read as it comes so that the child never blocks on it.
        proxy.stdout_rest = Some(tokio::spawn(async move {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest).await;
            rest
        }));
        // The line as printed, without its line ending (as `Lines::next_line` gives it).
        let printed = line.strip_suffix('\n').unwrap_or(&line);
        proxy.ready_line = printed.strip_suffix('\r').unwrap_or(printed).to_owned();
        // strangler ready: proxy http://ADDR admin http://ADDR
        let Some((addr, admin)) = proxy
            .ready_line
            .strip_prefix("strangler ready: proxy http://")
            .and_then(|rest| rest.split_once(" admin http://"))
            .and_then(|(addr, admin)| Some((addr.parse().ok()?, admin.parse().ok()?)))
        else {
            panic!("unexpected ready line {line:?}{}", proxy.log_context());
        };
        proxy.addr = addr;
        proxy.admin = admin;
        proxy
    }

    /// What the child has logged so far, for a failure message: `; stderr:\n...`, or
    /// nothing with [`Stderr::Null`].
    fn log_context(&mut self) -> String {
        match &self.stderr_log {
            Some(path) => format!("; stderr:\n{}", std::fs::read_to_string(path).unwrap_or_default()),
            None if self.stderr.is_some() => format!("; stderr:\n{}", self.stderr_so_far()),
            None => String::new(),
        }
    }

    /// The stderr lines read so far (with [`Stderr::Lines`]), newline-separated.
    pub fn stderr_so_far(&mut self) -> String {
        if let Some(stderr) = &mut self.stderr {
            while let Ok(line) = stderr.try_recv() {
                self.stderr_seen.push(line);
            }
        }
        self.stderr_seen.join("\n")
    }

    /// Reads stderr (with [`Stderr::Lines`]) until a line satisfies `found` (up to
    /// `limit`), and returns it.
    pub async fn stderr_until(&mut self, limit: Duration, mut found: impl FnMut(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        let stderr = self.stderr.as_mut().expect("stderr is not read (Stderr::Lines)");
        loop {
            match tokio::time::timeout_at(deadline, stderr.recv()).await {
                Ok(Some(line)) => {
                    self.stderr_seen.push(line.clone());
                    if found(&line) {
                        return line;
                    }
                }
                Ok(None) => {
                    let status = tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await;
                    panic!(
                        "stderr closed (exit: {status:?}); it said:\n{}",
                        self.stderr_seen.join("\n")
                    )
                }
                Err(_) => panic!(
                    "not seen on stderr within {limit:?}; it said:\n{}",
                    self.stderr_seen.join("\n")
                ),
            }
        }
    }

    /// Sends `signal` (e.g. `TERM`, `HUP`) with `kill`.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the process has exited");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits (up to `limit`) for the process to exit.
    pub async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running after {limit:?}"))
            .unwrap()
    }

    /// What the process wrote to stdout after its ready line, once it has closed stdout
    /// (call after it has exited).
    pub async fn stdout_rest(&mut self) -> String {
        self.stdout_rest.take().expect("stdout already taken").await.unwrap()
    }

    /// Replaces routes.toml the way editors do: write a temp file, rename it over.
    pub fn write_config(&self, text: &str) {
        replace_file(&self.config, text);
    }

    /// Polls `GET /admin/routes` until it reports `version`; returns how long that took and
    /// the view. Panics after `limit`, with what the process logged.
    pub async fn wait_for_version(&mut self, version: &str, limit: Duration) -> (Duration, serde_json::Value) {
        let started = tokio::time::Instant::now();
        let admin = self.admin;
        let routes = poll(
            limit,
            || admin_json(admin, "/admin/routes"),
            |routes| routes["version"] == version,
        )
        .await;
        if routes["version"] != version {
            panic!(
                "version {version} not live within {limit:?}; /admin/routes: {routes}{}",
                self.log_context()
            );
        }
        (started.elapsed(), routes)
    }

    fn status_field(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid))
    }

    /// Peak resident set size of the proxy process so far, in KiB.
    pub fn vm_hwm_kib(&self) -> u64 {
        self.status_field("VmHWM:")
    }

    /// Threads of the proxy process now.
    pub fn threads(&self) -> u64 {
        self.status_field("Threads:")
    }

    /// Open file descriptors (sockets included) of the proxy process now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).unwrap().count()
    }

    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

impl AdminAddr for BinaryProxy {
    fn admin_addr(&self) -> SocketAddr {
        self.admin
    }
}

impl ProxyAddr for BinaryProxy {
    fn proxy_addr(&self) -> SocketAddr {
        self.addr
    }
}

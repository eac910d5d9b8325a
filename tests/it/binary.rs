//! The real `strangler` binary as a child process: for tests that measure the process
//! (peak RSS, open file descriptors, threads) or need it isolated from the test's own runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

/// The `strangler` binary, serving a routes file from a temp dir. Killed on drop.
pub struct BinaryProxy {
    child: tokio::process::Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub config: PathBuf,
    dir: tempfile::TempDir,
}

impl BinaryProxy {
    /// Starts `strangler serve` on `routes` and waits for its ready line.
    pub async fn start(routes: &str) -> BinaryProxy {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("routes.toml");
        std::fs::write(&config, routes).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_strangler"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        assert!(
            matches!(read, Ok(Ok(n)) if n > 0),
            "no ready line from strangler: {read:?}"
        );
        // strangler ready: proxy http://ADDR admin http://ADDR
        let mut words = line
            .trim()
            .strip_prefix("strangler ready: proxy http://")
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
            .split(' ');
        let addr = words.next().unwrap().parse().unwrap();
        let admin = words
            .nth(1)
            .and_then(|a| a.strip_prefix("http://"))
            .unwrap_or_else(|| panic!("no admin address in {line:?}"))
            .parse()
            .unwrap();
        BinaryProxy {
            child,
            pid,
            addr,
            admin,
            config,
            dir,
        }
    }

    /// Replaces routes.toml the way editors do: write a temp file, rename it over.
    pub fn write_config(&self, text: &str) {
        let tmp = self.dir.path().join(".routes.toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
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

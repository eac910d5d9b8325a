//! Helpers for tests that start a real executable: [`Serving`] (start it, wait for its
//! "listening" line, stop it with SIGTERM), one blocking HTTP/1.1 exchange over loopback, a
//! bounded wait for the process to exit (woken by the exit itself, never by polling), and a
//! development key directory with the cached test keys.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mythoughts_common::jwt::{DEV_PRIVATE_KEY_FILE, DEV_PUBLIC_KEY_FILE};

/// One request with `Connection: close`; `request_id` goes in `x-request-id`, `form` (when
/// given, even empty) as an urlencoded body. Returns the status code and the body.
pub fn http(address: &str, method: &str, path: &str, request_id: Option<&str>, form: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\n");
    if let Some(id) = request_id {
        head.push_str(&format!("x-request-id: {id}\r\n"));
    }
    if let Some(form) = form {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    if let Some(form) = form {
        stream.write_all(form.as_bytes()).unwrap();
    }
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// `GET path` without extra headers.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    http(address, "GET", path, None, None)
}

/// `bin` with none of `cleared` inherited from the environment (so a developer's settings
/// never leak into a test), `GIT_COMMIT=test-commit` and `RUST_LOG=rust_log`.
pub fn clean_command(bin: &str, cleared: &[&str], rust_log: &str) -> Command {
    let mut command = Command::new(bin);
    for var in cleared {
        command.env_remove(var);
    }
    command.env("GIT_COMMIT", "test-commit").env("RUST_LOG", rust_log);
    command
}

/// Sends SIGTERM to the child and waits (up to 15 s) for it to exit; returns its status.
pub fn terminate(child: Child) -> ExitStatus {
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success(), "kill -TERM failed");
    wait_with_limit(child, Duration::from_secs(15))
}

/// Waits for the child to exit (on another thread, woken by the exit itself), killing it
/// after `limit`.
pub fn wait_with_limit(child: Child, limit: Duration) -> ExitStatus {
    let pid = child.id().to_string();
    let (sender, receiver) = mpsc::channel();
    let mut child = child;
    std::thread::spawn(move || {
        let _ = sender.send(child.wait());
    });
    match receiver.recv_timeout(limit) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("process did not exit within {limit:?}");
        }
    }
}

/// A development key directory holding the cached 1024-bit test pair (generating 2048 bits
/// in a debug build would dominate a test's run time; `--dev-keys` uses whatever pair it
/// finds).
pub fn dev_keys(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(DEV_PRIVATE_KEY_FILE), &crate::key_pair(0).private_pem).unwrap();
    std::fs::write(dir.join(DEV_PUBLIC_KEY_FILE), &crate::key_pair(0).public_pem).unwrap();
}

/// A MyThoughts binary started by a test, serving on an ephemeral loopback port.
#[derive(Debug)]
pub struct Serving {
    child: Child,
    /// `127.0.0.1:PORT`, from its "listening" line.
    pub address: String,
    log: PathBuf,
}

impl Serving {
    /// Spawns `command` (which should listen on `127.0.0.1:0`) with stdout piped and stderr written
    /// to `log`, and waits for its first line, which must be `NAME listening on http://127.0.0.1:PORT`
    /// with the port it bound: readiness is that line, never a sleep.
    pub fn start(command: &mut Command, name: &str, log: &Path) -> Serving {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let stderr = || std::fs::read_to_string(log).unwrap_or_default();
        let address = line
            .trim_end()
            .strip_prefix(&format!("{name} listening on http://"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; stderr:\n{}", stderr()))
            .to_owned();
        assert!(
            address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
            "{address}"
        );
        Serving {
            child,
            address,
            log: log.to_owned(),
        }
    }

    /// Sends SIGTERM, asserts that it exits successfully, and returns its stderr.
    pub fn stop(self) -> String {
        let Serving { child, log, .. } = self;
        let status = terminate(child);
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(status.success(), "exit status {status:?}; stderr:\n{stderr}");
        stderr
    }
}

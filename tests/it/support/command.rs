//! One-shot runs of the `strangler` binary (`check`, `explain`, `flip`, `status`,
//! `parity`, a `serve` that must refuse to start) and of other programs, bounded in time
//! and without blocking the runtime that serves the test's upstreams. A long-running
//! `strangler serve` is a [`BinaryProxy`](super::binary::BinaryProxy).

use std::process::{Output, Stdio};
use std::time::Duration;

/// The `strangler` binary of this build.
pub const STRANGLER: &str = env!("CARGO_BIN_EXE_strangler");

/// How long a one-shot run may take before the test fails.
const RUN_WITHIN: Duration = Duration::from_secs(60);

/// `strangler ARGS` with stdin closed, killed if the test drops it; add env or a working
/// directory, then [`output`].
pub fn strangler_command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(STRANGLER);
    command.args(args).stdin(Stdio::null()).kill_on_drop(true);
    command
}

/// Runs `command` to its end (up to 60 s) and returns what it printed and its status.
pub async fn output(command: &mut tokio::process::Command) -> Output {
    let what = format!("{command:?}");
    tokio::time::timeout(RUN_WITHIN, command.stdin(Stdio::null()).kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {RUN_WITHIN:?}"))
        .unwrap_or_else(|e| panic!("{what} did not run: {e}"))
}

/// `strangler ARGS`, run to its end.
pub async fn strangler<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    output(&mut strangler_command(args)).await
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Both streams, labelled, for a failure message.
pub fn both(output: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", stdout(output), stderr(output))
}

/// Whether the environment variable `name` is `1`: CI (`.ci/run`) sets the
/// `STRANGLER_REQUIRE_*` switches so, and a test that would otherwise skip for want of a
/// tool (a browser, curl, h2load) fails instead.
pub fn required(name: &str) -> bool {
    std::env::var(name).is_ok_and(|value| value == "1")
}

/// Whether `tool` is installed. Without it the test is skipped with a printed reason,
/// unless `STRANGLER_REQUIRE_TOOLS=1` (as in CI): then a missing tool fails the test.
pub fn tool(tool: &str, package: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            !required("STRANGLER_REQUIRE_TOOLS"),
            "`{tool}` is not installed and STRANGLER_REQUIRE_TOOLS=1 (apt-get install {package})"
        );
        eprintln!("skipped: `{tool}` is not installed (apt-get install {package})");
    }
    found
}

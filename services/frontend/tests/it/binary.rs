//! The real executable: flags, the "listening" line, a request over loopback, and a clean exit on SIGTERM.

use std::process::Command;

use crate::support::key_pair;

use mythoughts_testkit::process::{Serving, clean_command, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_frontend-service");

/// A command with no inherited configuration from the environment.
fn command() -> Command {
    clean_command(
        BIN,
        &[
            "FRONTEND_LISTEN",
            "THOUGHTS_URL",
            "USERS_URL",
            "FRONTEND_JWT_PUBLIC_KEY",
            "FRONTEND_DEV_KEYS",
            "FRONTEND_BACKEND_TIMEOUT",
            "FRONTEND_CONNECT_TIMEOUT",
        ],
        "warn",
    )
}

#[test]
fn serves_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let public_key = dir.path().join("jwt_public.pem");
    std::fs::write(&public_key, &key_pair(0).public_pem).unwrap();
    let log = dir.path().join("stderr.log");
    let server = Serving::start(
        command()
            .args(["--listen", "127.0.0.1:0", "--jwt-public-key"])
            .arg(&public_key),
        "frontend-service",
        &log,
    );
    let address = server.address.clone();

    assert_eq!(http_get(&address, "/healthz"), (200, "ok".to_owned()));
    let (status, _) = http_get(&address, "/login/");
    assert_eq!(status, 200);

    server.stop();
}

#[test]
fn help_lists_the_flags() {
    let output = command().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--listen",
        "--thoughts-url",
        "--users-url",
        "--jwt-public-key",
        "--dev-keys",
        "--backend-timeout",
        "FRONTEND_LISTEN",
        "THOUGHTS_URL",
        "USERS_URL",
        "8004",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn refuses_to_start_without_a_key_or_with_a_bad_one() {
    let output = command().args(["--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let output = command()
        .args(["--listen", "127.0.0.1:0", "--jwt-public-key"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "must not announce readiness");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.pem"), "{stderr}");
}

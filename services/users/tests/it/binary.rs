//! The real executable: startup with development keys and a temporary database, the "listening" line, a
//! login over loopback, request ids in the logs, and a clean exit on SIGTERM.

use std::process::{Command, Output};

use crate::support::{key_pair, verifier};

use mythoughts_testkit::process::{Serving, clean_command, dev_keys, http};

const BIN: &str = env!("CARGO_BIN_EXE_users-service");

/// A command with no inherited configuration from the environment.
fn command() -> Command {
    clean_command(
        BIN,
        &[
            "USERS_LISTEN",
            "USERS_DB",
            "USERS_JWT_PRIVATE_KEY",
            "USERS_JWT_PUBLIC_KEY",
            "USERS_DEV_KEYS",
        ],
        "info",
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn serves_with_dev_keys_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    dev_keys(&keys);
    let log = dir.path().join("stderr.log");
    let server = Serving::start(
        command()
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("users.sqlite"))
            .arg("--dev-keys")
            .arg(&keys),
        "users-service",
        &log,
    );
    let address = server.address.clone();

    assert_eq!(
        http(&address, "GET", "/healthz", Some("probe-1"), Some("")),
        (200, "ok".to_owned())
    );
    // The seed users exist (hashed with the production cost) and the token verifies with the public key.
    let (status, body) = http(
        &address,
        "POST",
        "/api/login/",
        Some("login-2"),
        Some("username=bruce&password=password"),
    );
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let claims = verifier().verify_authorization(body["Authorized"].as_str()).unwrap();
    assert_eq!(claims.username, "bruce");
    let (status, body) = http(&address, "GET", "/admin/version/", Some("version-3"), Some(""));
    assert_eq!(
        (status, body.contains(r#""commit":"test-commit""#)),
        (200, true),
        "{body}"
    );

    let logs = server.stop();
    assert!(
        logs.contains("request_id=login-2"),
        "request ids must be logged:\n{logs}"
    );
}

#[test]
fn help_lists_the_flags_and_bad_keys_stop_startup() {
    let output = command().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--listen",
        "--db",
        "--jwt-private-key",
        "--jwt-public-key",
        "--dev-keys",
        "--no-seed",
        "USERS_LISTEN",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }

    let output = command().args(["--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");

    let dir = tempfile::tempdir().unwrap();
    let private_key = dir.path().join("private.pem");
    std::fs::write(&private_key, &key_pair(0).private_pem).unwrap();
    let wrong_public = dir.path().join("wrong.pem");
    std::fs::write(
        &wrong_public,
        mythoughts_common::jwt::generate_key_pair(512).unwrap().public_pem,
    )
    .unwrap();
    let output = command()
        .args(["--listen", "127.0.0.1:0", "--no-seed", "--db"])
        .arg(dir.path().join("db.sqlite"))
        .arg("--jwt-private-key")
        .arg(&private_key)
        .arg("--jwt-public-key")
        .arg(&wrong_public)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "must not announce readiness");
    assert!(stderr(&output).contains("does not verify"), "{}", stderr(&output));
}

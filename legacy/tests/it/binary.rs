//! The real executable: flags, startup with generated development keys, the "listening" line, a couple of
//! requests over loopback, and a clean exit on SIGTERM.

use std::process::Command;

use mythoughts_testkit::process::{Serving, clean_command, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_mythoughts-legacy");

/// A command with no inherited configuration from the environment.
fn command() -> Command {
    clean_command(
        BIN,
        &[
            "LEGACY_LISTEN",
            "LEGACY_DB",
            "LEGACY_JWT_PRIVATE_KEY",
            "LEGACY_JWT_PUBLIC_KEY",
            "LEGACY_DEV_KEYS",
        ],
        "warn",
    )
}

#[test]
fn serves_with_dev_keys_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let log = dir.path().join("stderr.log");
    let server = Serving::start(
        command()
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("legacy.sqlite"))
            .arg("--dev-keys")
            .arg(&keys),
        "mythoughts-legacy",
        &log,
    );
    let address = server.address.clone();

    // Keys were generated, the private one readable by its owner only.
    assert!(keys.join("jwt_public.pem").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.join("jwt_private.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    assert_eq!(http_get(&address, "/healthz"), (200, "ok".to_owned()));
    let (status, body) = http_get(&address, "/api/thoughts/");
    assert_eq!(status, 200);
    let thoughts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(thoughts.as_array().unwrap().len(), 5, "{body}");
    let (status, body) = http_get(&address, "/admin/version/");
    assert_eq!(
        (status, body.contains(r#""commit":"test-commit""#)),
        (200, true),
        "{body}"
    );

    server.stop();
}

#[test]
fn help_lists_the_flags() {
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
        "LEGACY_LISTEN",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn refuses_to_start_without_keys_or_with_bad_ones() {
    let output = command().args(["--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let output = command()
        .args(["--listen", "127.0.0.1:0", "--no-seed", "--db"])
        .arg(dir.path().join("db.sqlite"))
        .arg("--jwt-private-key")
        .arg(&missing)
        .arg("--jwt-public-key")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "must not announce readiness");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.pem"), "{stderr}");
}

//! The real executable: flags, startup with generated development keys, the "listening" line, a couple of
//! requests over loopback, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use mythoughts_testkit::process::{clean_command, http_get, terminate};

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

fn stderr_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn serves_with_dev_keys_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let log = dir.path().join("stderr.log");
    let mut child = command()
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("legacy.sqlite"))
        .arg("--dev-keys")
        .arg(&keys)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim_end()
        .strip_prefix("mythoughts-legacy listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}; stderr:\n{}", stderr_of(&log)))
        .to_owned();
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
        "{address}"
    );

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

    let status = terminate(child);
    assert!(status.success(), "exit status {status:?}; stderr:\n{}", stderr_of(&log));
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

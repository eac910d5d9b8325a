//! [`parse_str`](super::parse_str) end to end: defaults, versions, error order and
//! locations, syntax errors, missing sections, and never panicking on any input. Also the
//! fixtures the per-section tests (in `validate/*`, `token.rs`) share: [`GOOD`], a valid
//! table, and [`errors_of`].

use std::time::Duration;

use http::Method;

use super::*;

/// A valid table touching most sections; tests derive bad ones by replacing a line.
pub(super) const GOOD: &str = r#"
[proxy]
listen = "127.0.0.1:8000"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"
client_header_timeout = "5s"

[upstreams.legacy]
url = "http://127.0.0.1:8001"
[upstreams.thoughts]
url = "http://127.0.0.1:8002"
connect_timeout = "250ms"
request_timeout = "1m"

[[routes]]
name = "thoughts-api"
path = "/api/thoughts/"
methods = ["GET", "HEAD"]
stage = "new"
new = "thoughts"

[[routes]]
name = "one-thought"
path = "/api/thoughts/{id}/"
new = "thoughts"

[[routes]]
name = "login"
exact = "/api/login/"
"#;

/// The errors `text` gets, as `strangler check` prints them (`routes.toml:LINE:COL: message`).
pub(super) fn errors_of(text: &str) -> Vec<String> {
    parse_str("routes.toml", text)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// GOOD with `admin_token_file = "<token>"` (and the admin listener on `admin`).
pub(super) fn with_token_file(token: &str, admin: &str) -> String {
    GOOD.replace(
        "admin_listen = \"127.0.0.1:9100\"",
        &format!("admin_listen = \"{admin}\"\nadmin_token_file = \"{token}\""),
    )
}

#[test]
fn good_file_parses_with_defaults() {
    let c = parse_str("routes.toml", GOOD).unwrap();
    assert_eq!(c.proxy.listen.to_string(), "127.0.0.1:8000");
    assert_eq!(c.proxy.client_header_timeout, Duration::from_secs(5));
    assert_eq!(c.proxy.max_header_bytes, 65_536);
    assert_eq!(c.proxy.drain_timeout, Duration::from_secs(30));
    let thoughts = &c.upstreams["thoughts"];
    assert_eq!(thoughts.connect_timeout, Duration::from_millis(250));
    assert_eq!(thoughts.request_timeout, Duration::from_secs(60));
    assert_eq!(thoughts.pool_idle_timeout, Duration::from_secs(90));
    assert_eq!(c.routes.len(), 3);
    assert_eq!(c.routes[0].pattern, PathPattern::Prefix("/api/thoughts/".into()));
    assert_eq!(c.routes[0].methods, Some(vec![Method::GET, Method::HEAD]));
    assert_eq!(c.routes[0].target(), "thoughts");
    assert_eq!(c.routes[1].pattern, PathPattern::Template("/api/thoughts/{id}/".into()));
    assert_eq!(c.routes[1].stage, Stage::Legacy, "stage defaults to legacy");
    assert_eq!(c.routes[1].target(), "legacy");
    assert_eq!(c.routes[2].pattern, PathPattern::Exact("/api/login/".into()));
    assert_eq!(c.routes[2].legacy, "legacy");
    assert_eq!(c.version.len(), 12);
}

#[test]
fn version_depends_on_content_only() {
    let a = parse_str("a.toml", GOOD).unwrap();
    let b = parse_str("b.toml", GOOD).unwrap();
    assert_eq!(a.version, b.version);
    let c = parse_str("a.toml", &GOOD.replace("250ms", "300ms")).unwrap();
    assert_ne!(a.version, c.version);
}

#[test]
fn unknown_key_points_at_it() {
    let text = GOOD.replace("stage = \"new\"", "stage = \"new\"\nstrip_query = true");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = text.lines().position(|l| l.starts_with("strip_query")).unwrap() + 1;
    assert!(
        errors[0].starts_with(&format!("routes.toml:{line}:1: ")),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("strip_query"), "{}", errors[0]);
}

#[test]
fn every_error_is_reported_in_file_order() {
    let text = r#"
[proxy]
listen = "nowhere"
admin_listen = "127.0.0.1:9100"
default_upstream = "missing"

[upstreams.legacy]
url = "ftp://x"
connect_timeout = "soon"

[[routes]]
name = "a"
path = "api/"
stage = "sideways"

[[routes]]
name = "b"
path = "/x/"
methods = ["get"]
new = "nope"

[[routes]]
name = "b"
path = "/y/"
"#;
    let errors = errors_of(text);
    let expected = [
        ("3:10", "bad address `nowhere`"),
        ("5:20", "unknown upstream `missing`"),
        ("8:7", "must start with http://"),
        ("9:19", "bad duration `soon`"),
        ("13:8", "must start with `/`"),
        ("14:9", "unknown stage `sideways`"),
        ("19:12", "bad method `get`"),
        ("20:7", "unknown upstream `nope`"),
        ("23:8", "duplicate route name `b`"),
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, (at, what)) in errors.iter().zip(expected) {
        assert!(
            error.starts_with(&format!("routes.toml:{at}: ")),
            "{error} should be at {at}"
        );
        assert!(error.contains(what), "{error} should say {what}");
    }
}

#[test]
fn syntax_error_has_location() {
    let errors = errors_of("[proxy]\nlisten = \"127.0.0.1:1\nx = 1\n");
    assert!(!errors.is_empty());
    assert!(errors[0].starts_with("routes.toml:2:"), "{errors:?}");
}

/// Issue 20 changed this contract: `[proxy]` and its listeners and default upstream are
/// optional now; only `[upstreams]` is required.
#[test]
fn missing_sections_and_fields() {
    let errors = errors_of("");
    assert_eq!(errors, ["routes.toml:1:1: missing section `[upstreams]`"]);
    let config = parse_str(
        "routes.toml",
        "[proxy]\nlisten = \"127.0.0.1:1\"\n[upstreams.a]\nurl = \"http://a\"\n",
    )
    .unwrap();
    assert_eq!(config.proxy.admin_listen.to_string(), "127.0.0.1:9100");
    assert_eq!(config.proxy.defaulted, ["admin_listen", "default_upstream"]);
}

#[test]
fn arbitrary_bytes_never_panic() {
    for text in [
        "[[routes]]\n[[routes]]",
        "proxy = 1\nupstreams = []\nroutes = {}",
        "[proxy.x.y]\nz=1",
        "\u{0}",
        "[upstreams]\na = 1",
    ] {
        assert!(parse_str("f", text).is_err());
    }
}

mod properties {
    //! The loader takes any bytes an editor can save: it must answer with errors that point
    //! into the file, never panic.

    use super::*;
    use proptest::prelude::*;

    /// Text close to a valid table: GOOD with a few characters replaced, inserted or
    /// removed, so that validation (not only the TOML parser) is exercised.
    fn mutated_good() -> impl Strategy<Value = String> {
        let edit = (
            any::<prop::sample::Index>(),
            0u8..3,
            prop::sample::select(vec![
                "\"",
                "[",
                "]",
                "=",
                "\n",
                "{",
                "}",
                ",",
                "-1",
                "0",
                "x",
                "/",
                "..",
                "%",
                "\u{0}",
                "é",
                "[[routes]]\n",
                "stage = \"canary\"\n",
                "max_body = -5\n",
                "admin_token_file = \"\"\n",
                "[proxy]\n",
            ]),
        );
        prop::collection::vec(edit, 1..6).prop_map(|edits| {
            let mut text = GOOD.to_owned();
            for (at, kind, piece) in edits {
                let boundaries: Vec<usize> = (0..=text.len()).filter(|i| text.is_char_boundary(*i)).collect();
                let i = boundaries[at.index(boundaries.len())];
                match kind {
                    0 => text.insert_str(i, piece),
                    1 => {
                        let end = boundaries.iter().copied().find(|&j| j > i).unwrap_or(i);
                        text.replace_range(i..end, "");
                    }
                    _ => {
                        let end = boundaries.iter().copied().find(|&j| j > i).unwrap_or(i);
                        text.replace_range(i..end, piece);
                    }
                }
            }
            text
        })
    }

    fn check_never_panics(text: &str) -> Result<(), TestCaseError> {
        let lines = text.split('\n').count();
        if let Err(errors) = parse_str("f.toml", text) {
            prop_assert!(!errors.0.is_empty());
            for error in &errors.0 {
                prop_assert!(
                    error.location.line >= 1 && error.location.line <= lines,
                    "{error} outside {lines} lines"
                );
                prop_assert!(error.location.column >= 1, "{error}");
                prop_assert!(!error.message.is_empty() && !error.message.contains('\n'), "{error}");
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            check_never_panics(&String::from_utf8_lossy(&bytes))?;
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            check_never_panics(&text)?;
        }

        #[test]
        fn near_valid_tables_never_panic(text in mutated_good()) {
            check_never_panics(&text)?;
        }
    }
}

#[test]
fn a_broken_upstream_is_still_defined_for_references() {
    // Only the upstream's own error: no "unknown upstream `legacy`" for the references to it.
    let text = GOOD.replace(
        "url = \"http://127.0.0.1:8001\"",
        "url = \"http://127.0.0.1:8001\"\ntimeout = \"5s\"",
    );
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("unknown field `timeout`"), "{errors:?}");
}

#[test]
fn body_timeouts_default_to_a_minute_and_refuse_zero() {
    let c = parse_str("routes.toml", GOOD).unwrap();
    assert_eq!(c.proxy.send_timeout, Duration::from_secs(60));
    assert_eq!(c.proxy.client_body_timeout, Duration::from_secs(60));
    assert_eq!(c.upstreams["thoughts"].read_timeout, Duration::from_secs(60));
    let text = GOOD
        .replacen(
            "[proxy]\n",
            "[proxy]\nsend_timeout = \"5s\"\nclient_body_timeout = \"0s\"\n",
            1,
        )
        .replacen(
            "[upstreams.thoughts]\n",
            "[upstreams.thoughts]\nread_timeout = \"2s\"\n",
            1,
        );
    let error = parse_str("routes.toml", &text).unwrap_err().to_string();
    assert!(error.contains("must be more than zero"), "{error}");
    let c = parse_str(
        "routes.toml",
        &text.replace("client_body_timeout = \"0s\"", "client_body_timeout = \"3s\""),
    )
    .unwrap();
    assert_eq!(c.proxy.send_timeout, Duration::from_secs(5));
    assert_eq!(c.proxy.client_body_timeout, Duration::from_secs(3));
    assert_eq!(c.upstreams["thoughts"].read_timeout, Duration::from_secs(2));
}

/// Issue 20: an unknown key no longer hides the other errors of its section (serde stops
/// at a section's first schema error; the key is taken out and the rest checked).
#[test]
fn an_unknown_key_hides_no_other_error() {
    let text = r#"[upstreams.legacy]
url = "http://127.0.0.1:8001"
request_timeout = "5 parsecs"
colour = "blue"

[[routes]]
name = "users"
colour = "red"
path = "/api/users/{id"
shadow = { sample = 0.5, sampel = 1 }
"#;
    let errors = errors_of(text);
    let at: Vec<&str> = errors.iter().map(|e| e.split(": ").next().unwrap()).collect();
    assert_eq!(
        at,
        [
            "routes.toml:3:19",
            "routes.toml:4:1",
            "routes.toml:8:1",
            "routes.toml:9:8",
            "routes.toml:10:26"
        ],
        "{errors:#?}"
    );
    assert!(errors[0].contains("bad duration `5 parsecs`"), "{errors:#?}");
    assert!(errors[1].contains("unknown field `colour`"), "{errors:#?}");
    assert!(errors[2].contains("unknown field `colour`"), "{errors:#?}");
    assert!(errors[3].contains("{id"), "{errors:#?}");
    assert!(errors[4].contains("unknown field `sampel`"), "{errors:#?}");
}

/// Every key of the wrong type in a section is reported, but the section's other checks
/// are not run (they would report the missing value's consequences); a required key of
/// the wrong type is not also reported missing.
#[test]
fn every_wrong_type_in_a_section_is_reported_once() {
    let text = r#"[upstreams.legacy]
url = "http://127.0.0.1:8001"
[upstreams.users]
url = 5
connect_timeout = 2
pool_max_idle = "many"

[[routes]]
name = "users"
path = "/api/users/"
stage = "new"
new = 7
methods = ["GET", 1]
"#;
    let errors = errors_of(text);
    let at: Vec<&str> = errors.iter().map(|e| e.split(": ").next().unwrap()).collect();
    assert_eq!(
        at,
        [
            "routes.toml:4:7",
            "routes.toml:5:19",
            "routes.toml:6:17",
            "routes.toml:12:7",
            "routes.toml:13:19"
        ],
        "{errors:#?}"
    );
    assert!(errors.iter().all(|e| !e.contains("missing field")), "{errors:#?}");
}

/// A value of the wrong type says how to write it, not only serde's Rust type name
/// (issue 20: `invalid type: string "128", expected i64`).
#[test]
fn a_wrong_type_says_how_to_write_the_value() {
    let errors = errors_of(
        "[proxy]\nhttp2_max_concurrent_streams = \"128\"\nclient_idle_timeout = 75\n\
         [upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains("write a whole number, without quotes"),
        "{errors:#?}"
    );
    assert!(errors[1].contains("durations like \"75s\""), "{errors:#?}");
}

use std::path::PathBuf;
use std::time::Duration;

use http::Method;

use super::*;

const GOOD: &str = r#"
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

fn errors_of(text: &str) -> Vec<String> {
    parse_str("routes.toml", text)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
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
    let text = GOOD.replace("stage = \"new\"", "stage = \"new\"\nstrip_prefix = true");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = text.lines().position(|l| l.starts_with("strip_prefix")).unwrap() + 1;
    assert!(
        errors[0].starts_with(&format!("routes.toml:{line}:1: ")),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("strip_prefix"), "{}", errors[0]);
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

#[test]
fn missing_sections_and_fields() {
    let errors = errors_of("");
    assert!(
        errors.iter().any(|e| e.contains("missing section `[proxy]`")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("missing section `[upstreams]`")),
        "{errors:?}"
    );
    let errors = errors_of("[proxy]\nlisten = \"127.0.0.1:1\"\n[upstreams.a]\nurl = \"http://a\"\n");
    assert!(errors.iter().any(|e| e.contains("admin_listen")), "{errors:?}");
}

#[test]
fn bad_paths_and_templates() {
    for (path, what) in [
        ("/api//x/", "not normalised"),
        ("/api/./x/", "not normalised"),
        ("/a/%2e%2e/", "not normalised"),
        ("/a%2Fb/", "encoded slash"),
        ("/a/{id", "parameter must be a whole segment"),
        ("/a/x{id}/", "parameter must be a whole segment"),
        ("/a/{*rest}/b", "must be the last segment"),
        ("/a/{id}/{id}/", "appears twice"),
        ("/a/{}/", "parameter name"),
        ("/a?x=1", "query"),
    ] {
        let text = GOOD.replace("path = \"/api/thoughts/\"", &format!("path = \"{path}\""));
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{path}: {errors:?}");
        assert!(errors[0].contains(what), "{path}: {errors:?}");
    }
}

#[test]
fn stage_new_needs_new_upstream() {
    let errors = errors_of(&GOOD.replace(
        "new = \"thoughts\"\n\n[[routes]]\nname = \"one-thought\"",
        "\n[[routes]]\nname = \"one-thought\"",
    ));
    assert!(
        errors.iter().any(|e| e.contains("names no `new` upstream")),
        "{errors:?}"
    );
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

#[test]
fn canary_stage_and_settings() {
    let text = GOOD.replace(
        "stage = \"new\"\nnew = \"thoughts\"",
        "stage = \"canary\"\nnew = \"thoughts\"\ncanary = { percent = 12.5, sticky = \"cookie:session\" }",
    );
    let c = parse_str("routes.toml", &text).unwrap();
    assert_eq!(c.routes[0].stage, Stage::Canary);
    assert_eq!(
        c.routes[0].canary,
        Some(CanaryConfig {
            basis_points: 1250,
            sticky: Some(StickyKey::Cookie("session".into()))
        })
    );
    for (canary, what) in [
        ("canary = { percent = 120.0 }", "between 0 and 100"),
        ("canary = { percent = 10.0, sticky = \"ip\" }", "bad `canary.sticky`"),
        (
            "canary = { percent = 10.0, sticky = \"header:bad header\" }",
            "bad `canary.sticky`",
        ),
        ("canary = { percent = 10.0, share = 1 }", "share"),
    ] {
        let text = GOOD.replace(
            "stage = \"new\"\nnew = \"thoughts\"",
            &format!("stage = \"canary\"\nnew = \"thoughts\"\n{canary}"),
        );
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{canary}: {errors:?}");
        assert!(errors[0].contains(what), "{canary}: {errors:?}");
    }
    let errors = errors_of(&GOOD.replace("stage = \"new\"", "stage = \"canary\""));
    assert!(errors.iter().any(|e| e.contains("has no `canary")), "{errors:?}");
}

#[test]
fn compare_and_shadow_settings() {
    let extra = "compare = { ignore = [\"/timestamp\"], normalize = [{ pattern = \"[0-9a-f-]{36}\", replace = \"<uuid>\" }] }\n\
                 shadow = { sample = 0.25, max_inflight = 8, timeout = \"500ms\", noise_sample = 0.1 }";
    let text = GOOD.replace("name = \"login\"", &format!("name = \"login\"\n{extra}"));
    let c = parse_str("routes.toml", &text).unwrap();
    let login = &c.routes[2];
    assert_eq!(login.shadow.sample, 0.25);
    assert_eq!(login.shadow.max_inflight, 8);
    assert_eq!(login.shadow.timeout, Duration::from_millis(500));
    assert_eq!(login.shadow.noise_sample, 0.1);
    assert_eq!(login.shadow.max_body, ShadowConfig::default().max_body);
    assert_eq!(c.routes[0].shadow, ShadowConfig::default());

    for (extra, what) in [
        (
            "compare = { normalize = [{ pattern = \"(\", replace = \"x\" }] }",
            "bad `compare`",
        ),
        ("compare = { ignore = [\"no-slash\"] }", "bad `compare`"),
        ("compare = { colour = 1 }", "colour"),
        (
            "shadow = { sample = 2.0 }",
            "`shadow.sample` must be between 0.0 and 1.0",
        ),
        ("shadow = { max_inflight = 0 }", "`shadow.max_inflight` must be between"),
        ("shadow = { timeout = \"soon\" }", "bad duration"),
    ] {
        let text = GOOD.replace("name = \"login\"", &format!("name = \"login\"\n{extra}"));
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{extra}: {errors:?}");
        assert!(errors[0].contains(what), "{extra}: {errors:?}");
        let line = text
            .lines()
            .position(|l| l.starts_with(extra.split(' ').next().unwrap()))
            .unwrap()
            + 1;
        assert!(
            errors[0].starts_with(&format!("routes.toml:{line}:")),
            "{extra}: {errors:?}"
        );
    }
}

#[test]
fn route_max_body() {
    let text = GOOD.replace("name = \"login\"", "name = \"login\"\nmax_body = 1048576");
    let c = parse_str("routes.toml", &text).unwrap();
    assert_eq!(c.routes[2].max_body, Some(1_048_576));
    assert_eq!(c.routes[0].max_body, None, "no limit unless set");
    let zero = GOOD.replace("name = \"login\"", "name = \"login\"\nmax_body = 0");
    assert_eq!(parse_str("routes.toml", &zero).unwrap().routes[2].max_body, Some(0));

    let text = GOOD.replace("name = \"login\"", "name = \"login\"\nmax_body = -1");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("`max_body` must be a number of bytes"), "{errors:?}");
    let line = text.lines().position(|l| l.starts_with("max_body")).unwrap() + 1;
    assert!(errors[0].starts_with(&format!("routes.toml:{line}:12: ")), "{errors:?}");
    let errors = errors_of(&GOOD.replace("name = \"login\"", "name = \"login\"\nmax_body = \"1MB\""));
    assert!(errors[0].contains("invalid type"), "{errors:?}");
}

/// GOOD with `admin_token_file = "<token>"` (and the admin listener on `admin`).
fn with_token_file(token: &str, admin: &str) -> String {
    GOOD.replace(
        "admin_listen = \"127.0.0.1:9100\"",
        &format!("admin_listen = \"{admin}\"\nadmin_token_file = \"{token}\""),
    )
}

#[test]
fn admin_token_file_is_relative_to_the_config_file() {
    let text = with_token_file("secrets/admin-token", "127.0.0.1:9100");
    let c = parse_str("/etc/strangler/routes.toml", &text).unwrap();
    let file = c.proxy.admin_token_file.unwrap();
    assert_eq!(file.path, PathBuf::from("/etc/strangler/secrets/admin-token"));
    assert_eq!(file.location, Location { line: 5, column: 20 });
    assert_eq!(c.proxy.admin_token, None, "parsing never reads the token file");
    let absolute = parse_str(
        "/etc/strangler/routes.toml",
        &with_token_file("/run/token", "127.0.0.1:9100"),
    )
    .unwrap();
    assert_eq!(
        absolute.proxy.admin_token_file.unwrap().path,
        PathBuf::from("/run/token")
    );
    let errors = errors_of(&with_token_file("  ", "127.0.0.1:9100"));
    assert_eq!(errors, ["routes.toml:5:20: `admin_token_file` is empty"]);
}

#[test]
fn admin_beyond_loopback_needs_a_token_file() {
    for admin in ["0.0.0.0:9100", "10.1.2.3:9100", "[::]:9100"] {
        let text = GOOD.replace("127.0.0.1:9100", admin);
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("routes.toml:4:16: `admin_listen`"), "{errors:?}");
        assert!(
            errors[0].contains(admin) && errors[0].contains("admin_token_file"),
            "{errors:?}"
        );
        assert!(
            parse_str("routes.toml", &with_token_file("t", admin)).is_ok(),
            "{admin}"
        );
    }
    assert!(parse_str("routes.toml", &GOOD.replace("127.0.0.1:9100", "[::1]:9100")).is_ok());
}

#[test]
fn admin_token_is_read_checked_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("routes.toml");
    let config_name = config_file.to_str().unwrap();
    let token_path = dir.path().join("token");
    let load = |content: Option<&[u8]>| {
        match content {
            Some(bytes) => std::fs::write(&token_path, bytes).unwrap(),
            None => drop(std::fs::remove_file(&token_path)),
        }
        let mut config = parse_str(config_name, &with_token_file("token", "127.0.0.1:9100")).unwrap();
        config.read_admin_token().map(|()| config)
    };

    let config = load(Some(b"s3cret-T0ken\n")).unwrap();
    let token = config.proxy.admin_token.as_ref().unwrap();
    assert!(token.matches(b"s3cret-T0ken"));
    assert!(!token.matches(b"s3cret-T0ke"));
    assert!(!token.matches(b"s3cret-T0ken\n"));
    assert!(!token.matches(b""));
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("AdminToken([redacted])"), "{shown}");

    for (content, what) in [
        (None, "cannot read `admin_token_file`"),
        (Some(&b""[..]), "is empty"),
        (Some(&b" \n\t\n"[..]), "is empty"),
        (Some(&b"two words"[..]), "printable ASCII without spaces"),
        (Some(&b"caf\xc3\xa9"[..]), "printable ASCII without spaces"),
    ] {
        let errors = load(content).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        let error = errors[0].to_string();
        assert!(
            error.starts_with(&format!("{config_name}:5:20: ")),
            "{content:?}: {error}"
        );
        assert!(error.contains(what), "{content:?}: {error}");
        assert!(
            !error.contains("words") && !error.contains("caf"),
            "the token leaked: {error}"
        );
    }

    // Without the setting there is nothing to read.
    let mut config = parse_str("routes.toml", GOOD).unwrap();
    config.read_admin_token().unwrap();
    assert_eq!(config.proxy.admin_token, None);
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

const TLS: &str = r#"
[proxy]
listen = "127.0.0.1:8443"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[proxy.tls]
cert = "certs/default.pem"
key = "/etc/strangler/default.key"

[[proxy.tls.certs]]
hosts = ["App.Example", "*.api.example"]
cert = "certs/app.pem"
key = "certs/app.key"

[upstreams.legacy]
url = "https://legacy.internal:8443"
http2 = true
ca_file = "ca.pem"
client_cert = "client.pem"
client_key = "client.key"
[upstreams.thoughts]
url = "http://127.0.0.1:8002"
http2 = true
[upstreams.public]
url = "https://api.example"
"#;

#[test]
fn tls_settings_parse_with_paths_next_to_the_config() {
    let c = parse_str("conf/routes.toml", TLS).unwrap();
    let tls = c.proxy.tls.as_ref().unwrap();
    assert_eq!(tls.default.cert.path, PathBuf::from("conf/certs/default.pem"));
    assert_eq!(tls.default.key.path, PathBuf::from("/etc/strangler/default.key"));
    assert_eq!(tls.default.cert.written_at, "conf/routes.toml:8:8");
    assert_eq!(tls.sni.len(), 1);
    assert_eq!(tls.sni[0].hosts, ["app.example", "*.api.example"]);
    assert_eq!(tls.sni[0].pair.key.path, PathBuf::from("conf/certs/app.key"));

    let legacy = &c.upstreams["legacy"];
    assert!(legacy.http2);
    let upstream_tls = legacy.tls.as_ref().unwrap();
    assert_eq!(
        upstream_tls.ca_file.as_ref().unwrap().path,
        PathBuf::from("conf/ca.pem")
    );
    assert_eq!(
        upstream_tls.client.as_ref().unwrap().cert.path,
        PathBuf::from("conf/client.pem")
    );
    let thoughts = &c.upstreams["thoughts"];
    assert!(thoughts.http2, "h2c prior knowledge on a plain upstream");
    assert_eq!(thoughts.tls, None);
    let public = &c.upstreams["public"];
    assert!(!public.http2);
    assert_eq!(
        public.tls,
        Some(UpstreamTls::default()),
        "web PKI roots, no client certificate"
    );
    assert!(parse_str("routes.toml", GOOD).unwrap().proxy.tls.is_none());
}

#[test]
fn moving_a_tls_line_is_not_a_change_of_settings() {
    let a = parse_str("routes.toml", TLS).unwrap();
    let b = parse_str("routes.toml", &format!("# a comment\n{TLS}")).unwrap();
    assert_ne!(
        a.proxy.tls.as_ref().unwrap().default.cert.written_at,
        b.proxy.tls.as_ref().unwrap().default.cert.written_at
    );
    assert_eq!(a.proxy.tls, b.proxy.tls);
    assert_eq!(a.upstreams["legacy"], b.upstreams["legacy"]);
}

#[test]
fn tls_errors_point_at_the_value() {
    let text = r#"
[proxy]
listen = "127.0.0.1:8443"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[proxy.tls]
cert = ""
key = "k.pem"

[[proxy.tls.certs]]
hosts = ["a.example", "10.0.0.1", "bad host", "*.*.example"]
cert = "a.pem"
key = "a.key"

[[proxy.tls.certs]]
hosts = ["A.example"]
cert = "b.pem"
key = "b.key"

[[proxy.tls.certs]]
hosts = []
cert = "c.pem"
key = "c.key"

[upstreams.legacy]
url = "http://127.0.0.1:8001"
ca_file = "ca.pem"
[upstreams.secure]
url = "https://secure.example"
client_cert = "client.pem"
"#;
    let errors = errors_of(text);
    let expected = [
        ("8:8", "`cert` is empty"),
        ("12:23", "`10.0.0.1` is an IP address"),
        ("12:35", "bad host `bad host`"),
        ("12:47", "bad host `*.*.example`"),
        (
            "17:10",
            "host `a.example` is already listed for another certificate (line 12)",
        ),
        ("22:9", "`hosts` is empty"),
        ("28:11", "`ca_file` only applies to https:// upstreams"),
        ("31:15", "`client_cert` needs `client_key`"),
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
fn tls_section_needs_a_default_pair_and_known_keys() {
    let errors = errors_of(&GOOD.replace(
        "client_header_timeout = \"5s\"",
        "client_header_timeout = \"5s\"\n[proxy.tls]\ncert = \"c.pem\"",
    ));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("missing field `key`"), "{}", errors[0]);
    let errors = errors_of(&GOOD.replace(
        "client_header_timeout = \"5s\"",
        "client_header_timeout = \"5s\"\n[proxy.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nciphers = \"all\"",
    ));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("ciphers"), "{}", errors[0]);
}

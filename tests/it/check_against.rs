//! `strangler check FILE --against TARGET`: what FILE would change, route by route, against
//! another routes.toml or the table in force at a running proxy; exit 0 valid, 1 invalid,
//! 2 target unavailable.

use std::path::{Path, PathBuf};

use crate::support::*;

const TOKEN: &str = "check-against-s3cret-token";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `legacy` and `thoughts`, `thoughts-api` at `stage`, and the routes `extra` names (each
/// on `/NAME/`, to legacy). `proxy_extra` goes into `[proxy]`.
fn table(legacy: &str, thoughts: &str, proxy_extra: &str, stage: &str, extra: &[&str]) -> String {
    let mut routes = format!(
        "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"{stage}\"\nnew = \"thoughts\"\n"
    );
    for name in extra {
        routes.push_str(&format!("\n[[routes]]\nname = \"{name}\"\npath = \"/{name}/\"\n"));
    }
    routes_toml_with(
        proxy_extra,
        &[("legacy", legacy, ""), ("thoughts", thoughts, "")],
        &routes,
    )
}

async fn check(args: &[&str]) -> (Option<i32>, String, String) {
    let output = strangler(args).await;
    (output.status.code(), stdout(&output), stderr(&output))
}

#[tokio::test]
async fn against_another_file_every_change_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = ("http://127.0.0.1:1", "http://127.0.0.1:2");
    let old = write(dir.path(), "old.toml", &table(a, b, "", "shadow", &["about", "help"]));
    let new_text = table(a, "http://127.0.0.1:3", "", "canary", &["about", "signup"])
        .replace("stage = \"canary\"", "stage = \"canary\"\ncanary = { percent = 25 }");
    let new = write(dir.path(), "new.toml", &new_text);

    let (code, out, err) = check(&["check", new.to_str().unwrap(), "--against", old.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(&format!("{}: ok", new.display())), "{out}");
    assert!(
        lines[1].contains("every route property and every other setting compared"),
        "{out}"
    );
    assert_eq!(
        &lines[2..],
        [
            "- help",
            "+ signup",
            "~ thoughts-api (stage shadow -> canary, new_url http://127.0.0.1:2/ -> http://127.0.0.1:3/, canary none -> 25%)",
            "setting ~ upstreams.thoughts.url http://127.0.0.1:2/ -> http://127.0.0.1:3/",
            "routes: +1 -1 ~1 (settings changed: 1)",
        ],
        "{out}"
    );

    // Valid whatever the diff; 1 for an invalid FILE; 2 when the target cannot be read.
    let broken = write(
        dir.path(),
        "broken.toml",
        &new_text.replace("stage = \"canary\"", "stage = \"up\""),
    );
    let (code, out, _) = check(&["check", broken.to_str().unwrap(), "--against", old.to_str().unwrap()]).await;
    assert_eq!(code, Some(1), "{out}");
    let missing = dir.path().join("missing.toml");
    let (code, out, err) = check(&["check", new.to_str().unwrap(), "--against", missing.to_str().unwrap()]).await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("cannot compare against") && err.contains("missing.toml"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn against_a_running_proxy_the_listed_properties_are_compared() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let running = table(&legacy.url(), &thoughts.url(), "", "legacy", &["about"]);
    let proxy = TestProxy::start(&running).await;
    let admin = format!("http://{}", proxy.admin);
    let dir = tempfile::tempdir().unwrap();
    let edited = write(
        dir.path(),
        "routes.toml",
        &table(&legacy.url(), &thoughts.url(), "", "new", &["about", "signup"]),
    );

    let (code, out, err) = check(&["check", edited.to_str().unwrap(), "--against", &admin]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!(
            "against the table in force at {admin} (version {})",
            proxy.version()
        )),
        "{out}"
    );
    assert!(out.contains("no compare rules or shadow settings"), "{out}");
    assert!(
        out.contains("\n+ signup\n~ thoughts-api (stage legacy -> new)\nroutes: +1 -0 ~1\n"),
        "{out}"
    );

    // The file the proxy runs: nothing to change.
    let same = write(dir.path(), "same.toml", &running);
    let (code, out, _) = check(&["check", same.to_str().unwrap(), "--against", &admin]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("(this very file)") && out.ends_with("routes: +0 -0 ~0\n"),
        "{out}"
    );

    // Nothing listens there: 2, and why.
    let dead = dead_url();
    let (code, out, err) = check(&["check", edited.to_str().unwrap(), "--against", &dead]).await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains(&format!("cannot compare against {dead}")), "{err}");
    proxy.stop().await;
}

/// A proxy with `admin_token_file`: without a token the target is unavailable and the
/// message says a token is needed; `--admin-token-file` gives it; with `--against` and no
/// value the table's own `admin_listen` is asked with the table's `admin_token_file`.
#[tokio::test(flavor = "multi_thread")]
async fn against_a_proxy_with_a_token() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let with_token = "admin_token_file = \"admin-token\"";
    let proxy = proxy_with_files(
        &[("admin-token", TOKEN)],
        &table(&legacy.url(), &thoughts.url(), with_token, "legacy", &[]),
    )
    .await;
    let admin = format!("http://{}", proxy.admin);
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "admin-token", TOKEN);
    let edited_text = table(&legacy.url(), &thoughts.url(), with_token, "shadow", &[]).replace(
        "admin_listen = \"127.0.0.1:0\"",
        &format!("admin_listen = \"{}\"", proxy.admin),
    );
    let edited = write(dir.path(), "routes.toml", &edited_text);
    let file = edited.to_str().unwrap();

    let mut without = strangler_command(&["check", file, "--against", &admin]);
    without.env_remove("STRANGLER_ADMIN_TOKEN_FILE");
    let output = output(&mut without).await;
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        stderr(&output).contains("401: the admin API needs a token"),
        "{}",
        both(&output)
    );

    let (code, out, err) = check(&[
        "check",
        file,
        "--against",
        &admin,
        "--admin-token-file",
        token.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("~ thoughts-api (stage legacy -> shadow)"), "{out}");

    // From the table: its admin_listen, its admin_token_file (next to it).
    let (code, out, err) = check(&["check", file, "--against"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("at {admin} ")), "{out}");
    assert!(
        out.ends_with("~ thoughts-api (stage legacy -> shadow)\nroutes: +0 -0 ~1\n"),
        "{out}"
    );
    proxy.stop().await;
}

/// Settings other than routes are part of the plan (issue 17 attack #9: a changed default
/// upstream or request timeout read `+0 -0 ~0`): against a file every setting, against a
/// running proxy the default upstream and upstream URLs (what its admin API lists).
#[tokio::test(flavor = "multi_thread")]
async fn settings_other_than_routes_are_in_the_plan() {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let running = table(&legacy.url(), &thoughts.url(), "", "legacy", &[]);
    let proxy = TestProxy::start(&running).await;
    let admin = format!("http://{}", proxy.admin);
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.toml", &running);
    let edited_text = running
        .replace("default_upstream = \"legacy\"", "default_upstream = \"thoughts\"")
        .replacen(
            &format!("url = \"{}\"", legacy.url()),
            &format!("url = \"{}\"\nrequest_timeout = \"1ms\"", legacy.url()),
            1,
        );
    assert_ne!(edited_text, running);
    let edited = write(dir.path(), "routes.toml", &edited_text);
    let file = edited.to_str().unwrap();

    let (code, out, err) = check(&["check", file, "--against", old.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("setting ~ proxy.default_upstream legacy -> thoughts\n"),
        "{out}"
    );
    assert!(
        out.contains("setting ~ upstreams.legacy.request_timeout 30s -> 1ms\n"),
        "{out}"
    );
    assert!(out.ends_with(" (settings changed: 2)\n"), "{out}");

    let (code, out, err) = check(&["check", file, "--against", &admin]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("setting ~ proxy.default_upstream legacy -> thoughts\n"),
        "{out}"
    );
    assert!(!out.contains("request_timeout"), "not listed by the admin API: {out}");
    assert!(out.ends_with(" (settings changed: 1)\n"), "{out}");

    // The reload's answer says the same.
    std::fs::write(&proxy.config, &edited_text).unwrap();
    let answer = post(&proxy.admin_url("/admin/reload"), "").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let settings = answer.json()["changes"]["settings"].clone();
    assert_eq!(
        settings,
        serde_json::json!([
            "proxy.default_upstream legacy -> thoughts",
            "upstreams.legacy.request_timeout 30s -> 1ms"
        ]),
        "{}",
        answer.body
    );
    proxy.stop().await;
}

//! TLS on the listener (versions, SNI, certificate hot reload and the periodic re-read,
//! half-finished updates) and towards `https://` upstreams (CA file, untrusted
//! certificates, mutual TLS). Every certificate and key is generated at test time
//! (rcgen, in `support::tls`); none is committed.

use std::sync::Arc;
use std::time::Duration;

use http::Version;

use crate::support::files::{ConfigMapVolume, replace_file};
use crate::support::tls::*;
use crate::support::*;

const TLS_OK: &str = "strangler_tls_reloads_total{result=\"ok\"}";
const TLS_ERROR: &str = "strangler_tls_reloads_total{result=\"error\"}";

/// Polls the metric until it reaches `at_least` (up to `within`).
async fn wait_for_metric(proxy: &TestProxy, series: &str, at_least: f64, within: Duration) {
    let value = wait_metric_within(proxy, series, within, |v| v.unwrap_or(0.0) >= at_least)
        .await
        .unwrap_or(0.0);
    assert!(
        value >= at_least,
        "{series} is {value}, expected at least {at_least} within {within:?}"
    );
}

/// How soon a changed certificate must be served.
const RELOAD_WITHIN: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------
// Tests: the listener
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn tls12_and_tls13_clients_are_served_with_forwarded_proto_https() {
    let ca = Ca::new("listener CA");
    let default = ca.leaf(&["app.example", "127.0.0.1"]);
    let (proxy, legacy) = proxy_serving_pair(&default).await;

    for (versions, expected) in [
        (TLS12, rustls::ProtocolVersion::TLSv1_2),
        (TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let config = client_config(&ca, versions, &[b"http/1.1"]);
        let stream = tls_connect(proxy.addr, "app.example", config.clone()).await;
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        let reply = https_get(proxy.addr, "app.example", config, "/hello").await;
        assert_eq!(reply.status, 200, "{expected:?}");
        assert_eq!(reply.body, "ok");
        assert_eq!(reply.version, Version::HTTP_11);
    }

    let seen = legacy.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.headers["x-forwarded-proto"], "https");
        assert_eq!(
            request.headers["x-forwarded-host"],
            format!("app.example:{}", proxy.addr.port())
        );
        assert_eq!(request.uri.path(), "/hello");
    }
    // Plain HTTP on the TLS port is not served.
    let text = raw(proxy.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(!text.starts_with("HTTP/1.1 200"), "{text}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sni_picks_the_certificate_of_the_host_and_the_default_otherwise() {
    let ca = Ca::new("listener CA");
    let default = ca.leaf(&["default.test", "other.example", "127.0.0.1"]);
    let a = ca.leaf(&["a.example"]);
    let b = ca.leaf(&["b.example", "x.wild.example"]);
    let legacy = ok_upstream(UpstreamOptions::plain()).await;
    let routes = routes_toml_with(
        &tls_section(&[(&["a.example"], "a"), (&["B.example", "*.wild.example"], "b")]),
        &[("legacy", &format!("http://{}", legacy.addr), "")],
        "",
    );
    let proxy = proxy_with_files(
        &[
            ("default.pem", &default.cert_pem),
            ("default.key", &default.key_pem),
            ("a.pem", &a.cert_pem),
            ("a.key", &a.key_pem),
            ("b.pem", &b.cert_pem),
            ("b.key", &b.key_pem),
        ],
        &routes,
    )
    .await;

    assert_eq!(served_cert(proxy.addr, "a.example", &ca).await, a.der);
    assert_eq!(served_cert(proxy.addr, "b.example", &ca).await, b.der);
    assert_eq!(served_cert(proxy.addr, "x.wild.example", &ca).await, b.der);
    assert_eq!(served_cert(proxy.addr, "other.example", &ca).await, default.der);
    // An IP address sends no SNI at all.
    assert_eq!(served_cert(proxy.addr, "127.0.0.1", &ca).await, default.der);
    let reply = https_get(proxy.addr, "a.example", client_config(&ca, ANY_TLS, &[]), "/").await;
    assert_eq!(reply.status, 200);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_replaced_by_rename_is_served_within_3s() {
    let ca = Ca::new("listener CA");
    let old = ca.leaf(&["app.example"]);
    let new = ca.leaf(&["app.example"]);
    let (proxy, _legacy) = proxy_serving_pair(&old).await;
    assert_eq!(served_cert(proxy.addr, "app.example", &ca).await, old.der);

    // A key and certificate in one PEM file would be one rename; two files are two.
    replace_file(&proxy.dir.path().join("default.key"), &new.key_pem);
    replace_file(&proxy.dir.path().join("default.pem"), &new.cert_pem);
    wait_for_cert(proxy.addr, "app.example", &ca, &new.der, RELOAD_WITHIN).await;
    wait_for_metric(&proxy, TLS_OK, 1.0, RELOAD_WITHIN).await;
    let reply = https_get(proxy.addr, "app.example", client_config(&ca, ANY_TLS, &[]), "/").await;
    assert_eq!(reply.status, 200);
    proxy.stop().await;
}

/// A Kubernetes Secret volume: `tls.crt -> ..data/tls.crt`, `..data -> ..TIMESTAMP`; an
/// update writes a new timestamped dir and renames a fresh `..data` symlink over the old.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn certificate_swapped_by_symlink_is_served_within_3s() {
    let ca = Ca::new("listener CA");
    let old = ca.leaf(&["app.example"]);
    let new = ca.leaf(&["app.example"]);
    let legacy = ok_upstream(UpstreamOptions::plain()).await;
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("secret");
    let mut volume = ConfigMapVolume::create(
        &base,
        "..2026_01_01",
        &[("tls.crt", &old.cert_pem), ("tls.key", &old.key_pem)],
    );
    let routes = routes_toml_with(
        "[proxy.tls]\ncert = \"secret/tls.crt\"\nkey = \"secret/tls.key\"\n",
        &[("legacy", &format!("http://{}", legacy.addr), "")],
        "",
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    let proxy = TestProxy::start_at(dir, config).await;
    assert_eq!(served_cert(proxy.addr, "app.example", &ca).await, old.der);

    volume.update("..2026_01_02", &[("tls.crt", &new.cert_pem), ("tls.key", &new.key_pem)]);

    wait_for_cert(proxy.addr, "app.example", &ca, &new.der, RELOAD_WITHIN).await;
    // Both files changed in one swap: no half-finished pair was ever seen.
    assert_eq!(metric(&proxy, TLS_ERROR).await, Some(0.0));
    assert_eq!(metric(&proxy, TLS_OK).await, Some(1.0));
    proxy.stop().await;
}

/// Proves: the certificate files are re-read every `RECHECK` (10 s, src/server/tls.rs)
/// even when no watch event reports a change. Here the configured files are symlinks into
/// a directory nobody watches, whose pair is swapped there at once: the watched directory
/// sees nothing, and the new certificate is served after the first periodic re-read, not
/// before it. Costs the test about 10 s.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_change_no_watch_event_reports_is_picked_up_by_the_periodic_reread() {
    const RECHECK: Duration = Duration::from_secs(10);
    use std::os::unix::fs::symlink;
    let ca = Ca::new("listener CA");
    let old = ca.leaf(&["app.example"]);
    let new = ca.leaf(&["app.example"]);
    let legacy = ok_upstream(UpstreamOptions::plain()).await;
    // outside/current -> v1 (then v2), each holding the pair; not watched.
    let outside = tempfile::tempdir().unwrap();
    for (version, pair) in [("v1", &old), ("v2", &new)] {
        std::fs::create_dir(outside.path().join(version)).unwrap();
        std::fs::write(outside.path().join(version).join("cert.pem"), &pair.cert_pem).unwrap();
        std::fs::write(outside.path().join(version).join("cert.key"), &pair.key_pem).unwrap();
    }
    symlink("v1", outside.path().join("current")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    symlink(outside.path().join("current/cert.pem"), dir.path().join("default.pem")).unwrap();
    symlink(outside.path().join("current/cert.key"), dir.path().join("default.key")).unwrap();
    let routes = routes_toml_with(
        &tls_section(&[]),
        &[("legacy", &format!("http://{}", legacy.addr), "")],
        "",
    );
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    // Before the proxy starts, so before its re-read timer does.
    let before_start = std::time::Instant::now();
    let proxy = TestProxy::start_at(dir, config).await;
    assert_eq!(served_cert(proxy.addr, "app.example", &ca).await, old.der);

    // Both files change in one rename, in the directory nobody watches.
    symlink("v2", outside.path().join("next")).unwrap();
    std::fs::rename(outside.path().join("next"), outside.path().join("current")).unwrap();

    wait_for_cert(
        proxy.addr,
        "app.example",
        &ca,
        &new.der,
        RECHECK + Duration::from_secs(5),
    )
    .await;
    let took = before_start.elapsed();
    println!(
        "figure: a certificate change no watch event reported was served {took:?} after start (re-read every {RECHECK:?})"
    );
    assert!(
        took >= RECHECK,
        "served after {took:?}, before the first re-read: a watch event saw the change, so this test does not test the re-read"
    );
    assert_eq!(metric(&proxy, TLS_OK).await, Some(1.0));
    assert_eq!(metric(&proxy, TLS_ERROR).await, Some(0.0));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mismatched_pair_keeps_the_old_certificate_until_the_key_arrives() {
    let ca = Ca::new("listener CA");
    let old = ca.leaf(&["app.example"]);
    let new = ca.leaf(&["app.example"]);
    let (proxy, _legacy) = proxy_serving_pair(&old).await;
    assert_eq!(metric(&proxy, TLS_ERROR).await, Some(0.0));

    // Half an update: the new certificate next to the old key.
    replace_file(&proxy.dir.path().join("default.pem"), &new.cert_pem);
    wait_for_metric(&proxy, TLS_ERROR, 1.0, RELOAD_WITHIN).await;
    assert_eq!(served_cert(proxy.addr, "app.example", &ca).await, old.der);
    let reply = https_get(proxy.addr, "app.example", client_config(&ca, ANY_TLS, &[]), "/").await;
    assert_eq!(reply.status, 200, "still serving with the old pair");

    // Garbage in the key file: still the old pair, one more error.
    replace_file(&proxy.dir.path().join("default.key"), "not a key");
    wait_for_metric(&proxy, TLS_ERROR, 2.0, RELOAD_WITHIN).await;
    assert_eq!(served_cert(proxy.addr, "app.example", &ca).await, old.der);
    assert_eq!(metric(&proxy, TLS_OK).await, Some(0.0));

    // The key arrives: the new pair is served.
    replace_file(&proxy.dir.path().join("default.key"), &new.key_pem);
    wait_for_cert(proxy.addr, "app.example", &ca, &new.der, RELOAD_WITHIN).await;
    assert_eq!(metric(&proxy, TLS_OK).await, Some(1.0));
    assert_eq!(
        metric(&proxy, TLS_ERROR).await,
        Some(2.0),
        "each bad content counted once"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_proxy_with_a_mismatched_pair_does_not_start() {
    let ca = Ca::new("listener CA");
    let one = ca.leaf(&["app.example"]);
    let two = ca.leaf(&["app.example"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("default.pem"), &one.cert_pem).unwrap();
    std::fs::write(dir.path().join("default.key"), &two.key_pem).unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(
        &config,
        routes_toml_with(&tls_section(&[]), &[("legacy", "http://127.0.0.1:9", "")], ""),
    )
    .unwrap();
    let error = strangler::App::load(config.clone()).unwrap_err().to_string();
    // `key = …` is on line 7 of the generated file.
    assert!(error.starts_with(&format!("{}:7:7: key ", config.display())), "{error}");
    assert!(error.contains("does not match certificate"), "{error}");
}

// ---------------------------------------------------------------------------------------
// Tests: https upstreams
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn https_upstream_is_verified_against_its_ca_file() {
    let upstream_ca = Ca::new("upstream CA");
    let secure = ok_upstream(UpstreamOptions {
        tls: Some(upstream_ca.leaf(&["127.0.0.1"])),
        ..UpstreamOptions::plain()
    })
    .await;
    let stranger = ok_upstream(UpstreamOptions {
        tls: Some(Ca::new("unknown CA").leaf(&["127.0.0.1"])),
        ..UpstreamOptions::plain()
    })
    .await;
    let routes = routes_toml_with(
        "",
        &[
            ("legacy", &format!("https://{}", secure.addr), "ca_file = \"ca.pem\""),
            (
                "stranger",
                &format!("https://{}", stranger.addr),
                "ca_file = \"ca.pem\"",
            ),
            ("public", &format!("https://{}", secure.addr), ""),
        ],
        "[[routes]]\nname = \"stranger\"\npath = \"/stranger/\"\nlegacy = \"stranger\"\n\n\
         [[routes]]\nname = \"public\"\npath = \"/public/\"\nlegacy = \"public\"\n",
    );
    let proxy = proxy_with_files(&[("ca.pem", &upstream_ca.pem)], &routes).await;

    let answer = get(&proxy.url("/trusted")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, "ok");
    assert_eq!(secure.seen().len(), 1);
    assert_eq!(secure.seen()[0].headers["x-forwarded-proto"], "http");

    // Signed by a CA the ca_file does not hold.
    let answer = get(&proxy.url("/stranger/x")).await;
    assert_eq!(answer.status, 502);
    assert!(answer.body.contains("upstream `stranger`"), "{}", answer.body);
    assert!(answer.body.contains("TLS handshake"), "{}", answer.body);
    assert!(stranger.seen().is_empty());
    // No ca_file: Mozilla's roots, which do not hold the test CA either.
    let answer = get(&proxy.url("/public/x")).await;
    assert_eq!(answer.status, 502);
    assert!(answer.body.contains("upstream `public`"), "{}", answer.body);
    assert_eq!(
        metric(
            &proxy,
            "strangler_upstream_errors_total{kind=\"tls\",upstream=\"stranger\"}"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(secure.seen().len(), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_presents_the_client_certificate() {
    let upstream_ca = Ca::new("upstream CA");
    let client_ca = Arc::new(Ca::new("client CA"));
    let client = client_ca.leaf(&["strangler.internal"]);
    let strict = ok_upstream(UpstreamOptions {
        tls: Some(upstream_ca.leaf(&["127.0.0.1"])),
        client_ca: Some(client_ca.clone()),
        ..UpstreamOptions::plain()
    })
    .await;
    let url = format!("https://{}", strict.addr);
    let routes = routes_toml_with(
        "",
        &[
            (
                "legacy",
                &url,
                "ca_file = \"ca.pem\"\nclient_cert = \"client.pem\"\nclient_key = \"client.key\"",
            ),
            ("anonymous", &url, "ca_file = \"ca.pem\""),
        ],
        "[[routes]]\nname = \"anonymous\"\npath = \"/anonymous/\"\nlegacy = \"anonymous\"\n",
    );
    let proxy = proxy_with_files(
        &[
            ("ca.pem", &upstream_ca.pem),
            ("client.pem", &client.cert_pem),
            ("client.key", &client.key_pem),
        ],
        &routes,
    )
    .await;

    let answer = get(&proxy.url("/with-cert")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = strict.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].client_cert.as_ref(), Some(&client.der));

    let answer = get(&proxy.url("/anonymous/x")).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("upstream `anonymous`"), "{}", answer.body);
    assert_eq!(strict.seen().len(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn a_client_key_that_does_not_match_rejects_the_table() {
    let ca = Ca::new("client CA");
    let (one, two) = (ca.leaf(&["a.internal"]), ca.leaf(&["b.internal"]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.pem"), &one.cert_pem).unwrap();
    std::fs::write(dir.path().join("client.key"), &two.key_pem).unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(
        &config,
        routes_toml_with(
            "",
            &[(
                "legacy",
                "https://127.0.0.1:9",
                "client_cert = \"client.pem\"\nclient_key = \"client.key\"",
            )],
            "",
        ),
    )
    .unwrap();
    let error = strangler::App::load(config).unwrap_err().to_string();
    assert!(error.contains("`legacy` is not usable"), "{error}");
    assert!(error.contains("client.key` does not match certificate"), "{error}");
}

/// `strangler check` reads the certificate and key files too: a half-finished update is
/// caught before it is deployed, at the line that names the key.
#[tokio::test]
async fn check_reports_a_mismatched_pair_and_an_unreadable_ca_file() {
    let ca = Ca::new("listener CA");
    let (one, two) = (ca.leaf(&["app.example"]), ca.leaf(&["app.example"]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("default.pem"), &one.cert_pem).unwrap();
    std::fs::write(dir.path().join("default.key"), &two.key_pem).unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(
        &config,
        routes_toml_with(
            &tls_section(&[]),
            &[("legacy", "https://127.0.0.1:9", "ca_file = \"missing-ca.pem\"")],
            "",
        ),
    )
    .unwrap();
    let output = strangler(&["check", config.to_str().unwrap()]).await;
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let name = config.display();
    assert!(lines[0].starts_with(&format!("{name}:7:7: key ")), "{out}");
    assert!(lines[0].contains("does not match certificate"), "{out}");
    assert!(
        lines[1].starts_with(&format!("{name}:12:11: cannot read CA file ")),
        "{out}"
    );

    // Matching files: ok.
    std::fs::write(dir.path().join("default.key"), &one.key_pem).unwrap();
    std::fs::write(dir.path().join("missing-ca.pem"), &ca.pem).unwrap();
    let output = strangler(&["check", config.to_str().unwrap()]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

//! Redaction audit: secrets that pass through the proxy (request `Authorization`,
//! `Cookie`, `Proxy-Authorization`, a header `[record]` is told to redact, upstream
//! `Set-Cookie`) and the admin token never appear in what the proxy writes or serves.

use std::path::Path;
use std::time::Duration;

use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::support::binary::{BinaryProxy, ServeOptions, Stderr};
use crate::support::*;

/// Values that must never be written anywhere by the proxy. Each is distinctive enough
/// that a match cannot be a coincidence.
const AUTHORIZATION: &str = "authz-SECRET-7f3a9c";
const COOKIE: &str = "cookie-SECRET-51be02";
const PROXY_AUTHORIZATION: &str = "proxyauth-SECRET-c4d1e8";
const API_KEY: &str = "apikey-SECRET-99a0f3";
const SET_COOKIE_LEGACY: &str = "setcookie-SECRET-legacy-2b7e";
const SET_COOKIE_NEW: &str = "setcookie-SECRET-new-8d41";
const API_KEY_LEGACY: &str = "respkey-SECRET-legacy-0c55";
const API_KEY_NEW: &str = "respkey-SECRET-new-e19b";
const ADMIN_TOKEN: &str = "admintoken-SECRET-4410aa";

const SECRETS: [&str; 9] = [
    AUTHORIZATION,
    COOKIE,
    PROXY_AUTHORIZATION,
    API_KEY,
    SET_COOKIE_LEGACY,
    SET_COOKIE_NEW,
    API_KEY_LEGACY,
    API_KEY_NEW,
    ADMIN_TOKEN,
];

/// An upstream answering `{"ok": true}` with a secret `Set-Cookie` and `X-Api-Key`.
async fn secret_upstream(cookie: &'static str, key: &'static str) -> Upstream {
    upstream_with(move |_request: Request<Incoming>| async move {
        Response::builder()
            .header("content-type", "application/json")
            .header("set-cookie", format!("sid={cookie}; HttpOnly"))
            .header("x-api-key", key)
            .body(full("{\"ok\": true}"))
            .unwrap()
    })
    .await
}

/// `strangler --log-format json serve` on `dir`'s routes.toml, stderr into `log`.
async fn serve(dir: &Path, log: &Path) -> BinaryProxy {
    BinaryProxy::serve(
        dir.join("routes.toml"),
        ServeOptions {
            global_args: &["--log-format", "json"],
            rust_log: "debug",
            stderr: Stderr::File(log.to_path_buf()),
        },
    )
    .await
}

async fn request(method: Method, url: String, headers: &[(&str, String)]) -> Answer {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    send(&client(), builder.body(full("")).unwrap()).await
}

/// Proves that none of the secret values (request credentials and cookies, a configured
/// secret header, upstream `Set-Cookie`s, the admin token) appears in the proxy's log
/// (JSON, `RUST_LOG=debug`, stdout and stderr), in `/metrics`, in any admin endpoint's
/// output (including shadow mismatches on `set-cookie` and the configured header in
/// `/admin/parity`), or in the traffic recording, while traffic went through every path
/// that writes something (shadow with mismatches, recording, a 502, a 400, admin refusals).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_metrics_admin_output_or_recordings() {
    let legacy = secret_upstream(SET_COOKIE_LEGACY, API_KEY_LEGACY).await;
    let new = secret_upstream(SET_COOKIE_NEW, API_KEY_NEW).await;
    let dead = dead_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
    let routes = format!(
        "{}\n[record]\npath = \"traffic.jsonl\"\nsample = 1.0\nredact_headers = [\"x-api-key\"]\n",
        routes_toml_with(
            "admin_token_file = \"admin-token\"\ndrain_timeout = \"3s\"",
            &[
                ("legacy", &legacy.url(), ""),
                ("new", &new.url(), ""),
                ("dead", &dead, "")
            ],
            "[[routes]]\nname = \"api\"\npath = \"/api/\"\nstage = \"shadow\"\nnew = \"new\"\n\
             compare = { headers = [\"set-cookie\", \"x-api-key\"] }\n\n\
             [[routes]]\nname = \"down\"\npath = \"/down/\"\nlegacy = \"dead\"\n",
        )
    );
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    let log = dir.path().join("stderr.log");
    let mut served = serve(dir.path(), &log).await;
    let proxy = |path: &str| format!("http://{}{path}", served.addr);
    let admin_url = |path: &str| format!("http://{}{path}", served.admin);

    let secret_headers = [
        ("authorization", format!("Bearer {AUTHORIZATION}")),
        ("cookie", format!("session={COOKIE}")),
        ("proxy-authorization", format!("Basic {PROXY_AUTHORIZATION}")),
        ("x-api-key", API_KEY.to_owned()),
    ];
    const SHADOWED: usize = 3;
    for i in 0..SHADOWED {
        let answer = request(Method::GET, proxy(&format!("/api/thing/{i}")), &secret_headers).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        // The client gets its own cookie back: that is the service working, not a leak.
        assert!(
            answer.headers["set-cookie"]
                .to_str()
                .unwrap()
                .contains(SET_COOKIE_LEGACY)
        );
    }
    assert_eq!(
        request(Method::GET, proxy("/down/x"), &secret_headers).await.status,
        502
    );
    assert_eq!(
        request(Method::GET, proxy("/%2e%2e/x"), &secret_headers).await.status,
        400
    );
    assert_eq!(request(Method::GET, proxy("/other"), &secret_headers).await.status, 200);
    assert_eq!(
        request(
            Method::GET,
            admin_url("/metrics"),
            &[("authorization", format!("Bearer {AUTHORIZATION}"))]
        )
        .await
        .status,
        401,
        "a wrong token"
    );

    // Wait (bounded) until the shadow comparisons are in.
    let token = [("authorization", format!("Bearer {ADMIN_TOKEN}"))];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let parity = loop {
        let parity = request(Method::GET, admin_url("/admin/parity"), &token).await;
        assert_eq!(parity.status, 200, "{}", parity.body);
        if parity.json()["routes"]["api"]["mismatch"] == SHADOWED || tokio::time::Instant::now() >= deadline {
            break parity;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Positive control: the mismatches are on the secret headers, shown redacted.
    let parity_json = parity.json();
    let diffs = &parity_json["mismatches"][0]["diffs"];
    for header in ["header:set-cookie", "header:x-api-key"] {
        let diff = diffs
            .as_array()
            .and_then(|d| d.iter().find(|d| d["pointer"] == header))
            .unwrap_or_else(|| panic!("no {header} diff in {parity_json}"));
        assert_eq!(diff["legacy"], "[redacted]", "{diff}");
        assert_eq!(diff["new"], "[redacted]", "{diff}");
    }

    let mut outputs: Vec<(String, String)> = vec![("/admin/parity".to_owned(), parity.body)];
    for (method, path) in [
        (Method::GET, "/metrics"),
        (Method::GET, "/admin/routes"),
        (Method::GET, "/healthz"),
        (Method::GET, "/readyz"),
        (Method::POST, "/admin/reload"),
    ] {
        let answer = request(method.clone(), admin_url(path), &token).await;
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
        outputs.push((format!("{method} {path}"), answer.body));
    }
    let refused = request(Method::GET, admin_url("/admin/routes"), &[]).await;
    assert_eq!(refused.status, 401);
    outputs.push(("401 answer".to_owned(), refused.body));

    let recording = dir.path().join("traffic.jsonl");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let recorded = loop {
        let text = std::fs::read_to_string(&recording).unwrap_or_default();
        // The shadowed requests, /down/x and /other (the 400 is refused before routing).
        if text.lines().count() >= SHADOWED + 2 || tokio::time::Instant::now() >= deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(recorded.lines().count(), SHADOWED + 2, "{recorded}");
    assert!(recorded.contains("[redacted]"), "{recorded}");
    outputs.push(("recording".to_owned(), recorded));

    served.signal("TERM");
    let status = served.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    let stdout = served.stdout_rest().await;
    let stderr = std::fs::read_to_string(&log).unwrap();
    // Positive control: the log did record the traffic, as JSON.
    let access_lines = stderr
        .lines()
        .filter(|line| line.contains("\"strangler::access\""))
        .inspect(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        })
        .count();
    assert!(
        access_lines >= SHADOWED + 3,
        "{access_lines} access lines in:\n{stderr}"
    );
    assert!(stderr.contains("shadow mismatch"), "{stderr}");
    outputs.push(("log (stderr)".to_owned(), stderr));
    outputs.push(("log (stdout)".to_owned(), stdout));

    let mut leaks = Vec::new();
    for (name, text) in &outputs {
        for secret in SECRETS {
            if text.contains(secret) {
                leaks.push(format!("{secret} in {name}"));
            }
        }
    }
    let names: Vec<&str> = outputs.iter().map(|(name, _)| name.as_str()).collect();
    println!(
        "figure: secrets: {} secret values x {} outputs ({}): {} appearances",
        SECRETS.len(),
        outputs.len(),
        names.join(", "),
        leaks.len()
    );
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
}

//! The admin API's bearer token (`[proxy] admin_token_file`), and the admin API's
//! separation from the public listener.

use http::{Method, Request, StatusCode};

use crate::support::*;

const TOKEN: &str = "Adm1n-t0ken-for-tests";

/// A proxy whose admin API needs `TOKEN` (read from `admin-token` next to routes.toml).
async fn proxy_with_token(legacy: &Upstream) -> TestProxy {
    proxy_with_files(
        &[("admin-token", &format!("{TOKEN}\n"))],
        &routes_toml_with(
            "admin_token_file = \"admin-token\"",
            &[("legacy", &legacy.url(), "")],
            "",
        ),
    )
    .await
}

async fn admin(proxy: &TestProxy, method: Method, path: &str, authorization: &[&str]) -> Answer {
    let mut request = Request::builder().method(method).uri(proxy.admin_url(path));
    for value in authorization {
        request = request.header("authorization", *value);
    }
    send(&client(), request.body(full("")).unwrap()).await
}

const PROTECTED: [(Method, &str); 5] = [
    (Method::GET, "/metrics"),
    (Method::GET, "/admin/routes"),
    (Method::GET, "/admin/parity"),
    (Method::POST, "/admin/reload"),
    (Method::GET, "/no-such-endpoint"),
];

/// Proves that with `admin_token_file` every admin endpoint but the health checks answers
/// 401 (with `WWW-Authenticate: Bearer`) to a missing, wrong, differently-schemed,
/// truncated, extended or doubled token, and serves the right one; the health checks
/// need none.
#[tokio::test]
async fn admin_requests_need_the_bearer_token() {
    let legacy = echo_upstream("legacy").await;
    let proxy = proxy_with_token(&legacy).await;
    let good = format!("Bearer {TOKEN}");
    let lower = format!("bearer {TOKEN}");
    let truncated = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let extended = format!("Bearer {TOKEN}x");
    let basic = format!("Basic {TOKEN}");
    let refusals: [&[&str]; 7] = [
        &[],
        &["Bearer wrong"],
        &[&truncated],
        &[&extended],
        &[&basic],
        &["Bearer "],
        &[&good, "Bearer wrong"],
    ];
    let mut refused = 0;
    for (method, path) in &PROTECTED {
        for authorization in refusals {
            let answer = admin(&proxy, method.clone(), path, authorization).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {authorization:?}"
            );
            assert_eq!(answer.headers["www-authenticate"], "Bearer realm=\"strangler admin\"");
            assert!(!answer.body.contains("strangler_"), "{path} leaked: {}", answer.body);
            refused += 1;
        }
        for authorization in [&good, &lower] {
            let answer = admin(&proxy, method.clone(), path, &[authorization]).await;
            let want = if *path == "/no-such-endpoint" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            assert_eq!(answer.status, want, "{method} {path} with the token: {}", answer.body);
        }
    }
    // The health checks, and the dashboard page (no data in it: its script sends the token).
    for path in ["/healthz", "/readyz", "/"] {
        for method in [Method::GET, Method::HEAD] {
            assert_eq!(
                admin(&proxy, method.clone(), path, &[]).await.status,
                200,
                "{method} {path}"
            );
        }
        // Other methods on the health paths are not health checks: token first.
        assert_eq!(admin(&proxy, Method::POST, path, &[]).await.status, 401, "POST {path}");
    }
    println!(
        "figure: admin auth: {refused}/{} requests without the right token refused with 401; health checks served without one",
        PROTECTED.len() * refusals.len()
    );
    proxy.stop().await;
}

/// Proves that the token file is read again on every reload: after the file changes and
/// the table is reloaded, the old token is refused and the new one accepted; a reload that
/// finds the file empty is rejected (error at the setting's file:line:col) and the token in
/// force stays.
#[tokio::test]
async fn the_token_file_is_read_again_on_reload() {
    let legacy = echo_upstream("legacy").await;
    let proxy = proxy_with_token(&legacy).await;
    let old = format!("Bearer {TOKEN}");
    let token_file = proxy.dir.path().join("admin-token");
    std::fs::write(&token_file, "rotated-token").unwrap();
    let answer = admin(&proxy, Method::POST, "/admin/reload", &[&old]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(admin(&proxy, Method::GET, "/admin/routes", &[&old]).await.status, 401);
    let new = "Bearer rotated-token";
    assert_eq!(admin(&proxy, Method::GET, "/admin/routes", &[new]).await.status, 200);

    std::fs::write(&token_file, "\n").unwrap();
    let answer = admin(&proxy, Method::POST, "/admin/reload", &[new]).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    let errors = answer.json()["errors"].to_string();
    let config = proxy.config.display().to_string();
    assert!(
        errors.contains(&format!("{config}:5:20: `admin_token_file`")),
        "{errors}"
    );
    assert!(errors.contains("is empty"), "{errors}");
    assert_eq!(admin(&proxy, Method::GET, "/admin/routes", &[new]).await.status, 200);
    proxy.stop().await;
}

/// Proves that the public listener never serves the admin API: admin paths sent to it go
/// to the default upstream like any other path.
#[tokio::test]
async fn the_public_listener_never_serves_the_admin_api() {
    let legacy = echo_upstream("legacy").await;
    let proxy = proxy_with_token(&legacy).await;
    for path in ["/metrics", "/admin/routes", "/admin/parity", "/healthz", "/readyz"] {
        let answer = get(&proxy.url(path)).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.json()["upstream"], "legacy", "{path}: {}", answer.body);
        assert_eq!(answer.json()["path"], path);
    }
    let answer = post(&proxy.url("/admin/reload"), "").await;
    assert_eq!(answer.json()["upstream"], "legacy", "{}", answer.body);
    assert_eq!(legacy.seen().len(), 6);
    proxy.stop().await;
}

/// Proves that `strangler serve` refuses to start with the admin API on a non-loopback
/// address and no `admin_token_file`, naming the address and the setting, and that
/// without the token file's content it refuses too (nothing is bound in either case).
#[tokio::test]
async fn serve_refuses_an_exposed_admin_api_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    let table = routes_toml(&[("legacy", "http://127.0.0.1:1")], "")
        .replace("admin_listen = \"127.0.0.1:0\"", "admin_listen = \"0.0.0.0:0\"");
    std::fs::write(&config, &table).unwrap();
    let serve = [std::ffi::OsStr::new("serve"), "--config".as_ref(), config.as_os_str()];
    let output = strangler(&serve).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("routes.toml:3:16: `admin_listen` 0.0.0.0:0 is not a loopback address"),
        "{stderr}"
    );
    assert!(stderr.contains("set `admin_token_file`"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "it said it was ready"
    );

    // With the setting, but the file missing: refused, at the setting.
    let with_token = table.replace(
        "default_upstream = \"legacy\"",
        "default_upstream = \"legacy\"\nadmin_token_file = \"missing-token\"",
    );
    std::fs::write(&config, with_token).unwrap();
    let output = strangler(&serve).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("routes.toml:5:20: cannot read `admin_token_file`"),
        "{stderr}"
    );
}

/// Proves that `strangler status` (the admin API client `flip` shares) is refused by a proxy
/// with a token until it is given `--admin-token-file`, and then reads the table.
#[tokio::test]
async fn status_sends_the_token_from_its_token_file() {
    let legacy = echo_upstream("legacy").await;
    let proxy = proxy_with_token(&legacy).await;
    let admin = format!("http://{}", proxy.admin);
    let token_file = proxy.dir.path().join("admin-token");
    let run = |with_token: bool| {
        let mut command = strangler_command(&["status", "--json", "--admin", &admin]);
        command.env_remove("STRANGLER_ADMIN_TOKEN_FILE");
        if with_token {
            command.arg("--admin-token-file").arg(&token_file);
        }
        async move { output(&mut command).await }
    };
    let refused = run(false).await;
    assert!(!refused.status.success(), "status without the token must fail");
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("401"),
        "the failure names the 401: {}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let served = run(true).await;
    let stdout = String::from_utf8_lossy(&served.stdout);
    assert!(
        served.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&served.stderr)
    );
    assert!(stdout.contains(&proxy.version()), "{stdout}");
    proxy.stop().await;
}

/// Proves that `strangler status --config TABLE` takes the token from the table's
/// `admin_token_file` when it takes the admin address from the table, and that a 401 is
/// reported as a missing token.
#[tokio::test]
async fn status_reads_the_token_of_the_table_it_takes_the_address_from() {
    let legacy = echo_upstream("legacy").await;
    let proxy = proxy_with_token(&legacy).await;
    // The same table, naming the admin address the proxy really listens on.
    let table = std::fs::read_to_string(&proxy.config).unwrap().replace(
        "admin_listen = \"127.0.0.1:0\"",
        &format!("admin_listen = \"{}\"", proxy.admin),
    );
    let with_token = proxy.dir.path().join("status.toml");
    std::fs::write(&with_token, &table).unwrap();
    let without_token = proxy.dir.path().join("status-no-token.toml");
    std::fs::write(
        &without_token,
        table.replace("admin_token_file = \"admin-token\"\n", ""),
    )
    .unwrap();
    let run = |table: std::path::PathBuf| {
        let mut command = strangler_command(&["status", "--json", "--config"]);
        command.arg(&table).env_remove("STRANGLER_ADMIN_TOKEN_FILE");
        async move { output(&mut command).await }
    };

    let served = run(with_token).await;
    let stdout = String::from_utf8_lossy(&served.stdout);
    assert!(
        served.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&served.stderr)
    );
    assert!(stdout.contains(&proxy.version()), "{stdout}");

    let refused = run(without_token.clone()).await;
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{stdout}");
    assert!(
        stdout.contains("needs a token"),
        "a 401 is reported as a missing token: {stdout}"
    );
    assert!(stdout.contains("\"needs_token\": true"), "{stdout}");

    // The board says TOKEN, not DOWN, and counts the replica as needing a token.
    let mut command = strangler_command(&["status", "--config"]);
    command.arg(&without_token).env_remove("STRANGLER_ADMIN_TOKEN_FILE");
    let board = output(&mut command).await;
    let text = String::from_utf8_lossy(&board.stdout);
    assert!(!board.status.success(), "{text}");
    assert!(text.contains("  TOKEN "), "{text}");
    assert!(!text.contains("DOWN"), "a replica that answers 401 is not down: {text}");
    assert!(text.contains("1 replica(s) need an admin token"), "{text}");
    proxy.stop().await;
}

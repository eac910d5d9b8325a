//! The MyThoughts migration demo end to end, through the proxy's one URL: the monolith,
//! the thoughts, users and frontend services and strangler, each on its own loopback
//! port ([`mythoughts_demo::Demo`]), sharing one SQLite file. Routes are flipped by
//! rewriting the demo's routes file, as an operator would, and every flip is awaited on
//! the proxy's load status, never by sleeping.
//!
//! What must hold: a session from either side works on the other; data written through
//! one service is read through the others; flipping a route changes which upstream
//! answers (seen in `strangler_requests_total{route,upstream}`) and nothing else, not even
//! under load, and not for bad input either.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{Method, Request, StatusCode};
use mythoughts_common::errors::{MISSING_PARAMETER_MESSAGE, NOT_FOUND_MESSAGE, UNAUTHORIZED_MESSAGE};
use mythoughts_common::jwt::{DEV_PRIVATE_KEY_FILE, TOKEN_LIFETIME, TokenIssuer, unix_now};
use mythoughts_common::seed;
use mythoughts_demo::Demo;
use serde_json::{Value, json};

use crate::support::demo::*;
use crate::support::*;

const MY_THOUGHTS: &str = "my-thoughts-api";
const THOUGHTS: &str = "thoughts-api";

/// The seed thoughts of `username`, as the APIs list them (by id).
fn seed_thoughts_of(username: &str) -> Value {
    let thoughts: Vec<_> = seed::THOUGHTS
        .iter()
        .filter(|t| t.username == username)
        .map(|t| t.to_thought())
        .collect();
    assert!(!thoughts.is_empty(), "no seed thoughts for {username}");
    serde_json::to_value(thoughts).unwrap()
}

/// One request through the proxy; `form` is sent as `application/x-www-form-urlencoded`.
async fn call(demo: &Demo, method: Method, path: &str, authorization: Option<&str>, form: Option<&str>) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", demo.proxy));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let body = match form {
        Some(form) => {
            request = request.header("content-type", "application/x-www-form-urlencoded");
            full(form.to_owned())
        }
        None => full(""),
    };
    send(&client(), request.body(body).unwrap()).await
}

/// Logs in on the monolith's HTML login page (through the proxy) and returns the JWT of
/// the `session` cookie.
async fn html_login(demo: &Demo, username: &str) -> String {
    let answer = call(
        demo,
        Method::POST,
        "/login/",
        None,
        Some(&format!("username={username}&password={}", seed::SEED_PASSWORD)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "POST /login/: {}", answer.body);
    assert_eq!(answer.headers.get("location").unwrap(), "/");
    let cookie = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session="))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", answer.headers))
        .to_owned();
    let token = cookie["session=".len()..].split(';').next().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {cookie}");
    token
}

/// Asserts that `route` has been served by `upstream` at least `at_least` times and by
/// `other` not at all.
async fn assert_served(demo: &Demo, route: &str, upstream: &str, at_least: f64, other: &str) {
    let served = wait_requests_total(demo.admin, &[("route", route), ("upstream", upstream)], |n| {
        n >= at_least
    })
    .await;
    assert!(
        served >= at_least,
        "route {route}: {served} requests to {upstream}, expected at least {at_least}\n{}",
        metrics_text(demo.admin).await
    );
    let wrong = requests_total(
        &metrics_text(demo.admin).await,
        &[("route", route), ("upstream", other)],
    );
    assert_eq!(wrong, 0.0, "route {route} was sent to {other}");
}

/// A session from the monolith's login page reads and writes through the
/// thoughts service, and the thought written is found by the API and the search page.
#[tokio::test(flavor = "multi_thread")]
async fn a_monolith_session_reads_and_writes_through_the_new_services() {
    let (_dir, demo) = start_demo().await;
    let token = html_login(&demo, "bruce").await;
    let bearer = format!("Bearer {token}");

    set_stages(&demo, &[(MY_THOUGHTS, "new")]).await;
    let mine = call(&demo, Method::GET, "/api/me/thoughts/", Some(&bearer), None).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.json(), seed_thoughts_of("bruce"));
    assert_served(&demo, MY_THOUGHTS, "thoughts", 1.0, "legacy").await;

    // Write through the thoughts service; the text needs escaping on a page.
    let word = "zorblax";
    let text = format!("Hulk <smash> & \"{word}\" it's fine");
    let form = format!("text={}", form_encode(&text));
    let created = call(&demo, Method::POST, "/api/me/thoughts/", Some(&bearer), Some(&form)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let thought = created.json();
    assert_eq!(thought["username"], "bruce");
    assert_eq!(thought["text"], text.as_str());
    let id = thought["id"].as_i64().unwrap();
    assert!(id > seed::THOUGHTS.len() as i64, "{thought}");
    assert_served(&demo, MY_THOUGHTS, "thoughts", 2.0, "legacy").await;

    // The thoughts API (already on the thoughts service) finds it.
    let found = call(&demo, Method::GET, &format!("/api/thoughts/?search={word}"), None, None).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.json(), json!([thought]));
    let one = call(&demo, Method::GET, &format!("/api/thoughts/{id}/"), None, None).await;
    assert_eq!(one.json(), thought);
    assert_served(&demo, THOUGHTS, "thoughts", 2.0, "legacy").await;

    // So does the search page, rendered by the frontend from the thoughts service.
    let page = call(&demo, Method::GET, &format!("/search?search={word}"), None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        page.headers
    );
    let escaped = "Hulk &lt;smash&gt; &amp; &quot;zorblax&quot; it&#x27;s fine";
    assert!(
        page.body.contains(escaped),
        "{escaped} not in the search page:\n{}",
        page.body
    );
    assert!(
        !page.body.contains("<smash>"),
        "unescaped text on the page:\n{}",
        page.body
    );
    assert!(page.body.contains(&format!("id=\"thought-{id}\"")), "{}", page.body);
    assert_served(&demo, "search-page", "frontend", 1.0, "legacy").await;

    // The monolith shares the database: asked directly, it has the thought too.
    let legacy = get(&format!("http://{}/api/thoughts/{id}/", demo.legacy)).await;
    assert_eq!(legacy.json(), thought);

    demo.shutdown().await;
}

/// `/api/thoughts/` flipped between the monolith and the thoughts service while
/// four clients read it: no request fails and no answer changes.
#[tokio::test(flavor = "multi_thread")]
async fn flipping_the_thoughts_api_under_load_changes_no_answer() {
    /// The clients send at least this many requests, and go on until the flips are over…
    const MIN_REQUESTS: usize = 1500;
    /// …but never more than this many, nor for longer than `LIMIT`.
    const MAX_REQUESTS: usize = 20_000;
    const LIMIT: Duration = Duration::from_secs(60);
    /// Concurrent clients, each with its own keep-alive connection.
    const CLIENTS: usize = 4;
    const FLIPS: usize = 10;
    /// Requests the clients must complete after a flip before the next one.
    const PER_STAGE: usize = 40;

    let (_dir, demo) = start_demo().await;
    let paths: Vec<String> = ["/api/thoughts/".to_owned(), "/api/thoughts/?search=in".to_owned()]
        .into_iter()
        .chain((1..=seed::THOUGHTS.len() + 1).map(|id| format!("/api/thoughts/{id}/")))
        .collect();
    // The first answer for each path, at the file's stage (new).
    let mut first = BTreeMap::new();
    for path in &paths {
        let answer = call(&demo, Method::GET, path, None, None).await;
        first.insert(path.clone(), (answer.status, answer.json()));
    }
    assert_eq!(first["/api/thoughts/"].1, seed_thoughts_of_all());
    assert_eq!(first[paths.last().unwrap()].0, StatusCode::NOT_FOUND);
    let first = Arc::new(first);

    let done = Arc::new(AtomicUsize::new(0));
    let (progress, mut progressed) = tokio::sync::watch::channel(0usize);
    let progress = Arc::new(progress);
    let flips_over = Arc::new(AtomicBool::new(false));
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut clients = Vec::new();
    for client_index in 0..CLIENTS {
        let (paths, first, done, progress, flips_over) = (
            paths.clone(),
            first.clone(),
            done.clone(),
            progress.clone(),
            flips_over.clone(),
        );
        let proxy = demo.proxy;
        clients.push(tokio::spawn(async move {
            let http = client();
            let mut failures = Vec::new();
            for turn in 0..MAX_REQUESTS {
                let sent = done.load(Ordering::SeqCst);
                let enough = sent >= MIN_REQUESTS && flips_over.load(Ordering::SeqCst);
                if enough || sent >= MAX_REQUESTS || tokio::time::Instant::now() >= deadline {
                    break;
                }
                let path = &paths[(client_index + turn) % paths.len()];
                let request = Request::get(format!("http://{proxy}{path}")).body(full("")).unwrap();
                let exchange = async {
                    use http_body_util::BodyExt;
                    let response = http.request(request).await.map_err(|e| e.to_string())?;
                    let status = response.status();
                    let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
                    Ok::<_, String>((status, body.to_bytes()))
                };
                match tokio::time::timeout(Duration::from_secs(10), exchange).await {
                    Err(_) => failures.push(format!("GET {path}: no whole answer within 10 s")),
                    Ok(Err(e)) => failures.push(format!("GET {path}: {e}")),
                    Ok(Ok((status, body))) => {
                        let json = serde_json::from_slice::<Value>(&body).ok();
                        let (want_status, want_json) = &first[path];
                        if status != *want_status || json.as_ref() != Some(want_json) {
                            failures.push(format!("GET {path}: {status} {}", String::from_utf8_lossy(&body)));
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
                progress.send_modify(|n| *n += 1);
            }
            failures
        }));
    }

    for flip in 0..FLIPS {
        let (stage, upstream) = if flip % 2 == 0 {
            ("legacy", "legacy")
        } else {
            ("new", "thoughts")
        };
        set_stages(&demo, &[(THOUGHTS, stage)]).await;
        let labels = [("route", THOUGHTS), ("upstream", upstream)];
        let before = requests_total(&metrics_text(demo.admin).await, &labels);
        let at_flip = *progressed.borrow_and_update();
        let wait = progressed.wait_for(|n| *n >= at_flip + PER_STAGE);
        // (Not holding on to the value: that would block the clients' updates.)
        let reached = matches!(tokio::time::timeout(Duration::from_secs(10), wait).await, Ok(Ok(_)));
        assert!(reached, "the clients made no progress after flip {flip} (to {stage})");
        let after = wait_requests_total(demo.admin, &labels, |n| n > before).await;
        assert!(
            after > before,
            "flip {flip}: {upstream} served nothing at stage {stage}"
        );
    }
    flips_over.store(true, Ordering::SeqCst);

    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    let total = done.load(Ordering::SeqCst);
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed or changed their answer; first ones:\n{}",
        failures.len(),
        failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(total >= MIN_REQUESTS, "only {total} requests within {LIMIT:?}");

    // Both upstreams served a share, and every request was counted on the route.
    let expected = (total + paths.len()) as f64;
    let all = wait_requests_total(demo.admin, &[("route", THOUGHTS)], |n| n >= expected).await;
    assert_eq!(all, expected, "requests counted on {THOUGHTS}");
    let metrics = metrics_text(demo.admin).await;
    for upstream in ["legacy", "thoughts"] {
        let served = requests_total(&metrics, &[("route", THOUGHTS), ("upstream", upstream)]);
        assert!(served >= PER_STAGE as f64, "{upstream} served {served} of {total}");
    }
    demo.shutdown().await;
}

/// Every seed thought, by id.
fn seed_thoughts_of_all() -> Value {
    serde_json::to_value(seed::THOUGHTS.iter().map(|t| t.to_thought()).collect::<Vec<_>>()).unwrap()
}

/// What a client can see of an answer, for comparing the two sides.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    content_type: Option<String>,
    location: Option<String>,
    allow: Option<String>,
    body: Value,
}

impl Seen {
    fn of(answer: &Answer) -> Seen {
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap_or("<not UTF-8>").to_owned())
        };
        Seen {
            status: answer.status,
            content_type: header("content-type"),
            location: header("location"),
            allow: header("allow"),
            body: if answer.body.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&answer.body).unwrap_or_else(|_| Value::String(answer.body.clone()))
            },
        }
    }
}

/// A bad request and the answer the monolith's contract gives it.
#[derive(Debug, Clone)]
struct Case {
    method: Method,
    path: &'static str,
    authorization: Option<String>,
    form: Option<&'static str>,
    status: StatusCode,
    /// The JSON body, when the contract fixes it.
    body: Option<Value>,
}

impl Case {
    fn new(method: Method, path: &'static str) -> Case {
        Case {
            method,
            path,
            authorization: None,
            form: None,
            status: StatusCode::OK,
            body: None,
        }
    }

    fn auth(mut self, value: &str) -> Case {
        self.authorization = Some(value.to_owned());
        self
    }

    fn form(mut self, form: &'static str) -> Case {
        self.form = Some(form);
        self
    }

    fn expect(mut self, status: u16, body: Option<&Value>) -> Case {
        self.status = StatusCode::from_u16(status).unwrap();
        self.body = body.cloned();
        self
    }

    /// Sends the case through the proxy, checks it against the contract, and returns
    /// what the client saw.
    async fn run(&self, demo: &Demo) -> Seen {
        let answer = call(
            demo,
            self.method.clone(),
            self.path,
            self.authorization.as_deref(),
            self.form,
        )
        .await;
        assert_eq!(answer.status, self.status, "{self:?}: {}", answer.body);
        if let Some(body) = &self.body {
            assert_eq!(&answer.json(), body, "{self:?}");
        }
        Seen::of(&answer)
    }
}

/// Bad input gets the same answer from the monolith and from the thoughts service.
#[tokio::test(flavor = "multi_thread")]
async fn errors_are_the_same_at_both_stages() {
    let (dir, demo) = start_demo().await;
    let keys = dir.path().join("data").join("keys");
    let issuer = TokenIssuer::from_pem_file(&keys.join(DEV_PRIVATE_KEY_FILE)).unwrap();
    let valid = format!("Bearer {}", issuer.issue("bruce").unwrap());
    let expired = issuer
        .issue_at("bruce", unix_now() - TOKEN_LIFETIME.as_secs() - 5)
        .unwrap();
    let expired = format!("Bearer {expired}");
    let unauthorized = json!({ "message": UNAUTHORIZED_MESSAGE });
    let not_found = json!({ "message": NOT_FOUND_MESSAGE });
    let nulls = json!({"id": null, "username": null, "text": null, "timestamp": null});
    let missing_text = json!({
        "errors": {"text": format!("Text of the thought {MISSING_PARAMETER_MESSAGE}")},
        "message": "Input payload validation failed",
    });
    let (get, post) = (
        |path| Case::new(Method::GET, path),
        |path| Case::new(Method::POST, path),
    );
    let me = "/api/me/thoughts/";
    let cases = [
        get(me).expect(401, Some(&unauthorized)),
        get(me).auth("Bearer not.a.token").expect(401, Some(&unauthorized)),
        get(me).auth("Bearer").expect(401, Some(&unauthorized)),
        get(me)
            .auth("Basic YnJ1Y2U6cGFzc3dvcmQ=")
            .expect(401, Some(&unauthorized)),
        get(me).auth(&expired).expect(401, Some(&unauthorized)),
        post(me)
            .auth(&expired)
            .form("text=nope")
            .expect(401, Some(&unauthorized)),
        post(me).form("text=nope").expect(401, Some(&unauthorized)),
        post(me).auth(&valid).form("other=1").expect(400, Some(&missing_text)),
        post(me).form("").expect(400, Some(&missing_text)),
        Case::new(Method::PUT, me).auth(&valid).expect(405, None),
        get("/api/me/thoughts").auth(&valid).expect(308, None),
        get("/api/thoughts/9999/").expect(404, Some(&nulls)),
        get("/api/thoughts/abc/").expect(404, Some(&not_found)),
        get("/api/thoughts").expect(308, None),
        get("/api/thoughts/2?search=x").expect(308, None),
    ];

    set_stages(&demo, &[(THOUGHTS, "legacy"), (MY_THOUGHTS, "legacy")]).await;
    let mut legacy = Vec::new();
    for case in &cases {
        legacy.push(case.run(&demo).await);
    }
    set_stages(&demo, &[(THOUGHTS, "new"), (MY_THOUGHTS, "new")]).await;
    for (case, legacy) in cases.iter().zip(&legacy) {
        let new = case.run(&demo).await;
        assert_eq!(
            legacy, &new,
            "{case:?}: the monolith (left) and the new service (right) differ"
        );
    }
    assert_eq!(legacy[13].location.as_deref(), Some("/api/thoughts/"));
    assert!(legacy[9].allow.is_some(), "405 without Allow: {:?}", legacy[9]);

    // Each side answered its share: every case once at each stage.
    let on_my_thoughts = cases.iter().filter(|c| c.path.starts_with("/api/me/")).count() as f64;
    let on_thoughts = cases.len() as f64 - on_my_thoughts;
    for (route, count) in [(MY_THOUGHTS, on_my_thoughts), (THOUGHTS, on_thoughts)] {
        for upstream in ["legacy", "thoughts"] {
            let labels = [("route", route), ("upstream", upstream)];
            let served = wait_requests_total(demo.admin, &labels, |n| n >= count).await;
            assert_eq!(served, count, "route {route} on {upstream}");
        }
    }
    demo.shutdown().await;
}

/// `POST /api/login/` is answered by the users service, and its token works on
/// the monolith and on the thoughts service alike.
#[tokio::test(flavor = "multi_thread")]
async fn api_login_on_the_users_service_works_on_both_sides() {
    let (_dir, demo) = start_demo().await;
    let form = format!("username=stephen&password={}", seed::SEED_PASSWORD);
    let login = call(&demo, Method::POST, "/api/login/", None, Some(&form)).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let body = login.json();
    let header = body["Authorized"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    assert!(header.starts_with("Bearer "), "{header}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let wrong = call(
        &demo,
        Method::POST,
        "/api/login/",
        None,
        Some("username=stephen&password=x"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json(), json!(""));
    assert_served(&demo, "login-api", "users", 2.0, "legacy").await;

    let expected = seed_thoughts_of("stephen");
    let on_legacy = call(&demo, Method::GET, "/api/me/thoughts/", Some(&header), None).await;
    assert_eq!(on_legacy.status, StatusCode::OK, "{}", on_legacy.body);
    assert_eq!(on_legacy.json(), expected);
    assert_served(&demo, MY_THOUGHTS, "legacy", 1.0, "thoughts").await;

    set_stages(&demo, &[(MY_THOUGHTS, "new")]).await;
    let on_new = call(&demo, Method::GET, "/api/me/thoughts/", Some(&header), None).await;
    assert_eq!(on_new.status, StatusCode::OK, "{}", on_new.body);
    assert_eq!(on_new.json(), expected);
    let labels = [("route", MY_THOUGHTS), ("upstream", "thoughts")];
    let served = wait_requests_total(demo.admin, &labels, |n| n >= 1.0).await;
    assert_eq!(served, 1.0);
    demo.shutdown().await;
}

/// `application/x-www-form-urlencoded` value encoding.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

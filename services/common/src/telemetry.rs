//! Logs and metrics, the same for every MyThoughts service.
//!
//! - [`init_tracing`]: human-readable logs on stderr (stdout is kept for the "listening" line), filtered by
//!   `RUST_LOG`.
//! - [`Metrics`]: a Prometheus registry owned by the service (not the process-global default one) with
//!   `requests_total{endpoint,method,status}` and `request_duration_seconds{endpoint}`.
//! - [`instrument`]: wraps a router so that every request runs inside a `request` span carrying the incoming
//!   `x-request-id`, and is counted and timed.
//!
//! - [`echo_request_id`]: answers carry an `x-request-id`, the client's or a fresh UUID, as the book's
//!   thoughts backend does (its users backend does not: the users service does without).
//!
//! Invariant: label values are bounded. `endpoint` is the matched route *template* (`/api/thoughts/{id}/`),
//! never the raw path; requests that match no route share [`UNMATCHED_ENDPOINT`]; unusual methods share
//! `OTHER`; `status` is a three-digit code.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use tracing::Instrument;

/// Building the metrics registry failed (a duplicate or invalid metric).
pub use prometheus::Error as MetricsError;

/// The `endpoint` label of requests that matched no route.
pub const UNMATCHED_ENDPOINT: &str = "unmatched";

/// The request header whose value is attached to the request's span.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Content type of [`Metrics::render`]'s output.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Longest client request id [`echo_request_id`] echoes (the proxy's limit too); a longer or empty one is
/// replaced by a fresh id.
const MAX_ECHOED_REQUEST_ID_LEN: usize = 200;

/// Longest request id kept in logs; longer ones are cut (a client must not be able to bloat every log line).
const MAX_REQUEST_ID_LEN: usize = 128;

/// Installs a stderr `fmt` subscriber (colours only on a terminal) filtered by `RUST_LOG`, or by `default_filter` when it is unset or
/// invalid. Does nothing if a subscriber is already installed (tests may call it repeatedly).
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    install_subscriber(filter, std::io::stderr, ansi);
}

/// [`init_tracing`] with its filter and writer chosen by the caller (a test cannot set `RUST_LOG` safely,
/// nor read stderr): the first call installs the process-wide subscriber, later calls leave it in place.
fn install_subscriber<W>(filter: tracing_subscriber::EnvFilter, writer: W, ansi: bool)
where
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .try_init();
}

/// The service's request metrics and the registry they live in. Cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests_total: IntCounterVec,
    request_duration_seconds: HistogramVec,
}

impl Metrics {
    /// A fresh registry with both request metrics registered.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let requests_total = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "HTTP requests answered, by route template, method and status",
            ),
            &["endpoint", "method", "status"],
        )?;
        let request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time to answer an HTTP request, by route template",
            ),
            &["endpoint"],
        )?;
        registry.register(Box::new(requests_total.clone()))?;
        registry.register(Box::new(request_duration_seconds.clone()))?;
        Ok(Self {
            registry,
            requests_total,
            request_duration_seconds,
        })
    }

    /// The registry, for services that want to add metrics of their own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records one answered request.
    pub fn observe(&self, endpoint: &str, method: &Method, status: u16, seconds: f64) {
        self.requests_total
            .with_label_values(&[endpoint, method_label(method), &status.to_string()])
            .inc();
        self.request_duration_seconds
            .with_label_values(&[endpoint])
            .observe(seconds);
    }

    /// The registry in Prometheus text exposition format ([`METRICS_CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%err, "cannot encode metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// The matched route template, carried from the routing layer to [`track_requests`] in the response's
/// extensions.
#[derive(Debug, Clone)]
pub struct Endpoint(pub Arc<str>);

/// Marks `response` as answered by the route `matched`. [`instrument`] does this for every route; a
/// `method_not_allowed_fallback` handler calls it itself (route layers do not wrap that fallback).
pub fn tag_endpoint(response: &mut Response, matched: &MatchedPath) {
    response.extensions_mut().insert(Endpoint(Arc::from(matched.as_str())));
}

/// Adds metrics and request spans to `router`. Call it after every route is added (route layers only wrap
/// routes that exist) and before `with_state`.
pub fn instrument<S>(router: Router<S>, metrics: Metrics) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    track(tag_endpoints(router), metrics)
}

/// The first half of [`instrument`]: marks each route's answers with its template. For an app wrapped
/// between the two halves (see [`crate::api::with_flask_allow`]).
pub fn tag_endpoints<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(middleware::from_fn(tag_matched_path))
}

/// The second half of [`instrument`]: spans, logs and metrics around everything `router` does.
pub fn track<S>(router: Router<S>, metrics: Metrics) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(middleware::from_fn_with_state(metrics, track_requests))
}

/// Route layer: copies the matched template into the response for [`track_requests`] to read.
async fn tag_matched_path(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        tag_endpoint(&mut response, &matched);
    }
    response
}

/// Outer layer: runs the request inside a `request` span with its method, path and `x-request-id`, then
/// logs and records it.
pub async fn track_requests(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(|id| truncate(id, MAX_REQUEST_ID_LEN).to_owned())
        .unwrap_or_default();
    // Health checks (the proxy asks every few seconds) are logged at debug level, so that
    // the log shows the requests people make.
    let health_check = is_health_check(request.uri().path());
    let span = tracing::info_span!(
        "request",
        method = %method,
        path = %request.uri().path(),
        request_id = %request_id,
        endpoint = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    let endpoint = response
        .extensions()
        .get::<Endpoint>()
        .map_or(UNMATCHED_ENDPOINT, |e| &e.0);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics.observe(endpoint, &method, status, elapsed.as_secs_f64());
    span.record("endpoint", tracing::field::display(endpoint));
    let elapsed_ms = elapsed.as_secs_f64() * 1e3;
    span.in_scope(|| {
        if health_check {
            tracing::debug!(status, elapsed_ms, "answered");
        } else {
            tracing::info!(status, elapsed_ms, "answered");
        }
    });
    response
}

/// Outermost layer of the thoughts API's apps: gives the request an `x-request-id` when it has no usable
/// one (a fresh UUID v4), so the log line carries it too, and returns it on the answer, as the book's
/// thoughts backend does (`X-REQUEST-ID` echoed or generated).
pub async fn echo_request_id(mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(REQUEST_ID_HEADER) {
        Some(id) if !id.is_empty() && id.len() <= MAX_ECHOED_REQUEST_ID_LEN => id.clone(),
        _ => {
            let mut buffer = uuid::Uuid::encode_buffer();
            let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
            match HeaderValue::from_str(text) {
                Ok(id) => id,
                Err(_) => return next.run(request).await,
            }
        }
    };
    request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, id);
    response
}

/// Whether a request is the health check the proxy and the kubelet make every few seconds.
fn is_health_check(path: &str) -> bool {
    path == "/healthz"
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;
    use tracing_subscriber::EnvFilter;

    use super::*;

    fn router(metrics: Metrics) -> Router {
        instrument(
            Router::new()
                .route("/things/{id}/", get(|| async { "thing" }))
                .route("/", get(|| async { "home" })),
            metrics,
        )
    }

    async fn call(app: Router, method: &str, uri: &str) -> u16 {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("x-request-id", "abc-123")
            .body(Body::empty());
        app.oneshot(request.unwrap()).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn the_request_id_is_echoed_or_made() {
        let app = Router::new()
            .route("/api/thoughts/", get(|| async { "[]" }))
            .layer(middleware::from_fn(echo_request_id));
        let send = |id: Option<String>| {
            let app = app.clone();
            async move {
                let mut request = axum::http::Request::get("/api/thoughts/");
                if let Some(id) = id {
                    request = request.header("x-request-id", id);
                }
                let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
                response.headers()["x-request-id"].to_str().unwrap().to_owned()
            }
        };
        assert_eq!(send(Some("client-chosen-7".into())).await, "client-chosen-7");
        for replaced in [None, Some(String::new()), Some("x".repeat(201))] {
            let made = send(replaced.clone()).await;
            assert!(uuid::Uuid::parse_str(&made).is_ok(), "{replaced:?} -> {made}");
        }
        assert_ne!(send(None).await, send(None).await, "a fresh id each time");
    }

    #[tokio::test]
    async fn records_route_templates_not_raw_paths() {
        let metrics = Metrics::new().unwrap();
        let app = router(metrics.clone());
        assert_eq!(call(app.clone(), "GET", "/things/1/").await, 200);
        assert_eq!(call(app.clone(), "GET", "/things/2/").await, 200);
        assert_eq!(call(app.clone(), "GET", "/nowhere/42").await, 404);
        assert_eq!(call(app.clone(), "POST", "/things/3/").await, 405);
        assert_eq!(call(app, "BREW", "/").await, 405);

        let text = metrics.render();
        assert!(
            text.contains(r#"requests_total{endpoint="/things/{id}/",method="GET",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"requests_total{endpoint="unmatched",method="GET",status="404"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"method="OTHER""#), "{text}");
        assert!(
            text.contains(r#"requests_total{endpoint="/things/{id}/",method="POST",status="405"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"request_duration_seconds_count{endpoint="/things/{id}/"} 3"#),
            "{text}"
        );
        assert!(!text.contains("/things/1/"), "raw paths must not become labels: {text}");
        assert!(!text.contains("/nowhere"), "raw paths must not become labels: {text}");
    }

    /// A `MakeWriter` that appends everything to a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn request_id_and_endpoint_are_on_the_span() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        assert_eq!(call(router(Metrics::new().unwrap()), "GET", "/things/7/").await, 200);
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("request_id=abc-123"), "{logs}");
        assert!(logs.contains("endpoint=/things/{id}/"), "{logs}");
        assert!(logs.contains("status=200"), "{logs}");
    }

    /// The proxy's health checks (every few seconds per upstream) are logged at debug level:
    /// at info they were most of the demo's log (newcomer pass).
    #[test]
    fn health_checks_are_logged_at_debug_level() {
        assert!(is_health_check("/healthz"));
        assert!(!is_health_check("/things/7/"));
        assert!(!is_health_check("/healthz/x"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("ééé", 3), "é");
    }

    /// The first call installs the global subscriber with its filter and writer; later calls, even with
    /// another filter, neither panic nor replace it. This is the only test in this binary that installs a
    /// global subscriber (the others scope theirs with `set_default`), so none is installed before it.
    #[test]
    fn init_tracing_is_idempotent() {
        fn logs(captured: &Captured) -> String {
            String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
        }
        assert!(
            !tracing::dispatcher::has_been_set(),
            "another test installed a global subscriber first"
        );
        let (first, second) = (Captured::default(), Captured::default());
        let writer = first.clone();
        install_subscriber(EnvFilter::new("warn"), move || writer.clone(), false);
        let writer = second.clone();
        install_subscriber(EnvFilter::new("trace"), move || writer.clone(), false);
        init_tracing("trace");

        // This thread has no scoped subscriber: events go to the global one.
        tracing::warn!("kept-warning");
        tracing::info!("filtered-info");
        let first_logs = logs(&first);
        assert!(
            first_logs.contains("kept-warning"),
            "the first call installed nothing: {first_logs:?}"
        );
        assert!(
            !first_logs.contains("filtered-info"),
            "the first filter is not in force: {first_logs}"
        );
        assert_eq!(logs(&second), "", "a later call replaced the first subscriber");
    }
}

//! The HTTP client to the two backends the pages are built from: the Thoughts service (lists, search, new
//! thoughts) and the Users service (login). Their APIs are the book's, which the monolith also serves.
//!
//! Invariants:
//! - one pooled `hyper_util` client for both backends: connections are reused, never one handshake per page;
//! - every call is bounded: a connect timeout inside the connector and an overall deadline around sending
//!   the request and reading the whole (size-capped) answer;
//! - the incoming `x-request-id` travels with every call, so the backends' logs line up with ours;
//! - an answer the page can act on (a list, a token, "these credentials are refused") is `Ok`; everything
//!   else is a [`BackendError`] naming the backend, which [`crate::error`] turns into a 502/503/504 page.
//! - metric labels are bounded: the backend's name and an outcome class, never a URL.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{Method, Request, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use mythoughts_common::Thought;
use mythoughts_common::jwt::parse_bearer;
use mythoughts_common::telemetry::{MetricsError, REQUEST_ID_HEADER};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Largest backend answer we read; a bigger one is a bad answer (a page of thoughts is far smaller).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Idle connections kept per backend.
const POOL_MAX_IDLE_PER_HOST: usize = 32;

/// Which backend a call goes to. Its [`fmt::Display`] is the name shown on error pages and used as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The Thoughts service: `/api/thoughts/`, `/api/me/thoughts/`.
    Thoughts,
    /// The Users service: `/api/login/`.
    Users,
}

impl Service {
    /// The label and display name: `thoughts` or `users`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Thoughts => "thoughts",
            Self::Users => "users",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A base URL that is not `http://host[:port][/prefix]`.
#[derive(Debug, thiserror::Error)]
pub enum BaseUrlError {
    /// Not a URI at all.
    #[error("invalid URL {input:?}: {reason}")]
    Invalid {
        /// The rejected text.
        input: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Only plain `http://` is supported (the services sit on a private network behind the proxy).
    #[error("unsupported URL {input:?}: expected http://host[:port][/prefix] (no https, query or fragment)")]
    Unsupported {
        /// The rejected text.
        input: String,
    },
}

/// Where a backend lives: `http://host:port` plus an optional path prefix, validated once at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    authority: Authority,
    /// The path prefix without its trailing slash; empty for none.
    prefix: String,
}

impl BaseUrl {
    /// The URI of `path_and_query` (which starts with `/`) on this backend.
    pub fn join(&self, path_and_query: &str) -> Result<Uri, axum::http::Error> {
        let path_and_query = PathAndQuery::try_from(format!("{}{path_and_query}", self.prefix))?;
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.prefix)
    }
}

impl FromStr for BaseUrl {
    type Err = BaseUrlError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let uri: Uri = input
            .parse()
            .map_err(|err: axum::http::uri::InvalidUri| BaseUrlError::Invalid {
                input: input.to_owned(),
                reason: err.to_string(),
            })?;
        let unsupported = || BaseUrlError::Unsupported {
            input: input.to_owned(),
        };
        if uri.scheme() != Some(&Scheme::HTTP) || uri.query().is_some() || input.contains('#') {
            return Err(unsupported());
        }
        let authority = uri.authority().ok_or_else(unsupported)?.clone();
        if authority.as_str().contains('@') {
            return Err(unsupported());
        }
        Ok(Self {
            authority,
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

/// How to reach the backends.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// The Thoughts service.
    pub thoughts: BaseUrl,
    /// The Users service.
    pub users: BaseUrl,
    /// Deadline for a whole call: connect, send, and read the full answer.
    pub timeout: Duration,
    /// Deadline for establishing a TCP connection (a share of `timeout`).
    pub connect_timeout: Duration,
}

/// Why a page could not get what it needed from a backend. Every variant names the backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No connection could be made (refused, unreachable, name not resolved).
    #[error("{service} backend unreachable: {source}")]
    Unreachable {
        /// The backend.
        service: Service,
        /// The client's error, with its chain.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// No connection within the connect timeout.
    #[error("{service} backend: no connection within {after:?}")]
    ConnectTimeout {
        /// The backend.
        service: Service,
        /// The connect timeout.
        after: Duration,
    },
    /// Connected, but no complete answer within the call's deadline.
    #[error("{service} backend: no answer within {after:?}")]
    Timeout {
        /// The backend.
        service: Service,
        /// The deadline.
        after: Duration,
    },
    /// The connection broke while sending or reading.
    #[error("{service} backend: connection failed mid-call: {reason}")]
    Broken {
        /// The backend.
        service: Service,
        /// What broke.
        reason: String,
    },
    /// The backend answered with a status this call does not expect (5xx, or an unexpected 4xx).
    #[error("{service} backend answered {status}")]
    Status {
        /// The backend.
        service: Service,
        /// Its status.
        status: StatusCode,
    },
    /// The backend answered, but not with what its API promises.
    #[error("{service} backend sent an unusable answer: {reason}")]
    BadAnswer {
        /// The backend.
        service: Service,
        /// What is wrong with it.
        reason: String,
    },
    /// We could not even build the request (a URL that the configuration let through but `http` refuses).
    #[error("cannot build a request to the {service} backend: {reason}")]
    Request {
        /// The backend.
        service: Service,
        /// The builder's complaint.
        reason: String,
    },
}

impl BackendError {
    /// The backend at fault.
    pub fn service(&self) -> Service {
        match self {
            Self::Unreachable { service, .. }
            | Self::ConnectTimeout { service, .. }
            | Self::Timeout { service, .. }
            | Self::Broken { service, .. }
            | Self::Status { service, .. }
            | Self::BadAnswer { service, .. }
            | Self::Request { service, .. } => *service,
        }
    }

    /// The bounded `outcome` label of this failure.
    fn outcome(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::ConnectTimeout { .. } => "connect_timeout",
            Self::Timeout { .. } => "timeout",
            Self::Broken { .. } => "broken",
            Self::Status { .. } | Self::BadAnswer { .. } => "bad_answer",
            Self::Request { .. } => "request_error",
        }
    }
}

/// `{"Authorized": "Bearer <jwt>"}`, what `POST /api/login/` answers.
#[derive(Debug, Deserialize)]
struct LoginAnswer {
    #[serde(rename = "Authorized")]
    authorized: String,
}

/// One call's answer: status and full body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Bytes,
}

/// Counters and timings of backend calls, registered in the service's registry.
#[derive(Debug, Clone)]
struct BackendMetrics {
    /// `backend_requests_total{backend, outcome}`: outcome is a status class (`2xx`…) or a failure kind.
    requests: IntCounterVec,
    /// `backend_request_duration_seconds{backend}`.
    duration: HistogramVec,
}

impl BackendMetrics {
    fn register(registry: &Registry) -> Result<Self, MetricsError> {
        let requests = IntCounterVec::new(
            Opts::new(
                "backend_requests_total",
                "Calls to the backends, by backend and outcome",
            ),
            &["backend", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("backend_request_duration_seconds", "Time of a backend call"),
            &["backend"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    fn observe(&self, service: Service, outcome: &str, started: Instant) {
        self.requests.with_label_values(&[service.name(), outcome]).inc();
        self.duration
            .with_label_values(&[service.name()])
            .observe(started.elapsed().as_secs_f64());
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The two backends behind one pooled client. Cheap to clone.
#[derive(Clone)]
pub struct Backends {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<HttpConnector, Full<Bytes>>,
    config: BackendConfig,
    metrics: BackendMetrics,
}

impl fmt::Debug for Backends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backends")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Backends {
    /// Builds the pooled client and registers the backend metrics in `registry`.
    pub fn new(config: BackendConfig, registry: &Registry) -> Result<Self, MetricsError> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                metrics: BackendMetrics::register(registry)?,
                config,
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &BackendConfig {
        &self.inner.config
    }

    /// `POST {users}/api/login/`: the bare token for good credentials, `None` for refused ones.
    pub async fn login(
        &self,
        request_id: Option<&HeaderValue>,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, BackendError> {
        let service = Service::Users;
        let body = serde_json::json!({ "username": username, "password": password });
        let answer = self
            .call(service, Method::POST, "/api/login/", None, Some(body), request_id)
            .await?;
        match answer.status {
            StatusCode::OK => {
                let login: LoginAnswer = decode(service, &answer.body)?;
                let token = parse_bearer(&login.authorized).ok_or_else(|| BackendError::BadAnswer {
                    service,
                    reason: "`Authorized` is not `Bearer <token>`".to_owned(),
                })?;
                Ok(Some(token.to_owned()))
            }
            // 401 is the book's "wrong user or password"; a 400 means a field it would not take.
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST => Ok(None),
            status => Err(BackendError::Status { service, status }),
        }
    }

    /// `GET {thoughts}/api/me/thoughts/` as the holder of `token` (in the API's order, by id); `None` if the
    /// backend refuses the token.
    pub async fn my_thoughts(
        &self,
        request_id: Option<&HeaderValue>,
        token: &str,
    ) -> Result<Option<Vec<Thought>>, BackendError> {
        let service = Service::Thoughts;
        let answer = self
            .call(service, Method::GET, "/api/me/thoughts/", Some(token), None, request_id)
            .await?;
        match answer.status {
            StatusCode::OK => decode(service, &answer.body).map(Some),
            StatusCode::UNAUTHORIZED => Ok(None),
            status => Err(BackendError::Status { service, status }),
        }
    }

    /// `POST {thoughts}/api/me/thoughts/` with `text`, as the holder of `token`; `None` if the backend
    /// refuses the token.
    pub async fn create_thought(
        &self,
        request_id: Option<&HeaderValue>,
        token: &str,
        text: &str,
    ) -> Result<Option<Thought>, BackendError> {
        let service = Service::Thoughts;
        let body = serde_json::json!({ "text": text });
        let answer = self
            .call(
                service,
                Method::POST,
                "/api/me/thoughts/",
                Some(token),
                Some(body),
                request_id,
            )
            .await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => decode(service, &answer.body).map(Some),
            StatusCode::UNAUTHORIZED => Ok(None),
            status => Err(BackendError::Status { service, status }),
        }
    }

    /// `GET {thoughts}/api/thoughts/?search=term`: everyone's matching thoughts (in the API's order, by id).
    pub async fn search(&self, request_id: Option<&HeaderValue>, term: &str) -> Result<Vec<Thought>, BackendError> {
        let service = Service::Thoughts;
        let query = serde_urlencoded::to_string([("search", term)]).map_err(|err| BackendError::Request {
            service,
            reason: err.to_string(),
        })?;
        let path = format!("/api/thoughts/?{query}");
        let answer = self.call(service, Method::GET, &path, None, None, request_id).await?;
        match answer.status {
            StatusCode::OK => decode(service, &answer.body),
            status => Err(BackendError::Status { service, status }),
        }
    }

    /// One bounded call; records its outcome. 5xx answers are errors here, other statuses are the caller's.
    async fn call(
        &self,
        service: Service,
        method: Method,
        path_and_query: &str,
        token: Option<&str>,
        json: Option<serde_json::Value>,
        request_id: Option<&HeaderValue>,
    ) -> Result<Answer, BackendError> {
        let started = Instant::now();
        let result = self
            .exchange(service, method, path_and_query, token, json, request_id)
            .await
            .and_then(|answer| {
                if answer.status.is_server_error() {
                    Err(BackendError::Status {
                        service,
                        status: answer.status,
                    })
                } else {
                    Ok(answer)
                }
            });
        let outcome = match &result {
            Ok(answer) => status_class(answer.status),
            Err(BackendError::Status { status, .. }) => status_class(*status),
            Err(err) => err.outcome(),
        };
        self.inner.metrics.observe(service, outcome, started);
        match &result {
            Ok(answer) => tracing::debug!(%service, status = answer.status.as_u16(), "backend answered"),
            Err(err) => tracing::debug!(%service, error = %err, "backend call failed"),
        }
        result
    }

    async fn exchange(
        &self,
        service: Service,
        method: Method,
        path_and_query: &str,
        token: Option<&str>,
        json: Option<serde_json::Value>,
        request_id: Option<&HeaderValue>,
    ) -> Result<Answer, BackendError> {
        let config = &self.inner.config;
        let base = match service {
            Service::Thoughts => &config.thoughts,
            Service::Users => &config.users,
        };
        let request_error = |reason: String| BackendError::Request { service, reason };
        let uri = base
            .join(path_and_query)
            .map_err(|err| request_error(err.to_string()))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(ACCEPT, "application/json");
        if let Some(token) = token {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(id) = request_id {
            builder = builder.header(REQUEST_ID_HEADER, id);
        }
        let body = match json {
            Some(value) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(value.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(|err| request_error(err.to_string()))?;

        let exchange = async {
            let response = self
                .inner
                .client
                .request(request)
                .await
                .map_err(|err| classify(service, config.connect_timeout, err))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|err| {
                    if err.is::<http_body_util::LengthLimitError>() {
                        BackendError::BadAnswer {
                            service,
                            reason: format!("answer larger than {MAX_ANSWER_BYTES} bytes"),
                        }
                    } else {
                        BackendError::Broken {
                            service,
                            reason: err.to_string(),
                        }
                    }
                })?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(config.timeout, exchange)
            .await
            .unwrap_or(Err(BackendError::Timeout {
                service,
                after: config.timeout,
            }))
    }
}

/// Sorts a client error into "could not connect", "connect timed out", or "broke mid-call".
fn classify(service: Service, connect_timeout: Duration, err: hyper_util::client::legacy::Error) -> BackendError {
    if !err.is_connect() {
        return BackendError::Broken {
            service,
            reason: error_chain(&err),
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return BackendError::ConnectTimeout {
                service,
                after: connect_timeout,
            };
        }
        source = cause.source();
    }
    BackendError::Unreachable { service, source: err }
}

/// `outer: inner: innermost`, for logs.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn decode<T: DeserializeOwned>(service: Service, body: &[u8]) -> Result<T, BackendError> {
    serde_json::from_slice(body).map_err(|err| BackendError::BadAnswer {
        service,
        reason: format!("not the expected JSON: {err}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_plain_http_with_an_optional_prefix() {
        let url: BaseUrl = "http://127.0.0.1:8002".parse().unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:8002");
        assert_eq!(
            url.join("/api/thoughts/?search=a%20b").unwrap().to_string(),
            "http://127.0.0.1:8002/api/thoughts/?search=a%20b"
        );

        let url: BaseUrl = "http://thoughts.internal/v1/".parse().unwrap();
        assert_eq!(url.to_string(), "http://thoughts.internal/v1");
        assert_eq!(
            url.join("/api/me/thoughts/").unwrap().to_string(),
            "http://thoughts.internal/v1/api/me/thoughts/"
        );

        for bad in [
            "https://127.0.0.1:8002",
            "127.0.0.1:8002",
            "/api",
            "http://127.0.0.1:8002/?x=1",
            "http://127.0.0.1:8002/#top",
            "http://user:pw@127.0.0.1:8002",
            "ftp://host",
        ] {
            assert!(bad.parse::<BaseUrl>().is_err(), "{bad}");
        }
        assert!(matches!(
            "http://exa mple".parse::<BaseUrl>(),
            Err(BaseUrlError::Invalid { .. })
        ));
    }

    #[test]
    fn errors_name_their_backend() {
        let err = BackendError::Status {
            service: Service::Users,
            status: StatusCode::BAD_GATEWAY,
        };
        assert_eq!(err.service(), Service::Users);
        assert_eq!(err.to_string(), "users backend answered 502 Bad Gateway");
        let err = BackendError::Timeout {
            service: Service::Thoughts,
            after: Duration::from_millis(300),
        };
        assert!(err.to_string().starts_with("thoughts backend"), "{err}");
    }

    #[test]
    fn outcome_labels_are_bounded() {
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::UNAUTHORIZED), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
        let err = BackendError::BadAnswer {
            service: Service::Thoughts,
            reason: "x".into(),
        };
        assert_eq!(err.outcome(), "bad_answer");
    }

    #[test]
    fn answers_that_are_not_the_apis_json_are_bad_answers() {
        let err = decode::<Vec<Thought>>(Service::Thoughts, b"<html>").unwrap_err();
        assert!(matches!(
            err,
            BackendError::BadAnswer {
                service: Service::Thoughts,
                ..
            }
        ));
        let thoughts: Vec<Thought> = decode(
            Service::Thoughts,
            br#"[{"id":1,"username":"bruce","text":"hi","timestamp":"2019-05-07T13:47:34"}]"#,
        )
        .unwrap();
        assert_eq!(thoughts[0].username, "bruce");
    }
}

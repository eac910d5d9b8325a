//! Failures of a proxied exchange and the one place that turns them into responses.
//!
//! Client mistakes get a 4xx with a message that helps the client. Upstream failures get
//! 502 (refused, reset, other) or 504 (timed out) with a short text body naming the route
//! and upstream, so whoever reads it knows which side of the migration failed; the detail
//! goes to the log with the request id.
//!
//! What the body says is one pure decision, [`error_answer`], over the error and the
//! table's `[proxy]` settings: the `[proxy.error_pages]` page for the status if there is
//! one (its `{request_id}` replaced), else with `error_bodies = "minimal"` the status line's
//! text and the request id only (no route or upstream name: those stay in the log line and
//! the metrics), else the detailed text above. [`ProxyError::into_response`] only carries it
//! out; a request that ends without an error never reaches this file.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::body::{Finish, ResponseBody};
use crate::config::{ErrorBodies, PageContent, ProxySettings};
use crate::headers::X_REQUEST_ID;
use crate::migration::fallback::NewTry;
use crate::path::PathError;
use crate::server::conn::guard::Violation;
use crate::upstream::body::BodyFault;
use crate::upstream::pool::SendError;

/// Everything that ends a request with an answer made here rather than an upstream's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// Refused before routing: 405 (CONNECT) or 400.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The client's body: 413 over the route's `max_body`, 400 unreadable.
    #[error("bad request body: {0:?}")]
    Body(BodyFault),
    /// The upstream failed or was not tried: 502, 503 or 504.
    #[error("upstream `{upstream}` {}", kind.describe())]
    Upstream {
        /// How it failed.
        kind: UpstreamErrorKind,
        /// The upstream's name.
        upstream: Arc<str>,
    },
}

impl ProxyError {
    /// A failure of upstream `name`.
    pub fn upstream(kind: UpstreamErrorKind, name: &Arc<str>) -> Self {
        ProxyError::Upstream {
            kind,
            upstream: name.clone(),
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Refused(refusal) => refusal.status(),
            ProxyError::Body(BodyFault::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Body(BodyFault::Unreadable) => StatusCode::BAD_REQUEST,
            ProxyError::Body(BodyFault::TimedOut) => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Upstream { kind, .. } => kind.status(),
        }
    }

    /// The answer to the client, as [`error_answer`] decides it from the error and the
    /// table's `[proxy]` settings, with the request id; `finish` records it when sent.
    pub fn into_response(self, settings: &ProxySettings, mut finish: Box<Finish>) -> Response<ResponseBody> {
        let status = self.status();
        if let ProxyError::Body(BodyFault::TimedOut) = self {
            client_body_timed_out(&finish);
        }
        let ErrorAnswer { content_type, body } = error_answer(&self, settings, &finish.route, &finish.request_id);
        finish.status = status;
        let request_id = finish.request_id.clone();
        let mut response = Response::new(ResponseBody::full(body).with_finish(finish));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(&X_REQUEST_ID, request_id);
        match self {
            ProxyError::Refused(Refusal::Connect) => {
                headers.insert(
                    header::ALLOW,
                    HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE"),
                );
            }
            // The framing of what follows on this connection cannot be trusted, or the rest
            // of the body is not read: this connection cannot carry another request.
            ProxyError::Refused(Refusal::Malformed(_)) | ProxyError::Body(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// The body of an answer made here and the `Content-Type` it is sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    /// `text/plain; charset=utf-8`, or the error page's type.
    pub content_type: HeaderValue,
    /// The body.
    pub body: Bytes,
}

/// What the answer to `error` says, decided from `settings` alone (pure: no IO, no
/// clock): the `[proxy.error_pages]` page for its status, when there is one, with
/// `request_id` in place of each `{request_id}`; else, with `error_bodies = "minimal"`,
/// the status line's text and the request id; else (`detailed`, the default) what failed,
/// naming `route` and the upstream. Names never appear in a minimal body or a page: they
/// are in the log line and the metrics.
pub fn error_answer(
    error: &ProxyError,
    settings: &ProxySettings,
    route: &str,
    request_id: &HeaderValue,
) -> ErrorAnswer {
    let status = error.status();
    if let Some(page) = settings.error_pages.iter().find(|page| page.status == status)
        && let Some(content) = &page.content
    {
        return ErrorAnswer {
            content_type: HeaderValue::from_static(page.content_type),
            body: page_with_id(content, page.content_type, request_id),
        };
    }
    let text = match settings.error_bodies {
        ErrorBodies::Minimal => format!(
            "{} {}\nrequest id: {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            String::from_utf8_lossy(request_id.as_bytes())
        ),
        ErrorBodies::Detailed => detailed_text(error, status, route),
    };
    ErrorAnswer {
        content_type: HeaderValue::from_static("text/plain; charset=utf-8"),
        body: Bytes::from(text),
    }
}

/// `error_bodies = "detailed"`: what failed, naming the route and the upstream.
fn detailed_text(error: &ProxyError, status: StatusCode, route: &str) -> String {
    match error {
        ProxyError::Refused(refusal) => format!("{refusal}\n"),
        ProxyError::Body(BodyFault::TooLarge { limit }) => {
            format!("413 Payload Too Large: route `{route}` accepts request bodies of at most {limit} bytes\n")
        }
        ProxyError::Body(BodyFault::Unreadable) => "400 Bad Request: could not read the request body\n".to_owned(),
        ProxyError::Body(BodyFault::TimedOut) => {
            "408 Request Timeout: the request body stopped arriving (client_body_timeout)\n".to_owned()
        }
        ProxyError::Upstream { kind, upstream } => format!(
            "{} {}: upstream `{upstream}` (route `{route}`) {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            kind.describe()
        ),
    }
}

/// An error page with the request id between its pieces, written so that it cannot change
/// the page's markup: a client may choose its own `x-request-id`, so any byte of it that
/// is not visible ASCII becomes `?`, and in an HTML page `&<>"'` (in a JSON one `"` and
/// `\`) are escaped.
fn page_with_id(content: &PageContent, content_type: &str, request_id: &HeaderValue) -> Bytes {
    if let [whole] = &content.pieces[..] {
        return whole.clone();
    }
    let mut id = String::with_capacity(request_id.len());
    for byte in request_id.as_bytes() {
        let c = if byte.is_ascii_graphic() {
            char::from(*byte)
        } else {
            '?'
        };
        match (
            content_type.starts_with("text/html"),
            content_type == "application/json",
            c,
        ) {
            (true, _, '&') => id.push_str("&amp;"),
            (true, _, '<') => id.push_str("&lt;"),
            (true, _, '>') => id.push_str("&gt;"),
            (true, _, '"') => id.push_str("&quot;"),
            (true, _, '\'') => id.push_str("&#39;"),
            (_, true, '"' | '\\') => {
                id.push('\\');
                id.push(c);
            }
            _ => id.push(c),
        }
    }
    let mut body = Vec::with_capacity(content.pieces.iter().map(Bytes::len).sum::<usize>() + id.len() * 2);
    for (i, piece) in content.pieces.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(id.as_bytes());
        }
        body.extend_from_slice(piece);
    }
    Bytes::from(body)
}

/// A client whose request body stalled: the proxy's answer is 408, the fault the client's
/// (no upstream error, no outlier failure); counted and logged here, for every path that
/// reads a body (streamed, or buffered for a fallback or a mirror).
fn client_body_timed_out(finish: &Finish) {
    finish
        .metrics
        .client_errors
        .with_label_values(&[crate::metrics::CLIENT_BODY_TIMEOUT])
        .inc();
    tracing::warn!(
        request_id = finish.request_id.to_str().unwrap_or("-"),
        client = %finish.client,
        route = &*finish.route,
        upstream = &*finish.upstream,
        "the client's request body stalled; answered 408"
    );
}

/// Why an upstream exchange failed, as counted in `strangler_upstream_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// The connection could not be established (refused, unreachable, DNS).
    Connect,
    /// The connect or response-head deadline passed.
    Timeout,
    /// The TLS handshake with an `https://` upstream failed (certificate not trusted,
    /// wrong name, client certificate refused …).
    Tls,
    /// The connection was reset or closed before a complete response head.
    Reset,
    /// An answer the proxy refuses to pass on: both `Content-Length` and
    /// `Transfer-Encoding` (see [`crate::headers::has_ambiguous_framing`]).
    Protocol,
    /// Anything else (malformed response, …).
    Other,
    /// The response body stalled: nothing arrived for the upstream's `read_timeout` after
    /// the head was passed on (the client's connection is closed, or its stream reset).
    ReadTimeout,
    /// Not tried: ejected by outlier detection or failing its health check (503). Not an
    /// upstream error: counted in `strangler_rejected_requests_total{reason="upstream_unavailable"}`.
    Unavailable(crate::upstream::health::Unavailable),
    /// Not tried: every connection its `max_connections` allows stayed busy (503). Not an
    /// upstream error either: `strangler_rejected_requests_total{reason="upstream_saturated"}`.
    Saturated,
}

impl UpstreamErrorKind {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamErrorKind::Connect => "connect",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Tls => "tls",
            UpstreamErrorKind::Reset => "reset",
            UpstreamErrorKind::Protocol => "protocol",
            UpstreamErrorKind::Other => "other",
            UpstreamErrorKind::ReadTimeout => crate::metrics::UPSTREAM_READ_TIMEOUT,
            UpstreamErrorKind::Unavailable(_) => "unavailable",
            UpstreamErrorKind::Saturated => "saturated",
        }
    }

    /// The status the client gets.
    pub fn status(self) -> StatusCode {
        match self {
            UpstreamErrorKind::Timeout | UpstreamErrorKind::ReadTimeout => StatusCode::GATEWAY_TIMEOUT,
            UpstreamErrorKind::Unavailable(_) | UpstreamErrorKind::Saturated => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// How the new upstream's try went, for a fallback's decision.
    pub fn as_new_try(self) -> NewTry {
        match self {
            UpstreamErrorKind::Unavailable(_) => NewTry::Unavailable,
            UpstreamErrorKind::Saturated => NewTry::Saturated,
            UpstreamErrorKind::Connect | UpstreamErrorKind::Tls => NewTry::NotSent,
            UpstreamErrorKind::Timeout | UpstreamErrorKind::ReadTimeout => NewTry::TimedOut,
            UpstreamErrorKind::Reset => NewTry::Reset,
            UpstreamErrorKind::Protocol | UpstreamErrorKind::Other => NewTry::Failed,
        }
    }

    /// A few words for the response body.
    pub fn describe(self) -> &'static str {
        match self {
            UpstreamErrorKind::Connect => "refused the connection or could not be reached",
            UpstreamErrorKind::Timeout => "did not answer in time",
            UpstreamErrorKind::Tls => "failed the TLS handshake (certificate not trusted or not for its host?)",
            UpstreamErrorKind::Reset => "closed the connection before answering",
            UpstreamErrorKind::Protocol => {
                "sent an answer that is not passed on (both Content-Length and Transfer-Encoding, or a switch to another protocol than the client asked for)"
            }
            UpstreamErrorKind::Other => "sent no valid answer",
            UpstreamErrorKind::ReadTimeout => "stopped sending its answer's body (read_timeout)",
            UpstreamErrorKind::Unavailable(why) => why.describe(),
            UpstreamErrorKind::Saturated => "has every connection max_connections allows busy; not tried",
        }
    }
}

/// Classifies a failed exchange.
pub fn classify(error: &SendError) -> UpstreamErrorKind {
    match error {
        SendError::Saturated(_) => UpstreamErrorKind::Saturated,
        SendError::ConnectTimeout | SendError::TimedOut => UpstreamErrorKind::Timeout,
        SendError::Shared(error) => classify(error),
        SendError::Tls(e) if e.kind() == io::ErrorKind::TimedOut => UpstreamErrorKind::Timeout,
        SendError::Tls(_) => UpstreamErrorKind::Tls,
        SendError::Connect(e) if e.kind() == io::ErrorKind::TimedOut => UpstreamErrorKind::Timeout,
        SendError::Connect(_) => UpstreamErrorKind::Connect,
        SendError::Handshake(e) | SendError::Exchange(e) => {
            let mut reset = e.is_incomplete_message() || e.is_canceled() || e.is_closed();
            let mut source: Option<&(dyn StdError + 'static)> = e.source();
            while let Some(cause) = source {
                if let Some(io) = cause.downcast_ref::<io::Error>() {
                    match io.kind() {
                        io::ErrorKind::TimedOut => return UpstreamErrorKind::Timeout,
                        io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::UnexpectedEof => reset = true,
                        _ => {}
                    }
                }
                source = cause.source();
            }
            if reset {
                UpstreamErrorKind::Reset
            } else {
                UpstreamErrorKind::Other
            }
        }
    }
}

/// A request the proxy refuses before routing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The path cannot be normalised safely.
    #[error("bad request path: {0}")]
    BadPath(#[from] PathError),
    /// CONNECT: strangler only talks to its configured upstreams.
    #[error("CONNECT is not supported: strangler only forwards to its configured upstreams")]
    Connect,
    /// A head whose framing or fields implementations read differently ([`crate::server::conn::guard`]).
    #[error("malformed request: {0}")]
    Malformed(#[from] Violation),
    /// A path whose `;params` decide its route ([`crate::router::AmbiguousPath`]).
    #[error("ambiguous request path: without its ;parameters it reads {without_params}, which another route serves")]
    AmbiguousPath {
        /// The path without its parameters.
        without_params: String,
    },
}

impl Refusal {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadPath(_) | Refusal::Malformed(_) | Refusal::AmbiguousPath { .. } => StatusCode::BAD_REQUEST,
            Refusal::Connect => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// Label value for `strangler_rejected_requests_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadPath(_) => "bad_path",
            Refusal::Connect => "connect_method",
            Refusal::Malformed(_) => "malformed",
            Refusal::AmbiguousPath { .. } => "ambiguous_path",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(UpstreamErrorKind::Timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(UpstreamErrorKind::Connect.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(UpstreamErrorKind::Reset.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(UpstreamErrorKind::Tls.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            UpstreamErrorKind::Unavailable(crate::upstream::health::Unavailable::Ejected).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(Refusal::Connect.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            Refusal::Malformed(Violation::LengthAndChunked).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            Refusal::BadPath(PathError::EncodedSlash).status(),
            StatusCode::BAD_REQUEST
        );
    }

    /// The `[proxy]` settings of a table that leaves them all out (detailed, no pages).
    fn settings() -> ProxySettings {
        crate::config::parse_str("routes.toml", "[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n")
            .unwrap()
            .proxy
    }

    fn finish(route: &str) -> Box<Finish> {
        Box::new(Finish {
            metrics: Arc::new(crate::metrics::Metrics::new().unwrap()),
            duration: None,
            route: Arc::from(route),
            upstream: Arc::from("-"),
            method: http::Method::GET,
            status: StatusCode::OK,
            started: std::time::Instant::now(),
            request_id: HeaderValue::from_static("id-1"),
            path: None,
            client: "192.0.2.7:5000".parse().unwrap(),
            bytes: 0,
            aborted: false,
            count_request: false,
            window: None,
            trace: crate::trace::RequestTrace::of(&http::HeaderMap::new()),
            spans: None,
            recording: None,
        })
    }

    /// Status, headers (sorted) and body text of an answer made here.
    fn answer(error: ProxyError, route: &str) -> (u16, Vec<String>, String) {
        let response = error.into_response(&settings(), finish(route));
        let mut headers: Vec<String> = response
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
            .collect();
        headers.sort();
        let status = response.status().as_u16();
        let body = body_text(response.into_body());
        (status, headers, body)
    }

    fn body_text(body: ResponseBody) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = runtime
            .block_on(http_body_util::BodyExt::collect(body))
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn one_place_answers_every_error() {
        let text = [
            "cache-control: no-store",
            "content-type: text/plain; charset=utf-8",
            "x-request-id: id-1",
        ];
        let with = |extra: &str| {
            let mut headers: Vec<String> = text.iter().map(|h| h.to_string()).collect();
            headers.push(extra.to_owned());
            headers.sort();
            headers
        };
        assert_eq!(
            answer(ProxyError::Refused(Refusal::Connect), "-"),
            (
                405,
                with("allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE"),
                "CONNECT is not supported: strangler only forwards to its configured upstreams\n".to_owned()
            )
        );
        assert_eq!(
            answer(
                ProxyError::Refused(Refusal::Malformed(Violation::LengthAndChunked)),
                "-"
            ),
            (
                400,
                with("connection: close"),
                "malformed request: both Content-Length and Transfer-Encoding\n".to_owned()
            )
        );
        assert_eq!(
            answer(ProxyError::Refused(Refusal::BadPath(PathError::EncodedSlash)), "-"),
            (
                400,
                text.iter().map(|h| h.to_string()).collect(),
                "bad request path: encoded slash (%2F) in path\n".to_owned()
            )
        );
        assert_eq!(
            answer(ProxyError::Body(BodyFault::TooLarge { limit: 10 }), "api"),
            (
                413,
                with("connection: close"),
                "413 Payload Too Large: route `api` accepts request bodies of at most 10 bytes\n".to_owned()
            )
        );
        assert_eq!(
            answer(ProxyError::Body(BodyFault::Unreadable), "api"),
            (
                400,
                with("connection: close"),
                "400 Bad Request: could not read the request body\n".to_owned()
            )
        );
        assert_eq!(
            answer(
                ProxyError::upstream(UpstreamErrorKind::Timeout, &Arc::from("thoughts")),
                "api"
            ),
            (
                504,
                text.iter().map(|h| h.to_string()).collect(),
                "504 Gateway Timeout: upstream `thoughts` (route `api`) did not answer in time\n".to_owned()
            )
        );
        assert_eq!(
            answer(
                ProxyError::upstream(UpstreamErrorKind::Connect, &Arc::from("legacy")),
                "default"
            )
            .2,
            "502 Bad Gateway: upstream `legacy` (route `default`) refused the connection or could not be reached\n"
        );
    }

    /// One error of each kind a client can get, with the route it is answered on.
    fn every_error() -> Vec<(ProxyError, &'static str)> {
        use crate::upstream::health::Unavailable;
        let users = Arc::from("users");
        let mut errors = vec![
            (ProxyError::Refused(Refusal::Connect), "-"),
            (
                ProxyError::Refused(Refusal::Malformed(Violation::LengthAndChunked)),
                "-",
            ),
            (ProxyError::Refused(Refusal::BadPath(PathError::EncodedSlash)), "-"),
            (
                ProxyError::Refused(Refusal::AmbiguousPath {
                    without_params: "/users-api/x".to_owned(),
                }),
                "-",
            ),
            (ProxyError::Body(BodyFault::TooLarge { limit: 10 }), "users-api"),
            (ProxyError::Body(BodyFault::Unreadable), "users-api"),
            (ProxyError::Body(BodyFault::TimedOut), "users-api"),
        ];
        for kind in [
            UpstreamErrorKind::Connect,
            UpstreamErrorKind::Timeout,
            UpstreamErrorKind::Tls,
            UpstreamErrorKind::Reset,
            UpstreamErrorKind::Protocol,
            UpstreamErrorKind::Other,
            UpstreamErrorKind::ReadTimeout,
            UpstreamErrorKind::Unavailable(Unavailable::Ejected),
            UpstreamErrorKind::Saturated,
        ] {
            errors.push((ProxyError::upstream(kind, &users), "users-api"));
        }
        errors
    }

    #[test]
    fn every_status_answered_here_may_have_a_page() {
        for (error, _) in every_error() {
            let status = error.status().as_u16();
            assert!(
                crate::config::ANSWERED_STATUSES.contains(&status),
                "{error:?}: {status}"
            );
        }
    }

    #[test]
    fn minimal_bodies_say_the_status_and_the_request_id_and_no_name() {
        let mut minimal = settings();
        minimal.error_bodies = crate::config::ErrorBodies::Minimal;
        let id = HeaderValue::from_static("r-0001");
        for (error, route) in every_error() {
            let status = error.status();
            let answer = error_answer(&error, &minimal, route, &id);
            let expected = format!(
                "{} {}\nrequest id: r-0001\n",
                status.as_u16(),
                status.canonical_reason().unwrap()
            );
            assert_eq!(answer.body, expected.as_bytes(), "{error:?}");
            assert_eq!(answer.content_type, "text/plain; charset=utf-8");
            // The same error in detail names what minimal hides.
            let detailed = error_answer(&error, &settings(), route, &id);
            if let ProxyError::Upstream { .. } = error {
                let text = String::from_utf8(detailed.body.to_vec()).unwrap();
                assert!(text.contains("`users`") && text.contains("`users-api`"), "{text}");
            }
        }
        let error = ProxyError::upstream(UpstreamErrorKind::Connect, &Arc::from("users"));
        assert_eq!(
            error_answer(&error, &minimal, "users-api", &id).body,
            "502 Bad Gateway\nrequest id: r-0001\n"
        );
        assert_eq!(
            error_answer(&error, &settings(), "users-api", &id).body,
            "502 Bad Gateway: upstream `users` (route `users-api`) refused the connection or could not be reached\n"
        );
    }

    /// `settings` with a page for `status` of `content_type` whose text is `page`, read.
    fn with_page(
        mut settings: ProxySettings,
        status: u16,
        content_type: &'static str,
        page: &'static str,
    ) -> ProxySettings {
        let pieces = page.split(crate::config::REQUEST_ID_PLACEHOLDER);
        settings.error_pages.push(crate::config::ErrorPage {
            status: StatusCode::from_u16(status).unwrap(),
            path: "errors/page".into(),
            location: crate::config::Location::default(),
            content_type,
            content: Some(PageContent {
                pieces: pieces.map(|p| Bytes::from_static(p.as_bytes())).collect(),
            }),
        });
        settings
    }

    #[test]
    fn a_page_wins_for_its_status_with_the_request_id_in_place() {
        let mut minimal = settings();
        minimal.error_bodies = crate::config::ErrorBodies::Minimal;
        let pages = with_page(
            minimal,
            502,
            "text/html; charset=utf-8",
            "<p>{request_id}</p><i>{request_id}</i>",
        );
        let id = HeaderValue::from_static("r-0001");
        let refused = ProxyError::upstream(UpstreamErrorKind::Connect, &Arc::from("users"));
        let answer = error_answer(&refused, &pages, "users-api", &id);
        assert_eq!(answer.content_type, "text/html; charset=utf-8");
        assert_eq!(answer.body, "<p>r-0001</p><i>r-0001</i>");
        // Other statuses keep the settings' body.
        let timeout = ProxyError::upstream(UpstreamErrorKind::Timeout, &Arc::from("users"));
        assert_eq!(
            error_answer(&timeout, &pages, "users-api", &id).body,
            "504 Gateway Timeout\nrequest id: r-0001\n"
        );
        // A client's own id cannot change the page's markup.
        let hostile = HeaderValue::from_bytes(b"<script>&\"'\xe9").unwrap();
        assert_eq!(
            error_answer(&refused, &pages, "users-api", &hostile).body,
            "<p>&lt;script&gt;&amp;&quot;&#39;?</p><i>&lt;script&gt;&amp;&quot;&#39;?</i>"
        );
        let json = with_page(settings(), 502, "application/json", "{\"id\":\"{request_id}\"}");
        let quoted = HeaderValue::from_static("a\"b\\c<");
        assert_eq!(
            error_answer(&refused, &json, "users-api", &quoted).body,
            "{\"id\":\"a\\\"b\\\\c<\"}"
        );
        // A page without the placeholder is sent as it is.
        let plain = with_page(settings(), 502, "text/plain; charset=utf-8", "down");
        assert_eq!(error_answer(&refused, &plain, "users-api", &id).body, "down");
        // A page not read (offline commands never read them) leaves the text body.
        let mut unread = json.clone();
        unread.error_pages[0].content = None;
        assert!(
            error_answer(&refused, &unread, "users-api", &id)
                .body
                .starts_with(b"502 Bad Gateway: upstream")
        );
    }

    #[test]
    fn into_response_sends_the_page_with_its_type() {
        let pages = with_page(settings(), 413, "application/json", "{\"request\":\"{request_id}\"}");
        let response = ProxyError::Body(BodyFault::TooLarge { limit: 1 }).into_response(&pages, finish("api"));
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert_eq!(response.headers()[&X_REQUEST_ID], "id-1");
        assert_eq!(body_text(response.into_body()), "{\"request\":\"id-1\"}");
    }
}

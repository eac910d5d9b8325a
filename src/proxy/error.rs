//! Failures of a proxied exchange and the one place that turns them into responses.
//!
//! Client mistakes get a 4xx with a message that helps the client. Upstream failures get
//! 502 (refused, reset, other) or 504 (timed out) with a short text body naming the route
//! and upstream, so whoever reads it knows which side of the migration failed; the detail
//! goes to the log with the request id.

use std::error::Error as StdError;
use std::io;

use http::StatusCode;

use crate::path::PathError;
use crate::server::conn::guard::Violation;
use crate::upstream::pool::SendError;

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
    /// Anything else (malformed response, …).
    Other,
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
            UpstreamErrorKind::Other => "other",
            UpstreamErrorKind::Unavailable(_) => "unavailable",
            UpstreamErrorKind::Saturated => "saturated",
        }
    }

    /// The status the client gets.
    pub fn status(self) -> StatusCode {
        match self {
            UpstreamErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            UpstreamErrorKind::Unavailable(_) | UpstreamErrorKind::Saturated => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// A few words for the response body.
    pub fn describe(self) -> &'static str {
        match self {
            UpstreamErrorKind::Connect => "refused the connection or could not be reached",
            UpstreamErrorKind::Timeout => "did not answer in time",
            UpstreamErrorKind::Tls => "failed the TLS handshake (certificate not trusted or not for its host?)",
            UpstreamErrorKind::Reset => "closed the connection before answering",
            UpstreamErrorKind::Other => "sent no valid answer",
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
}

impl Refusal {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadPath(_) | Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::Connect => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// Label value for `strangler_rejected_requests_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadPath(_) => "bad_path",
            Refusal::Connect => "connect_method",
            Refusal::Malformed(_) => "malformed",
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
}

//! The one place where a failed backend call becomes a page: which status, which words, what is logged.
//!
//! | failure | status |
//! | --- | --- |
//! | connection refused or unreachable, connection broken, 5xx, an answer that is not the API's | 502 Bad Gateway |
//! | no connection within the connect timeout | 503 Service Unavailable |
//! | connected, but no full answer within the deadline | 504 Gateway Timeout |
//! | a request we could not build (our bug) | 500 |
//!
//! The page names the backend (`thoughts` or `users`) so whoever sees it knows where to look; the cause (with
//! addresses and error chains) goes to the log, inside the request's span, so with its `x-request-id`.

use axum::http::StatusCode;
use axum::response::Response;
use mythoughts_common::pages::error_page;

use crate::backend::BackendError;

/// The status a page answers with when `err` stopped it.
pub fn status_of(err: &BackendError) -> StatusCode {
    match err {
        BackendError::Unreachable { .. }
        | BackendError::Broken { .. }
        | BackendError::Status { .. }
        | BackendError::BadAnswer { .. } => StatusCode::BAD_GATEWAY,
        BackendError::ConnectTimeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
        BackendError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        BackendError::Request { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Logs `err` and renders the error page for it; `username` keeps the navigation bar of a logged-in user.
pub fn backend_failure(err: &BackendError, username: Option<&str>) -> Response {
    let status = status_of(err);
    let service = err.service();
    tracing::error!(backend = %service, status = status.as_u16(), error = %err, "page failed: backend call");
    let (title, explanation) = match status {
        StatusCode::SERVICE_UNAVAILABLE => (
            "Service unavailable",
            format!("The {service} service cannot be reached right now. Please try again in a moment."),
        ),
        StatusCode::GATEWAY_TIMEOUT => (
            "Gateway timeout",
            format!("The {service} service took too long to answer. Please try again in a moment."),
        ),
        StatusCode::INTERNAL_SERVER_ERROR => (
            "Something went wrong",
            format!("This page could not ask the {service} service. Please try again in a moment."),
        ),
        _ => (
            "Bad gateway",
            format!("The {service} service is not answering properly. Please try again in a moment."),
        ),
    };
    error_page(status, username, title, &explanation)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::Service;

    #[test]
    fn each_failure_has_one_status_and_names_its_backend() {
        let cases = [
            (
                BackendError::Status {
                    service: Service::Thoughts,
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                },
                StatusCode::BAD_GATEWAY,
                "thoughts",
            ),
            (
                BackendError::BadAnswer {
                    service: Service::Users,
                    reason: "x".into(),
                },
                StatusCode::BAD_GATEWAY,
                "users",
            ),
            (
                BackendError::Broken {
                    service: Service::Users,
                    reason: "reset".into(),
                },
                StatusCode::BAD_GATEWAY,
                "users",
            ),
            (
                BackendError::ConnectTimeout {
                    service: Service::Users,
                    after: Duration::from_secs(1),
                },
                StatusCode::SERVICE_UNAVAILABLE,
                "users",
            ),
            (
                BackendError::Timeout {
                    service: Service::Thoughts,
                    after: Duration::from_secs(1),
                },
                StatusCode::GATEWAY_TIMEOUT,
                "thoughts",
            ),
        ];
        for (err, status, name) in cases {
            let response = backend_failure(&err, Some("bruce"));
            assert_eq!(response.status(), status, "{err}");
            assert_eq!(status_of(&err), status);
            assert_eq!(err.service().name(), name);
        }
    }
}

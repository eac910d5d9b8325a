//! The book's error bodies (Flask-RESTPlus and Werkzeug wording) and [`ApiError`], the single place where
//! an API failure becomes a status code and a JSON body.
//!
//! Client mistakes get a message; internal causes are logged (inside the request's span, so with its
//! request id) and never sent to the client.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Werkzeug's 401 description, which Flask-RESTPlus's `abort(401)` returns as `{"message": ...}`.
pub const UNAUTHORIZED_MESSAGE: &str = "The server could not verify that you are authorized to access the URL \
requested. You either supplied the wrong credentials (e.g. a bad password), or your browser doesn't understand \
how to supply the credentials required.";

/// Werkzeug's 404 description.
pub const NOT_FOUND_MESSAGE: &str = "The requested URL was not found on the server. If you entered the URL \
manually please check your spelling and try again.";

/// Werkzeug's 405 description.
pub const METHOD_NOT_ALLOWED_MESSAGE: &str = "The method is not allowed for the requested URL.";

/// Werkzeug's 400 description (used for an unparseable body).
pub const BAD_REQUEST_MESSAGE: &str = "The browser (or proxy) sent a request that this server could not understand.";

/// Werkzeug's 500 description.
pub const INTERNAL_ERROR_MESSAGE: &str = "The server encountered an internal error and was unable to complete \
your request. Either the server is overloaded or there is an error in the application.";

/// Flask-RESTPlus's top-level message for a request whose arguments failed validation.
pub const VALIDATION_FAILED_MESSAGE: &str = "Input payload validation failed";

/// Flask-RESTPlus's per-field message for a required argument that is absent from every location. The
/// body carries it after the argument's help text ([`missing_parameter`]).
pub const MISSING_PARAMETER_MESSAGE: &str =
    "Missing required parameter in the JSON body or the post body or the query string";

/// The per-field message for a missing argument whose help text is `help`, as Flask-RESTPlus writes it:
/// `"<help> Missing required parameter …"` (`"Text of the thought Missing required parameter …"`).
pub fn missing_parameter(help: &str) -> String {
    format!("{help} {MISSING_PARAMETER_MESSAGE}")
}

/// Message for a username that is already taken.
pub const USER_EXISTS_MESSAGE: &str = "A user with that username already exists";

/// `{"message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageBody {
    /// Human-readable reason.
    pub message: String,
}

/// `{"errors": {"<field>": "<problem>"}, "message": "Input payload validation failed"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationBody {
    /// Problem per field.
    pub errors: BTreeMap<String, String>,
    /// Always [`VALIDATION_FAILED_MESSAGE`].
    pub message: String,
}

/// The body of `GET /api/thoughts/{id}/` for a missing id: a Thought with every field null (what
/// `marshal_with` makes of `return '', 404`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NullThought {
    /// Always null.
    pub id: Option<i64>,
    /// Always null.
    pub username: Option<String>,
    /// Always null.
    pub text: Option<String>,
    /// Always null.
    pub timestamp: Option<String>,
}

/// Everything an API handler can fail with, and the one mapping to a response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A required argument is absent: 400 with the validation body, its message after the help text.
    #[error("missing parameter {}", .0.name)]
    MissingField(crate::input::Arg),
    /// A field is present but unacceptable: 400 with the validation body.
    #[error("invalid parameter {field}: {problem}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The body could not be parsed at all: 400 `{"message"}`.
    #[error("unparseable request body")]
    BadRequest,
    /// No valid credentials: 401 `{"message"}`.
    #[error("unauthorized")]
    Unauthorized,
    /// `POST /api/login/` with a wrong user or password: 401 with the JSON body `""`, like the book.
    #[error("login failed")]
    LoginFailed,
    /// No such route or resource: 404 `{"message"}`.
    #[error("not found")]
    NotFound,
    /// No such thought: 404 with the all-null Thought.
    #[error("thought not found")]
    ThoughtNotFound,
    /// The path exists but not for this method: 405 `{"message"}` (the router adds `Allow`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The resource already exists: 409 `{"message"}`.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Our fault: 500 with Werkzeug's generic message; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Wraps any internal failure, keeping its text for the log.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    /// The status code this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingField(_) | Self::InvalidField { .. } | Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::LoginFailed => StatusCode::UNAUTHORIZED,
            Self::NotFound | Self::ThoughtNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn message(text: &str) -> Json<MessageBody> {
    Json(MessageBody {
        message: text.to_owned(),
    })
}

fn validation(field: &str, problem: &str) -> Json<ValidationBody> {
    Json(ValidationBody {
        errors: BTreeMap::from([(field.to_owned(), problem.to_owned())]),
        message: VALIDATION_FAILED_MESSAGE.to_owned(),
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = match &self {
            Self::MissingField(arg) => validation(arg.name, &missing_parameter(arg.help)).into_response(),
            Self::InvalidField { field, problem } => validation(field, problem).into_response(),
            Self::BadRequest => message(BAD_REQUEST_MESSAGE).into_response(),
            Self::Unauthorized => message(UNAUTHORIZED_MESSAGE).into_response(),
            Self::LoginFailed => Json("").into_response(),
            Self::NotFound => message(NOT_FOUND_MESSAGE).into_response(),
            Self::ThoughtNotFound => Json(NullThought::default()).into_response(),
            Self::MethodNotAllowed => message(METHOD_NOT_ALLOWED_MESSAGE).into_response(),
            Self::Conflict(text) => message(text).into_response(),
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                message(INTERNAL_ERROR_MESSAGE).into_response()
            }
        };
        *response.status_mut() = status;
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn render(err: ApiError) -> (StatusCode, String) {
        let response = err.into_response();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn bodies_match_the_book() {
        let (status, body) = render(ApiError::MissingField(crate::input::args::THOUGHT_TEXT)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            r#"{"errors":{"text":"Text of the thought Missing required parameter in the JSON body or the post body or the query string"},"message":"Input payload validation failed"}"#
        );
        assert_eq!(
            render(ApiError::LoginFailed).await,
            (StatusCode::UNAUTHORIZED, r#""""#.to_owned())
        );
        assert_eq!(
            render(ApiError::ThoughtNotFound).await,
            (
                StatusCode::NOT_FOUND,
                r#"{"id":null,"username":null,"text":null,"timestamp":null}"#.to_owned()
            )
        );
        let (status, body) = render(ApiError::Unauthorized).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.starts_with(r#"{"message":"The server could not verify"#), "{body}");
        // Werkzeug 0.16's wording, "the credentials" included.
        assert!(
            body.ends_with(r#"your browser doesn't understand how to supply the credentials required."}"#),
            "{body}"
        );
    }

    #[tokio::test]
    async fn internal_causes_stay_out_of_the_body() {
        let (status, body) = render(ApiError::internal("disk on fire at /var/secret")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("secret"));
    }
}

//! The HTTP rules every MyThoughts JSON API follows, so the monolith and the services that replace it answer
//! alike: who is asking ([`Bearer`]), what a path id is ([`parse_id`]), what a path without its trailing
//! slash gets ([`add_trailing_slash`]: 308 and Werkzeug's little HTML page), what a wrong method gets
//! ([`method_not_allowed`]: 405) and how `Allow` and `OPTIONS` are answered ([`allow_like_flask`]).
//!
//! Invariants:
//! - [`Bearer`] only accepts an RS256 token signed by the state's key ([`TokenVerifier`]); every refusal is
//!   the same 401, the reason goes to the debug log only.
//! - API paths (`/api/…`, `/admin/…`) get JSON error bodies; any other path gets the page answer
//!   ([`crate::pages::method_not_allowed`]).
//! - The 308's `Location` is relative, where the book's Werkzeug wrote an absolute URL built from the
//!   request's `Host` and its own scheme (`http://` even behind a TLS proxy): a deliberate difference,
//!   listed in `tests/parity/book-differences.toml`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, FromRequestParts, MatchedPath, Path, Request};
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::telemetry::tag_endpoint;
use crate::{ApiError, Claims, TokenVerifier};

/// A request with a valid `Authorization: Bearer` token; rejects with 401 otherwise. The state must hand out
/// the [`TokenVerifier`] (`impl FromRef<State> for Arc<TokenVerifier>`).
#[derive(Debug, Clone)]
pub struct Bearer(pub Claims);

impl<S> FromRequestParts<S> for Bearer
where
    S: Send + Sync,
    Arc<TokenVerifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<TokenVerifier>::from_ref(state);
        // A header that is not visible ASCII cannot be a bearer token: it becomes "" and fails as malformed.
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or_default());
        verifier.verify_authorization(header).map(Bearer).map_err(|reason| {
            tracing::debug!(%reason, "refused API credentials");
            ApiError::Unauthorized
        })
    }
}

/// Parses a path id like Werkzeug's `int` converter: ASCII digits only, else the route does not exist (404).
pub fn parse_id(id: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::NotFound);
    }
    id.parse().map_err(|_| ApiError::NotFound)
}

/// Content type of Werkzeug's HTML answers (the 308 page, and Flask's empty `OPTIONS` answer).
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// An API path without its trailing slash: 308 to the same path with `/` (query kept), like Werkzeug's
/// strict slashes, with Werkzeug's redirect page as the body. 308 keeps the method and body, so a `POST`
/// follows through. The `Location` is relative (see the module's invariants).
pub async fn add_trailing_slash(uri: Uri) -> Response {
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    match HeaderValue::try_from(location.as_str()) {
        Ok(header) => (
            StatusCode::PERMANENT_REDIRECT,
            [
                (LOCATION, header),
                (CONTENT_TYPE, HeaderValue::from_static(HTML_CONTENT_TYPE)),
            ],
            redirect_page(&location),
        )
            .into_response(),
        Err(_) => ApiError::NotFound.into_response(),
    }
}

/// Werkzeug 0.16's redirect page for `location`, byte for byte (no final newline).
pub fn redirect_page(location: &str) -> String {
    let location = crate::html::escape(location);
    format!(
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>Redirecting...</title>\n\
         <h1>Redirecting...</h1>\n<p>You should be redirected automatically to target URL: \
         <a href=\"{location}\">{location}</a>.  If not click the link."
    )
}

/// Middleware for every MyThoughts app ([`with_flask_allow`] installs it): on an API path, the `Allow` the router writes (`GET,HEAD`) is
/// written as Flask writes it, with `OPTIONS` (`GET, HEAD, OPTIONS`), and an `OPTIONS` request the routes
/// do not handle is answered as Flask answers it for every route: 200, empty HTML body, `Allow`. Other
/// paths (the monolith's pages, `/healthz`) keep the router's answer.
pub async fn allow_like_flask(request: Request, next: Next) -> Response {
    let is_options = request.method() == Method::OPTIONS;
    let is_api = is_api_path(request.uri().path());
    let response = next.run(request).await;
    if !is_api {
        return response;
    }
    let Some(allow) = response
        .headers()
        .get(ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(flask_allow)
    else {
        return response;
    };
    let Ok(allow) = HeaderValue::try_from(allow) else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(ALLOW, allow);
    if is_options && parts.status == StatusCode::METHOD_NOT_ALLOWED {
        parts.status = StatusCode::OK;
        parts.headers.remove(CONTENT_LENGTH);
        parts
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(HTML_CONTENT_TYPE));
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, body)
}

/// `app` (state given) with [`allow_like_flask`] around it. The router writes `Allow` on its way out, after
/// any `Router::layer`, so the middleware wraps the finished router as a service.
pub fn with_flask_allow(app: Router) -> Router {
    Router::new()
        .fallback_service(app)
        .layer(axum::middleware::from_fn(allow_like_flask))
}

/// `GET,HEAD` → `GET, HEAD, OPTIONS`: the router's methods in its order, `OPTIONS` last, `, `-separated.
fn flask_allow(router_allow: &str) -> String {
    let mut methods: Vec<&str> = router_allow
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && *m != "OPTIONS")
        .collect();
    methods.push("OPTIONS");
    methods.join(", ")
}

/// Whether `path` belongs to the JSON API (and so gets JSON errors).
pub fn is_api_path(path: &str) -> bool {
    ["/api", "/admin"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")))
}

/// 405 for a known path with an unsupported method; use it as the router's `method_not_allowed_fallback`.
/// The router adds the `Allow` header to whatever this returns.
pub async fn method_not_allowed(matched: Option<MatchedPath>, uri: Uri) -> Response {
    let mut response = if is_api_path(uri.path()) {
        ApiError::MethodNotAllowed.into_response()
    } else {
        crate::pages::method_not_allowed()
    };
    if let Some(matched) = matched {
        tag_endpoint(&mut response, &matched);
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::{any, delete, get};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::jwt::generate_key_pair;
    use crate::{TokenIssuer, errors};

    #[test]
    fn api_paths() {
        for path in ["/api", "/api/thoughts/", "/admin/users/", "/admin"] {
            assert!(is_api_path(path), "{path}");
        }
        for path in ["/", "/apiary", "/login/", "/administrator", "/static/style.css"] {
            assert!(!is_api_path(path), "{path}");
        }
    }

    #[test]
    fn ids_are_plain_non_negative_integers() {
        let ok = |s: &str| parse_id(Ok(Path(s.to_owned())));
        assert_eq!(ok("42").unwrap(), 42);
        assert!(ok("-1").is_err());
        assert!(ok("+1").is_err());
        assert!(ok("1e3").is_err());
        assert!(ok("").is_err());
        assert!(ok("99999999999999999999999").is_err());
    }

    async fn send(app: Router, method: &str, uri: &str, authorization: Option<&str>) -> (StatusCode, Response) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        (response.status(), response)
    }

    async fn body_text(response: Response) -> String {
        String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn bearer_accepts_our_tokens_only() {
        let pair = generate_key_pair(1024).unwrap();
        let issuer = TokenIssuer::from_pem(pair.private_pem.as_bytes()).unwrap();
        let verifier = Arc::new(TokenVerifier::from_pem(pair.public_pem.as_bytes()).unwrap());
        let app = Router::new()
            .route("/api/me/", get(|Bearer(claims): Bearer| async move { claims.username }))
            .with_state(verifier);

        let token = issuer.issue_bearer("bruce").unwrap();
        let (status, response) = send(app.clone(), "GET", "/api/me/", Some(&token)).await;
        assert_eq!((status, body_text(response).await.as_str()), (StatusCode::OK, "bruce"));

        for header in [None, Some("Bearer nope"), Some("Basic YnJ1Y2U6cGFzc3dvcmQ=")] {
            let (status, response) = send(app.clone(), "GET", "/api/me/", header).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{header:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert!(body_text(response).await.contains(errors::UNAUTHORIZED_MESSAGE));
        }
    }

    #[tokio::test]
    async fn redirects_keep_the_query_and_wrong_methods_get_405() {
        let app = Router::new()
            .route("/api/thoughts/", get(|| async { "list" }))
            .route("/api/thoughts", any(add_trailing_slash))
            .route("/healthz", get(|| async { "ok" }))
            .method_not_allowed_fallback(method_not_allowed);
        let app = with_flask_allow(app);

        let (status, response) = send(app.clone(), "POST", "/api/thoughts?search=a%20b", None).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[LOCATION], "/api/thoughts/?search=a%20b");

        let (status, response) = send(app.clone(), "DELETE", "/api/thoughts/", None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "GET, HEAD, OPTIONS");
        assert_eq!(
            body_text(response).await,
            format!(r#"{{"message":"{}"}}"#, errors::METHOD_NOT_ALLOWED_MESSAGE)
        );

        let (status, response) = send(app, "POST", "/healthz", None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers()["allow"],
            "GET,HEAD",
            "not an API path: the router's Allow"
        );
        assert_eq!(body_text(response).await, "Method Not Allowed\n");
    }

    #[tokio::test]
    async fn the_redirect_carries_werkzeugs_page_with_the_location_escaped() {
        let app = Router::new().route("/api/thoughts", any(add_trailing_slash));
        let (status, response) = send(app, "GET", "/api/thoughts?a=1&b=%3C", None).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[LOCATION], "/api/thoughts/?a=1&b=%3C");
        assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(
            body_text(response).await,
            "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>Redirecting...</title>\n\
             <h1>Redirecting...</h1>\n<p>You should be redirected automatically to target URL: \
             <a href=\"/api/thoughts/?a=1&amp;b=%3C\">/api/thoughts/?a=1&amp;b=%3C</a>.  If not click the link."
        );
    }

    #[tokio::test]
    async fn options_on_an_api_path_is_200_with_allow_and_an_empty_body() {
        let app = Router::new()
            .route("/api/me/thoughts/", get(|| async { "list" }).post(|| async { "made" }))
            .route("/admin/thoughts/{id}/", delete(|| async { StatusCode::NO_CONTENT }))
            .route("/healthz", get(|| async { "ok" }))
            .method_not_allowed_fallback(method_not_allowed);
        let app = with_flask_allow(app);
        for (path, allow) in [
            ("/api/me/thoughts/", "GET, HEAD, POST, OPTIONS"),
            ("/admin/thoughts/1/", "DELETE, OPTIONS"),
        ] {
            let (status, response) = send(app.clone(), "OPTIONS", path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(response.headers()["allow"], allow, "{path}");
            assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
            assert_eq!(body_text(response).await, "", "{path}");
        }
        let (status, response) = send(app.clone(), "PUT", "/api/me/thoughts/", None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "GET, HEAD, POST, OPTIONS");
        // Not an API path: OPTIONS stays a 405.
        let (status, _) = send(app, "OPTIONS", "/healthz", None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
}

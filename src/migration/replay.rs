//! A request kept whole, head and buffered body, so that it can be sent more than once: a
//! fallback replays it to legacy, a shadow mirror sends a copy to the new upstream.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri};

use crate::upstream::body::RequestBody;

/// A request's head and its whole body, ready to be sent again.
#[derive(Debug, Clone)]
pub struct KeptRequest {
    /// Method.
    pub method: Method,
    /// Origin-form target as the upstream gets it.
    pub uri: Uri,
    /// Headers as the upstream gets them.
    pub headers: HeaderMap,
    /// The whole body (empty when there is none).
    pub body: Bytes,
}

impl KeptRequest {
    /// Keeps the head of `parts` with `body`.
    pub fn new(parts: &http::request::Parts, body: Bytes) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            body,
        }
    }

    /// A copy to send.
    pub fn request(&self) -> Request<RequestBody> {
        let body = &self.body;
        let mut request = Request::new(RequestBody::Buffered((!body.is_empty()).then(|| body.clone())));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// The path and query, as reports show it.
    pub fn path_for_report(&self) -> String {
        self.uri
            .path_and_query()
            .map_or_else(|| self.uri.path().to_owned(), |pq| pq.as_str().to_owned())
    }
}

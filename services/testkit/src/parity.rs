//! Parity tests: the same requests, in the same order, sent to the monolith's app and to a
//! service's, and the answers compared. [`Case`] is one request that can be built twice;
//! [`assert_same`] compares the two answers.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::Value;

use crate::{TestResponse, bearer};

/// One request, buildable twice.
#[derive(Debug, Clone)]
pub struct Case {
    method: Method,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, String)>,
}

impl Case {
    /// `method uri`, no headers, no body.
    pub fn new(method: Method, uri: &str) -> Self {
        Self {
            method,
            uri: uri.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// `GET uri`.
    pub fn get(uri: &str) -> Self {
        Self::new(Method::GET, uri)
    }

    /// `POST uri`.
    pub fn post(uri: &str) -> Self {
        Self::new(Method::POST, uri)
    }

    /// With this `Authorization` header, if any.
    pub fn auth(mut self, value: Option<String>) -> Self {
        if let Some(value) = value {
            self.headers.push(("authorization", value));
        }
        self
    }

    /// With a bearer token for `username`, signed with the apps' key.
    pub fn by(self, username: &str) -> Self {
        self.auth(Some(bearer(username)))
    }

    /// With a form body.
    pub fn form(mut self, body: &str) -> Self {
        self.body = Some(("application/x-www-form-urlencoded", body.to_owned()));
        self
    }

    /// With a JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(("application/json", body.to_string()));
        self
    }

    /// With `body` sent as `application/json`, valid JSON or not.
    pub fn raw_json(mut self, body: &str) -> Self {
        self.body = Some(("application/json", body.to_owned()));
        self
    }

    /// The request.
    pub fn build(&self) -> Request<Body> {
        let mut request = Request::builder().method(self.method.clone()).uri(&self.uri);
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let body = match &self.body {
            Some((content_type, body)) => {
                request = request.header(header::CONTENT_TYPE, *content_type);
                Body::from(body.clone())
            }
            None => Body::empty(),
        };
        request.body(body).unwrap()
    }
}

/// Asserts that the two answers to `case` agree on status, `Content-Type`, `Location`,
/// `WWW-Authenticate`, `Allow` (as a set of methods) and body.
///
/// Bodies are compared byte for byte (so key order counts), except a JSON body in which `mask`
/// replaced a clock-dependent value (it returns whether it did, having checked the value): those
/// two are compared as JSON values after masking.
pub fn assert_same(
    case: &Case,
    legacy: &TestResponse,
    service: &TestResponse,
    mut mask: impl FnMut(&mut Value) -> bool,
) {
    let what = format!("{} {}", case.method, case.uri);
    assert_eq!(legacy.status, service.status, "status of {what}");
    for name in ["content-type", "location", "www-authenticate"] {
        assert_eq!(legacy.header(name), service.header(name), "{name} of {what}");
    }
    let allow = |r: &TestResponse| {
        r.header("allow").map(|a| {
            let mut methods: Vec<String> = a.split(',').map(|m| m.trim().to_owned()).collect();
            methods.sort();
            methods
        })
    };
    assert_eq!(allow(legacy), allow(service), "allow of {what}");

    let is_json = legacy.header("content-type").as_deref() == Some("application/json");
    if !is_json || legacy.body.is_empty() {
        assert_eq!(legacy.body, service.body, "body of {what}");
        return;
    }
    let (mut a, mut b) = (legacy.json(), service.json());
    let masked = mask(&mut a) | mask(&mut b);
    assert_eq!(a, b, "body of {what}");
    if !masked {
        assert_eq!(legacy.text(), service.text(), "raw body (key order) of {what}");
    }
}

//! A hyper HTTP/1.1 client and whole responses ([`Answer`]): for requests a well-behaved
//! client sends. Requests no client would send as written are in [`super::raw`].

use std::collections::BTreeMap;

use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::body::{BoxBody, full};

/// A plain HTTP/1.1 client with keep-alive.
pub fn client() -> Client<HttpConnector, BoxBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response, fully read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub async fn send(client: &Client<HttpConnector, BoxBody>, request: Request<BoxBody>) -> Answer {
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(url: &str) -> Answer {
    send(&client(), Request::get(url).body(full("")).unwrap()).await
}

pub async fn post(url: &str, body: &str) -> Answer {
    send(&client(), Request::post(url).body(full(body.to_owned())).unwrap()).await
}

/// Headers as a sorted name → value map, for comparing or printing.
pub fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect()
}

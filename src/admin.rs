//! The admin API, served on its own listener (never on the public one).
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /` | the migration dashboard, a self-contained HTML page ([`crate::dashboard`]) |
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 once a table is loaded; 503 while draining or while the default upstream fails its health check |
//! | `GET /metrics` | Prometheus text |
//! | `GET /admin/routes` | the table in force, its version and the last reload error |
//! | `GET /admin/parity` | shadow-traffic evidence per route, and the last mismatches |
//! | `GET /admin/upstreams` | per upstream: health-check verdict, ejection, failures in a row |
//! | `GET /admin/traffic` | requests, 5xx and latency per route and side, share to new |
//! | `POST /admin/reload` | 200 `{"result":"ok","version":…}` or 422 `{"result":"error","errors":[…]}` |

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

use crate::reload::{ReloadOutcome, Reloader, Trigger};
use crate::state::State;

/// The admin service.
#[derive(Debug, Clone)]
pub struct Admin {
    state: Arc<State>,
    reloader: Arc<Reloader>,
}

impl Admin {
    /// An admin API over the proxy's state.
    pub fn new(state: Arc<State>, reloader: Arc<Reloader>) -> Self {
        Self { state, reloader }
    }

    /// Handles one admin request.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = request.method().clone();
        match (request.uri().path(), method) {
            ("/healthz", Method::GET | Method::HEAD) => text(StatusCode::OK, "ok\n"),
            ("/readyz", Method::GET | Method::HEAD) => {
                if self.state.is_ready() {
                    text(StatusCode::OK, "ready\n")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }
            ("/metrics", Method::GET) => {
                let mut response = Response::new(Full::new(Bytes::from(self.state.metrics.render())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            ("/admin/routes", Method::GET) => json_response(StatusCode::OK, &self.routes_json()),
            ("/admin/parity", Method::GET) => {
                let snapshot = self.state.snapshot();
                let stage_of = |name: &str| {
                    snapshot
                        .config()
                        .routes
                        .iter()
                        .find(|r| r.name == name)
                        .map(|r| r.stage.as_str())
                };
                json_response(StatusCode::OK, &self.state.ledger.to_json(stage_of))
            }
            ("/admin/upstreams", Method::GET) => {
                let snapshot = self.state.snapshot();
                let upstreams: Vec<_> = snapshot.upstreams.iter().map(|u| u.health.report()).collect();
                json_response(StatusCode::OK, &json!({ "upstreams": upstreams }))
            }
            ("/", Method::GET | Method::HEAD) => crate::dashboard::page(),
            ("/admin/traffic", Method::GET) => self.traffic(),
            ("/admin/reload", Method::POST) => match self.reloader.reload(Trigger::Admin).await {
                ReloadOutcome::Applied { version } | ReloadOutcome::Unchanged { version } => {
                    json_response(StatusCode::OK, &json!({"result": "ok", "version": version}))
                }
                ReloadOutcome::Rejected { errors } => json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"result": "error", "errors": errors}),
                ),
            },
            ("/healthz" | "/readyz" | "/metrics" | "/admin/routes" | "/admin/parity" | "/admin/upstreams", _) => {
                method_not_allowed("GET")
            }
            ("/admin/reload", _) => method_not_allowed("POST"),
            ("/", _) => method_not_allowed("GET, HEAD"),
            ("/admin/traffic", _) => method_not_allowed("GET"),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// `GET /admin/traffic`, from the metrics of this process and the table in force.
    fn traffic(&self) -> Response<Full<Bytes>> {
        let traffic = crate::dashboard::Traffic::gather(&self.state.snapshot(), &self.state.metrics);
        match serde_json::to_value(&traffic) {
            Ok(value) => json_response(StatusCode::OK, &value),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode /admin/traffic");
                text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the traffic figures\n")
            }
        }
    }

    fn routes_json(&self) -> serde_json::Value {
        let snapshot = self.state.snapshot();
        let config = snapshot.config();
        let routes: Vec<serde_json::Value> = config
            .routes
            .iter()
            .map(|r| {
                let mut route = json!({
                    "name": r.name,
                    "kind": r.pattern.kind(),
                    "path": r.pattern.as_str(),
                    "methods": r.methods.as_ref().map(|ms| ms.iter().map(|m| m.as_str()).collect::<Vec<_>>()),
                    "stage": r.stage.as_str(),
                    "legacy": r.legacy,
                    "new": r.new,
                });
                // Optional settings appear only on the routes that have them.
                if let Some(fields) = route.as_object_mut() {
                    if let Some(canary) = &r.canary {
                        fields.insert(
                            "canary".to_owned(),
                            json!({
                                "percent": f64::from(canary.basis_points) / 100.0,
                                "sticky": canary.sticky.as_ref().map(ToString::to_string),
                            }),
                        );
                    }
                    if let Some(max_body) = r.fallback_max_body {
                        fields.insert("fallback".to_owned(), json!({ "max_body": max_body }));
                    }
                }
                route
            })
            .collect();
        json!({
            "version": config.version,
            "loaded_at": humantime::format_rfc3339_seconds(snapshot.loaded_at).to_string(),
            "source": config.source,
            "last_error": self.state.last_error().map(|errors| errors.join("\n")),
            "default_upstream": config.proxy.default_upstream,
            "routes": routes,
        })
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

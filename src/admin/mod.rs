//! The admin API, served on its own listener (never on the public one).
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /` | the migration dashboard, a self-contained HTML page ([`crate::admin::dashboard`]) |
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 once a table is loaded; 503 while draining or while the default upstream fails its health check |
//! | `GET /metrics` | Prometheus text |
//! | `GET /admin/routes` | the table in force, its version and the last reload error |
//! | `GET /admin/parity` | shadow-traffic evidence per route, and the last mismatches |
//! | `GET /admin/upstreams` | per upstream: health-check verdict, ejection, failures in a row |
//! | `GET /admin/traffic` | requests, 5xx and latency per route and side, share to new |
//! | `POST /admin/reload` | 200 `{"result":"ok","version":…}` or 422 `{"result":"error","errors":[…]}` |
//!
//! The JSON documents are the types of [`api`], one per endpoint.
//!
//! With `[proxy] admin_token_file`, every request except `GET`/`HEAD` of `/healthz` and
//! `/readyz` (which load balancers and probes call without credentials) and of `/` (the
//! dashboard page holds no data: its script fetches the data with the token) needs
//! `Authorization: Bearer <token>`, else 401. Without it, the admin API serves only on a
//! loopback address: the config refuses another `admin_listen`, startup refuses another
//! bound address, and should the listener be on another address anyway (a reload removed
//! the setting; listeners are kept until a restart), every request but the health checks
//! gets 403.

pub mod api;
pub mod dashboard;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::admin::api::{
    ListedCanary, ListedFallback, ListedRoute, ParityReport, ReloadAnswer, RouteListing, UpstreamListing,
};
use crate::config::RouteConfig;
use crate::reload::{ReloadOutcome, Reloader, Trigger};
use crate::state::State;

/// The admin service.
#[derive(Debug, Clone)]
pub struct Admin {
    state: Arc<State>,
    reloader: Arc<Reloader>,
    /// The listener is on a non-loopback address: without a token, nothing but the health
    /// checks is served.
    beyond_loopback: bool,
}

impl Admin {
    /// An admin API over the proxy's state.
    pub fn new(state: Arc<State>, reloader: Arc<Reloader>) -> Self {
        Self {
            state,
            reloader,
            beyond_loopback: false,
        }
    }

    /// Tells the admin API the address it is served on.
    pub fn listening_on(mut self, addr: SocketAddr) -> Self {
        self.beyond_loopback = !addr.ip().is_loopback();
        self
    }

    /// `None` if the request may be served, else the refusal. Health checks are always
    /// served; everything else needs the bearer token when one is configured.
    fn refusal(&self, method: &Method, path: &str, headers: &http::HeaderMap) -> Option<Response<Full<Bytes>>> {
        let public = matches!(path, "/healthz" | "/readyz" | "/") && matches!(*method, Method::GET | Method::HEAD);
        if public {
            return None;
        }
        let snapshot = self.state.snapshot();
        let Some(token) = &snapshot.config().proxy.admin_token else {
            if self.beyond_loopback {
                tracing::warn!(
                    path,
                    "admin request refused: the admin API is not on loopback and no `admin_token_file` is set"
                );
                return Some(text(
                    StatusCode::FORBIDDEN,
                    "forbidden: the admin API is not on loopback and no admin_token_file is set\n",
                ));
            }
            return None;
        };
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let presented = match (values.next(), values.next()) {
            (Some(value), None) => bearer(value.as_bytes()),
            _ => None,
        };
        if presented.is_some_and(|presented| token.matches(presented)) {
            return None;
        }
        tracing::info!(
            path,
            %method,
            credentials = if presented.is_some() { "wrong" } else { "missing" },
            "admin request refused: bearer token required"
        );
        let mut response = text(
            StatusCode::UNAUTHORIZED,
            "unauthorized: send Authorization: Bearer <token>\n",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"strangler admin\""),
        );
        Some(response)
    }

    /// Handles one admin request.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(refusal) = self.refusal(request.method(), request.uri().path(), request.headers()) {
            return refusal;
        }
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
            ("/admin/routes", Method::GET) => json_response(StatusCode::OK, &self.route_listing()),
            ("/admin/parity", Method::GET) => self.parity(),
            ("/admin/upstreams", Method::GET) => self.upstreams(),
            ("/", Method::GET | Method::HEAD) => crate::admin::dashboard::page(),
            ("/admin/traffic", Method::GET) => json_response(
                StatusCode::OK,
                &crate::admin::dashboard::traffic(&self.state.snapshot(), &self.state.metrics),
            ),
            ("/admin/reload", Method::POST) => match self.reloader.reload(Trigger::Admin).await {
                ReloadOutcome::Applied { version } | ReloadOutcome::Unchanged { version } => {
                    json_response(StatusCode::OK, &ReloadAnswer::Ok { version })
                }
                ReloadOutcome::Rejected { errors } => {
                    json_response(StatusCode::UNPROCESSABLE_ENTITY, &ReloadAnswer::Error { errors })
                }
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

    /// `GET /admin/routes`: the table in force.
    fn route_listing(&self) -> RouteListing {
        let snapshot = self.state.snapshot();
        let config = snapshot.config();
        RouteListing {
            version: config.version.clone(),
            loaded_at: humantime::format_rfc3339_seconds(snapshot.loaded_at).to_string(),
            source: config.source.clone(),
            last_error: self.state.last_error().map(|errors| errors.join("\n")),
            default_upstream: config.proxy.default_upstream.clone(),
            routes: config.routes.iter().map(listed_route).collect(),
        }
    }

    /// `GET /admin/parity`: the ledger's evidence, each route with its stage in force.
    fn parity(&self) -> Response<Full<Bytes>> {
        let snapshot = self.state.snapshot();
        let stage_of = |name: &str| {
            snapshot
                .config()
                .routes
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.stage.as_str())
        };
        match retype::<ParityReport>(self.state.ledger.to_json(stage_of)) {
            Ok(report) => json_response(StatusCode::OK, &report),
            Err(e) => cannot_encode("/admin/parity", &e),
        }
    }

    /// `GET /admin/upstreams`: every upstream's health and ejection.
    fn upstreams(&self) -> Response<Full<Bytes>> {
        let snapshot = self.state.snapshot();
        let reports: Vec<_> = snapshot.upstreams.iter().map(|u| u.health.report()).collect();
        match retype::<Vec<_>>(reports) {
            Ok(upstreams) => json_response(StatusCode::OK, &UpstreamListing { upstreams }),
            Err(e) => cannot_encode("/admin/upstreams", &e),
        }
    }
}

/// A route of `GET /admin/routes`.
fn listed_route(route: &RouteConfig) -> ListedRoute {
    ListedRoute {
        name: route.name.clone(),
        kind: route.pattern.kind().to_owned(),
        path: route.pattern.as_str().to_owned(),
        methods: route
            .methods
            .as_ref()
            .map(|methods| methods.iter().map(|m| m.as_str().to_owned()).collect()),
        stage: route.stage.as_str().to_owned(),
        legacy: route.legacy.clone(),
        new: route.new.clone(),
        canary: route.canary.as_ref().map(|canary| ListedCanary {
            percent: f64::from(canary.basis_points) / 100.0,
            sticky: canary.sticky.as_ref().map(ToString::to_string),
        }),
        fallback: route.fallback_max_body.map(|max_body| ListedFallback {
            max_body: max_body as u64,
        }),
        max_body: route.max_body,
    }
}

/// A document that a lower module writes in the admin API's shape (the parity ledger,
/// an upstream's health report), read as its [`api`] type: what goes on the wire is the
/// api type, whatever the lower module's own serialisation adds.
fn retype<T: DeserializeOwned>(document: impl Serialize) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::to_value(document)?)
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive, RFC 9110
/// §11.1), or `None` for another scheme or an empty token.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
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

/// `value` as pretty JSON. Written through a [`serde_json::Value`], so object keys are in
/// alphabetical order, as they always were on this API.
fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let body = match serde_json::to_value(value).and_then(|value| serde_json::to_vec_pretty(&value)) {
        Ok(body) => body,
        Err(e) => return cannot_encode("a JSON answer", &e),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// 500 for a document that cannot be encoded (a bug: every api type is plain data).
fn cannot_encode(what: &str, error: &serde_json::Error) -> Response<Full<Bytes>> {
    tracing::error!(error = %error, what, "cannot encode an admin answer");
    text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the answer\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::state::Snapshot;
    use crate::table::Table;

    fn admin(token: bool, listening_on: &str) -> Admin {
        let text = "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndefault_upstream = \"a\"\n\
                    [upstreams.a]\nurl = \"http://127.0.0.1:1\"\n";
        let mut table = Table::parse("routes.toml", text).unwrap();
        if token {
            table.config.proxy.admin_token = Some(crate::config::AdminToken::new(b"t0ken"));
        }
        let metrics = Metrics::new().unwrap();
        let snapshot = Snapshot::build(table, None, &metrics, 1).unwrap();
        let state = Arc::new(State::new("routes.toml".into(), snapshot, metrics, 1));
        let reloader = Arc::new(Reloader::new(state.clone()));
        Admin::new(state, reloader).listening_on(listening_on.parse().unwrap())
    }

    fn status(admin: &Admin, method: Method, path: &str, authorization: Option<&str>) -> StatusCode {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        admin
            .refusal(&method, path, &headers)
            .map_or(StatusCode::OK, |refused| refused.status())
    }

    #[test]
    fn beyond_loopback_without_a_token_only_health_checks_are_served() {
        // A reload can remove `admin_token_file` while the listener (kept until a restart)
        // is on a public address: fail closed.
        let exposed = admin(false, "0.0.0.0:9100");
        assert_eq!(status(&exposed, Method::GET, "/healthz", None), StatusCode::OK);
        assert_eq!(status(&exposed, Method::HEAD, "/readyz", None), StatusCode::OK);
        for path in ["/metrics", "/admin/routes", "/admin/parity", "/admin/reload"] {
            assert_eq!(
                status(&exposed, Method::GET, path, None),
                StatusCode::FORBIDDEN,
                "{path}"
            );
        }
        let local = admin(false, "127.0.0.1:9100");
        assert_eq!(status(&local, Method::GET, "/metrics", None), StatusCode::OK);
        let protected = admin(true, "0.0.0.0:9100");
        assert_eq!(
            status(&protected, Method::GET, "/metrics", None),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(&protected, Method::GET, "/metrics", Some("Bearer t0ken")),
            StatusCode::OK
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"BEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b""), None);
    }
}

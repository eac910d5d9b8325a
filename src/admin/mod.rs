//! The admin API, served on its own listener (never on the public one).
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /` | the migration dashboard, a self-contained HTML page ([`crate::admin::dashboard`]) |
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 once a table is loaded; 503 while draining or while the default upstream fails its health check |
//! | `GET /metrics` | Prometheus text |
//! | `GET /admin/routes` | the table in force, its version and the last reload error |
//! | `GET /admin/parity` | shadow-traffic evidence per route and evidence period, and the last mismatches |
//! | `GET /admin/upstreams` | per upstream: health-check verdict, ejection, failures in a row |
//! | `GET /admin/traffic` | requests, 5xx and latency per route and side (since the start, in the current period, in the last minute), share to new |
//! | `GET /admin/history` | per route and side, minute by minute over the last hour: requests, req/s, 5xx, p99 (the dashboard's sparklines) |
//! | `POST /admin/reload` | 200 `{"result":"ok","version":…,"changes":{"added","removed","changed"}}` or 422 `{"result":"error","errors":[…]}` |
//!
//! The JSON documents are the types of [`api`], one per endpoint, built by [`documents`]
//! from the plain data of the lower modules (the table, the parity ledger, upstream health).
//!
//! With `[proxy] admin_token_file`, every request except `GET`/`HEAD` of `/healthz` and
//! `/readyz` (which load balancers and probes call without credentials) and of `/` (the
//! dashboard page holds no data: its script fetches the data with the token) needs
//! `Authorization: Bearer <token>`, else 401. Without it, the admin API serves only on a
//! loopback address: the config refuses another `admin_listen`, startup refuses another
//! bound address, and should the listener be on another address anyway (a reload removed
//! the setting; listeners are kept until a restart), every request but the health checks
//! gets 403.
//!
//! Before all of that, [`guard`] refuses what only a browser tricked by another site would
//! send: a `Host` that is not an IP literal, `localhost` or a name in `[proxy] admin_hosts`
//! (421, the DNS-rebinding case), and a state-changing request from a foreign `Origin` (403).

pub mod api;
pub mod dashboard;
pub mod documents;
mod guard;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::admin::api::{ParityReport, ReloadAnswer, RouteListing, UpstreamListing};
use crate::admin::documents::{listed_route, parity_report};
use crate::config::RouteChanges;
use crate::history::{SAMPLE_EVERY, TrafficHistory};
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
    /// Each route's last hour (`GET /admin/history`), filled by [`Admin::keep_history`]
    /// and before each read; one for the process, so it outlives reloads.
    history: Arc<Mutex<TrafficHistory>>,
}

impl Admin {
    /// An admin API over the proxy's state.
    pub fn new(state: Arc<State>, reloader: Arc<Reloader>) -> Self {
        Self {
            state,
            reloader,
            beyond_loopback: false,
            history: Arc::default(),
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

    /// The [`guard`]'s refusal of a request only a browser on another site would send, as
    /// the answer: 421 naming the refused `Host`, or 403 naming the foreign `Origin`.
    fn browser_refusal(&self, request: &http::request::Parts) -> Option<Response<Full<Bytes>>> {
        let snapshot = self.state.snapshot();
        let admin_hosts = &snapshot.config().proxy.admin_hosts;
        match guard::check(&request.method, &request.uri, &request.headers, admin_hosts).err()? {
            guard::Refusal::Host(host) => {
                tracing::warn!(
                    host,
                    path = request.uri.path(),
                    "admin request refused: Host not allowed"
                );
                Some(owned_text(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "misdirected request: the admin API does not answer to Host `{host}`; use an IP \
                         address or localhost, or list the name in [proxy] admin_hosts\n"
                    ),
                ))
            }
            guard::Refusal::Origin { origin, host } => {
                tracing::warn!(origin, method = %request.method, path = request.uri.path(), "admin request refused: foreign Origin");
                let own = host.map_or_else(|| "none: the request has no Host".to_owned(), |h| format!("http://{h}"));
                Some(owned_text(
                    StatusCode::FORBIDDEN,
                    format!(
                        "forbidden: a {} from Origin `{origin}` (this listener's origin: {own}); \
                         send it without an Origin header, as command-line clients do\n",
                        request.method
                    ),
                ))
            }
        }
    }

    /// Handles one admin request. No endpoint reads a request body, so any body type does:
    /// the server passes hyper's, the unit tests an in-memory one.
    pub async fn handle<B: http_body::Body>(&self, request: Request<B>) -> Response<Full<Bytes>> {
        // The body is dropped here: the answer (a reload included) never waits on it.
        let (request, _body) = request.into_parts();
        if let Some(refusal) = self.browser_refusal(&request) {
            return refusal;
        }
        if let Some(refusal) = self.refusal(&request.method, request.uri.path(), &request.headers) {
            return refusal;
        }
        match (request.uri.path(), request.method) {
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
            ("/admin/parity", Method::GET) => json_response(StatusCode::OK, &self.parity()),
            ("/admin/upstreams", Method::GET) => json_response(StatusCode::OK, &self.upstreams()),
            ("/", Method::GET | Method::HEAD) => crate::admin::dashboard::page(),
            ("/admin/traffic", Method::GET) => json_response(
                StatusCode::OK,
                &crate::admin::dashboard::traffic(&self.state.snapshot(), &self.state.metrics),
            ),
            ("/admin/history", Method::GET) => json_response(StatusCode::OK, &self.history()),
            ("/admin/reload", Method::POST) => match self.reloader.reload(Trigger::Admin).await {
                ReloadOutcome::Applied { version, changes } => {
                    json_response(StatusCode::OK, &ReloadAnswer::Ok { version, changes })
                }
                ReloadOutcome::Unchanged { version } => json_response(
                    StatusCode::OK,
                    &ReloadAnswer::Ok {
                        version,
                        changes: RouteChanges::default(),
                    },
                ),
                ReloadOutcome::Rejected { errors } => {
                    json_response(StatusCode::UNPROCESSABLE_ENTITY, &ReloadAnswer::Error { errors })
                }
            },
            ("/healthz" | "/readyz" | "/metrics" | "/admin/routes" | "/admin/parity" | "/admin/upstreams", _) => {
                method_not_allowed("GET")
            }
            ("/admin/reload", _) => method_not_allowed("POST"),
            ("/", _) => method_not_allowed("GET, HEAD"),
            ("/admin/traffic" | "/admin/history", _) => method_not_allowed("GET"),
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
            instance: Some(self.state.instance.clone()),
        }
    }

    /// `GET /admin/parity`: the ledger's evidence (per route: the current evidence period,
    /// the previous one, the totals), each route with its stage in force.
    fn parity(&self) -> ParityReport {
        let snapshot = self.state.snapshot();
        let routes = &snapshot.config().routes;
        let stage_of = |name: &str| routes.iter().find(|r| r.name == name).map(|r| r.stage.as_str());
        let mut report = parity_report(self.state.ledger.evidence(), stage_of);
        report.mismatch_groups = crate::admin::dashboard::group_mismatches(&report.mismatches);
        report
    }

    /// Adds what the routes of the table in force answered since the last sample to their
    /// history.
    pub fn sample_history(&self) {
        let snapshot = self.state.snapshot();
        let routes = snapshot.routes.iter().map(|route| (&route.name, &route.windows));
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.sample(routes, Instant::now(), SystemTime::now());
    }

    /// Samples the routes' history every [`SAMPLE_EVERY`], for ever (the caller aborts it).
    pub async fn keep_history(self) {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.sample_history();
        }
    }

    /// `GET /admin/history`: each route's last hour, the current minute up to now.
    fn history(&self) -> crate::admin::api::History {
        self.sample_history();
        let snapshot = self.state.snapshot();
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        crate::admin::dashboard::history(&snapshot, &history, SystemTime::now())
    }

    /// `GET /admin/upstreams`: every upstream's health and ejection.
    fn upstreams(&self) -> UpstreamListing {
        let snapshot = self.state.snapshot();
        UpstreamListing {
            upstreams: snapshot.upstreams.iter().map(|u| u.health.report().into()).collect(),
        }
    }
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
    owned_text(status, body.to_owned())
}

fn owned_text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
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
    //! The admin service without sockets: requests with in-memory bodies, a state built from
    //! a TOML table, the answers decoded into the [`api`] types.

    use http::HeaderMap;
    use http_body_util::{BodyExt, Empty};
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::admin::api::{ListedFallback, Traffic, UpstreamListing};
    use crate::metrics::Metrics;
    use crate::migration::period::EvidencePeriod;
    use crate::migration::shadow::ShadowResult;
    use crate::parity::{Comparison, Diff, Outcome};
    use crate::state::Snapshot;
    use crate::table::Table;

    /// Two upstreams; a canary with every optional setting, an exact route with methods
    /// and a fallback, a template canary without `sticky`.
    const TABLE: &str = "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndefault_upstream = \"legacy\"\n\
        [upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n[upstreams.next]\nurl = \"http://127.0.0.1:2\"\n\
        [[routes]]\nname = \"api\"\npath = \"/api/\"\nstage = \"canary\"\nnew = \"next\"\n\
        canary = { percent = 12.5, sticky = \"cookie:sid\" }\nmax_body = 1000\n\
        [[routes]]\nname = \"login\"\nexact = \"/login\"\nmethods = [\"POST\"]\nfallback = true\n\
        fallback_max_body = 4096\nnew = \"next\"\nstage = \"new\"\n\
        [[routes]]\nname = \"t\"\npath = \"/t/{id}\"\ncanary = { percent = 5 }\nstage = \"canary\"\nnew = \"next\"\n";

    /// `GET /admin/routes` for [`TABLE`] as the handler wrote it before its answer had a
    /// type (`json!`, keys sorted), `loaded_at` replaced by `X`.
    const ROUTES_ANSWER: &str = r#"{
  "default_upstream": "legacy",
  "instance": "I",
  "last_error": null,
  "loaded_at": "X",
  "routes": [
    {
      "canary": {
        "percent": 12.5,
        "sticky": "cookie:sid"
      },
      "kind": "prefix",
      "legacy": "legacy",
      "max_body": 1000,
      "methods": null,
      "name": "api",
      "new": "next",
      "path": "/api/",
      "stage": "canary"
    },
    {
      "fallback": {
        "max_body": 4096
      },
      "kind": "exact",
      "legacy": "legacy",
      "methods": [
        "POST"
      ],
      "name": "login",
      "new": "next",
      "path": "/login",
      "stage": "new"
    },
    {
      "canary": {
        "percent": 5.0,
        "sticky": null
      },
      "kind": "template",
      "legacy": "legacy",
      "methods": null,
      "name": "t",
      "new": "next",
      "path": "/t/{id}",
      "stage": "canary"
    }
  ],
  "source": "routes.toml",
  "version": "fc1c80b57c5f"
}"#;

    /// `GET /admin/upstreams` for [`TABLE`] before any check, as it was written before.
    const UPSTREAMS_ANSWER: &str = r#"{
  "upstreams": [
    {
      "consecutive_failures": 0,
      "ejected": false,
      "ejected_until": null,
      "health": {
        "checked": false,
        "healthy": null,
        "last_check": null,
        "last_error": null
      },
      "name": "legacy",
      "url": "http://127.0.0.1:1/"
    },
    {
      "consecutive_failures": 0,
      "ejected": false,
      "ejected_until": null,
      "health": {
        "checked": false,
        "healthy": null,
        "last_check": null,
        "last_error": null
      },
      "name": "next",
      "url": "http://127.0.0.1:2/"
    }
  ]
}"#;

    /// `GET /admin/upstreams` after two failures in a row at `next` ([`TABLE`] with
    /// `[upstreams.next.outlier] consecutive_failures = 2`), as it was written before the
    /// health report was plain data; `ejected_until` replaced by `X`.
    const EJECTED_ANSWER: &str = r#"{
  "upstreams": [
    {
      "consecutive_failures": 0,
      "ejected": false,
      "ejected_until": null,
      "health": {
        "checked": false,
        "healthy": null,
        "last_check": null,
        "last_error": null
      },
      "name": "legacy",
      "url": "http://127.0.0.1:1/"
    },
    {
      "consecutive_failures": 2,
      "ejected": true,
      "ejected_until": "X",
      "health": {
        "checked": false,
        "healthy": null,
        "last_check": null,
        "last_error": null
      },
      "name": "next",
      "url": "http://127.0.0.1:2/"
    }
  ]
}"#;

    /// `GET /admin/parity` after the outcomes and mismatches of
    /// `parity_answer_is_the_ledger_byte_for_byte`, as it was written before the ledger's
    /// evidence was plain data (secret headers redacted, `at` and `since` replaced by `X`);
    /// since evidence periods (issue 17), each route also has its `evidence` and `total`,
    /// each mismatch its `period`, and every route with a new upstream is listed.
    const PARITY_ANSWER: &str = r#"{
  "mismatch_groups": [
    {
      "count": 1,
      "first_at": "X",
      "newest": {
        "at": "X",
        "diffs": [],
        "method": "POST",
        "path": "/t/1",
        "period": "e5d76531c620",
        "route": "t",
        "status": [
          201,
          201
        ]
      },
      "pointer": null,
      "route": "t",
      "status": [
        201,
        201
      ]
    },
    {
      "count": 1,
      "first_at": "X",
      "newest": {
        "at": "X",
        "diffs": [
          {
            "legacy": "200",
            "new": "500",
            "pointer": "status"
          },
          {
            "legacy": "[redacted]",
            "new": "[redacted]",
            "pointer": "header:authorization"
          },
          {
            "legacy": "[redacted]",
            "new": "[redacted]",
            "pointer": "header:x-secret"
          },
          {
            "legacy": "p1",
            "new": "(absent)",
            "pointer": "header:x-plain"
          },
          {
            "legacy": "(absent)",
            "new": "[redacted]",
            "pointer": "header:cookie"
          },
          {
            "legacy": "\"same\"",
            "new": "\"différent\\n\"",
            "pointer": "/text"
          }
        ],
        "method": "GET",
        "path": "/api/x?q=1",
        "period": "e5d76531c620",
        "request_id": "req-1",
        "route": "api",
        "status": [
          200,
          500
        ]
      },
      "pointer": "status",
      "route": "api",
      "status": [
        200,
        500
      ]
    }
  ],
  "mismatches": [
    {
      "at": "X",
      "diffs": [],
      "method": "POST",
      "path": "/t/1",
      "period": "e5d76531c620",
      "route": "t",
      "status": [
        201,
        201
      ]
    },
    {
      "at": "X",
      "diffs": [
        {
          "legacy": "200",
          "new": "500",
          "pointer": "status"
        },
        {
          "legacy": "[redacted]",
          "new": "[redacted]",
          "pointer": "header:authorization"
        },
        {
          "legacy": "[redacted]",
          "new": "[redacted]",
          "pointer": "header:x-secret"
        },
        {
          "legacy": "p1",
          "new": "(absent)",
          "pointer": "header:x-plain"
        },
        {
          "legacy": "(absent)",
          "new": "[redacted]",
          "pointer": "header:cookie"
        },
        {
          "legacy": "\"same\"",
          "new": "\"différent\\n\"",
          "pointer": "/text"
        }
      ],
      "method": "GET",
      "path": "/api/x?q=1",
      "period": "e5d76531c620",
      "request_id": "req-1",
      "route": "api",
      "status": [
        200,
        500
      ]
    }
  ],
  "routes": {
    "api": {
      "dropped": 0,
      "error": 1,
      "evidence": {
        "legacy": {
          "name": "legacy",
          "url": "http://127.0.0.1:1/"
        },
        "new": {
          "name": "next",
          "url": "http://127.0.0.1:2/"
        },
        "period": "e5d76531c620",
        "rules": "cf2058d939dd",
        "since": "X",
        "stage": "canary"
      },
      "match": 2,
      "match_rate": 0.6,
      "mismatch": 1,
      "noise": 1,
      "skipped": 1,
      "stage": "canary",
      "total": {
        "dropped": 0,
        "error": 1,
        "match": 2,
        "match_rate": 0.6,
        "mismatch": 1,
        "noise": 1,
        "skipped": 1,
        "stage": "canary",
        "window_match_rate": 0.6
      },
      "window_match_rate": 0.6
    },
    "gone": {
      "dropped": 1,
      "error": 0,
      "evidence": {
        "legacy": {
          "name": "legacy",
          "url": "http://127.0.0.1:1/"
        },
        "new": {
          "name": "next",
          "url": "http://127.0.0.1:2/"
        },
        "period": "c62af58c0f8a",
        "rules": "gone-rules",
        "since": "X",
        "stage": "canary"
      },
      "match": 0,
      "match_rate": null,
      "mismatch": 0,
      "noise": 0,
      "skipped": 0,
      "stage": null,
      "total": {
        "dropped": 1,
        "error": 0,
        "match": 0,
        "match_rate": null,
        "mismatch": 0,
        "noise": 0,
        "skipped": 0,
        "stage": null,
        "window_match_rate": null
      },
      "window_match_rate": null
    },
    "login": {
      "dropped": 0,
      "error": 0,
      "evidence": {
        "legacy": {
          "name": "legacy",
          "url": "http://127.0.0.1:1/"
        },
        "new": {
          "name": "next",
          "url": "http://127.0.0.1:2/"
        },
        "period": "34baf8cf6b3a",
        "rules": "cf2058d939dd",
        "since": "X",
        "stage": "new"
      },
      "match": 0,
      "match_rate": null,
      "mismatch": 0,
      "noise": 0,
      "skipped": 0,
      "stage": "new",
      "total": {
        "dropped": 0,
        "error": 0,
        "match": 0,
        "match_rate": null,
        "mismatch": 0,
        "noise": 0,
        "skipped": 0,
        "stage": "new",
        "window_match_rate": null
      },
      "window_match_rate": null
    },
    "t": {
      "dropped": 0,
      "error": 0,
      "evidence": {
        "legacy": {
          "name": "legacy",
          "url": "http://127.0.0.1:1/"
        },
        "new": {
          "name": "next",
          "url": "http://127.0.0.1:2/"
        },
        "period": "e5d76531c620",
        "rules": "cf2058d939dd",
        "since": "X",
        "stage": "canary"
      },
      "match": 1,
      "match_rate": 0.3333333333333333,
      "mismatch": 2,
      "noise": 0,
      "skipped": 0,
      "stage": "canary",
      "total": {
        "dropped": 0,
        "error": 0,
        "match": 1,
        "match_rate": 0.3333333333333333,
        "mismatch": 2,
        "noise": 0,
        "skipped": 0,
        "stage": "canary",
        "window_match_rate": 0.3333333333333333
      },
      "window_match_rate": 0.3333333333333333
    }
  }
}"#;

    /// An admin API over [`TABLE`], its config file in a temporary directory (for reloads).
    struct Fixture {
        admin: Admin,
        state: Arc<State>,
        file: std::path::PathBuf,
        _dir: tempfile::TempDir,
    }

    /// The evidence period of `route` in the fixture's table; a period of its own for a
    /// route the table does not have.
    fn period_of(f: &Fixture, route: &str) -> Arc<EvidencePeriod> {
        let snapshot = f.state.snapshot();
        match snapshot.routes.iter().find(|r| &*r.name == route) {
            Some(found) => found.period.clone(),
            None => {
                let first = &snapshot.config().routes[0];
                let mut identity = crate::config::EvidenceIdentity::of(snapshot.config(), first);
                identity.rules = format!("{route}-rules");
                EvidencePeriod::carry(None, identity)
            }
        }
    }

    fn fixture(token: Option<&[u8]>, listening_on: &str) -> Fixture {
        fixture_of(TABLE, token, listening_on)
    }

    fn fixture_of(text: &str, token: Option<&[u8]>, listening_on: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("routes.toml");
        std::fs::write(&file, text).unwrap();
        let mut table = Table::parse("routes.toml", text).unwrap();
        table.config.proxy.admin_token = token.map(crate::config::AdminToken::new);
        let metrics = Metrics::new().unwrap();
        let snapshot = Snapshot::build(table, None, &metrics, 1).unwrap();
        let state = Arc::new(State::new(file.clone(), snapshot, metrics, 1));
        let reloader = Arc::new(Reloader::new(state.clone()));
        let admin = Admin::new(state.clone(), reloader).listening_on(listening_on.parse().unwrap());
        Fixture {
            admin,
            state,
            file,
            _dir: dir,
        }
    }

    /// An answer, its body collected.
    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    impl Answer {
        fn json<T: DeserializeOwned>(&self) -> T {
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
        }
    }

    async fn collect(response: Response<Full<Bytes>>) -> Answer {
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    /// `method path` with an empty body and, if given, that `Authorization` value.
    async fn call(admin: &Admin, method: Method, path: &str, authorization: Option<&str>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        collect(admin.handle(request.body(Empty::<Bytes>::new()).unwrap()).await).await
    }

    async fn get(admin: &Admin, path: &str) -> Answer {
        call(admin, Method::GET, path, None).await
    }

    #[tokio::test]
    async fn health_checks_metrics_and_the_page() {
        let f = fixture(None, "127.0.0.1:9100");
        let healthz = get(&f.admin, "/healthz").await;
        assert_eq!((healthz.status, healthz.body.as_str()), (StatusCode::OK, "ok\n"));
        let readyz = get(&f.admin, "/readyz").await;
        assert_eq!((readyz.status, readyz.body.as_str()), (StatusCode::OK, "ready\n"));
        f.state.set_not_ready();
        let draining = call(&f.admin, Method::HEAD, "/readyz", None).await;
        assert_eq!(draining.status, StatusCode::SERVICE_UNAVAILABLE);

        let metrics = get(&f.admin, "/metrics").await;
        assert_eq!(metrics.status, StatusCode::OK);
        assert_eq!(
            metrics.headers[header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert!(
            metrics
                .body
                .contains("strangler_config_info{version=\"fc1c80b57c5f\"} 1"),
            "{}",
            metrics.body
        );

        let page = get(&f.admin, "/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(page.body, crate::admin::dashboard::PAGE);
    }

    #[tokio::test]
    async fn routes_answer_is_the_table_in_force_byte_for_byte() {
        let f = fixture(None, "127.0.0.1:9100");
        let answer = get(&f.admin, "/admin/routes").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
        let listing: RouteListing = answer.json();
        assert_eq!(listing.version, f.state.snapshot().config().version);
        assert!(
            humantime::parse_rfc3339(&listing.loaded_at).is_ok(),
            "{}",
            listing.loaded_at
        );
        assert_eq!(
            answer
                .body
                .replace(&listing.loaded_at, "X")
                .replace(&f.state.instance, "I"),
            ROUTES_ANSWER,
            "the wire format changed"
        );
        let instance = listing.instance.as_deref().unwrap_or_default();
        assert!(
            instance.len() == 16 && instance.chars().all(|c| c.is_ascii_hexdigit()),
            "{instance:?}"
        );
        assert_ne!(instance, crate::state::instance_id(), "one id per process start");
        let login = &listing.routes[1];
        assert_eq!(login.methods.as_deref(), Some(&["POST".to_owned()][..]));
        assert_eq!(login.fallback, Some(ListedFallback { max_body: 4096 }));
        assert_eq!((login.canary.as_ref(), login.max_body), (None, None));
    }

    #[tokio::test]
    async fn upstreams_answer_lists_every_upstream_byte_for_byte() {
        let f = fixture(None, "127.0.0.1:9100");
        let answer = get(&f.admin, "/admin/upstreams").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, UPSTREAMS_ANSWER, "the wire format changed");
        let listing: UpstreamListing = answer.json();
        let names: Vec<&str> = listing.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["legacy", "next"]);
        assert!(
            listing
                .upstreams
                .iter()
                .all(|u| !u.health.checked && u.health.healthy.is_none())
        );
    }

    #[tokio::test]
    async fn parity_answer_counts_per_route_with_the_stage_in_force() {
        let f = fixture(None, "127.0.0.1:9100");
        for result in [
            ShadowResult::Match,
            ShadowResult::Match,
            ShadowResult::Noise,
            ShadowResult::Mismatch,
        ] {
            f.state.ledger.record("api", &period_of(&f, "api"), result);
        }
        f.state
            .ledger
            .record("gone", &period_of(&f, "gone"), ShadowResult::Dropped);
        let comparison = Comparison {
            outcome: Outcome::Mismatch,
            diffs: vec![Diff {
                pointer: "/text".to_owned(),
                legacy: "\"same\"".to_owned(),
                new: "\"different\"".to_owned(),
            }],
            truncated: false,
            noisy: Vec::new(),
        };
        f.state
            .ledger
            .record_mismatch("api", "p", "GET", "/api/x", [200, 200], &comparison, &[], None);

        let answer = get(&f.admin, "/admin/parity").await;
        assert_eq!(answer.status, StatusCode::OK);
        let report: ParityReport = answer.json();
        let api = &report.routes["api"];
        assert_eq!(api.stage.as_deref(), Some("canary"));
        assert_eq!((api.matched, api.noise, api.mismatch, api.error), (2, 1, 1, 0));
        assert_eq!(api.match_rate, Some(0.75));
        assert_eq!(api.requests, None, "the proxy does not count requests here");
        let gone = &report.routes["gone"];
        assert_eq!((gone.stage.as_deref(), gone.dropped, gone.match_rate), (None, 1, None));
        let [mismatch] = &report.mismatches[..] else {
            panic!("{:?}", report.mismatches)
        };
        assert_eq!((mismatch.route.as_str(), mismatch.path.as_str()), ("api", "/api/x"));
        assert_eq!(mismatch.diffs[0].pointer, "/text");
        assert!(!mismatch.truncated);
        // Absent stays absent, null stays null; keys in alphabetical order.
        assert!(
            !answer.body.contains("requests") && !answer.body.contains("truncated"),
            "{}",
            answer.body
        );
        assert!(answer.body.contains("\"stage\": null"), "{}", answer.body);
        let keys = [
            "\"dropped\"",
            "\"error\"",
            "\"match\"",
            "\"match_rate\"",
            "\"mismatch\"",
            "\"noise\"",
        ];
        let at: Vec<usize> = keys.iter().map(|k| answer.body.find(k).unwrap()).collect();
        assert!(at.is_sorted(), "{}", answer.body);
    }

    #[tokio::test]
    async fn an_ejected_upstream_byte_for_byte() {
        let text = TABLE.replace(
            "[upstreams.next]\nurl = \"http://127.0.0.1:2\"\n",
            "[upstreams.next]\nurl = \"http://127.0.0.1:2\"\n\
             [upstreams.next.outlier]\nconsecutive_failures = 2\nbase_ejection = \"60s\"\n",
        );
        assert_ne!(text, TABLE);
        let f = fixture_of(&text, None, "127.0.0.1:9100");
        let snapshot = f.state.snapshot();
        let next = &snapshot
            .upstreams
            .iter()
            .find(|u| u.health.report().name == "next")
            .unwrap()
            .health;
        for _ in 0..2 {
            let ticket = next.admit().unwrap();
            next.record(ticket, false);
        }
        let answer = get(&f.admin, "/admin/upstreams").await;
        assert_eq!(answer.status, StatusCode::OK);
        let listing: UpstreamListing = answer.json();
        let until = listing.upstreams[1].ejected_until.as_deref().unwrap();
        let until = humantime::parse_rfc3339(until).unwrap();
        let ahead = until.duration_since(std::time::SystemTime::now()).unwrap();
        assert!(ahead > std::time::Duration::from_secs(50), "{ahead:?}");
        let until = listing.upstreams[1].ejected_until.as_deref().unwrap();
        assert_eq!(
            answer.body.replace(until, "X"),
            EJECTED_ANSWER,
            "the wire format changed"
        );
    }

    #[tokio::test]
    async fn parity_answer_is_the_ledger_byte_for_byte() {
        let f = fixture(None, "127.0.0.1:9100");
        let ledger = &f.state.ledger;
        for result in [
            ShadowResult::Match,
            ShadowResult::Match,
            ShadowResult::Noise,
            ShadowResult::Mismatch,
            ShadowResult::Error,
            ShadowResult::Skipped,
        ] {
            ledger.record("api", &period_of(&f, "api"), result);
        }
        ledger.record("gone", &period_of(&f, "gone"), ShadowResult::Dropped);
        for result in [ShadowResult::Match, ShadowResult::Mismatch, ShadowResult::Mismatch] {
            ledger.record("t", &period_of(&f, "t"), result);
        }
        let diff = |pointer: &str, legacy: &str, new: &str| Diff {
            pointer: pointer.to_owned(),
            legacy: legacy.to_owned(),
            new: new.to_owned(),
        };
        let absent = crate::parity::ABSENT;
        let comparison = Comparison {
            outcome: Outcome::Mismatch,
            diffs: vec![
                diff("status", "200", "500"),
                diff("header:authorization", "Bearer a", "Bearer b"),
                diff("header:x-secret", "s1", "s2"),
                diff("header:x-plain", "p1", absent),
                diff("header:cookie", absent, "c=1"),
                diff("/text", "\"same\"", "\"diff\u{e9}rent\\n\""),
            ],
            truncated: true,
            noisy: Vec::new(),
        };
        let secret = [http::HeaderName::from_static("x-secret")];
        let api = period_of(&f, "api");
        ledger.record_mismatch(
            "api",
            &api.id,
            "GET",
            "/api/x?q=1",
            [200, 500],
            &comparison,
            &secret,
            Some("req-1"),
        );
        let empty = Comparison {
            diffs: Vec::new(),
            ..comparison.clone()
        };
        let t = period_of(&f, "t");
        ledger.record_mismatch("t", &t.id, "POST", "/t/1", [201, 201], &empty, &[], None);

        let answer = get(&f.admin, "/admin/parity").await;
        assert_eq!(answer.status, StatusCode::OK);
        let report: ParityReport = answer.json();
        let mut body = answer.body.clone();
        for mismatch in &report.mismatches {
            assert!(humantime::parse_rfc3339(&mismatch.at).is_ok(), "{}", mismatch.at);
            body = body.replace(&format!("\"at\": \"{}\"", mismatch.at), "\"at\": \"X\"");
            body = body.replace(&format!("\"first_at\": \"{}\"", mismatch.at), "\"first_at\": \"X\"");
        }
        // Two mismatches, unlike each other: two groups of one, the newest first.
        let groups: Vec<(&str, u64)> = report
            .mismatch_groups
            .iter()
            .map(|g| (g.route.as_str(), g.count))
            .collect();
        assert_eq!(groups, [("t", 1), ("api", 1)]);
        assert_eq!(report.mismatch_groups[1].newest, report.mismatches[1]);
        for route in report.routes.values() {
            let since = &route.evidence.as_ref().unwrap().since;
            assert!(humantime::parse_rfc3339(since).is_ok(), "{since}");
            body = body.replace(&format!("\"since\": \"{since}\""), "\"since\": \"X\"");
        }
        assert_eq!(body, PARITY_ANSWER, "the wire format changed");
    }

    #[tokio::test]
    async fn traffic_answer_counts_per_route_and_side() {
        let f = fixture(None, "127.0.0.1:9100");
        let requests = &f.state.metrics.requests;
        requests.with_label_values(&["api", "legacy", "GET", "200"]).inc_by(3);
        requests.with_label_values(&["api", "next", "GET", "502"]).inc();
        let answer = get(&f.admin, "/admin/traffic").await;
        assert_eq!(answer.status, StatusCode::OK);
        let traffic: Traffic = answer.json();
        let api = &traffic.routes[0];
        assert_eq!((api.route.as_str(), api.stage.as_str()), ("api", "canary"));
        assert_eq!(api.legacy.requests, 3);
        let new = api.new.as_ref().unwrap();
        assert_eq!((new.upstream.as_str(), new.requests, new.status_5xx), ("next", 1, 1));
        assert_eq!(api.lifetime_new_share, Some(0.25));
        // The current period's share counts the route's windows, which saw nothing.
        assert_eq!(api.new_share, None);
        assert_eq!(traffic.version, "fc1c80b57c5f");
    }

    #[tokio::test]
    async fn history_answer_has_the_current_minute_of_every_route() {
        let f = fixture(None, "127.0.0.1:9100");
        let snapshot = f.state.snapshot();
        for _ in 0..3 {
            snapshot.routes[0].windows.here().record(
                crate::window::WindowSide::Legacy,
                Instant::now(),
                std::time::Duration::from_millis(2),
                false,
            );
        }
        let answer = get(&f.admin, "/admin/history").await;
        assert_eq!(answer.status, StatusCode::OK);
        let history: crate::admin::api::History = answer.json();
        assert_eq!(history.bucket_seconds, 60);
        let api = &history.routes[0];
        assert_eq!(api.route, "api");
        assert_eq!(api.legacy.requests.last(), Some(&3), "{api:?}");
        assert_eq!(api.seconds.len(), api.legacy.requests.len());
        assert!(api.new.as_ref().is_some_and(|n| n.upstream == "next"), "{api:?}");
        // Sampled again: nothing counted twice.
        let again: crate::admin::api::History = get(&f.admin, "/admin/history").await.json();
        assert_eq!(again.routes[0].legacy.requests.iter().sum::<u64>(), 3);
    }

    #[tokio::test]
    async fn reload_answers_ok_with_the_version_or_422_with_every_error() {
        let f = fixture(None, "127.0.0.1:9100");
        let changed = TABLE.replace("percent = 12.5", "percent = 20");
        std::fs::write(&f.file, &changed).unwrap();
        // Any body type: this one is never read.
        let request = Request::post("/admin/reload")
            .body(Full::new(Bytes::from_static(b"ignored")))
            .unwrap();
        let answer = collect(f.admin.handle(request).await).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let version = crate::config::version_of(&changed);
        assert_eq!(
            answer.json::<ReloadAnswer>(),
            ReloadAnswer::Ok {
                version: version.clone(),
                changes: RouteChanges {
                    changed: vec!["api".to_owned()],
                    ..RouteChanges::default()
                }
            }
        );
        assert_eq!(
            answer.body,
            format!(
                "{{\n  \"changes\": {{\n    \"added\": [],\n    \"changed\": [\n      \"api\"\n    ],\n    \"removed\": []\n  }},\n  \"result\": \"ok\",\n  \"version\": \"{version}\"\n}}"
            )
        );
        // The same file again: in force already, nothing changed.
        let again = call(&f.admin, Method::POST, "/admin/reload", None).await;
        assert_eq!(
            again.json::<ReloadAnswer>(),
            ReloadAnswer::Ok {
                version: version.clone(),
                changes: RouteChanges::default()
            }
        );
        let listing: RouteListing = get(&f.admin, "/admin/routes").await.json();
        assert_eq!(listing.version, version);
        assert_eq!(listing.routes[0].canary.as_ref().map(|c| c.percent), Some(20.0));

        std::fs::write(&f.file, changed.replace("stage = \"new\"", "stage = \"sideways\"")).unwrap();
        let answer = call(&f.admin, Method::POST, "/admin/reload", None).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.body);
        let ReloadAnswer::Error { errors } = answer.json::<ReloadAnswer>() else {
            panic!("not an error: {}", answer.body)
        };
        assert!(
            errors.len() == 1 && errors[0].contains("unknown stage `sideways`"),
            "{errors:?}"
        );
        assert!(answer.body.starts_with("{\n  \"errors\": ["), "{}", answer.body);
        let listing: RouteListing = get(&f.admin, "/admin/routes").await.json();
        assert_eq!(listing.version, version, "the table in force stays");
        assert_eq!(listing.last_error.as_deref(), Some(errors[0].as_str()));
    }

    #[tokio::test]
    async fn a_token_guards_everything_but_the_health_checks_and_the_page() {
        let f = fixture(Some(b"t0ken"), "0.0.0.0:9100");
        for (method, path) in [
            (Method::GET, "/metrics"),
            (Method::GET, "/admin/routes"),
            (Method::GET, "/admin/parity"),
            (Method::GET, "/admin/upstreams"),
            (Method::GET, "/admin/traffic"),
            (Method::GET, "/admin/history"),
            (Method::POST, "/admin/reload"),
        ] {
            for authorization in [None, Some("Bearer wrong"), Some("Basic t0ken")] {
                let refused = call(&f.admin, method.clone(), path, authorization).await;
                assert_eq!(
                    refused.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} {authorization:?}"
                );
                assert_eq!(
                    refused.headers[header::WWW_AUTHENTICATE],
                    "Bearer realm=\"strangler admin\""
                );
            }
        }
        for path in [
            "/metrics",
            "/admin/routes",
            "/admin/parity",
            "/admin/upstreams",
            "/admin/traffic",
            "/admin/history",
        ] {
            let served = call(&f.admin, Method::GET, path, Some("bearer t0ken")).await;
            assert_eq!(served.status, StatusCode::OK, "{path}");
        }
        // The token is checked before the method: a wrong method with it is a 405.
        let wrong_method = call(&f.admin, Method::GET, "/admin/reload", Some("Bearer t0ken")).await;
        assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
        for (method, path) in [(Method::GET, "/healthz"), (Method::HEAD, "/readyz"), (Method::GET, "/")] {
            assert_eq!(
                call(&f.admin, method, path, None).await.status,
                StatusCode::OK,
                "{path}"
            );
        }
        // Two Authorization headers are not a credential, even if one is right.
        let request = Request::get("/admin/routes")
            .header(header::AUTHORIZATION, "Bearer t0ken")
            .header(header::AUTHORIZATION, "Bearer t0ken")
            .body(Empty::<Bytes>::new())
            .unwrap();
        assert_eq!(f.admin.handle(request).await.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn beyond_loopback_without_a_token_only_health_checks_are_served() {
        // A reload can remove `admin_token_file` while the listener (kept until a restart)
        // is on a public address: fail closed.
        let exposed = fixture(None, "0.0.0.0:9100");
        assert_eq!(get(&exposed.admin, "/healthz").await.status, StatusCode::OK);
        assert_eq!(
            call(&exposed.admin, Method::HEAD, "/readyz", None).await.status,
            StatusCode::OK
        );
        for (method, path) in [
            (Method::GET, "/metrics"),
            (Method::GET, "/admin/routes"),
            (Method::GET, "/admin/parity"),
            (Method::GET, "/admin/upstreams"),
            (Method::GET, "/admin/traffic"),
            (Method::GET, "/admin/history"),
            (Method::POST, "/admin/reload"),
        ] {
            let refused = call(&exposed.admin, method, path, None).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
            assert!(refused.body.starts_with("forbidden: "), "{}", refused.body);
        }
        let local = fixture(None, "127.0.0.1:9100");
        assert_eq!(get(&local.admin, "/metrics").await.status, StatusCode::OK);
        assert_eq!(get(&local.admin, "/admin/routes").await.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn wrong_methods_are_405_with_allow_and_unknown_paths_404() {
        let f = fixture(None, "127.0.0.1:9100");
        for (method, path, allow) in [
            (Method::POST, "/admin/routes", "GET"),
            (Method::DELETE, "/metrics", "GET"),
            (Method::POST, "/admin/traffic", "GET"),
            (Method::PUT, "/admin/history", "GET"),
            (Method::GET, "/admin/reload", "POST"),
            (Method::POST, "/", "GET, HEAD"),
        ] {
            let answer = call(&f.admin, method, path, None).await;
            assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
            assert_eq!(answer.headers[header::ALLOW], allow, "{path}");
        }
        for path in ["/nope", "/admin", "/admin/routes/", "/healthz/x"] {
            assert_eq!(get(&f.admin, path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
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

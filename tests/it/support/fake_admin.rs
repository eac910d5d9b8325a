//! A fake admin API for `strangler flip` and `status` tests: `/admin/routes` answers the
//! version of a routes.toml text the test names (once it is known: the text usually holds
//! the fake's own address), `/admin/parity` a canned report whose routes get the evidence
//! identity that text gives them unless the fixture sets `evidence` itself (`null`: a build
//! before evidence periods). Also the evidence JSON of a route, for report files.

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};
use strangler::config::{EvidenceIdentity, version_of};
use strangler::table::Table;

use super::body::full;
use super::upstream::{Seen, Upstream, upstream_with};

/// The `evidence` object `/admin/parity` gives `route` of the table `text` (its identity at
/// the route's stage in `text`).
pub fn evidence_json(text: &str, route: &str) -> Value {
    let table = Table::parse("routes.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let route = table
        .config
        .routes
        .iter()
        .find(|r| r.name == route)
        .unwrap_or_else(|| panic!("no route `{route}`"));
    let identity = EvidenceIdentity::of(&table.config, route);
    let mut evidence = serde_json::to_value(&identity).unwrap();
    evidence["since"] = json!("2025-01-01T00:00:00Z");
    evidence["period"] = json!(identity.period());
    evidence
}

/// `report` (an `/admin/parity` JSON) with every route that has no `evidence` key given the
/// evidence of `text`'s route of that name.
pub fn with_evidence(mut report: Value, text: &str) -> Value {
    if let Some(routes) = report["routes"].as_object_mut() {
        for (name, counts) in routes.iter_mut() {
            if counts.get("evidence").is_none() {
                counts["evidence"] = evidence_json(text, name);
            }
        }
    }
    report
}

/// The fake admin API.
pub struct FakeAdmin {
    pub server: Upstream,
    table: Arc<Mutex<Option<String>>>,
    instance: Arc<Mutex<Option<String>>>,
}

impl FakeAdmin {
    /// Starts one answering `parity` at `/admin/parity` (404 without), and 404 at
    /// `/admin/routes` until [`FakeAdmin::serve_table`].
    pub async fn start(parity: Option<Value>) -> FakeAdmin {
        let table: Arc<Mutex<Option<String>>> = Arc::default();
        let served = table.clone();
        let instance: Arc<Mutex<Option<String>>> = Arc::default();
        let served_instance = instance.clone();
        let server = upstream_with(move |request: Request<Incoming>| {
            let text = served.lock().unwrap().clone();
            let instance = served_instance.lock().unwrap().clone();
            let parity = parity.clone();
            async move {
                let json = |body: Value| {
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(full(body.to_string()))
                        .unwrap()
                };
                match (request.uri().path(), text, parity) {
                    ("/admin/routes", Some(text), _) => {
                        let mut listing = json!({
                            "version": version_of(&text), "loaded_at": "2025-01-01T00:00:00Z",
                            "source": "routes.toml", "last_error": null, "default_upstream": "legacy", "routes": [],
                        });
                        if let Some(instance) = instance {
                            listing["instance"] = json!(instance);
                        }
                        json(listing)
                    }
                    ("/admin/parity", Some(text), Some(report)) => json(with_evidence(report, &text)),
                    ("/admin/parity", None, Some(report)) => json(report),
                    _ => Response::builder().status(404).body(full("not found\n")).unwrap(),
                }
            }
        })
        .await;
        FakeAdmin {
            server,
            table,
            instance,
        }
    }

    /// From now on, `/admin/routes` gives `id` as its `instance` (absent until then: a
    /// build before instance ids).
    pub fn serve_instance(&self, id: &str) {
        *self.instance.lock().unwrap() = Some(id.to_owned());
    }

    /// From now on, runs `text`: its version, and its routes' evidence identities.
    pub fn serve_table(&self, text: &str) {
        *self.table.lock().unwrap() = Some(text.to_owned());
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.server.seen()
    }

    /// Whether `/admin/parity` was asked.
    pub fn asked_parity(&self) -> bool {
        self.seen().iter().any(|s| s.uri.path() == "/admin/parity")
    }
}

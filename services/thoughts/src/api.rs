//! The service's own endpoints (version, health, metrics, the JSON 404). The thoughts endpoints themselves
//! are [`mythoughts_common::thoughts_api`], shared with the monolith so the two answer alike; the parity
//! tests (`tests/it/parity.rs`) still send the same requests to both and compare.

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use mythoughts_common::ApiError;
use mythoughts_common::startup::VersionInfo;
use mythoughts_common::telemetry::METRICS_CONTENT_TYPE;

use crate::AppState;

/// `GET /admin/version/`: `{"commit", "version"}`.
pub async fn version(State(state): State<AppState>) -> Json<VersionInfo> {
    Json((*state.version).clone())
}

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], state.metrics.render())
}

/// Any path this service has no route for: the JSON 404 `{"message"}`. (The monolith answers the same for
/// API paths; other paths are pages, which are not this service's business.)
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

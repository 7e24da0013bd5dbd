//! Probes for orchestrators, without authentication: `/healthz` (the process
//! answers) and `/readyz` (Temporal and the catalog answer too).

use crate::state::AppState;
use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "probes",
    responses((status = 200, description = "The process answers")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Temporal and the catalog are reachable; 503 names what is not.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "A dependency is unavailable")))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    // Within an orchestrator's probe budget (1 s), whatever Temporal does.
    let probe = state.temporal.client.count_workflows(
        "WorkflowId = 'readyz-probe'",
        crate::temporal::count_options(),
    );
    let temporal = matches!(
        tokio::time::timeout(std::time::Duration::from_millis(800), probe).await,
        Ok(Ok(_))
    );
    let catalog = state.catalog.ready().await.is_ok();
    let status = if temporal && catalog {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        Json(json!({
            "status": word(temporal && catalog),
            "checks": {"temporal": word(temporal), "catalog": word(catalog)},
        })),
    )
}

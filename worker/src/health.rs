//! The worker's probes, on `worker.health_addr` (its own listener, never a
//! public one): `/healthz` (the process answers) and `/readyz` (every
//! configured location of the bit repository can be read: a disk root that
//! is not there, a bucket that does not answer, is named with a 503).

use activities::Activities;
use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde_json::{json, Value};
use std::time::Duration;

/// Within an orchestrator's probe budget, whatever a bucket does.
const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

pub fn router(acts: Activities) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .with_state(acts)
}

async fn readyz(State(acts): State<Activities>) -> (StatusCode, Json<Value>) {
    let problems = acts.check_locations(CHECK_TIMEOUT).await;
    let locations: serde_json::Map<String, Value> = problems
        .iter()
        .map(|(id, why)| (id.clone(), Value::String(why.clone())))
        .collect();
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if problems.is_empty() {
        "ok"
    } else {
        "unavailable"
    };
    (
        status,
        Json(json!({"status": word, "checks": {"repository": locations}})),
    )
}

//! Non-spec routes for tests and benchmarks (JSON; behind the same token as
//! the API):
//! - `GET /admin/state`: mounts (in all and per volume), drives, queued and
//!   in-flight recalls with their request ids, the buffer's copies with
//!   their pins, and every known request in the spec's progress shape;
//! - `POST /admin/forget`: drops every request, queued recall and pin, as a
//!   restart would (the buffer's copies stay, unpinned; counters stay);
//! - `POST /admin/evict`: `{"paths": [...]}` removes those copies whatever
//!   their pins (a lost disk); no body (or no `paths`) removes every
//!   unpinned copy. Answers `{"evicted": [...]}`.

use super::{problem::Problem, AppState};
use crate::{now_ms, nspath::NsPath, state::AdminState};
use axum::{body::Bytes, extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};

pub async fn state(State(app): State<AppState>) -> Json<AdminState> {
    Json(app.shared.lock().admin_state(now_ms()))
}

pub async fn forget(State(app): State<AppState>) -> StatusCode {
    app.shared.lock().forget();
    app.shared.notify();
    tracing::warn!("all requests forgotten (admin)");
    StatusCode::NO_CONTENT
}

#[derive(Deserialize, Default)]
struct EvictIn {
    paths: Option<Vec<String>>,
}

#[derive(Serialize)]
pub struct Evicted {
    evicted: Vec<NsPath>,
}

pub async fn evict(State(app): State<AppState>, body: Bytes) -> Result<Json<Evicted>, Problem> {
    let input: EvictIn = if body.iter().all(u8::is_ascii_whitespace) {
        EvictIn::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::json_validation(e.to_string()))?
    };
    let paths = input
        .paths
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    NsPath::parse(p).map_err(|e| Problem::json_validation(format!("{p}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let evicted = app.shared.lock().evict(paths.as_deref(), now_ms());
    app.shared.delete_copies(evicted.clone()).await;
    Ok(Json(Evicted { evicted }))
}

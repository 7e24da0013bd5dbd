//! `/v1/dissemination-batches`: many AIPs in one request. Each item is an
//! ordinary dissemination (its own id, workflow, webhook, events), started
//! through the same race-free path as a single POST and waiting for its
//! turn; the batch's workflow gives at most `api.batch_max_in_flight`
//! turns at once and counts the items as they end. Another client's batch
//! does not exist for the caller.

pub mod create;
pub mod read;
pub mod request;

use crate::{
    auth::Claims,
    error::{ApiError, ErrorCode},
    state::AppState,
    temporal,
};
use axum::{
    routing::{get, post},
    Router,
};
use model::BatchId;
use workflows::BatchView;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/dissemination-batches",
            post(create::create).get(read::list),
        )
        .route(
            "/v1/dissemination-batches/{batch_id}",
            get(read::read).delete(read::cancel),
        )
}

/// The caller's batch, or 404.
async fn own_batch(state: &AppState, claims: &Claims, id: &BatchId) -> Result<BatchView, ApiError> {
    let not_found = || ApiError::new(ErrorCode::BatchNotFound, format!("no batch {id}"));
    let view = temporal::batch::read(&state.temporal, id)
        .await?
        .ok_or_else(not_found)?;
    if view.record.client_id != claims.client_id {
        return Err(not_found());
    }
    Ok(view)
}

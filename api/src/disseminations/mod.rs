//! `/v1/disseminations`: a client's requests for AIPs, one module per
//! operation (create, read and its audit trail, list, new links, cancel),
//! each with the types it takes and returns, and the request body parsed
//! at the edge (`request`). A dissemination of another
//! client, or of a contract the token no longer has a role for, does not
//! exist for the caller.

pub mod acknowledge;
pub mod cancel;
pub mod create;
pub mod links;
pub mod list;
pub mod read;
pub mod request;

use crate::{
    auth::Claims,
    error::{ApiError, ErrorCode},
    state::AppState,
};
use axum::{
    routing::{get, post},
    Router,
};
use model::DisseminationId;
use workflows::DisseminationView;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/disseminations", post(create::create).get(list::list))
        .route(
            "/v1/disseminations/{dissemination_id}",
            get(read::read).delete(cancel::cancel),
        )
        .route(
            "/v1/disseminations/{dissemination_id}/links",
            post(links::regenerate_links),
        )
        .route(
            "/v1/disseminations/{dissemination_id}/acknowledgement",
            post(acknowledge::acknowledge),
        )
        .route(
            "/v1/disseminations/{dissemination_id}/events",
            get(read::events),
        )
        .route(
            "/v1/disseminations/{dissemination_id}/receipt",
            get(read::receipt),
        )
}

/// The caller's dissemination, or 404 as GET answers.
async fn own_view(
    state: &AppState,
    claims: &Claims,
    id: &DisseminationId,
) -> Result<DisseminationView, ApiError> {
    Ok(own_view_and_queue(state, claims, id).await?.0)
}

/// `own_view`, with the task queue its workflow runs on.
async fn own_view_and_queue(
    state: &AppState,
    claims: &Claims,
    id: &DisseminationId,
) -> Result<(DisseminationView, String), ApiError> {
    let not_found = || {
        ApiError::new(
            ErrorCode::DisseminationNotFound,
            format!("no dissemination {id}"),
        )
    };
    let (view, queue) = state
        .temporal
        .read_view_and_queue(id)
        .await?
        .ok_or_else(not_found)?;
    // Another client's dissemination, or one of a contract the token no
    // longer has a role for (revoked since it was created), does not exist
    // for this caller: the role is checked on every call, not only at creation.
    if view.record.client_id != claims.client_id || !claims.can_read(&view.record.contract_id) {
        return Err(not_found());
    }
    let signer = state.cfg.link_signer(claims.client_id.as_str());
    Ok((view.with_links(signer), queue))
}

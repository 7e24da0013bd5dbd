//! `GET /v1/disseminations/{id}` and its audit trail, `…/events`.

use super::own_view;
use crate::{
    error::{ApiError, ErrorBody},
    extract::AuthenticatedClient,
    state::AppState,
    temporal,
};
use axum::{
    extract::{Path, State},
    Json,
};
use std::time::Duration;
use workflows::DisseminationView;

/// Read one of the caller's disseminations: its status, its files once
/// delivered, its reasons once failed or rejected.
#[utoipa::path(get, path = "/v1/disseminations/{disseminationId}", tag = "disseminations",
    params(("disseminationId" = String, Path, description = "22 base62 characters", pattern = "^[0-9A-Za-z]{22}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dissemination", body = DisseminationView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "DISSEMINATION_NOT_FOUND (or another client's)", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
    ))]
pub async fn read(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    Path(raw_id): Path<String>,
) -> Result<Json<DisseminationView>, ApiError> {
    own_view(&state, &claims, &raw_id)
        .await
        .map(|(_, view)| Json(view))
}

/// The audit trail of a dissemination.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct EventList {
    pub items: Vec<workflows::DisseminationEvent>,
}

/// What happened to one of the caller's disseminations, oldest first:
/// request, retrieval, fixity checks (algorithm, location, outcome),
/// delivery, link regenerations, webhook delivery, cancellation, deletion.
#[utoipa::path(get, path = "/v1/disseminations/{disseminationId}/events", tag = "disseminations",
    params(("disseminationId" = String, Path, description = "22 base62 characters", pattern = "^[0-9A-Za-z]{22}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The audit trail", body = EventList),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "DISSEMINATION_NOT_FOUND", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody),
        (status = 503, description = "Temporal or the workers are unavailable", body = ErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    Path(raw_id): Path<String>,
) -> Result<Json<EventList>, ApiError> {
    let (id, _) = own_view(&state, &claims, &raw_id).await?;
    let timeout = Duration::from_millis(state.cfg.temporal.query_timeout_ms);
    let items = temporal::read_events(&state.temporal, &id, timeout).await?;
    Ok(Json(EventList { items }))
}

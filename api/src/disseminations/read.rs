//! `GET /v1/disseminations/{id}` and its audit trail, `…/events`.

use super::{own_view, own_view_and_queue};
use crate::{
    error::{ApiError, ErrorBody},
    extract::{AuthenticatedClient, DisseminationPath},
    state::AppState,
    temporal,
};
use axum::{extract::State, Json};
use std::time::Duration;
use workflows::DisseminationView;

/// Read one of the caller's disseminations: its status, its files once
/// delivered, its reasons once failed or rejected.
#[utoipa::path(get, path = "/v1/disseminations/{disseminationId}", tag = "disseminations",
    params(DisseminationPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dissemination", body = DisseminationView),
        (status = 404, description = "DISSEMINATION_NOT_FOUND (or another client's)", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
        crate::responses::ById,
    ))]
pub async fn read(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    DisseminationPath(id): DisseminationPath,
) -> Result<Json<DisseminationView>, ApiError> {
    let (mut view, task_queue) = own_view_and_queue(&state, &claims, &id).await?;
    if view.status == model::DisseminationStatus::Queued {
        view.queue = crate::queue::position(
            &state.temporal.client,
            &state.cfg,
            &state.queue,
            view.record.priority,
            &view.record.date_created,
            &task_queue,
        )
        .await;
    }
    Ok(Json(view))
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
    params(DisseminationPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The audit trail", body = EventList),
        (status = 404, description = "DISSEMINATION_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "Temporal or the workers are unavailable", body = ErrorBody),
        crate::responses::ById,
    ))]
pub async fn events(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    DisseminationPath(id): DisseminationPath,
) -> Result<Json<EventList>, ApiError> {
    own_view(&state, &claims, &id).await?;
    let timeout = Duration::from_millis(state.cfg.temporal.query_timeout_ms);
    let items = temporal::read_events(&state.temporal, &id, timeout).await?;
    Ok(Json(EventList { items }))
}

/// The PREMIS 3.0 XML of a dissemination.
pub struct PremisXml(pub String);

impl axum::response::IntoResponse for PremisXml {
    fn into_response(self) -> axum::response::Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/xml; charset=utf-8",
            )],
            self.0,
        )
            .into_response()
    }
}

/// The dissemination's record as PREMIS 3.0 XML: the AIP and each
/// repository and delivered file as objects (with their digests), the
/// events (request, retrieval with location, fixity check with algorithm
/// and outcome, delivery, link regeneration, deletion) and the agents
/// (this service, the client). The same document as a bag's `premis.xml`,
/// with what happened since. Valid against the official PREMIS 3 schema.
#[utoipa::path(get, path = "/v1/disseminations/{disseminationId}/receipt", tag = "disseminations",
    params(DisseminationPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The receipt", content_type = "application/xml", body = String),
        (status = 404, description = "DISSEMINATION_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "Temporal, the catalog or the workers are unavailable", body = ErrorBody),
        crate::responses::ById,
    ))]
pub async fn receipt(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    DisseminationPath(id): DisseminationPath,
) -> Result<PremisXml, ApiError> {
    let view = own_view(&state, &claims, &id).await?;
    let timeout = Duration::from_millis(state.cfg.temporal.query_timeout_ms);
    let events = temporal::read_events(&state.temporal, &id, timeout).await?;
    let files = state
        .catalog
        .get(&view.record.archive_id)
        .await?
        .map(|aip| aip.repository_files)
        .unwrap_or_default();
    let receipt = workflows::receipt::receipt(&view.record, &files, &view.files, &events);
    Ok(PremisXml(packaging::premis::premis_xml(&receipt)))
}

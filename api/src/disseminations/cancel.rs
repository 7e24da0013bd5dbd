//! `DELETE /v1/disseminations/{id}`: cancel a dissemination in progress.

use super::own_view;
use crate::{
    error::{ApiError, ErrorBody, ErrorCode},
    extract::{AuthenticatedClient, DisseminationPath},
    state::AppState,
    temporal,
};
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use workflows::DisseminationView;

/// Cancel a dissemination in progress: the running step stops, partial
/// uploads and staged copies are removed, and it ends CANCELLED.
#[utoipa::path(delete, path = "/v1/disseminations/{disseminationId}", tag = "disseminations",
    params(DisseminationPath),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Cancellation requested; the status becomes CANCELLED", body = DisseminationView),
        (status = 404, description = "DISSEMINATION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "DISSEMINATION_ENDED: already final", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
        crate::responses::ById,
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    DisseminationPath(id): DisseminationPath,
) -> Result<Response, ApiError> {
    let view = own_view(&state, &claims, &id).await?;
    if view.status.is_final() {
        return Err(ApiError::new(
            ErrorCode::DisseminationEnded,
            format!("the dissemination already ended {}", view.status),
        ));
    }
    temporal::cancel(&state.temporal, &id, "cancelled at the client's request").await?;
    tracing::info!(dissemination_id = %id, "cancellation requested");
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

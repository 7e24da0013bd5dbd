//! `DELETE /v1/disseminations/{id}`: cancel a dissemination in progress.

use super::own_view;
use crate::{
    error::{ApiError, ErrorBody, ErrorCode},
    extract::AuthenticatedClient,
    state::AppState,
    temporal,
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use workflows::DisseminationView;

/// Cancel a dissemination in progress: the running step stops, partial
/// uploads and staged copies are removed, and it ends CANCELLED.
#[utoipa::path(delete, path = "/v1/disseminations/{disseminationId}", tag = "disseminations",
    params(("disseminationId" = String, Path, description = "22 base62 characters", pattern = "^[0-9A-Za-z]{22}$")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Cancellation requested; the status becomes CANCELLED", body = DisseminationView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "DISSEMINATION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "DISSEMINATION_ENDED: already final", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, view) = own_view(&state, &claims, &raw_id).await?;
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

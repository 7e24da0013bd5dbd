//! `POST /v1/disseminations/{id}/links`: new presigned links for a
//! delivered dissemination, from the objects already in S3.

use super::own_view;
use crate::{
    error::{ApiError, ErrorBody, ErrorCode},
    extract::{AuthenticatedClient, DisseminationPath},
    state::AppState,
    temporal,
};
use axum::{extract::State, Json};
use model::DisseminationStatus;
use std::time::Duration;
use temporalio_client::errors::WorkflowUpdateError;
use workflows::{DisseminationView, UpdateRefusal};

fn retention_ended() -> ApiError {
    ApiError::new(
        ErrorCode::RetentionEnded,
        "the delivered objects were deleted at the end of their retention; request the AIP again",
    )
}

/// New download links (new expiry) for a delivered dissemination whose
/// objects are still retained. Nothing is downloaded or uploaded again;
/// earlier links stay valid until their own expiry.
#[utoipa::path(post, path = "/v1/disseminations/{disseminationId}/links", tag = "disseminations",
    params(DisseminationPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dissemination with new links in `files`", body = DisseminationView),
        (status = 404, description = "DISSEMINATION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "NOT_DELIVERED: not (yet) delivered", body = ErrorBody),
        (status = 410, description = "RETENTION_ENDED: the objects were deleted", body = ErrorBody),
        (status = 503, description = "Temporal or the workers are unavailable", body = ErrorBody),
        crate::responses::ById,
    ))]
pub async fn regenerate_links(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    DisseminationPath(id): DisseminationPath,
) -> Result<Json<DisseminationView>, ApiError> {
    let view = own_view(&state, &claims, &id).await?;
    if view.status != DisseminationStatus::Disseminated {
        return Err(ApiError::new(
            ErrorCode::NotDelivered,
            format!(
                "the dissemination is {}; links exist only once it is delivered",
                view.status
            ),
        ));
    }
    if view.objects_deleted {
        return Err(retention_ended());
    }
    match temporal::regenerate_links(&state.temporal, &id, Duration::from_secs(30)).await {
        Ok(view) => Ok(Json(
            view.with_links(state.cfg.link_signer(claims.client_id.as_str())),
        )),
        Err(e) => {
            // Retention may have ended meanwhile (or the workflow closed).
            let now = state.temporal.read_view(&id).await?;
            let refusal = match &e {
                WorkflowUpdateError::Failed(failure) => {
                    UpdateRefusal::from_message(&failure.message)
                }
                _ => None,
            };
            match refusal {
                Some(UpdateRefusal::LinkCapReached { cap }) => Err(ApiError::new(
                    ErrorCode::LinkRegenerationLimit,
                    format!("links of a dissemination can be regenerated at most {cap} times; request the AIP again"),
                )),
                Some(UpdateRefusal::ObjectsGone) => Err(retention_ended()),
                Some(UpdateRefusal::NotDelivered { status }) => Err(ApiError::new(
                    ErrorCode::NotDelivered,
                    format!("the dissemination is {status}; links exist only once it is delivered"),
                )),
                // (Refusals of the acknowledgement: not this update's.)
                Some(other) => Err(ApiError::internal(other)),
                None if now.is_none_or(|v| v.objects_deleted || v.retention_ends_at.is_none()) => {
                    Err(retention_ended())
                }
                None => Err(ApiError::unavailable("the workers", e)),
            }
        }
    }
}

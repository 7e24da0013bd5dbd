//! `POST /v1/disseminations/{id}/acknowledgement` (v1.2): the receiving
//! archive's SHA-256 of every file it downloaded, checked by the workflow
//! (its `acknowledge` update) against what was delivered. All match: the
//! record says so (an `acknowledgement` event with the client as agent,
//! `acknowledged` in the view) and, with `retention.release_on_ack`, the
//! objects are deleted at once. A mismatch names the files and keeps them.

use super::own_view;
use crate::{
    error::{ApiError, ErrorBody, ErrorCode},
    extract::{AppJson, AuthenticatedClient, DisseminationPath, RequestBody},
    state::AppState,
    temporal,
};
use axum::{extract::State, Json};
use model::DisseminationStatus;
use platform::config::ApiConfig;
use std::time::Duration;
use temporalio_client::errors::WorkflowUpdateError;
use workflows::{Acknowledgement, DisseminationView, UpdateRefusal};

/// The longest note kept.
pub const MAX_NOTE_CHARS: usize = 1000;

/// The body, checked for shape: at least one file, each digest 64 hex
/// digits, a short note. Whether it names every delivered file exactly
/// once is the workflow's to say (it knows what was delivered).
pub struct AckRequest(pub Acknowledgement);

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidAcknowledgement, message)
}

impl RequestBody for AckRequest {
    type Wire = Acknowledgement;

    /// A path and a digest per delivered file (up to `max_repository_files`
    /// files, with room for members of a selection).
    fn limit(api: &ApiConfig) -> usize {
        api.body_limit_bytes
            .max(api.max_repository_files.saturating_mul(512))
    }

    fn parse(ack: Acknowledgement, _api: &ApiConfig) -> Result<Self, ApiError> {
        if ack.files.is_empty() {
            return Err(invalid("files must name every delivered file"));
        }
        for f in &ack.files {
            if f.path.is_empty() {
                return Err(invalid("a file's path is empty"));
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "the sha256 of {} is not 64 hex digits",
                    f.path
                )));
            }
        }
        if ack
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
        {
            return Err(invalid(format!(
                "the note is over {MAX_NOTE_CHARS} characters"
            )));
        }
        Ok(Self(ack))
    }
}

fn already() -> ApiError {
    ApiError::new(
        ErrorCode::AlreadyAcknowledged,
        "the dissemination was acknowledged already",
    )
}

fn not_delivered(status: DisseminationStatus) -> ApiError {
    ApiError::new(
        ErrorCode::NotDelivered,
        format!("the dissemination is {status}; it can be acknowledged once delivered"),
    )
}

/// Confirm, with the digests the receiving archive computed on what it
/// downloaded, that every delivered file arrived intact.
#[utoipa::path(post, path = "/v1/disseminations/{disseminationId}/acknowledgement", tag = "disseminations",
    params(DisseminationPath),
    request_body = Acknowledgement,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every digest matches: the dissemination with `acknowledged`", body = DisseminationView),
        (status = 400, description = "INVALID_ACKNOWLEDGEMENT: no files, a malformed digest, a long note, a file named twice, unknown or missing", body = ErrorBody),
        (status = 404, description = "DISSEMINATION_NOT_FOUND (or another client's)", body = ErrorBody),
        (status = 409, description = "ACKNOWLEDGEMENT_MISMATCH (details: the files whose digest differs), ALREADY_ACKNOWLEDGED, NOT_DELIVERED, ACKNOWLEDGEMENT_LIMIT", body = ErrorBody),
        (status = 410, description = "RETENTION_ENDED: the record is closed", body = ErrorBody),
        (status = 503, description = "Temporal or the workers are unavailable", body = ErrorBody),
        crate::responses::JsonBody,
    ))]
pub async fn acknowledge(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    DisseminationPath(id): DisseminationPath,
    AppJson(AckRequest(ack)): AppJson<AckRequest>,
) -> Result<Json<DisseminationView>, ApiError> {
    let view = own_view(&state, &claims, &id).await?;
    if view.acknowledged.is_some() {
        return Err(already());
    }
    if view.status != DisseminationStatus::Disseminated {
        return Err(not_delivered(view.status));
    }
    let outcome =
        match temporal::acknowledge(&state.temporal, &id, ack, Duration::from_secs(30)).await {
            Ok(outcome) => outcome,
            Err(e) => return Err(refused(&state, &id, e).await),
        };
    if !outcome.mismatched.is_empty() {
        state.metrics.acknowledgement_mismatch();
        return Err(ApiError::new(
            ErrorCode::AcknowledgementMismatch,
            format!(
                "the SHA-256 differs from the delivered file's for {}; the objects are kept until retention ends: download them again",
                outcome.mismatched.join(", ")
            ),
        )
        .with_details(format!("mismatched: {}", outcome.mismatched.join(", "))));
    }
    let signer = state.cfg.link_signer(claims.client_id.as_str());
    Ok(Json(outcome.view.with_links(signer)))
}

/// What a refused update means for the client.
async fn refused(
    state: &AppState,
    id: &model::DisseminationId,
    e: WorkflowUpdateError,
) -> ApiError {
    let refusal = match &e {
        WorkflowUpdateError::Failed(failure) => UpdateRefusal::from_message(&failure.message),
        _ => None,
    };
    match refusal {
        Some(UpdateRefusal::NotDelivered { status }) => not_delivered(status),
        Some(UpdateRefusal::AlreadyAcknowledged) => already(),
        Some(UpdateRefusal::InvalidAcknowledgement { reason }) => invalid(reason),
        Some(UpdateRefusal::AcknowledgementCapReached { cap }) => ApiError::new(
            ErrorCode::AcknowledgementLimit,
            format!("a dissemination takes at most {cap} acknowledgements"),
        ),
        Some(other) => ApiError::internal(other),
        None => match state.temporal.read_view(id).await {
            // The workflow closed meanwhile: retention ended.
            Ok(now) if now.as_ref().is_none_or(|v| v.objects_deleted) => ApiError::new(
                ErrorCode::RetentionEnded,
                "the delivered objects were deleted and the record closed",
            ),
            Ok(_) => ApiError::unavailable("the workers", e),
            Err(read) => read,
        },
    }
}

//! Reading a batch (counts and a page of items, each with its current
//! status), listing the caller's batches, and cancelling one.

use super::own_batch;
use crate::{
    error::{ApiError, ErrorBody, ErrorCode},
    extract::{AuthenticatedClient, BatchPath},
    pagination::{OffsetCursor, PageParams, Paging, StoreCursor},
    state::AppState,
    temporal,
};
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use futures::StreamExt;
use model::DisseminationId;
use workflows::{BatchItem, BatchStatus, BatchView};

/// A batch with a page of its items.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchPage {
    #[serde(flatten)]
    pub batch: BatchView,
    pub items: Vec<BatchItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A page of the caller's batches.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchList {
    pub items: Vec<BatchView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Read one of the caller's batches: counts by status and a page of its
/// items, each with its current status.
#[utoipa::path(get, path = "/v1/dissemination-batches/{batchId}", tag = "batches",
    params(BatchPath, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The batch", body = BatchPage),
        (status = 400, description = "Malformed id, page size or cursor", body = ErrorBody),
        (status = 404, description = "BATCH_NOT_FOUND (or another client's)", body = ErrorBody),
        (status = 503, description = "Temporal or the workers are unavailable", body = ErrorBody),
        crate::responses::Authenticated,
    ))]
pub async fn read(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    page: Paging<OffsetCursor>,
    BatchPath(id): BatchPath,
) -> Result<Json<BatchPage>, ApiError> {
    let batch = own_batch(&state, &claims, &id).await?;
    let from = &page.cursor;
    let items = temporal::batch::items(&state.temporal, &id, (from.0, page.size)).await?;
    // Items at work, or not the batch's: their own status, read as GET would.
    let items: Vec<BatchItem> = futures::stream::iter(items)
        .map(|item| {
            let state = &state;
            async move {
                if item.status.is_some_and(|s| s.is_final()) {
                    return item;
                }
                let Some(id) = item
                    .dissemination_id
                    .as_deref()
                    .and_then(|d| DisseminationId::parse(d).ok())
                else {
                    return item;
                };
                match state.temporal.read_view(&id).await {
                    Ok(Some(view)) => BatchItem {
                        status: Some(view.status),
                        ..item
                    },
                    _ => item,
                }
            }
        })
        .buffered(8)
        .collect()
        .await;
    let next_cursor = from.next(items.len(), batch.counts.total);
    Ok(Json(BatchPage {
        batch,
        items,
        next_cursor,
    }))
}

/// List the caller's batches, newest first.
#[utoipa::path(get, path = "/v1/dissemination-batches", tag = "batches",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's batches", body = BatchList),
        (status = 400, description = "Invalid page size or cursor", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
        crate::responses::Authenticated,
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    page: Paging<StoreCursor>,
) -> Result<Json<BatchList>, ApiError> {
    let q = format!(
        "WorkflowType = '{}' AND ClientId = '{}'",
        temporal::batch::BATCH_WORKFLOW,
        temporal::literal(claims.client_id.as_str())
    );
    let (items, next) = temporal::list_memos::<BatchView>(
        &state.temporal,
        q,
        page.size as i32,
        page.cursor.0,
        workflows::batch::MEMO_BATCH,
    )
    .await?;
    let items = items
        .into_iter()
        .filter(|b| b.record.client_id == claims.client_id)
        .collect();
    Ok(Json(BatchList {
        items,
        next_cursor: StoreCursor::next(next),
    }))
}

/// Cancel a batch: every item not final yet is cancelled.
#[utoipa::path(delete, path = "/v1/dissemination-batches/{batchId}", tag = "batches",
    params(BatchPath),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Cancellation requested", body = BatchView),
        (status = 404, description = "BATCH_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "BATCH_ENDED: every item is final", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
        crate::responses::ById,
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    BatchPath(id): BatchPath,
) -> Result<Response, ApiError> {
    let batch = own_batch(&state, &claims, &id).await?;
    if batch.status == BatchStatus::Completed {
        return Err(ApiError::new(
            ErrorCode::BatchEnded,
            "every item of the batch is final",
        ));
    }
    temporal::batch::cancel(&state.temporal, &id).await?;
    tracing::info!(batch_id = %id, "batch cancellation requested");
    Ok((StatusCode::ACCEPTED, Json(batch)).into_response())
}

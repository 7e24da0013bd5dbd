//! Reading a batch (counts and a page of items, each with its current
//! status), listing the caller's batches, and cancelling one.

use super::own_batch;
use crate::{
    error::{ApiError, ErrorBody, ErrorCode},
    extract::AuthenticatedClient,
    state::AppState,
    temporal,
};
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use futures::StreamExt;
use model::DisseminationId;
use serde::Deserialize;
use workflows::{BatchItem, BatchStatus, BatchView};

/// Paging of a batch's items, or of the list of batches.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1..100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<i32>,
    /// `nextCursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

impl PageParams {
    fn size(&self) -> Result<u32, ApiError> {
        let size = self.page_size.unwrap_or(100);
        if !(1..=100).contains(&size) {
            return Err(ApiError::new(
                ErrorCode::InvalidPageSize,
                "pageSize must be 1..100",
            ));
        }
        Ok(size as u32)
    }
}

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

fn params(
    query: Result<Query<PageParams>, axum::extract::rejection::QueryRejection>,
) -> Result<PageParams, ApiError> {
    query.map(|Query(p)| p).map_err(|e| {
        ApiError::new(ErrorCode::InvalidRequest, "invalid query parameters")
            .with_details(e.body_text())
    })
}

/// Read one of the caller's batches: counts by status and a page of its
/// items, each with its current status.
#[utoipa::path(get, path = "/v1/dissemination-batches/{batchId}", tag = "batches",
    params(("batchId" = String, Path, description = "22 base62 characters", pattern = "^[0-9A-Za-z]{22}$"), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The batch", body = BatchPage),
        (status = 400, description = "Malformed id, page size or cursor", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "BATCH_NOT_FOUND (or another client's)", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody),
        (status = 503, description = "Temporal or the workers are unavailable", body = ErrorBody),
    ))]
pub async fn read(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    Path(raw_id): Path<String>,
    query: Result<Query<PageParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BatchPage>, ApiError> {
    let page = params(query)?;
    let size = page.size()?;
    let from: u32 = match page.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::InvalidCursor, "the cursor is not valid"))?,
    };
    let (id, batch) = own_batch(&state, &claims, &raw_id).await?;
    let items = temporal::batch::items(&state.temporal, &id, (from, size)).await?;
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
                match temporal::read_view(&state.temporal, &id).await {
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
    let next = from + items.len() as u32;
    let next_cursor = (next < batch.counts.total).then(|| next.to_string());
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
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    query: Result<Query<PageParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BatchList>, ApiError> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let page = params(query)?;
    let size = page.size()?;
    let cursor = match &page.cursor {
        Some(c) => URL_SAFE_NO_PAD
            .decode(c)
            .map_err(|_| ApiError::new(ErrorCode::InvalidCursor, "the cursor is not valid"))?,
        None => Vec::new(),
    };
    let q = format!(
        "WorkflowType = '{}' AND ClientId = '{}'",
        temporal::batch::BATCH_WORKFLOW,
        claims.client_id.replace('\\', "\\\\").replace('\'', "\\'")
    );
    let (items, next) = temporal::list_memos::<BatchView>(
        &state.temporal,
        q,
        size as i32,
        cursor,
        workflows::batch::MEMO_BATCH,
    )
    .await?;
    let items = items
        .into_iter()
        .filter(|b| b.record.client_id.as_str() == claims.client_id)
        .collect();
    Ok(Json(BatchList {
        items,
        next_cursor: (!next.is_empty()).then(|| URL_SAFE_NO_PAD.encode(next)),
    }))
}

/// Cancel a batch: every item not final yet is cancelled.
#[utoipa::path(delete, path = "/v1/dissemination-batches/{batchId}", tag = "batches",
    params(("batchId" = String, Path, description = "22 base62 characters", pattern = "^[0-9A-Za-z]{22}$")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Cancellation requested", body = BatchView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "BATCH_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "BATCH_ENDED: every item is final", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, batch) = own_batch(&state, &claims, &raw_id).await?;
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

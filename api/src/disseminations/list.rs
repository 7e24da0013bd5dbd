//! `GET /v1/disseminations`: the caller's disseminations from Temporal's
//! visibility store, filtered by the token's client and readable contracts,
//! paged by an opaque cursor (the store's page token, base64url).

use crate::{
    error::{ApiError, ErrorBody, ErrorCode},
    extract::{AppQuery, AuthenticatedClient},
    pagination::{self, Cursor, StoreCursor},
    state::AppState,
    temporal,
};
use axum::{extract::State, Json};
use model::{ArchiveId, DisseminationStatus};
use serde::Deserialize;
use workflows::DisseminationView;

/// Filters and paging of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only disseminations of this AIP.
    #[param(
        pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{24})$"
    )]
    archive_id: Option<String>,
    /// Only disseminations in this status.
    #[param(value_type = Option<DisseminationStatus>)]
    status: Option<String>,
    /// Page size, 1..100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<i32>,
    /// `nextCursor` of the previous page (base64url, unpadded). One the API
    /// did not issue, or one that has expired, is refused (`INVALID_CURSOR`).
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

/// A page of disseminations.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisseminationPage {
    pub items: Vec<DisseminationView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// List the caller's disseminations, newest first.
#[utoipa::path(get, path = "/v1/disseminations", tag = "disseminations",
    params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's disseminations", body = DisseminationPage),
        (status = 400, description = "Invalid filter, page size or cursor", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
        crate::responses::Authenticated,
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<Json<DisseminationPage>, ApiError> {
    // Only contracts the token still has a role for: a revoked role hides
    // that contract's disseminations.
    let readable = claims.readable_contracts();
    let contracts = readable
        .iter()
        .map(|c| format!("'{}'", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut q = format!(
        "WorkflowType = '{}' AND ClientId = '{}' AND ContractId IN ({contracts})",
        workflows::DISSEMINATION_WORKFLOW,
        temporal::literal(claims.client_id.as_str())
    );
    if let Some(a) = &params.archive_id {
        let a = ArchiveId::parse(a)?;
        q.push_str(&format!(" AND ArchiveId = '{a}'"));
    }
    if let Some(s) = &params.status {
        let status: DisseminationStatus =
            serde_json::from_value(serde_json::Value::String(s.clone())).map_err(|_| {
                ApiError::new(ErrorCode::InvalidStatus, format!("unknown status {s:?}"))
            })?;
        q.push_str(&format!(" AND DisseminationStatus = '{status}'"));
    }
    let page_size = pagination::page_size(params.page_size, 20)?;
    let StoreCursor(cursor) = StoreCursor::parse(params.cursor.as_deref())?;
    if readable.is_empty() {
        return Ok(Json(DisseminationPage {
            items: vec![],
            next_cursor: None,
        }));
    }
    let (items, next) = temporal::list_views(&state.temporal, q, page_size as i32, cursor).await?;
    // Isolation does not rest on the query alone.
    let items = items
        .into_iter()
        .filter(|v| {
            v.record.client_id == claims.client_id && claims.can_read(&v.record.contract_id)
        })
        .map(|v| v.with_links(state.cfg.link_signer(claims.client_id.as_str())))
        .collect();
    Ok(Json(DisseminationPage {
        items,
        next_cursor: StoreCursor::next(next),
    }))
}

//! `/v1/disseminations`: create one, read one.

use crate::{
    error::{ApiError, ErrorBody},
    extract::{AppJson, AuthenticatedClient},
    state::AppState,
    temporal::{self, StartOutcome, StartRequest},
};
use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use model::{ArchiveId, ClientId, DisseminationId, DisseminationStatus, Priority};
use serde::Deserialize;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use workflows::{DisseminationInput, DisseminationRecord, DisseminationView, WorkflowSettings};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/disseminations", post(create).get(list))
        .route(
            "/v1/disseminations/{dissemination_id}",
            get(read).delete(cancel),
        )
        .route(
            "/v1/disseminations/{dissemination_id}/links",
            post(regenerate_links),
        )
        .route("/v1/disseminations/{dissemination_id}/events", get(events))
}

/// The request body. Fields are checked one by one so each mistake gets
/// its own code; unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DisseminationIn {
    /// The AIP's id: a UUID, or a legacy 24-hex object id.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "019e404e-60ab-7457-b7c9-94c453242c69",
        pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{24})$")]
    archive_id: Option<serde_json::Value>,
    /// 1 (most urgent) to 100; 50 when absent.
    #[serde(default)]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 100, example = 50)]
    priority: Option<serde_json::Value>,
}

/// 409: a dissemination of the AIP for this client is in progress.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictBody {
    pub error: crate::error::ErrorDetail,
    /// The dissemination in progress (also in `Location`).
    pub dissemination_id: String,
    pub dissemination: Option<DisseminationView>,
}

impl DisseminationIn {
    fn parse(&self) -> Result<(ArchiveId, Priority), ApiError> {
        let archive_id = match &self.archive_id {
            Some(serde_json::Value::String(s)) => ArchiveId::parse(s),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "INVALID_ARCHIVE_ID",
                    "archiveId must be a string",
                ))
            }
            None => {
                return Err(ApiError::bad_request(
                    "INVALID_ARCHIVE_ID",
                    "archiveId is required",
                ))
            }
        }
        .map_err(|e| ApiError::bad_request("INVALID_ARCHIVE_ID", e.to_string()))?;
        let priority = match &self.priority {
            None | Some(serde_json::Value::Null) => Priority::DEFAULT,
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => n
                .as_i64()
                .and_then(|p| Priority::new(p).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("INVALID_PRIORITY", model::IdError::Priority.to_string())
                })?,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "INVALID_PRIORITY",
                    model::IdError::Priority.to_string(),
                ))
            }
        };
        Ok((archive_id, priority))
    }
}

fn location(state: &AppState, id: &str) -> String {
    format!(
        "{}/v1/disseminations/{id}",
        state.cfg.api.base_path.trim_end_matches('/')
    )
}

/// Create a dissemination of an AIP for the calling client.
///
/// Checks, in order: the token (401), the body (400/413/415), that the AIP
/// exists (404), the token's role for its contract (403), that it is
/// preserved (422) and that no dissemination of it for this client is in
/// progress (409, naming that one).
#[utoipa::path(post, path = "/v1/disseminations", tag = "disseminations",
    request_body = DisseminationIn,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Accepted", body = DisseminationView,
            headers(("Location" = String, description = "The new dissemination"))),
        (status = 400, description = "Invalid archiveId, priority or body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "The token has no role for the AIP's contract", body = ErrorBody),
        (status = 404, description = "ARCHIVE_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "DISSEMINATION_IN_PROGRESS", body = ConflictBody,
            headers(("Location" = String, description = "The dissemination in progress"))),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "ARCHIVE_NOT_PRESERVED", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Temporal or the catalog is unavailable", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    AppJson(body): AppJson<DisseminationIn>,
) -> Result<Response, ApiError> {
    let (archive_id, priority) = body.parse()?;
    let aip = state
        .catalog
        .get(&archive_id)
        .await
        .map_err(|e| ApiError::unavailable("the catalog", e))?
        .ok_or_else(|| {
            ApiError::not_found(
                "ARCHIVE_NOT_FOUND",
                format!("no AIP with archiveId {archive_id}"),
            )
        })?;
    let entity = &aip.intellectual_entity;
    if !claims.can_read(&entity.access_group_id) {
        // Which contract the AIP belongs to is not the caller's to learn.
        return Err(ApiError::forbidden(
            "the token has no role that grants access to this AIP",
        ));
    }
    if !entity.is_preserved() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ARCHIVE_NOT_PRESERVED",
            format!(
                "the AIP is {:?}, only preserved AIPs can be disseminated",
                entity.status
            ),
        ));
    }

    let record = DisseminationRecord {
        dissemination_id: DisseminationId::generate(),
        archive_id,
        client_id: ClientId(claims.client_id.clone()),
        contract_id: entity.access_group_id.clone(),
        object_id: entity.object_id.clone(),
        sum_size_in_bytes: entity.sum_size_in_bytes,
        priority,
        date_created: model::time::now_rfc3339(),
    };
    let span = tracing::Span::current();
    span.set_attribute("disseminationId", record.dissemination_id.to_string());
    span.set_attribute("archiveId", record.archive_id.to_string());
    span.set_attribute("clientId", record.client_id.0.clone());
    span.set_attribute("contractId", record.contract_id.to_string());
    span.set_attribute("priority", i64::from(priority.get()));
    let view = DisseminationView::received(record.clone());
    let cfg = &state.cfg;
    refuse_oversized(cfg, &aip.repository_files)?;
    let request = StartRequest {
        input: DisseminationInput {
            record: record.clone(),
            files: aip.repository_files.clone(),
            lock: None,
            settings: WorkflowSettings::from(&cfg.timings),
        },
        band_queue: cfg.band_queue(cfg.band_for(priority)),
        lock_queue: cfg.lock_queue(),
        priority_key: priority.priority_key(),
        view: &view,
    };
    match temporal::start(&state.temporal, request).await? {
        StartOutcome::Started => {
            tracing::info!(dissemination_id = %record.dissemination_id, archive_id = %record.archive_id,
                client_id = %record.client_id, priority = priority.get(), "dissemination accepted");
            let loc = location(&state, record.dissemination_id.as_str());
            Ok((StatusCode::CREATED, [(header::LOCATION, loc)], Json(view)).into_response())
        }
        StartOutcome::InProgress(existing) => {
            let loc = location(&state, &existing.id);
            let message = "a dissemination of this AIP for this client is in progress";
            Err(
                ApiError::new(StatusCode::CONFLICT, "DISSEMINATION_IN_PROGRESS", message)
                    .with_header(header::LOCATION, &loc)
                    .with_body(serde_json::json!({
                        "error": {
                            "code": "DISSEMINATION_IN_PROGRESS",
                            "message": message,
                            "details": format!("disseminationId {}", existing.id),
                        },
                        "disseminationId": existing.id,
                        "dissemination": existing.view.map(|v| v.with_links(&state.cfg)),
                    })),
            )
        }
    }
}

/// Filters and paging of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only disseminations of this AIP.
    archive_id: Option<String>,
    /// Only disseminations in this status.
    #[param(value_type = Option<DisseminationStatus>)]
    status: Option<String>,
    /// Page size, 1..100 (default 20).
    page_size: Option<i32>,
    /// `nextCursor` of the previous page.
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

/// Temporal's visibility queries take string literals: escape what could end one.
fn literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// List the caller's disseminations, newest first.
#[utoipa::path(get, path = "/v1/disseminations", tag = "disseminations",
    params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's disseminations", body = DisseminationPage),
        (status = 400, description = "Invalid filter, page size or cursor", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody),
        (status = 503, description = "Temporal is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    query: Result<axum::extract::Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DisseminationPage>, ApiError> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let axum::extract::Query(params) = query.map_err(|e| {
        ApiError::bad_request("INVALID_REQUEST", "invalid query parameters")
            .with_details(e.body_text())
    })?;
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
        literal(&claims.client_id)
    );
    if let Some(a) = &params.archive_id {
        let a = ArchiveId::parse(a)
            .map_err(|e| ApiError::bad_request("INVALID_ARCHIVE_ID", e.to_string()))?;
        q.push_str(&format!(" AND ArchiveId = '{a}'"));
    }
    if let Some(s) = &params.status {
        let status: DisseminationStatus =
            serde_json::from_value(serde_json::Value::String(s.clone())).map_err(|_| {
                ApiError::bad_request("INVALID_STATUS", format!("unknown status {s:?}"))
            })?;
        q.push_str(&format!(" AND DisseminationStatus = '{status}'"));
    }
    let page_size = params.page_size.unwrap_or(20);
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::bad_request(
            "INVALID_PAGE_SIZE",
            "pageSize must be 1..100",
        ));
    }
    let cursor = match &params.cursor {
        Some(c) => URL_SAFE_NO_PAD
            .decode(c)
            .map_err(|_| ApiError::bad_request("INVALID_CURSOR", "the cursor is not valid"))?,
        None => Vec::new(),
    };
    if readable.is_empty() {
        return Ok(Json(DisseminationPage {
            items: vec![],
            next_cursor: None,
        }));
    }
    let (items, next) = temporal::list_views(&state.temporal, q, page_size, cursor).await?;
    // Isolation does not rest on the query alone.
    let items = items
        .into_iter()
        .filter(|v| {
            v.record.client_id.0 == claims.client_id && claims.can_read(&v.record.contract_id)
        })
        .map(|v| v.with_links(&state.cfg))
        .collect();
    Ok(Json(DisseminationPage {
        items,
        next_cursor: (!next.is_empty()).then(|| URL_SAFE_NO_PAD.encode(next)),
    }))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<(ArchiveId, Priority), &'static str> {
        let body: DisseminationIn = serde_json::from_str(json).map_err(|_| "INVALID_REQUEST")?;
        body.parse().map_err(|e| e.code)
    }

    #[test]
    fn body_rules() {
        let id = "019e404e-60ab-7457-b7c9-94c453242c69";
        assert_eq!(
            parse(&format!(r#"{{"archiveId":"{id}"}}"#)).map(|p| p.1.get()),
            Ok(50)
        );
        assert_eq!(
            parse(&format!(r#"{{"archiveId":"{id}","priority":1}}"#)).map(|p| p.1.get()),
            Ok(1)
        );
        assert_eq!(
            parse(&format!(r#"{{"archiveId":"{id}","priority":100}}"#)).map(|p| p.1.get()),
            Ok(100)
        );
        for bad in ["0", "101", "2.5", "\"high\"", "-1", "true", "50.0", "1e2"] {
            assert_eq!(
                parse(&format!(r#"{{"archiveId":"{id}","priority":{bad}}}"#)).err(),
                Some("INVALID_PRIORITY"),
                "{bad}"
            );
        }
        assert_eq!(parse(r#"{"priority":1}"#).err(), Some("INVALID_ARCHIVE_ID"));
        assert_eq!(
            parse(r#"{"archiveId":42}"#).err(),
            Some("INVALID_ARCHIVE_ID")
        );
        assert_eq!(
            parse(r#"{"archiveId":"nope"}"#).err(),
            Some("INVALID_ARCHIVE_ID")
        );
        assert_eq!(
            parse(&format!(r#"{{"archiveId":"{id}","extra":1}}"#)).err(),
            Some("INVALID_REQUEST")
        );
    }
}

/// Temporal carries a dissemination's input and its view (one entry per
/// file) as payloads of at most 2 MB: an AIP with too many repository files
/// for that is refused before anything starts.
fn refuse_oversized(
    cfg: &model::config::Config,
    files: &[model::catalog::RepositoryFile],
) -> Result<(), ApiError> {
    /// Input and view each stay well inside the 2 MB payload limit.
    const MAX_INPUT_BYTES: usize = 512 * 1024;
    let max = cfg.api.max_repository_files;
    let bytes = serde_json::to_vec(files).map_or(usize::MAX, |v| v.len());
    if files.len() > max || bytes > MAX_INPUT_BYTES {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "TOO_MANY_REPOSITORY_FILES",
            format!(
                "the AIP has {} repository files; one dissemination carries at most {max}",
                files.len()
            ),
        ));
    }
    Ok(())
}

/// The caller's dissemination, or 400/404 as GET answers.
async fn own_view(
    state: &AppState,
    claims: &crate::auth::Claims,
    raw_id: &str,
) -> Result<(DisseminationId, DisseminationView), ApiError> {
    let id = DisseminationId::parse(raw_id)
        .map_err(|e| ApiError::bad_request("INVALID_DISSEMINATION_ID", e.to_string()))?;
    let not_found =
        || ApiError::not_found("DISSEMINATION_NOT_FOUND", format!("no dissemination {id}"));
    let view = temporal::read_view(&state.temporal, &id)
        .await?
        .ok_or_else(not_found)?;
    // Another client's dissemination, or one of a contract the token no
    // longer has a role for (revoked since it was created), does not exist
    // for this caller: the role is checked on every call, not only at creation.
    if view.record.client_id.0 != claims.client_id || !claims.can_read(&view.record.contract_id) {
        return Err(not_found());
    }
    Ok((id, view.with_links(&state.cfg)))
}

fn retention_ended() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "RETENTION_ENDED",
        "the delivered objects were deleted at the end of their retention; request the AIP again",
    )
}

/// New download links (new expiry) for a delivered dissemination whose
/// objects are still retained. Nothing is downloaded or uploaded again;
/// earlier links stay valid until their own expiry.
#[utoipa::path(post, path = "/v1/disseminations/{disseminationId}/links", tag = "disseminations",
    params(("disseminationId" = String, Path, description = "22 base62 characters", pattern = "^[0-9A-Za-z]{22}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dissemination with new links in `files`", body = DisseminationView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "DISSEMINATION_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "NOT_DELIVERED: not (yet) delivered", body = ErrorBody),
        (status = 410, description = "RETENTION_ENDED: the objects were deleted", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody),
        (status = 503, description = "Temporal or the workers are unavailable", body = ErrorBody),
    ))]
pub async fn regenerate_links(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    Path(raw_id): Path<String>,
) -> Result<Json<DisseminationView>, ApiError> {
    let (id, view) = own_view(&state, &claims, &raw_id).await?;
    if view.status != DisseminationStatus::Disseminated {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "NOT_DELIVERED",
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
        Ok(view) => Ok(Json(view.with_links(&state.cfg))),
        Err(e) => {
            // Retention may have ended meanwhile (or the workflow closed).
            let now = temporal::read_view(&state.temporal, &id).await?;
            let cap = state.cfg.timings.max_link_regenerations;
            if now.is_none_or(|v| v.objects_deleted || v.retention_ends_at.is_none()) {
                Err(retention_ended())
            } else if e
                .to_string()
                .contains(workflows::dissemination::LINK_CAP_PREFIX)
            {
                Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "LINK_REGENERATION_LIMIT",
                    format!("links of a dissemination can be regenerated at most {cap} times; request the AIP again"),
                ))
            } else {
                Err(ApiError::unavailable("the workers", e))
            }
        }
    }
}

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
            StatusCode::CONFLICT,
            "DISSEMINATION_ENDED",
            format!("the dissemination already ended {}", view.status),
        ));
    }
    temporal::cancel(&state.temporal, &id).await?;
    tracing::info!(dissemination_id = %id, "cancellation requested");
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
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

//! `POST /v1/disseminations`: the body parsed into a `NewDissemination`
//! (`request.rs`), the AIP checked against the catalog and the token, then
//! the dissemination started behind its per-(client, AIP) lock.

use super::request::{Delivery, DisseminationIn, NewDissemination};
use crate::{
    error::{ApiError, ErrorBody, ErrorCode, ErrorDetail},
    extract::{AppJson, AuthenticatedClient},
    state::AppState,
    temporal::{self, StartOutcome, StartRequest},
};
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use model::{ArchiveId, BatchId, DisseminationId, Priority};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use workflows::{DisseminationInput, DisseminationRecord, DisseminationView};

/// 409: a dissemination of the AIP for this client is in progress.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictBody {
    pub error: ErrorDetail,
    /// The dissemination in progress (also in `Location`).
    pub dissemination_id: String,
    pub dissemination: Option<DisseminationView>,
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
        (status = 400, description = "Invalid archiveId, priority, format, select or body", body = ErrorBody),
        (status = 403, description = "The token has no role for the AIP's contract", body = ErrorBody),
        (status = 404, description = "ARCHIVE_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "DISSEMINATION_IN_PROGRESS", body = ConflictBody,
            headers(("Location" = String, description = "The dissemination in progress"))),
        (status = 422, description = "ARCHIVE_NOT_PRESERVED", body = ErrorBody),
        (status = 503, description = "Temporal or the catalog is unavailable", body = ErrorBody),
        crate::responses::JsonBody,
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    AppJson(request): AppJson<NewDissemination>,
) -> Result<Response, ApiError> {
    let NewDissemination {
        archive_id,
        priority,
        delivery,
    } = request;
    let ask = Ask {
        priority,
        delivery: &delivery,
        batch: None,
        staging: None,
    };
    let id = DisseminationId::generate();
    match admit(&state, &claims, archive_id, id, &ask).await? {
        Admission::Started(view, _) => {
            let record = &view.record;
            let span = tracing::Span::current();
            span.set_attribute("disseminationId", record.dissemination_id.to_string());
            span.set_attribute("archiveId", record.archive_id.to_string());
            span.set_attribute("clientId", record.client_id.as_str().to_owned());
            span.set_attribute("contractId", record.contract_id.to_string());
            span.set_attribute("priority", i64::from(priority.get()));
            let loc = location(&state, record.dissemination_id.as_str());
            Ok((StatusCode::CREATED, [(header::LOCATION, loc)], Json(*view)).into_response())
        }
        Admission::InProgress(existing) => {
            let loc = location(&state, &existing.id);
            let error = ApiError::new(
                ErrorCode::DisseminationInProgress,
                "a dissemination of this AIP for this client is in progress",
            )
            .with_details(format!("disseminationId {}", existing.id));
            let body = ConflictBody {
                error: error.detail(),
                dissemination_id: existing.id,
                dissemination: existing
                    .view
                    .map(|v| v.with_links(state.cfg.link_signer(claims.client_id.as_str()))),
            };
            Err(error.with_header(header::LOCATION, &loc).with_body(body))
        }
    }
}

/// What is asked of every AIP of a request (one, or a batch's).
pub(crate) struct Ask<'a> {
    pub(crate) priority: Priority,
    pub(crate) delivery: &'a Delivery,
    /// The batch it belongs to.
    pub(crate) batch: Option<&'a BatchId>,
    /// A batch's: its tape files staged by the batch, within this many
    /// files in all (what is left of the budget), as its group `group`.
    pub(crate) staging: Option<BatchStaging<'a>>,
}

/// How many tape files a batch stages itself at most: its `stage` step's
/// input and heartbeat stay far below Temporal's payload limits. Items
/// beyond stage their own.
pub(crate) const BATCH_STAGE_MAX_FILES: usize = 4000;

pub(crate) struct BatchStaging<'a> {
    pub(crate) budget: &'a std::sync::atomic::AtomicUsize,
    pub(crate) group: u32,
}

impl BatchStaging<'_> {
    /// Takes `n` files of the budget, if it has them.
    fn take(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }
}

pub(crate) enum Admission {
    /// Started; with the tape files its batch is to stage for it.
    Started(Box<DisseminationView>, Vec<workflows::TapeFile>),
    InProgress(Box<temporal::Existing>),
}

/// The checks of a single POST for one AIP (404, 403, 422), then its
/// dissemination started behind its per-(client, AIP) lock, as `id`.
pub(crate) async fn admit(
    state: &AppState,
    claims: &crate::auth::Claims,
    archive_id: ArchiveId,
    id: DisseminationId,
    ask: &Ask<'_>,
) -> Result<Admission, ApiError> {
    // Each asks again what did not answer (a Temporal busy for a moment):
    // every call is idempotent by the dissemination id.
    let tries = if ask.batch.is_some() {
        state.cfg.api.batch_start_tries
    } else {
        state.cfg.api.start_tries
    };
    let aip = temporal::persist(tries, || async {
        Ok(state.catalog.get(&archive_id).await?)
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::ArchiveNotFound,
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
            ErrorCode::ArchiveNotPreserved,
            format!(
                "the AIP is {:?}, only preserved AIPs can be disseminated",
                entity.status
            ),
        ));
    }
    let priority = ask.priority;
    let record = DisseminationRecord {
        dissemination_id: id,
        archive_id,
        client_id: claims.client_id.clone(),
        contract_id: entity.access_group_id.clone(),
        object_id: entity.object_id.clone(),
        sum_size_in_bytes: entity.sum_size_in_bytes,
        priority,
        date_created: model::time::Timestamp::now(),
        format: ask.delivery.format,
        select: ask.delivery.patterns(),
    };
    let view = DisseminationView::received(record.clone());
    let cfg = &state.cfg;
    refuse_oversized(cfg, &aip.repository_files)?;
    // Started QUEUED: the workflow writes nothing until its final status.
    let queued = DisseminationView {
        status: model::DisseminationStatus::Queued,
        ..view.clone()
    };
    let mut settings = crate::settings::workflow_settings(cfg);
    if ask.batch.is_some() {
        // A batch's item: its short steps too on slots of the batch's own.
        settings.steps_queue = Some(cfg.batched_steps_queue());
    }
    // A batch's item: its first tape copies are staged by the batch.
    let tape = match &ask.staging {
        Some(staging) => {
            let tape = workflows::first_tape_copies(&aip.repository_files, &settings.locations);
            if !tape.is_empty() && staging.take(tape.len()) {
                tape
            } else {
                Vec::new()
            }
        }
        None => Vec::new(),
    };
    let staged_by_batch = match (&ask.staging, ask.batch) {
        (Some(staging), Some(batch)) if !tape.is_empty() => Some(workflows::StagedByBatch {
            batch_id: batch.clone(),
            group: staging.group,
            files: tape.len() as u32,
            bytes: tape.iter().map(|f| f.size).sum(),
        }),
        _ => None,
    };
    let input = DisseminationInput {
        record: record.clone(),
        files: aip.repository_files.clone(),
        lock: None,
        settings,
        batch: ask.batch.cloned(),
        flow: workflows::FLOW,
        staged_by_batch: staged_by_batch.is_some(),
    };
    let request = StartRequest {
        // A batch's items run on the batch items' queues, with worker
        // slots of their own: a collection never holds the slots a single
        // request starts on (within it, clients share by fairness key, and
        // its items yield to another batch's more urgent ones). A small or
        // medium AIP takes its size class's queue (a batch item's: the
        // batch items' one): its transfer never waits behind longer ones.
        task_queue: cfg.request_queue(priority, input.total_bytes(), ask.batch.is_some()),
        input,
        staged_by_batch,
        lock_queue: cfg.held_lock_queue(),
        lock_start_delay_secs: cfg.api.lock_start_delay_secs,
        priority_key: priority.priority_key(),
        view: &queued,
        tries,
    };
    Ok(match temporal::start(&state.temporal, request).await? {
        StartOutcome::Started => {
            tracing::info!(dissemination_id = %record.dissemination_id, archive_id = %record.archive_id,
                client_id = %record.client_id, priority = priority.get(), batch = ?ask.batch.map(|b| b.as_str()),
                "dissemination accepted");
            Admission::Started(Box::new(view), tape)
        }
        StartOutcome::InProgress(existing) => Admission::InProgress(existing),
    })
}

/// Temporal carries a dissemination's input and its view (one entry per
/// file) as payloads of at most 2 MB: an AIP with too many repository files
/// for that is refused before anything starts.
fn refuse_oversized(
    cfg: &platform::config::Config,
    files: &[model::catalog::RepositoryFile],
) -> Result<(), ApiError> {
    /// Input and view each stay well inside the 2 MB payload limit.
    const MAX_INPUT_BYTES: usize = 512 * 1024;
    let max = cfg.api.max_repository_files;
    let bytes = serde_json::to_vec(files).map_or(usize::MAX, |v| v.len());
    if files.len() > max || bytes > MAX_INPUT_BYTES {
        return Err(ApiError::new(
            ErrorCode::TooManyRepositoryFiles,
            format!(
                "the AIP has {} repository files; one dissemination carries at most {max}",
                files.len()
            ),
        ));
    }
    Ok(())
}

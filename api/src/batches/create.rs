//! `POST /v1/dissemination-batches`: every archiveId checked as a single
//! POST would check it; the items that pass started (waiting for their
//! turn), then the batch's workflow that gives the turns.

use super::request::{BatchIn, NewBatch};
use crate::{
    disseminations::create::{admit, Admission, Ask, BatchStaging, BATCH_STAGE_MAX_FILES},
    error::{ApiError, ErrorBody},
    extract::{AppJson, AuthenticatedClient},
    state::AppState,
    temporal,
};
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use futures::StreamExt;
use model::{ArchiveId, BatchId, DisseminationId};
use std::sync::atomic::Ordering;
use temporalio_client::errors::WorkflowInteractionError;
use workflows::{
    BatchCounts, BatchInput, BatchItem, BatchRecord, BatchView, ItemError, StageGroup,
};

/// A batch and its items (201).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchCreated {
    #[serde(flatten)]
    pub batch: BatchView,
    pub items: Vec<BatchItem>,
}

/// Create a batch: one dissemination per archiveId.
///
/// Each archiveId is checked as a single POST would be: refused items
/// (404, 403, 422) carry their error, an AIP already in progress for the
/// caller its `existing` dissemination; the others are started and wait
/// for their turn. A batch whose items are all refused is still a batch.
#[utoipa::path(post, path = "/v1/dissemination-batches", tag = "batches",
    request_body = BatchIn,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The batch and its items", body = BatchCreated,
            headers(("Location" = String, description = "The new batch"))),
        (status = 400, description = "Invalid, duplicate or too many archiveIds; invalid priority, format, select or body", body = ErrorBody),
        (status = 503, description = "Temporal or the catalog is unavailable", body = ErrorBody),
        crate::responses::JsonBody,
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    AppJson(request): AppJson<NewBatch>,
) -> Result<Response, ApiError> {
    // Admitted to the end even if the client (or a proxy's timeout) hangs
    // up: the items started so far get their batch, or are cancelled with
    // it, never left without one. A retry finds them in progress. A
    // graceful shutdown waits for it.
    use tracing::Instrument;
    let admissions = state.admissions.clone();
    let admission = admit_batch(state, claims, request).in_current_span();
    admissions
        .spawn(admission)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("admitting the batch: {e}"))))
}

async fn admit_batch(
    state: AppState,
    claims: crate::auth::Claims,
    request: NewBatch,
) -> Result<Response, ApiError> {
    let cfg = &state.cfg;
    let NewBatch {
        archive_ids: ids,
        priority,
        delivery,
    } = request;
    let batch_id = BatchId::generate();
    let budget = std::sync::atomic::AtomicUsize::new(BATCH_STAGE_MAX_FILES);
    // The items, started in order a few at a time. An item that finds
    // Temporal or the catalog unavailable (after its tries) refuses the
    // whole batch: no item after it starts, the started ones are cancelled.
    let unavailable = std::sync::atomic::AtomicBool::new(false);
    type Outcome = (
        ArchiveId,
        DisseminationId,
        Option<Result<Admission, ApiError>>,
        Vec<workflows::TapeFile>,
    );
    let outcomes: Vec<Outcome> = futures::stream::iter(ids.into_iter().enumerate())
        .map(|(n, archive_id)| {
            let (state, claims, unavailable) = (&state, &claims, &unavailable);
            let ask = Ask {
                priority,
                delivery: &delivery,
                batch: Some(&batch_id),
                staging: Some(BatchStaging {
                    budget: &budget,
                    group: n as u32,
                }),
            };
            async move {
                let id = DisseminationId::generate();
                if unavailable.load(Ordering::Relaxed) {
                    return (archive_id, id, None, Vec::new());
                }
                let outcome = admit(state, claims, archive_id.clone(), id.clone(), &ask).await;
                let (outcome, tape) = match outcome {
                    Ok(Admission::Started(view, tape)) => {
                        (Ok(Admission::Started(view, Vec::new())), tape)
                    }
                    other => (other, Vec::new()),
                };
                if matches!(&outcome, Err(e) if e.code.status().is_server_error()) {
                    unavailable.store(true, Ordering::Relaxed);
                }
                (archive_id, id, Some(outcome), tape)
            }
        })
        .buffered(cfg.api.batch_start_concurrency.max(1))
        .collect()
        .await;
    let mut items = Vec::with_capacity(outcomes.len());
    let mut failure = None;
    let mut unanswered = Vec::new();
    // Group n: item n's tape files (its place in the request).
    let mut tape = Vec::with_capacity(outcomes.len());
    for (archive_id, id, outcome, files) in outcomes {
        let archive_id = archive_id.to_string();
        tape.push(StageGroup {
            dissemination_id: (!files.is_empty()).then(|| id.to_string()),
            files,
        });
        items.push(match outcome {
            Some(Ok(Admission::Started(view, _))) => BatchItem {
                archive_id,
                dissemination_id: Some(view.record.dissemination_id.to_string()),
                existing: false,
                error: None,
                status: Some(view.status),
            },
            Some(Ok(Admission::InProgress(existing))) => BatchItem {
                archive_id,
                dissemination_id: Some(existing.id),
                existing: true,
                error: None,
                status: existing.view.map(|v| v.status),
            },
            // A start that went unanswered may have happened: it is
            // cancelled with the started ones.
            Some(Err(e)) if e.code.status().is_server_error() => {
                failure.get_or_insert(e);
                unanswered.push(id);
                continue;
            }
            Some(Err(e)) => BatchItem {
                archive_id,
                dissemination_id: None,
                existing: false,
                error: Some(ItemError {
                    code: e.code.item_error_code(),
                    message: e.message.clone(),
                }),
                status: None,
            },
            // Not tried: an item before it found a dependency unavailable.
            None => continue,
        });
    }
    if let Some(e) = failure {
        cancel_started(
            &state,
            &items,
            unanswered,
            "its batch was refused: an item could not be started",
        )
        .await;
        return Err(e);
    }
    let record = BatchRecord {
        batch_id: batch_id.clone(),
        client_id: claims.client_id.clone(),
        priority,
        format: delivery.format,
        select: delivery.patterns(),
        date_created: model::time::Timestamp::now(),
    };
    let view = initial_view(&record, &items);
    let input = BatchInput {
        record,
        items: items
            .iter()
            .map(|i| BatchItem {
                status: None,
                ..i.clone()
            })
            .collect(),
        max_in_flight: cfg.api.batch_max_in_flight,
        settings: crate::settings::workflow_settings(cfg),
        carried: None,
        continue_after_events: Some(cfg.api.batch_continue_after_events),
        flow: workflows::FLOW,
        // Staged by the batch in bulk, when any item has tape copies.
        tape: if tape.iter().any(|g| !g.files.is_empty()) {
            tape
        } else {
            Vec::new()
        },
    };
    if let Err(e) = temporal::batch::start(
        &state.temporal,
        input,
        &view,
        cfg.batch_queue(),
        cfg.api.batch_start_tries,
    )
    .await
    {
        // Refused: a start that happened unanswered is removed first (it
        // would report the cancelled items); without its batch no item
        // would get its turn, so they are cancelled.
        let tries = cfg.api.batch_start_tries;
        if let Err(left) = temporal::batch::remove(&state.temporal, &batch_id, tries).await {
            tracing::error!(%batch_id, error = %left.message,
                "a refused batch's workflow, if it started, was not removed");
        }
        cancel_started(&state, &items, Vec::new(), "its batch could not be started").await;
        return Err(e);
    }
    tracing::info!(%batch_id, client_id = %claims.client_id, items = items.len(),
        owned = items.iter().filter(|i| i.is_owned()).count(), "batch accepted");
    let location = format!(
        "{}/v1/dissemination-batches/{batch_id}",
        cfg.api.base_path.trim_end_matches('/')
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(BatchCreated { batch: view, items }),
    )
        .into_response())
}

/// The batch is refused: the items it started (each waiting for a turn
/// that will not come, nothing transferred) are cancelled, and those whose
/// start went unanswered if they exist; each asked as often as a start is.
async fn cancel_started(
    state: &AppState,
    items: &[BatchItem],
    unanswered: Vec<DisseminationId>,
    why: &str,
) {
    let tries = state.cfg.api.batch_start_tries;
    let started = items
        .iter()
        .filter(|i| i.is_owned())
        .filter_map(|i| DisseminationId::parse(i.dissemination_id.as_deref()?).ok())
        .chain(unanswered);
    futures::stream::iter(started)
        .for_each_concurrent(
            state.cfg.api.batch_start_concurrency.max(1),
            |id| async move {
                let cancelled = temporal::persist(tries, || {
                    state.temporal.bounded(async {
                        match temporal::cancel(&state.temporal, &id, why).await {
                            // Never started: nothing to cancel.
                            Ok(()) | Err(WorkflowInteractionError::NotFound(_)) => Ok(()),
                            Err(e) => Err(e.into()),
                        }
                    })
                })
                .await;
                if let Err(e) = cancelled {
                    tracing::error!(dissemination_id = %id, error = %e.message, reason = why,
                    "a started item of a refused batch was not cancelled");
                }
            },
        )
        .await;
}

/// The counts at creation (the workflow's memo starts the same).
fn initial_view(record: &BatchRecord, items: &[BatchItem]) -> BatchView {
    let mut counts = BatchCounts {
        total: items.len() as u32,
        ..Default::default()
    };
    for i in items {
        if i.is_owned() {
            // Nothing waits for a turn: started is in progress.
            counts.in_progress += 1;
        } else if i.existing {
            counts.existing += 1;
        } else {
            counts.refused += 1;
        }
    }
    BatchView::new(record.clone(), counts, false)
}

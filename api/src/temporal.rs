//! The API's Temporal round trips: start a dissemination behind its
//! per-(client, AIP) lock, and read a dissemination's view (query with a
//! short timeout, falling back to describe + memo when no worker answers).

use crate::error::ApiError;
use model::{DisseminationId, DisseminationStatus};
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime},
};
use temporalio_client::{
    errors::{WorkflowInteractionError, WorkflowStartError},
    Client, NamespacedClient, Priority, RpcOptions, WorkflowDescribeOptions, WorkflowExecutionInfo,
    WorkflowExecutionStatus, WorkflowHandle, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowQueryOptions, WorkflowStartOptions, WorkflowTerminateOptions,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::PendingActivityState, failure::v1::failure::FailureInfo,
    workflow::v1::PendingActivityInfo, workflowservice::v1::DescribeWorkflowExecutionResponse,
};
use temporalio_common::{search_attributes::SearchAttributes, MemoValues};
use workflows::{
    dissemination::{SA_ARCHIVE_ID, SA_CLIENT_ID, SA_CONTRACT_ID, SA_STATUS},
    failure_types,
    lock::lock_id,
    DisseminationInput, DisseminationLock, DisseminationView, DisseminationWorkflow, LockInput,
    LockRef, TransferHeartbeat, Waiting, MEMO_LOCK_HOLDER, MEMO_VIEW,
};

/// A lock whose dissemination never appeared is stale after this long
/// (the API stopped between the two starts).
const ORPHAN_LOCK_AFTER: Duration = Duration::from_secs(30);

/// Every call to Temporal answers within `temporal.rpc_timeout_ms`: while
/// it is down, clients get a 503 with `Retry-After` at once, not after the
/// SDK's own retries. Set once at start.
static RPC_BUDGET_MS: AtomicU64 = AtomicU64::new(1500);

pub fn set_rpc_budget(budget: Duration) {
    RPC_BUDGET_MS.store(budget.as_millis() as u64, Ordering::Relaxed);
}

fn rpc_budget() -> Duration {
    Duration::from_millis(RPC_BUDGET_MS.load(Ordering::Relaxed))
}

/// How often a request tries to take a lock whose holder just ended.
const LOCK_TRIES: usize = 6;

/// `call`, or 503 when Temporal does not answer within the budget.
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(rpc_budget(), call)
        .await
        .unwrap_or_else(|_| Err(ApiError::unavailable("Temporal", "no answer in time")))
}

fn describe_options() -> WorkflowDescribeOptions {
    WorkflowDescribeOptions::builder()
        .rpc_options(RpcOptions::builder().timeout(rpc_budget()).build())
        .build()
}

pub enum StartOutcome {
    Started,
    /// Another dissemination of the AIP for the client is in progress.
    InProgress(Box<Existing>),
}

pub struct Existing {
    pub id: String,
    pub view: Option<DisseminationView>,
}

pub struct StartRequest<'a> {
    pub input: DisseminationInput,
    pub band_queue: String,
    pub lock_queue: String,
    pub priority_key: u8,
    pub view: &'a DisseminationView,
}

/// Takes the (client, AIP) lock, then starts the dissemination. Temporal's
/// id uniqueness makes this race-free: of N concurrent requests exactly one
/// lock start succeeds.
pub async fn start(client: &Client, mut req: StartRequest<'_>) -> Result<StartOutcome, ApiError> {
    let record = &req.input.record;
    let lock_wf = lock_id(record.client_id.as_str(), record.archive_id.as_str());
    let mut holder = None;
    for _ in 0..LOCK_TRIES {
        let mut memo = MemoValues::new();
        memo.insert(MEMO_LOCK_HOLDER, record.dissemination_id.to_string());
        let opts = WorkflowStartOptions::new(req.lock_queue.clone(), lock_wf.clone())
            .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
            .memo(memo)
            .static_summary(format!(
                "lock of AIP {} for {}",
                record.archive_id, record.client_id
            ))
            .build();
        let input = LockInput {
            dissemination_id: record.dissemination_id.clone(),
        };
        let started = bounded(async {
            Ok(client
                .start_workflow(DisseminationLock::run, input, opts)
                .await)
        })
        .await?;
        match started {
            Ok(handle) => {
                let run_id = handle.info().run_id.clone().unwrap_or_default();
                req.input.lock = Some(LockRef {
                    workflow_id: lock_wf.clone(),
                    run_id: run_id.clone(),
                });
                return start_dissemination(client, &req)
                    .await
                    .map(|()| StartOutcome::Started)
                    .inspect_err(|_| {
                        release_orphan(client, &lock_wf, &run_id);
                    });
            }
            Err(WorkflowStartError::AlreadyStarted { .. }) => {
                match bounded(existing_holder(client, &lock_wf)).await? {
                    Holder::Active(existing) => return Ok(StartOutcome::InProgress(existing)),
                    // The lock outlived its dissemination: remove it and try
                    // again (a parallel request may have removed it first).
                    Holder::Stale { run_id, holder: h } => {
                        holder = h.or(holder);
                        terminate_run(client, &lock_wf, &run_id).await;
                    }
                    // Released or removed between the start and the look.
                    Holder::Gone => {}
                }
            }
            Err(e) => return Err(ApiError::unavailable("Temporal", e)),
        }
    }
    // Still handed over after every try: others are taking it right now;
    // one of them holds it.
    Ok(StartOutcome::InProgress(Box::new(Existing {
        id: holder.unwrap_or_default(),
        view: None,
    })))
}

async fn start_dissemination(client: &Client, req: &StartRequest<'_>) -> Result<(), ApiError> {
    let record = &req.input.record;
    let mut memo = MemoValues::new();
    memo.insert(MEMO_VIEW, req.view.clone());
    let opts =
        WorkflowStartOptions::new(req.band_queue.clone(), record.dissemination_id.to_string())
            .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            .priority(
                Priority::builder()
                    .priority_key(u32::from(req.priority_key))
                    .fairness_key(record.contract_id.to_string())
                    .build(),
            )
            .memo(memo)
            .search_attributes(SearchAttributes::new([
                SA_ARCHIVE_ID.value_set(record.archive_id.to_string()),
                SA_CLIENT_ID.value_set(record.client_id.to_string()),
                SA_CONTRACT_ID.value_set(record.contract_id.to_string()),
                SA_STATUS.value_set(req.view.status.as_str().to_owned()),
            ]))
            .static_summary(format!(
                "AIP {} ({}) for {}, priority {}",
                record.archive_id,
                record.object_id,
                record.client_id,
                record.priority.get()
            ))
            .build();
    bounded(async {
        client
            .start_workflow(DisseminationWorkflow::run, req.input.clone(), opts)
            .await
            .map(|_| ())
            .map_err(|e| ApiError::unavailable("Temporal", e))
    })
    .await
}

enum Holder {
    Active(Box<Existing>),
    Stale {
        run_id: String,
        holder: Option<String>,
    },
    /// No running lock any more.
    Gone,
}

async fn existing_holder(client: &Client, lock_wf: &str) -> Result<Holder, ApiError> {
    let lock = client.get_workflow_handle::<DisseminationLock>(lock_wf.to_owned());
    let desc = match lock.describe(describe_options()).await {
        Ok(d) => d,
        Err(WorkflowInteractionError::NotFound(_)) => return Ok(Holder::Gone),
        Err(e) => return Err(ApiError::unavailable("Temporal", e)),
    };
    if desc.status() != WorkflowExecutionStatus::Running {
        return Ok(Holder::Gone);
    }
    let run_id = desc.run_id().to_owned();
    let holder: Option<String> = desc.memo().get(MEMO_LOCK_HOLDER).ok().flatten();
    let Some(holder) = holder else {
        return Ok(Holder::Stale {
            run_id,
            holder: None,
        });
    };
    let started = desc.start_time();
    let described = match DisseminationId::parse(&holder) {
        Ok(id) => describe(client, &id).await?,
        Err(_) => None,
    };
    let stale = |holder: String| {
        Ok(Holder::Stale {
            run_id: run_id.clone(),
            holder: Some(holder),
        })
    };
    match described {
        // Ended (final status), or terminated / timed out by an operator
        // before it could release the lock.
        Some(d)
            if d.status != WorkflowExecutionStatus::Running
                || d.view.as_ref().is_some_and(|v| v.status.is_final()) =>
        {
            stale(holder)
        }
        None if started.is_some_and(|t| {
            SystemTime::now().duration_since(t).unwrap_or_default() > ORPHAN_LOCK_AFTER
        }) =>
        {
            stale(holder)
        }
        d => Ok(Holder::Active(Box::new(Existing {
            id: holder,
            view: d.and_then(|d| d.view),
        }))),
    }
}

async fn terminate_run(client: &Client, workflow_id: &str, run_id: &str) {
    let info = WorkflowExecutionInfo::builder()
        .namespace(client.namespace())
        .workflow_id(workflow_id)
        .run_id(run_id)
        .build();
    let handle: WorkflowHandle<Client, DisseminationLock> =
        WorkflowHandle::new(client.clone(), info);
    let opts = WorkflowTerminateOptions::builder()
        .reason("stale in-progress lock")
        .build();
    match tokio::time::timeout(rpc_budget(), handle.terminate(opts)).await {
        Ok(Ok(())) => {}
        // Removed by a parallel request, or released meanwhile: fine.
        Ok(Err(WorkflowInteractionError::NotFound(_))) => {}
        Ok(Err(e)) => tracing::info!(%workflow_id, error = %e, "a stale lock was not removed"),
        Err(_) => tracing::info!(%workflow_id, "removing a stale lock took too long"),
    }
}

/// The dissemination could not start: free its lock in the background.
fn release_orphan(client: &Client, lock_wf: &str, run_id: &str) {
    let (client, lock_wf, run_id) = (client.clone(), lock_wf.to_owned(), run_id.to_owned());
    tokio::spawn(async move { terminate_run(&client, &lock_wf, &run_id).await });
}

/// The dissemination's view in one round trip, with no worker involved:
/// describe returns the memo the workflow keeps up to date with every
/// change of status, files, reasons and webhook, and the pending transfer
/// whose heartbeat carries the live progress (and whose last failure says
/// what a retrying step waits for). `None`: no such workflow.
pub async fn read_view(
    client: &Client,
    id: &DisseminationId,
) -> Result<Option<DisseminationView>, ApiError> {
    Ok(bounded(describe(client, id))
        .await?
        .and_then(Described::live_view))
}

/// What describe tells about a dissemination.
pub struct Described {
    pub view: Option<DisseminationView>,
    /// Running, completed, failed, terminated…: a lock whose holder is no
    /// longer running is stale whatever its memo says.
    pub status: WorkflowExecutionStatus,
    raw: DescribeWorkflowExecutionResponse,
}

impl Described {
    /// The memo's view with the live progress and wait of the pending step.
    fn live_view(self) -> Option<DisseminationView> {
        let mut view = self.view?;
        if view.status.is_final() {
            return Some(view);
        }
        for pending in &self.raw.pending_activities {
            let kind = pending
                .activity_type
                .as_ref()
                .map(|t| t.name.as_str())
                .unwrap_or_default();
            if kind == "transfer" {
                let beat = pending
                    .heartbeat_details
                    .as_ref()
                    .and_then(|p| p.payloads.first())
                    .and_then(|p| serde_json::from_slice::<TransferHeartbeat>(&p.data).ok());
                let progress = beat.and_then(|b| b.progress).filter(|p| {
                    let expected = if p.phase == "download" {
                        DisseminationStatus::DownloadingFromRepository
                    } else {
                        DisseminationStatus::UploadingToS3
                    };
                    view.status == expected
                });
                if progress.is_some() {
                    view.progress = progress;
                }
            }
            if let Some(waiting) = waiting(pending, kind) {
                view.waiting = Some(waiting);
            }
        }
        Some(view)
    }
}

/// A step that failed and waits for its next attempt: what it waits for.
fn waiting(pending: &PendingActivityInfo, kind: &str) -> Option<Waiting> {
    let failure = pending.last_failure.as_ref()?;
    if pending.state != PendingActivityState::Scheduled as i32 || pending.attempt < 2 {
        return None;
    }
    let type_name = match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(a)) => a.r#type.as_str(),
        Some(FailureInfo::TimeoutFailureInfo(_)) => "timeout",
        _ => "",
    };
    let waiting_for = match (type_name, kind) {
        ("timeout", _) => "a worker",
        (t, _) if t == failure_types::UPLOAD_ERROR => "S3",
        (_, "transfer") => "the bit repository",
        (_, "notify") => "the client's webhook endpoint",
        _ => "S3",
    };
    let next_attempt_at = pending.next_attempt_schedule_time.as_ref().map(|t| {
        let at =
            std::time::UNIX_EPOCH + Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32);
        let at: chrono::DateTime<chrono::Utc> = at.into();
        model::time::rfc3339(&at)
    });
    let reason = if failure.message.is_empty() {
        "the step timed out".to_owned()
    } else {
        failure.message.clone()
    };
    Some(Waiting {
        waiting_for: waiting_for.into(),
        reason,
        attempt: u32::try_from(pending.attempt).unwrap_or_default(),
        next_attempt_at,
    })
}

/// Describes a dissemination's workflow; `None` when there is none.
pub async fn describe(
    client: &Client,
    id: &DisseminationId,
) -> Result<Option<Described>, ApiError> {
    let handle = client.get_workflow_handle::<DisseminationWorkflow>(id.to_string());
    match handle.describe(describe_options()).await {
        Ok(desc) => {
            let view = desc
                .memo()
                .get::<DisseminationView>(MEMO_VIEW)
                .map_err(ApiError::internal)?;
            Ok(Some(Described {
                view,
                status: desc.status(),
                raw: desc.raw().clone(),
            }))
        }
        Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
        Err(e) => Err(ApiError::unavailable("Temporal", e)),
    }
}

/// One page of the caller's disseminations, newest first, from the
/// visibility store (eventually consistent: a dissemination created a moment
/// ago may appear a moment later).
pub async fn list_views(
    client: &Client,
    query: String,
    page_size: i32,
    cursor: Vec<u8>,
) -> Result<(Vec<DisseminationView>, Vec<u8>), ApiError> {
    use temporalio_common::protos::temporal::api::workflowservice::v1::ListWorkflowExecutionsRequest;
    let request = ListWorkflowExecutionsRequest {
        namespace: client.namespace(),
        page_size,
        next_page_token: cursor,
        query,
    };
    let mut service = client.connection().workflow_service();
    let had_cursor = !request.next_page_token.is_empty();
    let probe = ListWorkflowExecutionsRequest {
        next_page_token: Vec::new(),
        page_size: 1,
        ..request.clone()
    };
    let response = match service
        .list_workflow_executions(temporalio_client::tonic::Request::new(request))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => {
            // The server rejects a forged or stale page token with a
            // generic error: if the same query without it works, the
            // client's cursor was at fault.
            let cursor_fault = had_cursor
                && service
                    .list_workflow_executions(temporalio_client::tonic::Request::new(probe))
                    .await
                    .is_ok();
            return Err(
                if cursor_fault || status.code() == temporalio_client::tonic::Code::InvalidArgument
                {
                    ApiError::bad_request(
                        "INVALID_CURSOR",
                        "the cursor is not valid (or has expired)",
                    )
                } else {
                    ApiError::unavailable("Temporal", status)
                },
            );
        }
    };
    let views = response
        .executions
        .iter()
        .filter_map(|e| e.memo.as_ref()?.fields.get(MEMO_VIEW))
        .filter_map(|payload| serde_json::from_slice::<DisseminationView>(&payload.data).ok())
        .collect();
    Ok((views, response.next_page_token))
}

/// Asks the workflow for new download links (an update: the workflow runs
/// the presigning step and records it).
pub async fn regenerate_links(
    client: &Client,
    id: &DisseminationId,
    timeout: Duration,
) -> Result<DisseminationView, temporalio_client::errors::WorkflowUpdateError> {
    let handle = client.get_workflow_handle::<DisseminationWorkflow>(id.to_string());
    let opts = temporalio_client::WorkflowExecuteUpdateOptions::builder()
        .rpc_options(RpcOptions::builder().timeout(timeout).build())
        .build();
    handle
        .execute_update(DisseminationWorkflow::regenerate_links, (), opts)
        .await
}

/// Requests cancellation: the workflow stops the running step, removes
/// what it left behind and ends CANCELLED.
pub async fn cancel(client: &Client, id: &DisseminationId) -> Result<(), ApiError> {
    let handle = client.get_workflow_handle::<DisseminationWorkflow>(id.to_string());
    let opts = temporalio_client::WorkflowCancelOptions::builder()
        .reason("cancelled at the client's request")
        .build();
    handle
        .cancel(opts)
        .await
        .map_err(|e| ApiError::unavailable("Temporal", e))
}

/// The dissemination's audit trail, from the workflow (a worker must answer).
pub async fn read_events(
    client: &Client,
    id: &DisseminationId,
    query_timeout: Duration,
) -> Result<Vec<workflows::DisseminationEvent>, ApiError> {
    let handle = client.get_workflow_handle::<DisseminationWorkflow>(id.to_string());
    let opts = query_options(query_timeout);
    handle
        .query(DisseminationWorkflow::events, (), opts)
        .await
        .map_err(|e| ApiError::unavailable("the workers", e))
}

/// Queries time out quickly: with no worker polling, one would hang ~30 s.
/// Counting in the visibility store (readiness, metrics): bounded at 2 s.
pub fn count_options() -> temporalio_client::WorkflowCountOptions {
    temporalio_client::WorkflowCountOptions::builder()
        .rpc_options(
            RpcOptions::builder()
                .timeout(Duration::from_secs(2))
                .build(),
        )
        .build()
}

fn query_options(timeout: Duration) -> WorkflowQueryOptions {
    WorkflowQueryOptions::builder()
        .rpc_options(RpcOptions::builder().timeout(timeout).build())
        .build()
}

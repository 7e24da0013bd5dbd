//! The API's Temporal round trips: start a dissemination behind its
//! per-(client, AIP) lock, and read a dissemination's view (query with a
//! short timeout, falling back to describe + memo when no worker answers).

use crate::error::ApiError;
use model::{DisseminationId, DisseminationStatus};
use std::time::{Duration, SystemTime};
use temporalio_client::{
    errors::{WorkflowInteractionError, WorkflowQueryError, WorkflowStartError},
    Client, NamespacedClient, Priority, RpcOptions, WorkflowDescribeOptions, WorkflowExecutionInfo,
    WorkflowHandle, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowQueryOptions,
    WorkflowStartOptions, WorkflowTerminateOptions,
};
use temporalio_common::{search_attributes::SearchAttributes, MemoValues};
use workflows::{
    dissemination::{SA_ARCHIVE_ID, SA_CLIENT_ID, SA_CONTRACT_ID, SA_STATUS},
    lock::lock_id,
    DisseminationInput, DisseminationLock, DisseminationView, DisseminationWorkflow, LockInput,
    LockRef, MEMO_LOCK_HOLDER, MEMO_VIEW,
};

/// A lock whose dissemination never appeared is stale after this long
/// (the API stopped between the two starts).
const ORPHAN_LOCK_AFTER: Duration = Duration::from_secs(30);

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
    let lock_wf = lock_id(&record.client_id.0, record.archive_id.as_str());
    for _ in 0..2 {
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
        match client
            .start_workflow(DisseminationLock::run, input, opts)
            .await
        {
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
                match existing_holder(client, &lock_wf).await? {
                    Holder::Active(existing) => return Ok(StartOutcome::InProgress(existing)),
                    // The lock outlived its dissemination: remove it and try again.
                    Holder::Stale { run_id } => terminate_run(client, &lock_wf, &run_id).await,
                }
            }
            Err(e) => return Err(ApiError::unavailable("Temporal", e)),
        }
    }
    Err(ApiError::unavailable(
        "Temporal",
        "the in-progress lock could not be taken",
    ))
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
    client
        .start_workflow(DisseminationWorkflow::run, req.input.clone(), opts)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::unavailable("Temporal", e))
}

enum Holder {
    Active(Box<Existing>),
    Stale { run_id: String },
}

async fn existing_holder(client: &Client, lock_wf: &str) -> Result<Holder, ApiError> {
    let lock = client.get_workflow_handle::<DisseminationLock>(lock_wf.to_owned());
    let desc = lock
        .describe(WorkflowDescribeOptions::default())
        .await
        .map_err(|e| ApiError::unavailable("Temporal", e))?;
    let run_id = desc.run_id().to_owned();
    let holder: Option<String> = desc.memo().get(MEMO_LOCK_HOLDER).ok().flatten();
    let Some(holder) = holder else {
        return Ok(Holder::Stale { run_id });
    };
    let started = desc.start_time();
    let view = match DisseminationId::parse(&holder) {
        Ok(id) => describe_view(client, &id).await?,
        Err(_) => None,
    };
    match view {
        Some(v) if v.status.is_final() => Ok(Holder::Stale { run_id }),
        None if started.is_some_and(|t| {
            SystemTime::now().duration_since(t).unwrap_or_default() > ORPHAN_LOCK_AFTER
        }) =>
        {
            Ok(Holder::Stale { run_id })
        }
        view => Ok(Holder::Active(Box::new(Existing { id: holder, view }))),
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
    if let Err(e) = handle.terminate(opts).await {
        tracing::warn!(%workflow_id, error = %e, "could not remove a stale lock");
    }
}

/// The dissemination could not start: free its lock in the background.
fn release_orphan(client: &Client, lock_wf: &str, run_id: &str) {
    let (client, lock_wf, run_id) = (client.clone(), lock_wf.to_owned(), run_id.to_owned());
    tokio::spawn(async move { terminate_run(&client, &lock_wf, &run_id).await });
}

/// The dissemination's view in one round trip where one suffices: the memo
/// the workflow keeps up to date with every change of status, files, reasons
/// and webhook (describe: no worker involved). Only while bytes move is the
/// workflow queried as well, for the live progress; when no worker answers
/// in time the memo's view is the answer. `None`: no such workflow.
pub async fn read_view(
    client: &Client,
    id: &DisseminationId,
    query_timeout: Duration,
) -> Result<Option<DisseminationView>, ApiError> {
    let memo = describe_view(client, id).await?;
    let moving = memo.as_ref().is_none_or(|v| {
        matches!(
            v.status,
            DisseminationStatus::DownloadingFromRepository
                | DisseminationStatus::FixityCheck
                | DisseminationStatus::UploadingToS3
        )
    });
    if !moving {
        return Ok(memo);
    }
    let handle = client.get_workflow_handle::<DisseminationWorkflow>(id.to_string());
    match handle
        .query(
            DisseminationWorkflow::state,
            (),
            query_options(query_timeout),
        )
        .await
    {
        Ok(view) => Ok(Some(view)),
        Err(WorkflowQueryError::NotFound(_)) => Ok(None),
        Err(e) => {
            tracing::debug!(dissemination_id = %id, error = %e, "query unanswered, answering from the memo");
            Ok(memo)
        }
    }
}

async fn describe_view(
    client: &Client,
    id: &DisseminationId,
) -> Result<Option<DisseminationView>, ApiError> {
    let handle = client.get_workflow_handle::<DisseminationWorkflow>(id.to_string());
    match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(desc) => desc
            .memo()
            .get::<DisseminationView>(MEMO_VIEW)
            .map_err(ApiError::internal),
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

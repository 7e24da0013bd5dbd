//! Starting a dissemination behind its per-(client, AIP) lock: the lock
//! workflow is started first (Temporal's id uniqueness lets exactly one of
//! concurrent requests take it), then the dissemination; a lock whose holder
//! ended, or never appeared, is handed over.

use super::{persist, Temporal};
use crate::error::ApiError;
use model::DisseminationId;
use std::time::{Duration, SystemTime};
use temporalio_client::{
    errors::{WorkflowInteractionError, WorkflowStartError},
    grpc::WorkflowService,
    tonic::{self, IntoRequest},
    Client, NamespacedClient, Priority, WorkflowExecutionInfo, WorkflowExecutionStatus,
    WorkflowHandle, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions,
    WorkflowTerminateOptions,
};
use temporalio_common::protos::{
    coresdk::AsJsonPayloadExt,
    temporal::api::{
        common::v1::{Memo, Payload, Payloads, WorkflowType},
        enums::v1::{self as proto, TaskQueueKind},
        sdk::v1::UserMetadata,
        taskqueue::v1::TaskQueue,
        workflowservice::v1::StartWorkflowExecutionRequest,
    },
};
use temporalio_common::{search_attributes::SearchAttributes, MemoValues};
use tracing::Instrument;
use workflows::{
    dissemination::{
        SA_ARCHIVE_ID, SA_BATCH_ID, SA_CLIENT_ID, SA_CONTRACT_ID, SA_PRIORITY, SA_STATUS,
    },
    lock::lock_id,
    DisseminationInput, DisseminationLock, DisseminationView, DisseminationWorkflow, LockInput,
    LockRef, StagedByBatch, LOCK_WORKFLOW, MEMO_LOCK_HOLDER, MEMO_MOVES_LOCALLY,
    MEMO_STAGED_BY_BATCH, MEMO_VIEW,
};

/// A lock whose dissemination never appeared is stale after this long
/// (the API stopped between the two starts).
const ORPHAN_LOCK_AFTER: Duration = Duration::from_secs(30);

/// How often a request tries to take a lock whose holder just ended.
const LOCK_TRIES: usize = 6;

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
    /// The execution's task queue: its band's, its band's for batch
    /// items, or the small AIPs' (`Config::request_queue`).
    pub task_queue: String,
    pub lock_queue: String,
    /// `api.lock_start_delay_secs`.
    pub lock_start_delay_secs: u64,
    pub priority_key: u8,
    pub view: &'a DisseminationView,
    /// A batch item whose tape files its batch stages (its memo says so).
    pub staged_by_batch: Option<StagedByBatch>,
    /// How often a call Temporal did not answer is made (at least once).
    /// Each is idempotent: a try that was done although it went unanswered
    /// is recognised by the dissemination id.
    pub tries: usize,
}

/// Takes the (client, AIP) lock, then starts the dissemination. Temporal's
/// id uniqueness makes this race-free: of N concurrent requests exactly one
/// lock start succeeds.
pub async fn start(
    temporal: &Temporal,
    mut req: StartRequest<'_>,
) -> Result<StartOutcome, ApiError> {
    let client = &temporal.client;
    let record = &req.input.record;
    let lock_wf = lock_id(record.client_id.as_str(), record.archive_id.as_str());
    let mut holder = None;
    for _ in 0..LOCK_TRIES {
        let lock = lock_request(client, &req, &lock_wf)?;
        let started = persist(req.tries, || {
            temporal.bounded(start_lock(client, lock.clone()))
        })
        .instrument(tracing::info_span!("StartWorkflow:DisseminationLock", lock = %lock_wf))
        .await?;
        let taken = match started {
            Some(run_id) => run_id,
            None => match persist(req.tries, || {
                temporal.bounded(existing_holder(
                    temporal,
                    &lock_wf,
                    &record.dissemination_id,
                ))
            })
            .await?
            {
                Holder::Active(existing) => return Ok(StartOutcome::InProgress(existing)),
                // An earlier try took it, unanswered.
                Holder::Mine { run_id } => run_id,
                // The lock outlived its dissemination: remove it and try
                // again (a parallel request may have removed it first).
                Holder::Stale { run_id, holder: h } => {
                    holder = h.or(holder);
                    terminate_run(temporal, &lock_wf, &run_id).await;
                    continue;
                }
                // Released or removed between the start and the look.
                Holder::Gone => continue,
            },
        };
        req.input.lock = Some(LockRef {
            workflow_id: lock_wf.clone(),
            run_id: taken.clone(),
        });
        return start_dissemination(temporal, &req)
            .await
            .map(|()| StartOutcome::Started)
            .inspect_err(|_| release_orphan(temporal, &lock_wf, &taken));
    }
    // Still handed over after every try: others are taking it right now;
    // one of them holds it.
    Ok(StartOutcome::InProgress(Box::new(Existing {
        id: holder.unwrap_or_default(),
        view: None,
    })))
}

async fn start_dissemination(temporal: &Temporal, req: &StartRequest<'_>) -> Result<(), ApiError> {
    let record = &req.input.record;
    let mut memo = MemoValues::new();
    memo.insert(MEMO_VIEW, req.view.clone());
    // (One whose files are recalled first shows STAGING, then reads.)
    let recalled_first =
        !workflows::first_tape_copies(&req.input.files, &req.input.settings.locations).is_empty();
    if req.input.moves_locally() && !recalled_first {
        memo.insert(MEMO_MOVES_LOCALLY, true);
    }
    if let Some(staged) = &req.staged_by_batch {
        memo.insert(MEMO_STAGED_BY_BATCH, staged.clone());
    }
    let mut attributes = vec![
        SA_ARCHIVE_ID.value_set(record.archive_id.to_string()),
        SA_CLIENT_ID.value_set(record.client_id.to_string()),
        SA_CONTRACT_ID.value_set(record.contract_id.to_string()),
        SA_STATUS.value_set(req.view.status.as_str().to_owned()),
        // Its place in its band's queue (`queue.ahead`) counts by it.
        SA_PRIORITY.value_set(i64::from(record.priority.get())),
    ];
    if let Some(batch) = &req.input.batch {
        attributes.push(SA_BATCH_ID.value_set(batch.to_string()));
    }
    let opts =
        WorkflowStartOptions::new(req.task_queue.clone(), record.dissemination_id.to_string())
            .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            // Within a band: urgent first, then each client's fair share
            // (a large batch of one client never crowds out another).
            .priority(
                Priority::builder()
                    .priority_key(u32::from(req.priority_key))
                    .fairness_key(record.client_id.to_string())
                    .build(),
            )
            .memo(memo)
            .search_attributes(SearchAttributes::new(attributes))
            .static_summary(format!(
                "AIP {} ({}) for {}, priority {}",
                record.archive_id,
                record.object_id,
                record.client_id,
                record.priority.get()
            ))
            .build();
    persist(req.tries, || {
        temporal.bounded(async {
            match temporal
                .client
                .start_workflow(DisseminationWorkflow::run, req.input.clone(), opts.clone())
                .await
            {
                // The id is new and this request's: an earlier try started it.
                Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
    })
    .await
}

enum Holder {
    Active(Box<Existing>),
    /// Held for the dissemination being started (by an unanswered try).
    Mine {
        run_id: String,
    },
    Stale {
        run_id: String,
        holder: Option<String>,
    },
    /// No running lock any more.
    Gone,
}

/// The lock's start: its id is the check (a second start with it fails);
/// its memo names the holder. It starts after `api.lock_start_delay_secs`:
/// until then Temporal schedules no workflow task for it, so a lock
/// released (terminated) before leaves nothing in its task queue, which no
/// worker polls. (Started at once, every lock would leave one task there
/// for good.) The SDK's start options have no start delay: the request is
/// made here, with the SDK's JSON payloads.
fn lock_request(
    client: &Client,
    req: &StartRequest<'_>,
    lock_wf: &str,
) -> Result<StartWorkflowExecutionRequest, ApiError> {
    let record = &req.input.record;
    let input = LockInput {
        dissemination_id: record.dissemination_id.clone(),
    };
    let holder = record.dissemination_id.to_string();
    let summary = format!("lock of AIP {} for {}", record.archive_id, record.client_id);
    Ok(StartWorkflowExecutionRequest {
        namespace: client.namespace(),
        workflow_id: lock_wf.to_owned(),
        workflow_type: Some(WorkflowType {
            name: LOCK_WORKFLOW.to_owned(),
        }),
        task_queue: Some(TaskQueue {
            name: req.lock_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        }),
        input: Some(Payloads {
            payloads: vec![json(&input)?],
        }),
        identity: client.identity(),
        request_id: uuid::Uuid::new_v4().to_string(),
        workflow_id_reuse_policy: proto::WorkflowIdReusePolicy::AllowDuplicate as i32,
        workflow_id_conflict_policy: proto::WorkflowIdConflictPolicy::Fail as i32,
        memo: Some(Memo {
            fields: [(MEMO_LOCK_HOLDER.to_owned(), json(&holder)?)].into(),
        }),
        user_metadata: Some(UserMetadata {
            summary: Some(json(&summary)?),
            details: None,
        }),
        workflow_start_delay: Some(
            Duration::from_secs(req.lock_start_delay_secs)
                .try_into()
                .map_err(ApiError::internal)?,
        ),
        ..Default::default()
    })
}

/// A value as the SDK's default converter writes it (JSON).
fn json<T: serde::Serialize>(value: &T) -> Result<Payload, ApiError> {
    value.as_json_payload().map_err(ApiError::internal)
}

/// Starts the lock: its run id, or `None` when a run with its id is open.
/// A retried start (same request id) that did happen answers with its run.
async fn start_lock(
    client: &Client,
    request: StartWorkflowExecutionRequest,
) -> Result<Option<String>, ApiError> {
    let mut service = client.clone();
    match WorkflowService::start_workflow_execution(&mut service, request.into_request()).await {
        Ok(started) => Ok(Some(started.into_inner().run_id)),
        Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(None),
        Err(status) => Err(WorkflowStartError::from(status).into()),
    }
}

async fn existing_holder(
    temporal: &Temporal,
    lock_wf: &str,
    starting: &DisseminationId,
) -> Result<Holder, ApiError> {
    let lock = temporal
        .client
        .get_workflow_handle::<DisseminationLock>(lock_wf.to_owned());
    let desc = match lock.describe(temporal.describe_options()).await {
        Ok(d) => d,
        Err(WorkflowInteractionError::NotFound(_)) => return Ok(Holder::Gone),
        Err(e) => return Err(e.into()),
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
    if holder == starting.as_str() {
        return Ok(Holder::Mine { run_id });
    }
    let started = desc.start_time();
    let described = match DisseminationId::parse(&holder) {
        Ok(id) => temporal.describe(&id).await?,
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

async fn terminate_run(temporal: &Temporal, workflow_id: &str, run_id: &str) {
    let client = &temporal.client;
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
    match tokio::time::timeout(temporal.budget, handle.terminate(opts)).await {
        Ok(Ok(())) => {}
        // Removed by a parallel request, or released meanwhile: fine.
        Ok(Err(WorkflowInteractionError::NotFound(_))) => {}
        Ok(Err(e)) => tracing::info!(%workflow_id, error = %e, "a stale lock was not removed"),
        Err(_) => tracing::info!(%workflow_id, "removing a stale lock took too long"),
    }
}

/// The dissemination could not start: free its lock in the background.
fn release_orphan(temporal: &Temporal, lock_wf: &str, run_id: &str) {
    let (temporal, lock_wf) = (temporal.clone(), lock_wf.to_owned());
    let run_id = run_id.to_owned();
    tokio::spawn(async move { terminate_run(&temporal, &lock_wf, &run_id).await });
}

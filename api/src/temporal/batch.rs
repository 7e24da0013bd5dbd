//! A batch's round trips: start its workflow, read its view (memo) and
//! items (its input and the items' own memos): no worker needed; cancel it,
//! list a client's batches.

use super::{persist, Temporal};
use crate::error::ApiError;
use model::{BatchId, DisseminationStatus};
use temporalio_client::{
    errors::{WorkflowInteractionError, WorkflowStartError},
    NamespacedClient, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use temporalio_common::search_attributes::SearchAttributes;
use workflows::{
    batch::MEMO_BATCH, dissemination::SA_CLIENT_ID, BatchInput, BatchItem, BatchView,
    DisseminationBatch, DisseminationView, MEMO_VIEW,
};

/// The workflow type of batches (visibility queries).
pub const BATCH_WORKFLOW: &str = "DisseminationBatch";

/// Starts the batch's workflow, asked up to `tries` times while Temporal
/// does not answer (the batch id is new: an unanswered start that happened
/// is recognised by it).
pub async fn start(
    temporal: &Temporal,
    input: BatchInput,
    view: &BatchView,
    queue: String,
    tries: usize,
) -> Result<(), ApiError> {
    let record = &input.record;
    let mut memo = temporalio_common::MemoValues::new();
    memo.insert(MEMO_BATCH, view.clone());
    let opts = WorkflowStartOptions::new(queue, record.batch_id.to_string())
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .memo(memo)
        .search_attributes(SearchAttributes::new([
            SA_CLIENT_ID.value_set(record.client_id.to_string())
        ]))
        .static_summary(format!(
            "batch of {} AIP(s) for {}, priority {}",
            input.items.len(),
            record.client_id,
            record.priority.get()
        ))
        .build();
    persist(tries, || {
        temporal.bounded(async {
            match temporal
                .client
                .start_workflow(DisseminationBatch::run, input.clone(), opts.clone())
                .await
            {
                Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
    })
    .await
}

/// A refused batch's workflow, if its start happened although it went
/// unanswered: deleted (Temporal terminates it first), so it gives no turn,
/// sends no webhook and is not listed. Never started is fine.
pub async fn remove(temporal: &Temporal, batch_id: &BatchId, tries: usize) -> Result<(), ApiError> {
    use temporalio_client::tonic::{Code, Request};
    use temporalio_common::protos::temporal::api::{
        common::v1::WorkflowExecution, workflowservice::v1::DeleteWorkflowExecutionRequest,
    };
    let client = &temporal.client;
    let request = DeleteWorkflowExecutionRequest {
        namespace: client.namespace(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: batch_id.to_string(),
            run_id: String::new(),
        }),
    };
    persist(tries, || {
        temporal.bounded(async {
            let mut service = client.connection().workflow_service();
            match service
                .delete_workflow_execution(Request::new(request.clone()))
                .await
            {
                Ok(_) => Ok(()),
                Err(status) if status.code() == Code::NotFound => Ok(()),
                Err(status) => Err(ApiError::unavailable("Temporal", status)),
            }
        })
    })
    .await
}

pub async fn cancel(temporal: &Temporal, batch_id: &BatchId) -> Result<(), ApiError> {
    let handle = temporal
        .client
        .get_workflow_handle::<DisseminationBatch>(batch_id.clone());
    temporal
        .bounded(async {
            handle
                .signal(
                    DisseminationBatch::cancel_batch,
                    (),
                    WorkflowSignalOptions::default(),
                )
                .await
                .map_err(ApiError::from)
        })
        .await
}

/// The batch's view from its memo; `None`: no such batch.
pub async fn read(temporal: &Temporal, batch_id: &BatchId) -> Result<Option<BatchView>, ApiError> {
    let handle = temporal
        .client
        .get_workflow_handle::<DisseminationBatch>(batch_id.clone());
    temporal
        .bounded(async {
            match handle.describe(temporal.describe_options()).await {
                Ok(desc) => desc
                    .memo()
                    .get::<BatchView>(MEMO_BATCH)
                    .map_err(ApiError::internal),
                Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
}

/// Items `from..from + count` of the batch, from its input (the first
/// event of its history), each with the status its own memo holds (the
/// visibility store, by `BatchId`): no worker involved. Items the store
/// does not know yet (just started) or not tagged (another batch's, or a
/// batch before flow 10) have no status here; the caller reads them.
pub async fn items(
    temporal: &Temporal,
    batch_id: &BatchId,
    (from, count): (u32, u32),
) -> Result<Vec<BatchItem>, ApiError> {
    use temporalio_client::tonic::Request;
    use temporalio_common::protos::temporal::api::{
        common::v1::WorkflowExecution, history::v1::history_event::Attributes,
        workflowservice::v1::GetWorkflowExecutionHistoryRequest,
    };
    let client = &temporal.client;
    let request = GetWorkflowExecutionHistoryRequest {
        namespace: client.namespace(),
        execution: Some(WorkflowExecution {
            workflow_id: batch_id.to_string(),
            run_id: String::new(),
        }),
        maximum_page_size: 1,
        ..Default::default()
    };
    let history = temporal
        .bounded(async {
            let mut service = client.connection().workflow_service();
            service
                .get_workflow_execution_history(Request::new(request))
                .await
                .map_err(|e| ApiError::unavailable("Temporal", e))
        })
        .await?
        .into_inner();
    let input: BatchInput = history
        .history
        .and_then(|h| h.events.into_iter().next())
        .and_then(|e| match e.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input,
            _ => None,
        })
        .and_then(|p| p.payloads.into_iter().next())
        .and_then(|p| serde_json::from_slice(&p.data).ok())
        .ok_or_else(|| ApiError::internal("the batch's input is not readable"))?;
    let mut page: Vec<BatchItem> = input
        .items
        .into_iter()
        .skip(from as usize)
        .take(count as usize)
        .collect();
    let query = format!("BatchId = '{batch_id}'");
    let (views, _) =
        super::list_memos::<DisseminationView>(temporal, query, 1000, Vec::new(), MEMO_VIEW)
            .await?;
    let statuses: std::collections::HashMap<String, DisseminationStatus> = views
        .into_iter()
        .map(|v| (v.record.dissemination_id.to_string(), v.status))
        .collect();
    for item in &mut page {
        if let Some(id) = &item.dissemination_id {
            item.status = statuses.get(id).copied();
        }
    }
    Ok(page)
}

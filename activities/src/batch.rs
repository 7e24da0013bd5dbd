//! A batch's view of its items (flow 10 on), from Temporal's visibility
//! store by the `BatchId` search attribute each item carries: how many
//! stand where (the batch counts them every few seconds instead of being
//! signalled by each item), and cancelling the ones not final yet.

use crate::failure::Failure;
use futures::StreamExt;
use model::DisseminationStatus;
use temporalio_client::{WorkflowCancelOptions, WorkflowCountOptions, WorkflowListOptions};
use temporalio_sdk::activities::ActivityContext;
use workflows::{DisseminationWorkflow, ItemTally};

/// A batch id is 22 base62 characters: safe inside a quoted query value.
fn by_batch(batch_id: &str) -> Result<String, Failure> {
    if batch_id.len() == 22 && batch_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(format!("BatchId = '{batch_id}'"))
    } else {
        Err(Failure::Misconfigured(format!(
            "{batch_id:?} is no batch id"
        )))
    }
}

const FINAL: [DisseminationStatus; 4] = [
    DisseminationStatus::Disseminated,
    DisseminationStatus::Failed,
    DisseminationStatus::Rejected,
    DisseminationStatus::Cancelled,
];

/// How many of the batch's items are final, by status, and not final.
pub(crate) async fn tally(ctx: &ActivityContext, batch_id: String) -> Result<ItemTally, Failure> {
    let client = ctx.client();
    let of = by_batch(&batch_id)?;
    let count = |status: Option<DisseminationStatus>| {
        let client = client.clone();
        let query = match status {
            Some(s) => format!("{of} AND DisseminationStatus = '{}'", s.as_str()),
            None => of.clone(),
        };
        async move {
            client
                .count_workflows(query, WorkflowCountOptions::default())
                .await
                .map(|c| c.count() as u32)
                .map_err(|e| Failure::Transient(format!("counting the batch's items: {e}")))
        }
    };
    let [disseminated, failed, rejected, cancelled] = FINAL;
    let (visible, disseminated, failed, rejected, cancelled) = futures::try_join!(
        count(None),
        count(Some(disseminated)),
        count(Some(failed)),
        count(Some(rejected)),
        count(Some(cancelled)),
    )?;
    Ok(ItemTally {
        visible,
        disseminated,
        failed,
        rejected,
        cancelled,
    })
}

/// Requests the cancellation of every item not final yet; how many.
pub(crate) async fn cancel_items(ctx: &ActivityContext, batch_id: String) -> Result<u32, Failure> {
    let client = ctx.client();
    let finals = FINAL.map(|s| format!("'{}'", s.as_str())).join(", ");
    let query = format!(
        "{} AND ExecutionStatus = 'Running' AND DisseminationStatus NOT IN ({finals})",
        by_batch(&batch_id)?
    );
    let mut open = client.list_workflows(query, WorkflowListOptions::default());
    let mut ids = Vec::new();
    while let Some(item) = open.next().await {
        let item =
            item.map_err(|e| Failure::Transient(format!("listing the batch's items: {e}")))?;
        ids.push(item.id().to_owned());
    }
    let mut cancelled = 0;
    for id in ids {
        let handle = client.get_workflow_handle::<DisseminationWorkflow>(id);
        let opts = WorkflowCancelOptions::builder()
            .reason("its batch was cancelled")
            .build();
        if handle.cancel(opts).await.is_ok() {
            cancelled += 1;
        }
    }
    Ok(cancelled)
}

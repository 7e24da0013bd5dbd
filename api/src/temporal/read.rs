//! Reading a dissemination's view from describe alone (no worker
//! involved): the memo the workflow keeps current, with the live progress
//! and wait of its pending step.

use super::{bounded, describe_options};
use crate::error::ApiError;
use model::{DisseminationId, DisseminationStatus};
use std::time::Duration;
use temporalio_client::{errors::WorkflowInteractionError, Client, WorkflowExecutionStatus};
use temporalio_common::protos::temporal::api::{
    enums::v1::PendingActivityState, failure::v1::failure::FailureInfo,
    workflow::v1::PendingActivityInfo, workflowservice::v1::DescribeWorkflowExecutionResponse,
};
use workflows::{
    DisseminationView, DisseminationWorkflow, FailureType, TransferHeartbeat, Waiting, MEMO_VIEW,
};

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
            if matches!(kind, "transfer" | "package") {
                let beat = pending
                    .heartbeat_details
                    .as_ref()
                    .and_then(|p| p.payloads.first())
                    .and_then(|p| serde_json::from_slice::<TransferHeartbeat>(&p.data).ok());
                let progress = beat.and_then(|b| b.progress).filter(|p| {
                    let expected = if p.phase == workflows::Phase::Download {
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
        (t, _) if FailureType::parse(t) == Some(FailureType::UploadError) => "S3",
        (_, "transfer" | "package") => "the bit repository",
        (_, "notify") => "the client's webhook endpoint",
        _ => "S3",
    };
    let next_attempt_at = pending.next_attempt_schedule_time.as_ref().map(|t| {
        let at =
            std::time::UNIX_EPOCH + Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32);
        let at: chrono::DateTime<chrono::Utc> = at.into();
        model::time::Timestamp::at(&at)
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
            let status = desc.status();
            Ok(Some(Described {
                view,
                status,
                raw: desc.into_raw(),
            }))
        }
        Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

//! Reading a dissemination's view from describe alone (no worker
//! involved): the memo the workflow keeps current, with the live progress
//! and wait of its pending step.

use super::{bounded, describe_options};
use crate::error::ApiError;
use model::{DisseminationId, DisseminationStatus};
use std::time::Duration;
use temporalio_client::{errors::WorkflowInteractionError, Client, WorkflowExecutionStatus};
use temporalio_common::protos::temporal::api::{
    enums::v1::{PendingActivityState, PendingWorkflowTaskState},
    failure::v1::failure::FailureInfo,
    workflow::v1::PendingActivityInfo,
    workflowservice::v1::DescribeWorkflowExecutionResponse,
};
use workflows::{
    DisseminationView, DisseminationWorkflow, FailureType, TransferHeartbeat, Waiting,
    MEMO_MOVES_LOCALLY, MEMO_VIEW,
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
    /// A small AIP moving inside its first workflow task (flow 10 on).
    moves_locally: bool,
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
        // From flow 10 on the memo says QUEUED until the final status: the
        // pending step tells the rest (before, the workflow wrote each).
        let queued = view.status == DisseminationStatus::Queued;
        let task_started = self
            .raw
            .pending_workflow_task
            .as_ref()
            .is_some_and(|t| t.state == PendingWorkflowTaskState::Started as i32);
        if queued && self.moves_locally && task_started {
            view.status = DisseminationStatus::DownloadingFromRepository;
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
                let progress = beat.and_then(|b| b.progress);
                let started =
                    pending.state == PendingActivityState::Started as i32 || pending.attempt > 1;
                if queued && started {
                    view.status = step_of(progress.as_ref());
                }
                let progress = progress.filter(|p| {
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

/// The status a started transfer's heartbeat tells: bytes read, all of
/// them read (the digest is being compared), parts landing.
fn step_of(progress: Option<&workflows::Progress>) -> DisseminationStatus {
    match progress {
        Some(p) if p.phase == workflows::Phase::Upload => DisseminationStatus::UploadingToS3,
        Some(p) if p.bytes_total > 0 && p.bytes_done >= p.bytes_total => {
            DisseminationStatus::FixityCheck
        }
        _ => DisseminationStatus::DownloadingFromRepository,
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
            let moves_locally = desc
                .memo()
                .get::<bool>(MEMO_MOVES_LOCALLY)
                .ok()
                .flatten()
                .unwrap_or(false);
            Ok(Some(Described {
                view,
                moves_locally,
                status,
                raw: desc.into_raw(),
            }))
        }
        Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

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
    DisseminationView, DisseminationWorkflow, FailureType, Progress, StageHeartbeat, StagedByBatch,
    StagingProgress, TransferHeartbeat, Waiting, MEMO_MOVES_LOCALLY, MEMO_STAGED_BY_BATCH,
    MEMO_VIEW,
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
    Ok(read_view_and_queue(client, id).await?.map(|(view, _)| view))
}

/// `read_view`, with the task queue the workflow runs on (a band's, or a
/// band's for batch items).
pub async fn read_view_and_queue(
    client: &Client,
    id: &DisseminationId,
) -> Result<Option<(DisseminationView, String)>, ApiError> {
    let Some(described) = bounded(describe(client, id)).await? else {
        return Ok(None);
    };
    let by_batch = described.staged_by_batch.clone();
    let queue = described
        .raw
        .workflow_execution_info
        .as_ref()
        .map(|i| i.task_queue.clone())
        .unwrap_or_default();
    let mut view = described.live_view();
    // A batch's item whose files its batch recalls: the batch's step has
    // its progress.
    if let (Some(v), Some(staged)) = (view.as_mut(), by_batch) {
        if v.status == DisseminationStatus::Staging {
            v.progress = Some(batch_staging(client, &staged).await);
        }
    }
    Ok(view.map(|v| (v, queue)))
}

/// A batch item's recall, from its group in the batch's `stage` heartbeat
/// (nothing more than its totals when the batch does not answer).
async fn batch_staging(client: &Client, staged: &StagedByBatch) -> Progress {
    let mut progress = StagingProgress {
        files_total: staged.files,
        bytes_total: staged.bytes,
        ..StagingProgress::default()
    };
    let handle = client.get_workflow_handle::<DisseminationWorkflow>(staged.batch_id.clone());
    if let Ok(Ok(desc)) =
        tokio::time::timeout(Duration::from_secs(5), handle.describe(describe_options())).await
    {
        let beat = desc
            .into_raw()
            .pending_activities
            .iter()
            .find(|a| kind_of(a) == "stage")
            .and_then(heartbeat::<StageHeartbeat>);
        if let Some(beat) = beat {
            progress.files_staged = beat
                .online_per_group
                .get(staged.group as usize)
                .copied()
                .unwrap_or_default();
            progress.started_at = beat.progress.started_at;
        }
    }
    let mut shown = Progress::staging(&progress);
    // Only the batch's totals say how many bytes are on disk.
    shown.bytes_staged = None;
    shown.bytes_done = 0;
    shown
}

fn kind_of(pending: &PendingActivityInfo) -> &str {
    pending
        .activity_type
        .as_ref()
        .map(|t| t.name.as_str())
        .unwrap_or_default()
}

fn heartbeat<T: serde::de::DeserializeOwned>(pending: &PendingActivityInfo) -> Option<T> {
    pending
        .heartbeat_details
        .as_ref()
        .and_then(|p| p.payloads.first())
        .and_then(|p| serde_json::from_slice::<T>(&p.data).ok())
}

/// A history this long has had a step complete (the first workflow task
/// and its first step take 7 events): waiting for the next workflow task
/// then is between two steps.
const BETWEEN_STEPS: i64 = 8;

/// What describe tells about a dissemination.
pub struct Described {
    pub view: Option<DisseminationView>,
    /// A small AIP moving inside its first workflow task (flow 10 on).
    moves_locally: bool,
    /// A batch item whose tape files its batch stages (flow 11 on).
    staged_by_batch: Option<StagedByBatch>,
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
        let pending_steps = !self.raw.pending_activities.is_empty();
        let task_pending = self.raw.pending_workflow_task.is_some();
        // Past its first steps (a recall, a file): between two steps it is
        // reading its files, never QUEUED again.
        let history = self
            .raw
            .workflow_execution_info
            .as_ref()
            .map_or(0, |i| i.history_length);
        if queued && self.staged_by_batch.is_some() && !task_pending && !pending_steps {
            // Its batch recalls its files; until it signals, STAGING.
            view.status = DisseminationStatus::Staging;
        } else if queued
            && ((self.moves_locally && task_started)
                || (!pending_steps && task_pending && history >= BETWEEN_STEPS))
        {
            view.status = DisseminationStatus::DownloadingFromRepository;
        }
        for pending in &self.raw.pending_activities {
            let kind = kind_of(pending);
            if kind == "stage" && queued {
                view.status = DisseminationStatus::Staging;
                view.progress =
                    heartbeat::<StageHeartbeat>(pending).map(|b| Progress::staging(&b.progress));
            }
            if matches!(kind, "transfer" | "package") {
                let beat = heartbeat::<TransferHeartbeat>(pending);
                let progress = beat.and_then(|b| b.progress);
                // Started, retried, or a later step (activity ids count
                // the steps of the run: an earlier one has run).
                let started = pending.state == PendingActivityState::Started as i32
                    || pending.attempt > 1
                    || pending.activity_id.parse::<u32>().is_ok_and(|n| n > 1);
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
                if let Some(mut progress) = progress {
                    // An estimate from its own rate (`secondsLeft` from now).
                    progress.estimated_end = progress.seconds_left.map(|left| {
                        model::time::Timestamp::utc(
                            std::time::SystemTime::now() + std::time::Duration::from_secs(left),
                        )
                    });
                    view.progress = Some(progress);
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
        (_, "stage") => "the tape system",
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
            let staged_by_batch = desc
                .memo()
                .get::<StagedByBatch>(MEMO_STAGED_BY_BATCH)
                .ok()
                .flatten();
            Ok(Some(Described {
                view,
                moves_locally,
                staged_by_batch,
                status,
                raw: desc.into_raw(),
            }))
        }
        Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

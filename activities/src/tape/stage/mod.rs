//! The `stage` step: brings tape copies online and says, per file, whether
//! it can be read now.
//!
//! 1. Each file's locality is asked first (ARCHIVEINFO): one on disk is
//!    read without a recall; one lost, unavailable or empty is
//!    unreadable (the workflow tries the next copy).
//! 2. The nearline ones are staged in as few requests as
//!    `tape.max_files_per_stage_request` allows, per location, with the
//!    location's pin lifetime, so the tape system can order the recalls
//!    by volume. Each request goes into the heartbeat at once: a retried
//!    step (a worker lost, Temporal restarted) polls it again instead of
//!    making another.
//! 3. The requests are polled with backoff; a file online is settled, one
//!    failed is given up with the tape system's reason; a request the tape
//!    system forgot (404, a restart) is resubmitted for what it still
//!    lacked. A batch's group is signalled to its item (`tape_ready`) as
//!    soon as its files are settled; an item that has ended meanwhile has
//!    its files released at once.
//! 4. Past the deadline the files still waiting are cancelled in their
//!    request and given up (`StagingFailed`); a tape system that does not
//!    answer for `unreachable_for_ms` has its files given up (unreadable).
//!
//! Cancelled (the dissemination or the batch cancelled): every request is
//! cancelled and deleted before the step ends. Requests none of whose
//! files came online are deleted at the end; the others are released by
//! `finish` once their files are read.

mod submit;
mod wait;

use super::client::TapeClient;
use crate::{attempt::heartbeat_now, failure::Failure, Activities};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use temporalio_client::{
    errors::WorkflowInteractionError, WorkflowDescribeOptions, WorkflowExecutionStatus,
};
use temporalio_common::protos::temporal::api::enums::v1::PendingActivityState;
use temporalio_sdk::activities::ActivityContext;
use tracing::{info, warn};
use workflows::{
    DisseminationWorkflow, StageHeartbeat, StageInput, StageOutcome, StagedFile, StagedState,
    TapeFile, TapeRelease,
};

/// Heartbeats (live progress) at least this often while waiting.
pub(super) const BEAT_EVERY: Duration = Duration::from_secs(2);
/// A request the tape system forgot is resubmitted this many times.
pub(super) const MAX_RESUBMITS: u32 = 3;

/// One file of the step, flattened over the groups.
pub(super) struct Flat<'a> {
    group: usize,
    file: &'a TapeFile,
    /// The tape system's namespace path, or why there is none.
    path: Result<String, String>,
}

pub(super) struct Run<'a> {
    acts: &'a Activities,
    ctx: &'a ActivityContext,
    input: &'a StageInput,
    files: Vec<Flat<'a>>,
    settled: Vec<Option<StagedFile>>,
    beat: StageHeartbeat,
    /// Since when each location has not answered.
    unreachable: BTreeMap<String, (Instant, String)>,
}

pub(crate) async fn stage(
    acts: &Activities,
    ctx: &ActivityContext,
    input: StageInput,
) -> Result<StageOutcome, Failure> {
    let previous: Option<StageHeartbeat> = ctx.heartbeat_details().deserialize().ok().flatten();
    let mut run = Run::new(acts, ctx, &input, previous);
    let result = run.work().await;
    if let Err(Failure::Cancelled) = result {
        // A worker shutting down or a timed-out attempt also cancels the
        // step here: its requests stay for the next attempt then.
        if cancel_requested(ctx).await {
            run.abandon().await;
        } else {
            info!("stage step interrupted: its requests are kept for the next attempt");
        }
    }
    result
}

/// Whether the step's cancellation comes from its workflow (a cancel
/// request, or the workflow closed), not from this worker stopping: the
/// server shows the pending step as CANCEL_REQUESTED, or has no such step.
async fn cancel_requested(ctx: &ActivityContext) -> bool {
    let info = ctx.info();
    let Some(workflow_id) = info.workflow_id.clone() else {
        return true;
    };
    let handle = ctx
        .client()
        .get_workflow_handle::<DisseminationWorkflow>(workflow_id);
    match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(desc) => {
            if desc.status() != WorkflowExecutionStatus::Running {
                return true;
            }
            let raw = desc.into_raw();
            match raw
                .pending_activities
                .iter()
                .find(|a| a.activity_id == info.activity_id)
            {
                Some(a) => a.state == PendingActivityState::CancelRequested as i32,
                None => true,
            }
        }
        Err(WorkflowInteractionError::NotFound(_)) => true,
        // Cannot tell: keep the requests (a pin expires by itself).
        Err(_) => false,
    }
}

impl<'a> Run<'a> {
    fn new(
        acts: &'a Activities,
        ctx: &'a ActivityContext,
        input: &'a StageInput,
        previous: Option<StageHeartbeat>,
    ) -> Self {
        let files: Vec<Flat> = input
            .groups
            .iter()
            .enumerate()
            .flat_map(|(group, g)| g.files.iter().map(move |file| (group, file)))
            .map(|(group, file)| {
                let path = match acts.repo.tape(&file.location_id) {
                    Some(client) => client
                        .namespace_path(&file.file_path)
                        .map_err(|e| e.to_string()),
                    None => Err(format!(
                        "no reader for location {}: it is not a configured tape location",
                        file.location_id
                    )),
                };
                Flat { group, file, path }
            })
            .collect();
        let mut beat = previous.unwrap_or_default();
        beat.progress.files_total = files.len() as u32;
        beat.progress.bytes_total = files.iter().map(|f| f.file.size).sum();
        beat.online_per_group = vec![0; input.groups.len()];
        Self {
            acts,
            ctx,
            input,
            settled: files.iter().map(|_| None).collect(),
            files,
            beat,
            unreachable: BTreeMap::new(),
        }
    }

    pub(super) fn client(&self, location_id: &str) -> Option<&'a TapeClient> {
        self.acts.repo.tape(location_id)
    }

    pub(super) async fn work(&mut self) -> Result<StageOutcome, Failure> {
        // Files no reader can bring online are settled at once.
        for i in 0..self.files.len() {
            if let Err(why) = &self.files[i].path {
                let why = why.clone();
                self.settle(i, StagedState::Unreadable, why, None);
            }
        }
        let in_request: Vec<u32> = self
            .beat
            .requests
            .iter()
            .flat_map(|r| r.files.iter().copied())
            .collect();
        if !in_request.is_empty() {
            info!(
                requests = self.beat.requests.len(),
                "resuming stage requests"
            );
        }
        let ask: Vec<usize> = (0..self.files.len())
            .filter(|i| self.settled[*i].is_none() && !in_request.contains(&(*i as u32)))
            .collect();
        let nearline = self.ask_locality(&ask).await?;
        self.submit(nearline).await?;
        self.wait().await?;
        Ok(self.outcome().await)
    }

    /// The outcome; requests none of whose files came online deleted.
    pub(super) async fn outcome(&mut self) -> StageOutcome {
        let mut requests = Vec::new();
        for request in &self.beat.requests {
            let online: Vec<String> = request
                .files
                .iter()
                .map(|&i| i as usize)
                .filter(|&i| {
                    self.settled
                        .get(i)
                        .and_then(Option::as_ref)
                        .is_some_and(|s| {
                            s.request_id.as_deref() == Some(request.request_id.as_str())
                        })
                })
                .map(|i| self.files[i].file.file_path.clone())
                .collect();
            if online.is_empty() {
                if let Some(client) = self.client(&request.location_id) {
                    if let Err(e) = client.delete(&request.request_id).await {
                        warn!(request = %request.request_id, error = %e, "deleting a stage request");
                    }
                }
                continue;
            }
            requests.push(TapeRelease {
                location_id: request.location_id.clone(),
                request_id: request.request_id.clone(),
                file_paths: online,
                delete: true,
            });
        }
        let mut groups: Vec<Vec<StagedFile>> = vec![Vec::new(); self.input.groups.len()];
        for (i, f) in self.files.iter().enumerate() {
            let staged = self.settled[i].clone().unwrap_or(StagedFile {
                state: StagedState::StagingFailed,
                message: "not settled".into(),
                request_id: None,
            });
            groups[f.group].push(staged);
        }
        StageOutcome { groups, requests }
    }

    /// Cancelled: every request cancelled and deleted (best effort).
    pub(super) async fn abandon(&self) {
        for request in &self.beat.requests {
            let Some(client) = self.client(&request.location_id) else {
                continue;
            };
            let paths: Vec<String> = request
                .files
                .iter()
                .map(|&i| self.path(i as usize))
                .collect();
            if let Err(e) = client.cancel(&request.request_id, &paths).await {
                warn!(request = %request.request_id, error = %e, "cancelling a stage request");
            }
            match client.delete(&request.request_id).await {
                Ok(()) => {
                    info!(request = %request.request_id, "stage request cancelled and deleted")
                }
                Err(e) => {
                    warn!(request = %request.request_id, error = %e, "deleting a stage request")
                }
            }
        }
    }

    pub(super) fn settle(
        &mut self,
        i: usize,
        state: StagedState,
        message: String,
        request: Option<String>,
    ) {
        if self.settled[i].is_some() {
            return;
        }
        if state == StagedState::Online {
            self.beat.progress.files_staged += 1;
            self.beat.progress.bytes_staged += self.files[i].file.size;
            if let Some(n) = self.beat.online_per_group.get_mut(self.files[i].group) {
                *n += 1;
            }
        }
        self.settled[i] = Some(StagedFile {
            state,
            message,
            request_id: request,
        });
    }

    pub(super) async fn heartbeat(&mut self) -> Result<(), Failure> {
        self.ctx
            .record_heartbeat(self.beat.clone())
            .await
            .map_err(|e| Failure::Transient(format!("recording a heartbeat: {e}")))?;
        if self.ctx.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        Ok(())
    }

    /// The heartbeat, held by the server before the step goes on: a
    /// request just made is known to the next attempt even if this worker
    /// dies at once.
    pub(super) async fn heartbeat_now(&mut self) -> Result<(), Failure> {
        heartbeat_now(self.ctx, self.beat.clone()).await?;
        if self.ctx.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        Ok(())
    }

    /// Waits `total`, heartbeating; a cancel request ends the wait.
    pub(super) async fn sleep(&mut self, total: Duration) -> Result<(), Failure> {
        let until = Instant::now() + total;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep(left.min(BEAT_EVERY)) => {}
                () = self.ctx.cancelled() => return Err(Failure::Cancelled),
            }
            self.heartbeat().await?;
        }
    }

    pub(super) fn path(&self, i: usize) -> String {
        self.files[i].path.clone().unwrap_or_default()
    }

    pub(super) fn disk_lifetime(&self, location_id: &str) -> String {
        match self.acts.cfg.repository.locations.get(location_id) {
            Some(platform::config::LocationConfig::Tape(t)) => t.disk_lifetime.clone(),
            _ => "PT24H".into(),
        }
    }

    /// `which`, grouped by location (in order).
    pub(super) fn by_location(&self, which: &[usize]) -> BTreeMap<String, Vec<usize>> {
        let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in which {
            out.entry(self.files[i].file.location_id.clone())
                .or_default()
                .push(i);
        }
        out
    }
}

/// The item's workflow is closed (or gone): a signal cannot reach it.
pub(super) fn item_gone(e: &WorkflowInteractionError) -> bool {
    matches!(e, WorkflowInteractionError::NotFound(_))
        || e.to_string().contains("already completed")
}

pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

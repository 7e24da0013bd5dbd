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

use super::client::{FileState, Locality, StageProgress, TapeClient, TapeError};
use crate::{failure::Failure, Activities};
use model::time::Timestamp;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use temporalio_client::{
    errors::WorkflowInteractionError, WorkflowDescribeOptions, WorkflowExecutionStatus,
    WorkflowSignalOptions,
};
use temporalio_common::protos::temporal::api::enums::v1::PendingActivityState;
use temporalio_sdk::activities::ActivityContext;
use tracing::{info, warn};
use workflows::{
    DisseminationWorkflow, StageHeartbeat, StageInput, StageOutcome, StagedFile, StagedState,
    SubmittedRequest, TapeFile, TapeReady, TapeRelease,
};

/// Heartbeats (live progress) at least this often while waiting.
const BEAT_EVERY: Duration = Duration::from_secs(2);
/// A request the tape system forgot is resubmitted this many times.
const MAX_RESUBMITS: u32 = 3;

/// One file of the step, flattened over the groups.
struct Flat<'a> {
    group: usize,
    file: &'a TapeFile,
    /// The tape system's namespace path, or why there is none.
    path: Result<String, String>,
}

struct Run<'a> {
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

    fn client(&self, location_id: &str) -> Option<&'a TapeClient> {
        self.acts.repo.tape(location_id)
    }

    async fn work(&mut self) -> Result<StageOutcome, Failure> {
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

    /// ARCHIVEINFO for `which`, per location: what is online or unreadable
    /// is settled; the nearline ones are returned (to stage).
    async fn ask_locality(&mut self, which: &[usize]) -> Result<Vec<usize>, Failure> {
        let mut nearline = Vec::new();
        for (location_id, files) in self.by_location(which) {
            let Some(client) = self.client(&location_id) else {
                continue;
            };
            let paths: Vec<String> = files.iter().map(|&i| self.path(i)).collect();
            let answer = loop {
                match client.archive_info(&paths).await {
                    Ok(a) => break Some(a),
                    Err(e) => {
                        if !self.retry_later(&location_id, &files, e).await? {
                            break None;
                        }
                    }
                }
            };
            let Some(answer) = answer else { continue };
            self.unreachable.remove(&location_id);
            for (&i, (_, locality)) in files.iter().zip(answer) {
                match locality {
                    Locality::Online => self.settle(i, StagedState::Online, String::new(), None),
                    Locality::Nearline => nearline.push(i),
                    other => {
                        let why = format!("the tape system says: {}", other.describe());
                        self.settle(i, StagedState::Unreadable, why, None);
                    }
                }
            }
        }
        Ok(nearline)
    }

    /// Stage requests for `which`, in chunks, each in the heartbeat at once.
    async fn submit(&mut self, which: Vec<usize>) -> Result<(), Failure> {
        let max = self.acts.cfg.tape.max_files_per_stage_request.max(1);
        for (location_id, files) in self.by_location(&which) {
            for chunk in files.chunks(max) {
                self.submit_one(&location_id, chunk.to_vec(), 0).await?;
            }
        }
        Ok(())
    }

    async fn submit_one(
        &mut self,
        location_id: &str,
        files: Vec<usize>,
        resubmitted: u32,
    ) -> Result<(), Failure> {
        let Some(client) = self.client(location_id) else {
            return Ok(());
        };
        let lifetime = self.disk_lifetime(location_id);
        let paths: Vec<String> = files.iter().map(|&i| self.path(i)).collect();
        loop {
            match client.stage(&paths, &lifetime).await {
                Ok(request_id) => {
                    info!(location = location_id, %request_id, files = files.len(), resubmitted,
                        "stage request submitted");
                    self.unreachable.remove(location_id);
                    self.beat.requests.push(SubmittedRequest {
                        location_id: location_id.to_owned(),
                        request_id,
                        files: files.iter().map(|&i| i as u32).collect(),
                        resubmitted,
                    });
                    return self.heartbeat().await;
                }
                Err(TapeError::Refused(why)) => {
                    for &i in &files {
                        self.settle(i, StagedState::StagingFailed, why.clone(), None);
                    }
                    return Ok(());
                }
                Err(e) => {
                    if !self.retry_later(location_id, &files, e).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Polls the requests until every file is settled and every group
    /// signalled, or the deadline.
    async fn wait(&mut self) -> Result<(), Failure> {
        let tape = &self.acts.cfg.tape;
        let initial = Duration::from_millis(tape.poll_initial_ms.max(1));
        let max = Duration::from_millis(tape.poll_max_ms.max(tape.poll_initial_ms));
        let mut poll = initial;
        loop {
            let before = self.settled.iter().flatten().count();
            self.poll_requests().await?;
            self.signal_settled_groups().await;
            self.heartbeat().await?;
            if self.done() {
                return Ok(());
            }
            if unix_ms(SystemTime::now()) >= self.input.deadline_unix_ms {
                self.give_up_late().await;
                continue;
            }
            poll = if self.settled.iter().flatten().count() > before {
                initial
            } else {
                (poll * 2).min(max)
            };
            self.sleep(poll).await?;
        }
    }

    /// Every file settled and every group told.
    fn done(&self) -> bool {
        self.settled.iter().all(Option::is_some)
            && self
                .input
                .groups
                .iter()
                .enumerate()
                .all(|(g, group)| group.dissemination_id.is_none() || self.signalled(g))
    }

    fn signalled(&self, group: usize) -> bool {
        self.beat.signalled.contains(&(group as u32))
    }

    async fn poll_requests(&mut self) -> Result<(), Failure> {
        let requests = self.beat.requests.clone();
        for (n, request) in requests.iter().enumerate() {
            let waiting: Vec<usize> = request
                .files
                .iter()
                .map(|&i| i as usize)
                .filter(|&i| self.settled.get(i).is_some_and(Option::is_none))
                .collect();
            if waiting.is_empty() {
                continue;
            }
            let Some(client) = self.client(&request.location_id) else {
                continue;
            };
            match client.progress(&request.request_id).await {
                Ok(Some(progress)) => {
                    self.unreachable.remove(&request.location_id);
                    self.read_progress(request, &waiting, &progress);
                }
                Ok(None) => self.resubmit(n, request, waiting).await?,
                Err(TapeError::Refused(why)) => {
                    for i in waiting {
                        let why = format!("stage request {}: {why}", request.request_id);
                        self.settle(i, StagedState::StagingFailed, why, None);
                    }
                }
                Err(e) => {
                    // Counted against the unreachable window; polled again.
                    let _ = self.note_unreachable(&request.location_id, &waiting, e);
                }
            }
        }
        Ok(())
    }

    fn read_progress(
        &mut self,
        request: &SubmittedRequest,
        waiting: &[usize],
        progress: &StageProgress,
    ) {
        if let Some(started) = progress.started_at {
            let at = Timestamp::utc(UNIX_EPOCH + Duration::from_secs(started));
            let earlier = self
                .beat
                .progress
                .started_at
                .as_ref()
                .is_some_and(|t| t.as_str() <= at.as_str());
            if !earlier {
                self.beat.progress.started_at = Some(at);
            }
        }
        for &i in waiting {
            let path = self.path(i);
            match progress.file(&path).map(|f| &f.state) {
                Some(FileState::Online) => self.settle(
                    i,
                    StagedState::Online,
                    String::new(),
                    Some(request.request_id.clone()),
                ),
                Some(FileState::Failed(why)) => self.settle(
                    i,
                    StagedState::StagingFailed,
                    format!("the tape system failed the recall: {why}"),
                    None,
                ),
                _ => {}
            }
        }
    }

    /// The tape system forgot the request (a restart): what it still
    /// lacked goes into a new one, a few times at most.
    async fn resubmit(
        &mut self,
        n: usize,
        request: &SubmittedRequest,
        waiting: Vec<usize>,
    ) -> Result<(), Failure> {
        warn!(location = %request.location_id, request = %request.request_id,
            "the tape system no longer knows the stage request: resubmitting");
        // The old entry keeps its settled files (for release); its waiting
        // ones move to the new request.
        if let Some(old) = self.beat.requests.get_mut(n) {
            old.files.retain(|f| !waiting.contains(&(*f as usize)));
        }
        if request.resubmitted >= MAX_RESUBMITS {
            for i in waiting {
                let why = format!(
                    "the tape system forgot stage request {} {} times",
                    request.request_id,
                    request.resubmitted + 1
                );
                self.settle(i, StagedState::StagingFailed, why, None);
            }
            return Ok(());
        }
        self.submit_one(&request.location_id, waiting, request.resubmitted + 1)
            .await
    }

    /// Past the deadline: what still waits is cancelled and given up.
    async fn give_up_late(&mut self) {
        let requests = self.beat.requests.clone();
        for request in &requests {
            let waiting: Vec<usize> = request
                .files
                .iter()
                .map(|&i| i as usize)
                .filter(|&i| self.settled.get(i).is_some_and(Option::is_none))
                .collect();
            if waiting.is_empty() {
                continue;
            }
            if let Some(client) = self.client(&request.location_id) {
                let paths: Vec<String> = waiting.iter().map(|&i| self.path(i)).collect();
                if let Err(e) = client.cancel(&request.request_id, &paths).await {
                    warn!(request = %request.request_id, error = %e, "cancelling late recalls");
                }
            }
            for i in waiting {
                let why = format!(
                    "not recalled from tape by the deadline (timings.stage_timeout_ms; stage request {})",
                    request.request_id
                );
                self.settle(i, StagedState::StagingFailed, why, None);
            }
        }
        // Anything not in a request (its tape system never answered).
        for i in 0..self.settled.len() {
            if self.settled[i].is_none() {
                let why = "not recalled from tape by the deadline".to_owned();
                self.settle(i, StagedState::StagingFailed, why, None);
            }
        }
    }

    /// Signals each batch item whose files are all settled.
    async fn signal_settled_groups(&mut self) {
        for (g, group) in self.input.groups.iter().enumerate() {
            let Some(id) = &group.dissemination_id else {
                continue;
            };
            if self.signalled(g) {
                continue;
            }
            let members: Vec<usize> = (0..self.files.len())
                .filter(|&i| self.files[i].group == g)
                .collect();
            let Some(files) = members
                .iter()
                .map(|&i| self.settled[i].clone())
                .collect::<Option<Vec<StagedFile>>>()
            else {
                continue;
            };
            let handle = self
                .ctx
                .client()
                .get_workflow_handle::<DisseminationWorkflow>(id.clone());
            let opts = WorkflowSignalOptions::builder()
                .request_id(format!("tape-ready-{id}"))
                .build();
            let sent = handle
                .signal(
                    DisseminationWorkflow::tape_ready,
                    TapeReady {
                        files: files.clone(),
                    },
                    opts,
                )
                .await;
            match sent {
                Ok(()) => self.beat.signalled.push(g as u32),
                Err(e) if item_gone(&e) => {
                    // It ended before its files came: nothing of it pinned.
                    info!(item = %id, "batch item ended before its tape files: releasing them");
                    self.release_members(&members, &files).await;
                    self.beat.signalled.push(g as u32);
                }
                Err(e) => warn!(item = %id, error = %e, "signalling tape_ready: retried"),
            }
        }
    }

    async fn release_members(&self, members: &[usize], files: &[StagedFile]) {
        for (&i, staged) in members.iter().zip(files) {
            let (Some(request), Some(client)) = (
                &staged.request_id,
                self.client(&self.files[i].file.location_id),
            ) else {
                continue;
            };
            if let Err(e) = client.release(request, &[self.path(i)]).await {
                warn!(%request, error = %e, "releasing an ended item's tape file");
            }
        }
    }

    /// The outcome; requests none of whose files came online deleted.
    async fn outcome(&mut self) -> StageOutcome {
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
    async fn abandon(&self) {
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

    fn settle(&mut self, i: usize, state: StagedState, message: String, request: Option<String>) {
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

    /// A tape system that did not answer: `Ok(true)` to try again after a
    /// pause, `Ok(false)` once its window is over (the files are given up).
    async fn retry_later(
        &mut self,
        location_id: &str,
        files: &[usize],
        e: TapeError,
    ) -> Result<bool, Failure> {
        if let TapeError::Refused(why) = &e {
            for &i in files {
                self.settle(i, StagedState::Unreadable, why.clone(), None);
            }
            return Ok(false);
        }
        if !self.note_unreachable(location_id, files, e) {
            return Ok(false);
        }
        self.heartbeat().await?;
        let pause = Duration::from_millis(self.acts.cfg.tape.poll_initial_ms.max(1));
        self.sleep(pause).await?;
        Ok(true)
    }

    /// Counts an unanswered call against the location's window: `false`
    /// (and the files given up) once it is over.
    fn note_unreachable(&mut self, location_id: &str, files: &[usize], e: TapeError) -> bool {
        let why = e.to_string();
        warn!(location = location_id, error = %why, "tape system not answering");
        let since = self
            .unreachable
            .entry(location_id.to_owned())
            .or_insert_with(|| (Instant::now(), why.clone()))
            .0;
        let window = Duration::from_millis(self.input.unreachable_for_ms);
        if since.elapsed() < window {
            return true;
        }
        for &i in files {
            let why = format!(
                "the tape system did not answer for {}s: {why}",
                window.as_secs()
            );
            self.settle(i, StagedState::Unreadable, why, None);
        }
        false
    }

    async fn heartbeat(&mut self) -> Result<(), Failure> {
        self.ctx
            .record_heartbeat(self.beat.clone())
            .await
            .map_err(|e| Failure::Transient(format!("recording a heartbeat: {e}")))?;
        if self.ctx.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        Ok(())
    }

    /// Waits `total`, heartbeating; a cancel request ends the wait.
    async fn sleep(&mut self, total: Duration) -> Result<(), Failure> {
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

    fn path(&self, i: usize) -> String {
        self.files[i].path.clone().unwrap_or_default()
    }

    fn disk_lifetime(&self, location_id: &str) -> String {
        match self.acts.cfg.repository.locations.get(location_id) {
            Some(platform::config::LocationConfig::Tape(t)) => t.disk_lifetime.clone(),
            _ => "PT24H".into(),
        }
    }

    /// `which`, grouped by location (in order).
    fn by_location(&self, which: &[usize]) -> BTreeMap<String, Vec<usize>> {
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
fn item_gone(e: &WorkflowInteractionError) -> bool {
    matches!(e, WorkflowInteractionError::NotFound(_))
        || e.to_string().contains("already completed")
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

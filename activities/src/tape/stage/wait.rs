//! Waiting for the recalls: the requests polled with backoff, each file
//! settled as the tape system reports it, a batch's items signalled as
//! their files come online, and what is late given up at the deadline.

use super::{item_gone, unix_ms, Run};
use crate::failure::Failure;
use crate::tape::client::{FileState, StageProgress, TapeError};
use model::time::Timestamp;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use temporalio_client::WorkflowSignalOptions;
use tracing::{info, warn};
use workflows::{DisseminationWorkflow, StagedFile, StagedState, SubmittedRequest, TapeReady};

impl Run<'_> {
    /// Polls the requests until every file is settled and every group
    /// signalled, or the deadline.
    pub(super) async fn wait(&mut self) -> Result<(), Failure> {
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
    pub(super) fn done(&self) -> bool {
        self.settled.iter().all(Option::is_some)
            && self
                .input
                .groups
                .iter()
                .enumerate()
                .all(|(g, group)| group.dissemination_id.is_none() || self.signalled(g))
    }

    pub(super) fn signalled(&self, group: usize) -> bool {
        self.beat.signalled.contains(&(group as u32))
    }

    /// The files of `request` not settled yet.
    fn waiting(&self, request: &SubmittedRequest) -> Vec<usize> {
        request
            .files
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| self.settled.get(i).is_some_and(Option::is_none))
            .collect()
    }

    pub(super) async fn poll_requests(&mut self) -> Result<(), Failure> {
        let requests = self.beat.requests.clone();
        for (n, request) in requests.iter().enumerate() {
            let waiting = self.waiting(request);
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

    pub(super) fn read_progress(
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

    /// Past the deadline: what still waits is cancelled and given up.
    pub(super) async fn give_up_late(&mut self) {
        let requests = self.beat.requests.clone();
        for request in &requests {
            let waiting = self.waiting(request);
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
    pub(super) async fn signal_settled_groups(&mut self) {
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

    pub(super) async fn release_members(&self, members: &[usize], files: &[StagedFile]) {
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
}

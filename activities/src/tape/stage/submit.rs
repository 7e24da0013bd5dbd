//! Asking the tape system: each file's locality, the stage requests (in
//! chunks, each into the heartbeat at once), a forgotten request made
//! again, and how long a tape system that does not answer is waited for.

use super::{Run, MAX_RESUBMITS};
use crate::failure::Failure;
use crate::tape::client::{Locality, TapeError};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use workflows::{StagedState, SubmittedRequest};

impl Run<'_> {
    /// ARCHIVEINFO for `which`, per location: what is online or unreadable
    /// is settled; the nearline ones are returned (to stage).
    pub(super) async fn ask_locality(&mut self, which: &[usize]) -> Result<Vec<usize>, Failure> {
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
    pub(super) async fn submit(&mut self, which: Vec<usize>) -> Result<(), Failure> {
        let max = self.acts.cfg.tape.max_files_per_stage_request.max(1);
        for (location_id, files) in self.by_location(&which) {
            for chunk in files.chunks(max) {
                self.submit_one(&location_id, chunk.to_vec(), 0).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn submit_one(
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
                    return self.heartbeat_now().await;
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

    /// The tape system forgot the request (a restart): what it still
    /// lacked goes into a new one, a few times at most.
    pub(super) async fn resubmit(
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

    /// A tape system that did not answer: `Ok(true)` to try again after a
    /// pause, `Ok(false)` once its window is over (the files are given up).
    pub(super) async fn retry_later(
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
    pub(super) fn note_unreachable(
        &mut self,
        location_id: &str,
        files: &[usize],
        e: TapeError,
    ) -> bool {
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
}

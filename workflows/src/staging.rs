//! Tape copies (flow 11 on): before a file is read from a tape location
//! its copy must be online (on the tape system's disk buffer). The files
//! whose first copy is on tape are brought online together before any
//! transfer, by one `stage` step (one request to the tape system for all
//! of them, which it orders by volume) — or, for a batch's item, by its
//! batch, which signals `tape_ready` once the item's files are settled.
//! A copy tried later (the first one refused) is staged when its turn
//! comes. A tape copy that is lost, unavailable or not recalled in time is
//! skipped like any unreadable copy, on the record; when a file's last
//! copy failed to stage the dissemination is FAILED `STAGING_FAILED`.
//!
//! The `stage` step runs on its own queue (waiting holds no transfer
//! slot), heartbeats its requests (a retried step finds them again) and
//! costs three history events however long the recall takes.

use crate::activities::DisseminationActivities as Acts;
use crate::audit::{record, Event};
use crate::contract::*;
use crate::options::{ms, retry, summarised};
use crate::outcome::{failure_message, no_copy_left, Ending, FileTry};
use crate::state::DisseminationState;
use crate::streaming::record_skipped;
use model::catalog::{FileLocation, LocationKind, RepositoryFile};
use model::DisseminationStatus;
use std::collections::BTreeMap;
use temporalio_sdk::{ActivityCancellationType, ActivityOptions, WorkflowContext};

/// What is known of the tape copies so far, by (file path, copy index),
/// and the stage requests to clean up at the end.
#[derive(Default)]
pub(crate) struct Tape {
    known: BTreeMap<(String, usize), StagedFile>,
}

impl Tape {
    /// What `finish` releases: per stage request, the files read through
    /// it (deleted too when the request is this dissemination's own).
    pub(crate) fn releases(
        &self,
        files: &[RepositoryFile],
        own_requests: bool,
    ) -> Vec<TapeRelease> {
        let mut by_request: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for ((path, index), staged) in &self.known {
            let (Some(request), Some(copy)) = (
                &staged.request_id,
                files
                    .iter()
                    .find(|f| &f.relative_path == path)
                    .and_then(|f| f.locations.get(*index)),
            ) else {
                continue;
            };
            by_request
                .entry((copy.location_id.clone(), request.clone()))
                .or_default()
                .push(copy.file_path.clone());
        }
        by_request
            .into_iter()
            .map(|((location_id, request_id), file_paths)| TapeRelease {
                location_id,
                request_id,
                file_paths,
                delete: own_requests,
            })
            .collect()
    }
}

fn is_tape(input: &DisseminationInput, copy: &FileLocation) -> bool {
    input
        .settings
        .locations
        .get(&copy.location_id)
        .is_some_and(|l| l.kind == LocationKind::Tape)
}

fn tape_file(file: &RepositoryFile, copy: &FileLocation) -> TapeFile {
    TapeFile {
        location_id: copy.location_id.clone(),
        file_path: copy.file_path.clone(),
        size: file.size,
    }
}

/// The files whose first copy (in the order they are tried) is on tape:
/// what a batch stages for its item, in the order of `tape_ready`.
pub fn first_tape_copies(
    files: &[RepositoryFile],
    locations: &BTreeMap<String, LocationPolicy>,
) -> Vec<TapeFile> {
    let input_like = |copy: &FileLocation| {
        locations
            .get(&copy.location_id)
            .is_some_and(|l| l.kind == LocationKind::Tape)
    };
    crate::plan::plan(files, locations)
        .map(|planned| {
            planned
                .iter()
                .filter_map(|f| {
                    let first = f.locations.first()?;
                    input_like(first).then(|| tape_file(f, first))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Until every file's current copy is either not on tape or online: the
/// tape copies not known yet staged in one step (or, up front for a
/// batch's item, taken from the batch's `tape_ready`), the ones that
/// cannot be read skipped on the record. A file left with no copy ends
/// the dissemination.
pub(crate) async fn settle<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
    tape: &mut Tape,
    tries: &mut [FileTry],
) -> Result<(), Ending> {
    loop {
        // The tries whose current copy is on tape and unknown.
        let unknown: Vec<usize> = tries
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.file
                    .locations
                    .get(t.location_index)
                    .is_some_and(|c| is_tape(input, c) && !tape.known.contains_key(&key(t)))
            })
            .map(|(i, _)| i)
            .collect();
        if !unknown.is_empty() {
            let by_batch = input.staged_by_batch && ctx.state(|s| s.tape_ready().is_none());
            if by_batch && tries.iter().all(|t| t.location_index == 0) {
                wait_for_batch(ctx, input, tape, tries).await?;
            } else {
                stage(ctx, input, tape, tries, &unknown).await?;
            }
        }
        // Skip what cannot be read; done when every current copy is
        // online or not on tape.
        let mut moved = false;
        for t in tries.iter_mut() {
            let Some(staged) = tape.known.get(&key(t)) else {
                continue;
            };
            if staged.state == StagedState::Online {
                continue;
            }
            let location_id = t.file.locations[t.location_index].location_id.clone();
            record_skipped(ctx, &t.file.relative_path, &location_id, &staged.message);
            let why = format!("{location_id}: {}", staged.message);
            if staged.state == StagedState::StagingFailed {
                t.staging_failed.push(why);
            } else {
                t.unreadable.push(why);
            }
            t.location_index += 1;
            moved = true;
            if t.location_index >= t.file.locations.len() {
                return Err(no_copy_left(t));
            }
        }
        if !moved {
            return Ok(());
        }
    }
}

fn key(t: &FileTry) -> (String, usize) {
    (t.file.relative_path.clone(), t.location_index)
}

/// The `stage` step for the current copies of `which`.
/// A `stage` step for `groups`, its deadline `timings.stage_timeout_ms`
/// from now (workflow time); and that timeout.
pub(crate) fn stage_input<W>(
    ctx: &WorkflowContext<W>,
    s: &WorkflowSettings,
    groups: Vec<StageGroup>,
) -> (StageInput, u64) {
    let timeout = s.stage_timeout_ms.unwrap_or(48 * 3600 * 1000);
    let now = ctx
        .workflow_time()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    let step = StageInput {
        groups,
        deadline_unix_ms: now + timeout,
        unreachable_for_ms: s.unreadable_retry_ms.unwrap_or(300_000),
    };
    (step, timeout)
}

async fn stage<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
    tape: &mut Tape,
    tries: &[FileTry],
    which: &[usize],
) -> Result<(), Ending> {
    let s = &input.settings;
    let files: Vec<TapeFile> = which
        .iter()
        .map(|&i| {
            let t = &tries[i];
            tape_file(&t.file, &t.file.locations[t.location_index])
        })
        .collect();
    let group = StageGroup {
        dissemination_id: None,
        files,
    };
    let (step, timeout) = stage_input(ctx, s, vec![group]);
    ctx.set_current_details(format!(
        "{}: recalling {} file(s) from tape",
        DisseminationStatus::Staging,
        which.len()
    ));
    for &i in which {
        let t = &tries[i];
        let copy = &t.file.locations[t.location_index];
        record(
            ctx,
            Event::new(
                EventType::Retrieval,
                Outcome::Success,
                "recall from tape requested".into(),
            )
            .file(&t.file.relative_path)
            .location(&copy.location_id),
        );
    }
    let summary = format!("stage {} file(s) from tape", which.len());
    let result = ctx
        .execute_activity(
            Acts::stage,
            step,
            summarised(stage_options(s, timeout), summary),
        )
        .await;
    if ctx.cancellation_token().is_cancelled() {
        return Err(Ending::cancelled());
    }
    let staged: Vec<StagedFile> = match result {
        Ok(mut out) => out.groups.pop().unwrap_or_default(),
        // Retried for its whole window and still failing: every copy it
        // was to bring online is given up (the next ones are tried).
        Err(e) => vec![
            StagedFile {
                state: StagedState::StagingFailed,
                message: format!("the stage step failed: {}", failure_message(&e)),
                request_id: None,
            };
            which.len()
        ],
    };
    for (&i, staged) in which.iter().zip(staged) {
        learn(ctx, tape, &tries[i], staged);
    }
    Ok(())
}

/// A batch's item: its batch stages its first tape copies and signals
/// `tape_ready` when they are settled (a cancel request ends the wait).
async fn wait_for_batch<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
    tape: &mut Tape,
    tries: &[FileTry],
) -> Result<(), Ending> {
    let batch = input.batch.as_deref().unwrap_or_default();
    record(
        ctx,
        Event::new(
            EventType::Retrieval,
            Outcome::Success,
            format!("recall from tape requested with batch {batch}"),
        ),
    );
    ctx.set_current_details(format!(
        "{}: its tape files recalled with batch {batch}",
        DisseminationStatus::Staging
    ));
    if ctx
        .wait_condition(|s| s.tape_ready().is_some())
        .await
        .is_err()
    {
        return Err(Ending::cancelled());
    }
    let ready = ctx
        .state(|s| s.tape_ready().cloned())
        .unwrap_or(TapeReady { files: vec![] });
    // In the order the batch was given them: the first tape copies.
    let firsts = tries
        .iter()
        .filter(|t| t.file.locations.first().is_some_and(|c| is_tape(input, c)));
    let mut answers = ready.files.into_iter();
    for t in firsts {
        let staged = answers.next().unwrap_or(StagedFile {
            state: StagedState::Unreadable,
            message: "its batch did not stage it".into(),
            request_id: None,
        });
        learn(ctx, tape, t, staged);
    }
    Ok(())
}

/// One tape copy settled: kept, and on the record.
fn learn<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    tape: &mut Tape,
    t: &FileTry,
    staged: StagedFile,
) {
    let copy = &t.file.locations[t.location_index];
    if staged.state == StagedState::Online {
        let how = match &staged.request_id {
            Some(r) => format!("recalled from tape (stage request {r})"),
            None => "online on the tape system's disk: read without a recall".into(),
        };
        record(
            ctx,
            Event::new(EventType::Retrieval, Outcome::Success, how)
                .file(&t.file.relative_path)
                .location(&copy.location_id),
        );
    }
    tape.known.insert(key(t), staged);
}

/// The `stage` step's options: on the staging queue, heartbeated (a lost
/// worker is noticed within the heartbeat timeout and the step resumes
/// on another, finding its requests again), bounded by the recall's
/// timeout plus the retry window.
pub(crate) fn stage_options(s: &WorkflowSettings, timeout_ms: u64) -> ActivityOptions {
    let retry_for = s.retry_for_ms.unwrap_or(6 * 3600 * 1000);
    let mut opts = ActivityOptions::with_close_timeouts(
        temporalio_common::ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: ms(timeout_ms.saturating_add(retry_for)),
            start_to_close: ms(timeout_ms.saturating_add(retry_for)),
        },
    )
    .heartbeat_timeout(ms(s.heartbeat_timeout_ms))
    .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
    .retry_policy(retry(s, &[FailureType::Misconfigured]))
    .build();
    opts.task_queue = s.staging_queue.clone();
    opts
}

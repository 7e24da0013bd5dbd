//! One-pass delivery: per file, a `transfer` activity reads the repository
//! copy, hashes it and uploads its parts at once, and completes the
//! multipart upload only when the digest matches the stored one. A
//! mismatch aborts the upload (nothing becomes visible in the bucket) and
//! the next location is tried.
//!
//! Before flow 10 the activity reported its steps by signal
//! (`transfer_step`) and the workflow wrote each status. From flow 10 on
//! the statuses between QUEUED and the final one are read by the API from
//! the pending step and its heartbeat, and cost no history events; a small
//! AIP's transfer runs inside the workflow task as a local activity (one
//! marker event), falling back to an activity of its own if it fails for
//! another reason than its copy.

use crate::activities::DisseminationActivities as Acts;
use crate::audit::{record, Event};
use crate::contract::*;
use crate::mirror::{describe, human_bytes, set_status};
use crate::options::{ms, summarised, transfer_options};
use crate::outcome::{failure_message, failure_type, no_copy_left, Ending, FileTry};
use crate::staging::{settle, Tape};
use crate::state::DisseminationState;
use model::DisseminationStatus;
use std::time::{Duration, SystemTime};
use temporalio_sdk::WorkflowContext;

/// Executions started before unreadable copies were tried again moved to
/// the next location at the first miss.
const BLIP_PATCH: &str = "unreadable-copy-retried";

/// What changed between flows in how files are moved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mode {
    /// Files keep their (normal) relative paths (flow 10, or the v9 patch).
    pub(crate) keep_paths: bool,
    /// Flow 10 on: no status written mid-transfer, no step signals, no patch.
    pub(crate) flow10: bool,
    /// Transfers start as local activities (a small AIP, flow 10 on).
    pub(crate) local: bool,
    /// Tape copies are staged before they are read (flow 11 on).
    pub(crate) tape: bool,
}

impl Mode {
    pub(crate) fn before_flows(keep_paths: bool) -> Self {
        Self {
            keep_paths,
            flow10: false,
            local: false,
            tape: false,
        }
    }
}

/// Misses of the copy being tried: since when, and how many.
#[derive(Default)]
pub(crate) struct Blips {
    location: Option<(String, usize)>,
    since: Option<SystemTime>,
    misses: u32,
}

/// How long to wait before trying the same unreadable copy again, or
/// `None` once its window (`unreadable_retry_ms`) has passed.
pub(crate) fn blip_wait<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    (input, mode): (&DisseminationInput, Mode),
    blips: &mut Blips,
    (file, location_index): (&str, usize),
) -> Option<Duration> {
    let window = ms(input.settings.unreadable_retry_ms?);
    if !mode.flow10 && !ctx.patched(BLIP_PATCH) {
        return None;
    }
    let now = ctx.workflow_time()?;
    let here = file.to_owned();
    if blips.location.as_ref() != Some(&(here.clone(), location_index)) {
        *blips = Blips {
            location: Some((here, location_index)),
            since: Some(now),
            misses: 0,
        };
    }
    blips.misses += 1;
    let elapsed = now.duration_since(blips.since?).unwrap_or_default();
    let s = &input.settings;
    let backoff = ms(s.retry_initial_ms)
        .saturating_mul(1 << blips.misses.min(16))
        .min(ms(s.retry_max_interval_ms).min(Duration::from_secs(30)));
    (elapsed + backoff <= window).then_some(backoff)
}

pub(crate) async fn transfer_all<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
    mode: Mode,
    tape: &mut Tape,
) -> Result<Vec<DeliveredFile>, Ending> {
    let mut delivered: Vec<DeliveredFile> = Vec::new();
    let mut blips = Blips::default();
    let mut local = mode.local;
    let mut tries: Vec<FileTry> = input.files.iter().map(FileTry::first).collect();
    if mode.tape {
        // Every first copy on tape brought online at once, before any
        // byte is read.
        settle(ctx, input, tape, &mut tries).await?;
    }
    for mut t in tries {
        loop {
            if mode.tape {
                // A later copy on tape: staged when its turn comes.
                if let Err(mut end) = settle(ctx, input, tape, std::slice::from_mut(&mut t)).await {
                    end.discard = end.discard || !delivered.is_empty();
                    return Err(end);
                }
            }
            let Some(location) = t.file.locations.get(t.location_index) else {
                let mut end = no_copy_left(&t);
                // Files delivered before this one are in the bucket.
                end.discard = !delivered.is_empty();
                return Err(end);
            };
            let location_id = location.location_id.clone();
            let queued = !mode.flow10 && downloading_again(ctx);
            describe(
                ctx,
                format!(
                    "transferring {} ({}) from {location_id}",
                    t.file.filename(),
                    human_bytes(t.file.size)
                ),
            );
            let transfer = TransferInput {
                record: input.record.clone(),
                file: t.file.clone(),
                location_index: t.location_index,
                announce_start: queued,
                link_lifetime_secs: input.settings.link_lifetime_secs,
                retry_for_ms: input.settings.retry_for_ms,
                keep_paths: mode.keep_paths,
                silent: mode.flow10,
            };
            let summary = format!("transfer {} from {location_id}", t.file.filename());
            let result = if local {
                let result = ctx
                    .execute_local_activity(
                        Acts::transfer,
                        transfer,
                        local_options(&input.settings),
                    )
                    .await;
                if result.as_ref().is_err_and(|e| !is_the_copys_fault(e)) {
                    // Not the copy's fault (S3, a timeout): from here on
                    // with retries, heartbeats and resume.
                    local = false;
                    continue;
                }
                result
            } else {
                ctx.execute_activity(
                    Acts::transfer,
                    transfer,
                    summarised(transfer_options(&input.settings), summary),
                )
                .await
            };
            match result {
                Ok(out) => {
                    let detail = format!(
                        "{} bytes read{}",
                        out.bytes_read,
                        not_read(input, &t.file.locations[t.location_index + 1..])
                    );
                    record_verified(ctx, &t.file.relative_path, detail, &out.fixity);
                    delivered.push(out.delivered);
                    break;
                }
                Err(e) if failure_type(&e) == Some(FailureType::NoReader) => {
                    let message = failure_message(&e);
                    record_skipped(ctx, &t.file.relative_path, &location_id, &message);
                    t.unreadable.push(format!("{location_id}: {message}"));
                    t.location_index += 1;
                }
                Err(e) if failure_type(&e) == Some(FailureType::LocationUnreadable) => {
                    let message = failure_message(&e);
                    if let Some(wait) = blip_wait(
                        ctx,
                        (input, mode),
                        &mut blips,
                        (&t.file.relative_path, t.location_index),
                    ) {
                        let at = (t.file.relative_path.as_str(), location_id.as_str());
                        retry_copy_after(ctx, at, wait, &message).await;
                        continue;
                    }
                    if mode.keep_paths {
                        record_skipped(ctx, &t.file.relative_path, &location_id, &message);
                    }
                    t.unreadable.push(format!("{location_id}: {message}"));
                    t.location_index += 1;
                }
                Err(e) if failure_type(&e) == Some(FailureType::FixityMismatch) => {
                    let message = failure_message(&e);
                    record_mismatch(ctx, &t.file, &location_id, &message);
                    t.mismatches.push(format!("{location_id}: {message}"));
                    t.location_index += 1;
                }
                Err(e) => {
                    let what = format!("transferring {}", t.file.relative_path);
                    return Err(step_failed(&e, &what, Some(&t.file.relative_path)));
                }
            }
        }
    }
    Ok(delivered)
}

/// A local step's failure that says something of the copy read (it is not
/// retried elsewhere, the next copy is tried): fixity, unreadable, no reader.
pub(crate) fn is_the_copys_fault(e: &temporalio_sdk::ActivityExecutionError) -> bool {
    matches!(
        failure_type(e),
        Some(FailureType::FixityMismatch | FailureType::LocationUnreadable | FailureType::NoReader)
    )
}

/// A small AIP's step inside the workflow task: one attempt, bounded well
/// inside the task's own timeout (longer would make the SDK heartbeat the
/// task: more events); anything but the copy's fault falls back to an
/// activity of its own.
pub(crate) fn local_options(s: &WorkflowSettings) -> temporalio_sdk::LocalActivityOptions {
    temporalio_sdk::LocalActivityOptions::builder()
        .start_to_close_timeout(ms(s.short_activity_timeout_ms.min(8_000)))
        .schedule_to_start_timeout(Duration::from_secs(5))
        .retry_policy(
            temporalio_common::RetryPolicy::builder()
                .maximum_attempts(1)
                .build(),
        )
        .build()
}

/// DOWNLOADING_FROM_REPOSITORY again (another copy, the next file) unless
/// still QUEUED: a worker's start ends QUEUED. Whether it was QUEUED.
pub(crate) fn downloading_again<W: DisseminationState>(ctx: &mut WorkflowContext<W>) -> bool {
    let status = ctx.state(|s| s.view().status);
    let queued = status == DisseminationStatus::Queued;
    if !queued && status != DisseminationStatus::DownloadingFromRepository {
        set_status(
            ctx,
            DisseminationStatus::DownloadingFromRepository,
            "downloading from the bit repository",
        );
    }
    queued
}

/// A mount that dropped, a copy briefly away: the same copy again after
/// `wait`, each miss on the record and in the Web UI's details.
pub(crate) async fn retry_copy_after<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    (path, location_id): (&str, &str),
    wait: Duration,
    message: &str,
) {
    let why = format!("copy unreadable, trying it again in {wait:?}: {message}");
    record(ctx, Event::unreadable(path, location_id, why));
    describe(
        ctx,
        format!("waiting for the bit repository: {message}, next try in {wait:?}"),
    );
    let _ = ctx.timer(wait).await;
}

/// A copy given up as unreadable (no reader for its location, or still
/// unreadable after its window), on the record: the next copy is tried.
pub(crate) fn record_skipped<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    path: &str,
    location_id: &str,
    message: &str,
) {
    let why = format!("copy skipped as unreadable: {message}");
    record(ctx, Event::unreadable(path, location_id, why));
}

/// "; not read: s3: lower preference (20)", for the copies after the one
/// that served a file (nothing for executions before copies were ordered).
pub(crate) fn not_read(
    input: &DisseminationInput,
    rest: &[model::catalog::FileLocation],
) -> String {
    let why = crate::plan::untried(rest, &input.settings.locations);
    if why.is_empty() || input.settings.locations.is_empty() {
        String::new()
    } else {
        format!("; not read: {}", why.join(", "))
    }
}

/// A copy whose bytes do not match the stored digest, on the record.
pub(crate) fn record_mismatch<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    file: &model::catalog::RepositoryFile,
    location_id: &str,
    message: &str,
) {
    let mut event = Event::new(EventType::FixityCheck, Outcome::Failure, message.to_owned())
        .file(&file.relative_path)
        .location(location_id);
    if let Some(f) = file.strongest_fixity() {
        event = event.algorithm(f.algorithm.as_str());
    }
    record(ctx, event);
}

/// The retrieval and fixity events of a file read and verified.
pub(crate) fn record_verified<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    path: &str,
    retrieval: String,
    fixity: &FixityOutcome,
) {
    let location = &fixity.location_id;
    record(
        ctx,
        Event::new(EventType::Retrieval, Outcome::Success, retrieval)
            .file(path)
            .location(location),
    );
    record(
        ctx,
        Event::new(
            EventType::FixityCheck,
            Outcome::Success,
            format!("digest {}", fixity.digest),
        )
        .file(path)
        .location(location)
        .algorithm(fixity.algorithm.as_str()),
    );
}

/// A step that failed for good (not a copy's fault): FAILED, with what
/// reached the bucket removed.
pub(crate) fn step_failed(
    e: &temporalio_sdk::ActivityExecutionError,
    what: &str,
    file: Option<&str>,
) -> Ending {
    let code = if failure_type(e) == Some(FailureType::UploadError) {
        ReasonCode::UploadFailed
    } else {
        ReasonCode::DownloadFailed
    };
    let mut end = Ending::failed(code, format!("{what} failed: {}", failure_message(e)), file);
    end.discard = true;
    end
}

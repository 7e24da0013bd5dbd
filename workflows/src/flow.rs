//! The flow of executions started from flow 10 on (`DisseminationInput::flow`):
//! the same steps as before, at a fraction of the history.
//!
//! A small AIP's whole life is three workflow tasks:
//! 1. its transfer inside the task (a local activity: one marker), the
//!    final status written once (memo and search attribute) and `finish`
//!    scheduled — in the same task, so the lock is released only after the
//!    final status is recorded;
//! 2. `finish` released the lock and made the webhook's first attempt: its
//!    outcome written once, the retention timer started;
//! 3. at the end of retention the objects deleted (a local activity), the
//!    record written once, done.
//!
//! Nothing is written between QUEUED (the API starts the execution with
//! it) and the final status: the API reads QUEUED, DOWNLOADING…,
//! FIXITY_CHECK and UPLOADING_TO_S3 from the pending step and its
//! heartbeat. No patch is called: the flow number in the input is the
//! version (each patch would cost every execution two events forever).

use crate::activities::DisseminationActivities as Acts;
use crate::audit::{record, Event};
use crate::contract::*;
use crate::dissemination::DisseminationWorkflow;
use crate::mirror::set_status;
use crate::options::{detached, short_options, summarised};
use crate::outcome::Ending;
use crate::plan::plan;
use crate::retention::discard;
use crate::staging::Tape;
use crate::streaming::{local_options, Mode};
use crate::webhook::{deliver_webhook, message};
use model::{time::Timestamp, DisseminationStatus};
use std::time::Duration;
use temporalio_sdk::{WorkflowContext, WorkflowResult, WorkflowTermination};

pub(crate) async fn run(
    ctx: &mut WorkflowContext<DisseminationWorkflow>,
) -> WorkflowResult<DisseminationView> {
    let input = ctx.state(|s| s.input.clone());
    if input.flow > FLOW {
        // Written by a newer API: a newer worker runs it (this task fails
        // and is handed to another worker, until one knows the flow).
        panic!(
            "flow {} is newer than this worker's ({FLOW}): upgrade the workers first",
            input.flow
        );
    }
    record(ctx, Event::requested(&input.record));
    // The API started the execution QUEUED, in its memo and search attributes.
    ctx.state_mut(|s| s.view.status = DisseminationStatus::Queued);
    crate::mirror::describe(ctx, "waiting for a worker to start the transfer".into());

    let mut tape = Tape::default();
    let outcome = match plan(&input.files, &input.settings.locations) {
        Err(end) => Err(end),
        Ok(files) => {
            let input = DisseminationInput {
                files,
                ..input.clone()
            };
            let mode = Mode {
                keep_paths: true,
                flow10: true,
                local: input.moves_locally(),
                tape: input.flow >= 11,
            };
            if input.record.is_packaged() {
                crate::packaged::package_all(ctx, &input, mode, &mut tape).await
            } else {
                crate::streaming::transfer_all(ctx, &input, mode, &mut tape).await
            }
        }
    };
    let cancelled = ctx.cancellation_token().is_cancelled();
    let outcome = if cancelled {
        Err(Ending::cancelled())
    } else {
        outcome
    };
    let delivered = outcome.is_ok();
    let (details, removal) = conclude(ctx, &input, outcome).await;
    let status = ctx.state(|s| s.view.status);
    set_status(ctx, status, &details);
    let releases = match plan(&input.files, &input.settings.locations) {
        Ok(files) => tape.releases(&files, !input.staged_by_batch),
        Err(_) => Vec::new(),
    };
    finish(ctx, &input, cancelled, releases, removal).await;
    if delivered {
        retain(ctx, &input).await;
    }
    if ctx.cancellation_token().is_cancelled() {
        return Err(WorkflowTermination::cancelled());
    }
    Ok(ctx.state(|s| s.view.clone()))
}

/// What a failed run left in the client's bucket and could not remove
/// before its final status (flow 12 on): removed after the webhook's first
/// attempt.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Removal {
    Done,
    Pending,
}

/// The final status in the view (with the retention's end once
/// delivered), the audit trail, what a failure left in the bucket removed
/// (or, from flow 12 on, its removal `Pending` when S3 did not answer one
/// quick attempt); the Web UI's line for it. Nothing is written to the
/// memo yet.
async fn conclude(
    ctx: &mut WorkflowContext<DisseminationWorkflow>,
    input: &DisseminationInput,
    outcome: Result<Vec<DeliveredFile>, Ending>,
) -> (String, Removal) {
    match outcome {
        Ok(files) => {
            record(ctx, Event::delivered(&files));
            let secs = input.settings.retention_secs.unwrap_or(7 * 24 * 3600);
            let ends_at = ctx
                .workflow_time()
                .map(|t| Timestamp::utc(t + Duration::from_secs(secs)));
            let until = ends_at.clone().unwrap_or_default();
            ctx.state_mut(|s| {
                s.view.files = files;
                s.view.status = DisseminationStatus::Disseminated;
                s.view.retention_ends_at = ends_at;
            });
            (
                format!("delivered; objects kept until {until}"),
                Removal::Done,
            )
        }
        Err(end) => {
            let mut removal = Removal::Done;
            if end.discard {
                if input.flow >= 12 && end.status == DisseminationStatus::Failed {
                    removal = remove_at_once(ctx, input).await;
                } else {
                    let _ = discard(ctx, input).await;
                }
            }
            record(ctx, end.event());
            if removal == Removal::Pending {
                let detail = "what reached the client's bucket is not removed yet (S3 did not \
                              answer): its removal goes on after the webhook";
                record(
                    ctx,
                    Event::new(EventType::Deletion, Outcome::Failure, detail.into()),
                );
            }
            let summary = end.summary();
            ctx.state_mut(|s| {
                s.view.reasons = end.reasons;
                s.view.status = end.status;
            });
            (summary, removal)
        }
    }
}

/// One quick attempt (a local activity) at removing what a failed run
/// left in the client's bucket.
async fn remove_at_once(
    ctx: &mut WorkflowContext<DisseminationWorkflow>,
    input: &DisseminationInput,
) -> Removal {
    let step = DiscardInput {
        record: input.record.clone(),
    };
    match ctx
        .execute_local_activity(Acts::discard_delivery, step, local_options(&input.settings))
        .await
    {
        Ok(_) => Removal::Done,
        Err(_) => Removal::Pending,
    }
}

/// The removal the final status did not wait for, with the retries of a
/// step of its own; the audit trail says how it ended.
async fn remove_later(
    ctx: &mut WorkflowContext<DisseminationWorkflow>,
    input: &DisseminationInput,
) {
    let (outcome, detail) = match discard(ctx, input).await {
        Ok(count) => (
            Outcome::Success,
            format!("{count} object(s) the failed run left in the client's bucket removed"),
        ),
        Err(message) => (
            Outcome::Failure,
            format!("removing what the failed run left in the client's bucket failed: {message}"),
        ),
    };
    record(ctx, Event::new(EventType::Deletion, outcome, detail));
}

/// The lock released and the webhook's first attempt, in one step (the
/// final status was written in the same task that schedules it); a
/// removal the final status did not wait for (`Removal::Pending`); the
/// webhook's later attempts on the workflow's own schedule.
async fn finish(
    ctx: &mut WorkflowContext<DisseminationWorkflow>,
    input: &DisseminationInput,
    cancelled: bool,
    releases: Vec<TapeRelease>,
    removal: Removal,
) {
    // The client asked for the cancel: no webhook about it.
    let notify = (!cancelled).then(|| message(ctx, input));
    let step = FinishInput {
        notify: notify.clone(),
        lock: input.lock.clone(),
        releases,
    };
    let result = ctx
        .execute_activity(
            Acts::finish,
            step,
            detached(summarised(
                short_options(&input.settings, &[]),
                "release the lock, send the webhook".into(),
            )),
        )
        .await;
    if let Ok(out) = &result {
        record_releases(ctx, out);
    }
    // After the webhook's first attempt, before its later ones.
    if removal == Removal::Pending {
        remove_later(ctx, input).await;
    }
    let Some(message) = notify else {
        return;
    };
    // A `finish` that failed for good released nothing it could: the
    // webhook is still sent on its schedule.
    let first = result.ok().and_then(|o| o.webhook);
    deliver_webhook(ctx, input, message, first).await;
}

/// The tape pins `finish` released, or could not (they expire then).
fn record_releases(ctx: &mut WorkflowContext<DisseminationWorkflow>, out: &FinishOutcome) {
    let released = format!(
        "tape copies released (stage request {})",
        out.released.join(", ")
    );
    let kept = format!(
        "tape copies not released, their pins expire by themselves: {}",
        out.not_released.join("; ")
    );
    for (requests, outcome, detail) in [
        (&out.released, Outcome::Success, released),
        (&out.not_released, Outcome::Failure, kept),
    ] {
        if !requests.is_empty() {
            record(ctx, Event::new(EventType::Retrieval, outcome, detail));
        }
    }
}

/// Keeps the delivered objects until retention ends (the webhook's outcome
/// and the retention's end were written just before), then deletes them.
async fn retain(ctx: &mut WorkflowContext<DisseminationWorkflow>, input: &DisseminationInput) {
    let secs = input.settings.retention_secs.unwrap_or(7 * 24 * 3600);
    // A cancel request (operator) ends retention early; so does the
    // client's successful acknowledgement, with `release_on_ack`.
    let release_on_ack = input.settings.release_on_ack;
    temporalio_sdk::workflows::select! {
        _ = ctx.timer(Duration::from_secs(secs)) => {}
        _ = ctx.wait_condition(move |s: &DisseminationWorkflow| {
            release_on_ack && s.view.acknowledged.is_some()
        }) => {}
    }
    let released = ctx.state(|s| s.view.acknowledged.is_some()) && release_on_ack;
    let step = DiscardInput {
        record: input.record.clone(),
    };
    let local = ctx
        .execute_local_activity(Acts::discard_delivery, step, local_options(&input.settings))
        .await;
    // Not deleted in one go (S3 away): with the retries of a step of its own.
    let deleted = match local {
        Ok(count) => Ok(count),
        Err(_) => discard(ctx, input).await,
    };
    let (outcome, detail) = match deleted {
        Ok(count) if released => (
            Outcome::Success,
            format!("the client acknowledged every file; {count} delivered object(s) deleted"),
        ),
        Ok(count) => (
            Outcome::Success,
            format!("retention ended; {count} delivered object(s) deleted"),
        ),
        // Retried for the configured duration and still refused: the
        // record says so, and an operator can reset the run.
        Err(message) => (
            Outcome::Failure,
            format!("retention ended; deleting the delivered objects failed: {message}"),
        ),
    };
    record(
        ctx,
        Event::new(EventType::Deletion, outcome, detail.clone()),
    );
    ctx.state_mut(|s| s.view.objects_deleted = outcome == Outcome::Success);
    let view = ctx.state(|s| s.view.clone());
    let _ = ctx.upsert_memo([(MEMO_VIEW, Some(temporalio_sdk::MemoValue::new(view)))]);
    ctx.set_current_details(format!("{}: {detail}", DisseminationStatus::Disseminated));
}

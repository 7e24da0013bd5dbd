//! A batch from flow 10 on (`BatchInput::flow`): its items do not wait for
//! turns and send no signal when they end (each would cost both histories
//! events). They start at once and share the workers with every other
//! request through Temporal's task queues (priority, then the fairness key
//! of their client), and the batch counts them every few seconds in the
//! visibility store by the `BatchId` each carries, backing off while
//! nothing changes. Once every item it started is final it sends the
//! `dissemination-batch.completed` webhook. A cancel request cancels every
//! item not final yet.
//!
//! From flow 11 on a batch whose items have tape copies stages them
//! itself, alongside the counting: one `stage` step for all of them (bulk
//! requests the tape system orders by volume), which signals each item
//! `tape_ready` as soon as its files are online, so items take their
//! transfer turn in the order their files come off tape. Its requests are
//! deleted once every item is final.

use crate::activities::DisseminationActivities as Acts;
use crate::batch::{publish, DisseminationBatch};
use crate::contract::*;
use crate::options::{ms, short_options, summarised};
use crate::streaming::local_options;
use futures::FutureExt;
use temporalio_sdk::{
    ActivityExecutionError, ContinueAsNewOptions, WorkflowCancellationToken, WorkflowContext,
    WorkflowResult,
};

/// The batch's `stage` step over its items' tape files (each group
/// signals its item when settled). A cancel request cancels it (its
/// requests are cancelled and deleted).
fn stage_items<'a>(
    ctx: &'a WorkflowContext<DisseminationBatch>,
    input: &BatchInput,
    token: WorkflowCancellationToken,
) -> impl std::future::Future<Output = Result<StageOutcome, ActivityExecutionError>> + 'a {
    let s = &input.settings;
    let files: usize = input.tape.iter().map(|g| g.files.len()).sum();
    let (step, timeout) = crate::staging::stage_input(ctx, s, input.tape.clone());
    let mut opts = summarised(
        crate::staging::stage_options(s, timeout),
        format!("stage {files} tape file(s) of {} item(s)", input.tape.len()),
    );
    opts.cancellation_token = Some(token);
    ctx.execute_activity(Acts::stage, step, opts)
}

/// Counting backs off to this many times the poll interval.
const MAX_BACKOFF: u32 = 30;

pub(crate) async fn run(
    ctx: &mut WorkflowContext<DisseminationBatch>,
) -> WorkflowResult<BatchView> {
    let input = ctx.state(|s| s.input.clone());
    let batch_id = input.record.batch_id.clone();
    let base = ms(input.settings.batch_poll_ms.unwrap_or(2_000));
    let mut poll = base;
    publish(ctx);
    // The items' tape files, staged alongside the counting (flow 11 on).
    let staged = ctx.state(|s| s.staged) || input.tape.is_empty();
    let stager = ctx.clone();
    // Cancelled with the batch, or once every item is final.
    let stop_staging = ctx.cancellation_token().child_token();
    let mut staging = if staged {
        futures::future::Fuse::terminated()
    } else {
        stage_items(&stager, &input, stop_staging.clone())
            .boxed_local()
            .fuse()
    };
    if staged {
        ctx.state_mut(|s| s.staged = true);
    }
    loop {
        if ctx.state(|s| s.cancel_requested && !s.cancels_sent) {
            ctx.state_mut(|s| s.cancels_sent = true);
            stop_staging.cancel();
            let _ = ctx
                .execute_activity(
                    Acts::cancel_batch_items,
                    batch_id.clone(),
                    summarised(
                        short_options(&input.settings, &[]),
                        "cancel the items not final yet".into(),
                    ),
                )
                .await;
        }
        let counted = ctx
            .execute_local_activity(
                Acts::tally_batch,
                batch_id.clone(),
                local_options(&input.settings),
            )
            .await;
        let changed = match counted {
            Ok(tally) => {
                let changed = ctx.state(|s| s.tally != Some(tally));
                if changed {
                    ctx.state_mut(|s| s.tally = Some(tally));
                    publish(ctx);
                }
                changed
            }
            // The store did not answer: counted again at the next poll.
            Err(_) => false,
        };
        if ctx.state(|s| s.open() == 0) {
            if ctx.state(|s| s.staged) {
                break;
            }
            // Nothing left to stage for: the step cleans up and ends.
            stop_staging.cancel();
        }
        let limit = input.continue_after_events.unwrap_or(20_000);
        // Not while staging: the step's outcome belongs to this run.
        if ctx.history_length() > limit && ctx.state(|s| s.staged) {
            let carried = ctx.state(|s| BatchCarried {
                states: s.states.clone(),
                cancel_requested: s.cancel_requested,
                cancels_sent: s.cancels_sent,
                tally: s.tally,
                tape_requests: s.tape_requests.clone(),
                staged: s.staged,
            });
            let next = BatchInput {
                carried: Some(carried),
                ..input.clone()
            };
            ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
        }
        poll = if changed {
            base
        } else {
            (poll * 2).min(base * MAX_BACKOFF)
        };
        let asked = ctx.state(|s| s.cancel_requested);
        temporalio_sdk::workflows::select! {
            _ = ctx.timer(poll) => {}
            _ = ctx.wait_condition(move |s: &DisseminationBatch| s.cancel_requested != asked) => {
                poll = base;
            }
            out = &mut staging => {
                let requests = out.map(|o| o.requests).unwrap_or_default();
                ctx.state_mut(|s| {
                    s.tape_requests = requests;
                    s.staged = true;
                });
            }
        }
    }
    // Every item is final: nothing of ours stays pinned.
    let releases = ctx.state(|s| s.tape_requests.clone());
    if !releases.is_empty() {
        let step = FinishInput {
            notify: None,
            lock: None,
            releases,
        };
        let _ = ctx
            .execute_activity(
                Acts::finish,
                step,
                summarised(
                    short_options(&input.settings, &[]),
                    "delete the batch's stage requests".into(),
                ),
            )
            .await;
    }
    Ok(crate::batch::completed(ctx, &input).await)
}

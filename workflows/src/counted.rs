//! A batch from flow 10 on (`BatchInput::flow`): its items do not wait for
//! turns and send no signal when they end (each would cost both histories
//! events). They start at once and share the workers with every other
//! request through Temporal's task queues (priority, then the fairness key
//! of their client), and the batch counts them every few seconds in the
//! visibility store by the `BatchId` each carries, backing off while
//! nothing changes. Once every item it started is final it sends the
//! `dissemination-batch.completed` webhook. A cancel request cancels every
//! item not final yet.

use crate::activities::DisseminationActivities as Acts;
use crate::batch::{publish, DisseminationBatch};
use crate::contract::*;
use crate::options::{ms, short_options, summarised, webhook_options};
use crate::streaming::local_options;
use temporalio_sdk::{ContinueAsNewOptions, WorkflowContext, WorkflowResult};

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
    loop {
        if ctx.state(|s| s.cancel_requested && !s.cancels_sent) {
            ctx.state_mut(|s| s.cancels_sent = true);
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
            break;
        }
        let limit = input.continue_after_events.unwrap_or(20_000);
        if ctx.history_length() > limit {
            let carried = ctx.state(|s| BatchCarried {
                states: s.states.clone(),
                cancel_requested: s.cancel_requested,
                cancels_sent: s.cancels_sent,
                tally: s.tally,
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
        }
    }
    let view = ctx.state(|s| s.view());
    let _ = ctx
        .execute_activity(
            Acts::notify_batch,
            BatchNotifyInput {
                message_id: format!("msg_{}_batch_completed", input.record.batch_id),
                occurred_at: ctx
                    .workflow_time()
                    .map(model::time::Timestamp::utc)
                    .unwrap_or_default(),
                view: view.clone(),
            },
            webhook_options(
                &input.settings,
                "webhook dissemination-batch.completed".to_owned(),
            ),
        )
        .await;
    Ok(view)
}

//! `DisseminationBatch`: one execution per batch, id = batchId. Its items
//! are ordinary disseminations, started by the API through the same
//! race-free path as a single POST (before the batch itself, so the
//! batch's input names exactly the items it owns); each waits for its turn. The batch gives
//! at most `max_in_flight` of them their turn at once (so one client's
//! thousand items never hold more than that many workers), counts them as
//! they end (each reports its final status by signal), and sends the
//! `dissemination-batch.completed` webhook once every item is final.
//! A cancel request cancels every item not final yet. The state is a few
//! bytes per item; a long history continues as new with it.

use crate::activities::DisseminationActivities as Acts;
use crate::contract::*;
use crate::dissemination::DisseminationWorkflow;
use crate::options::{detached_signal, webhook_options};
use model::DisseminationStatus;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult,
};

/// The memo key of a batch's view (read by the API without a worker).
pub const MEMO_BATCH: &str = "batch";

/// Batches started before this published their view only between rounds of
/// turns: while items ended as fast as turns were given, a round never
/// ended and the counts stood still (seen on a loaded machine).
const VIEW_PER_TURN_PATCH: &str = "batch-view-per-turn";

/// A history this long continues as new by default (Temporal's limit is
/// 51,200 events; a 1,000-item batch makes about 12,000).
const CONTINUE_AFTER_EVENTS: u32 = 20_000;

#[workflow]
pub struct DisseminationBatch {
    pub(crate) input: BatchInput,
    pub(crate) states: Vec<ItemState>,
    pub(crate) cancel_requested: bool,
    pub(crate) cancels_sent: bool,
    /// The last count of the items (flow 10 on, see `counted`).
    pub(crate) tally: Option<ItemTally>,
    /// Its stage requests, deleted at its end (flow 11 on).
    pub(crate) tape_requests: Vec<TapeRelease>,
    /// Its staging is over, or it has none (flow 11 on).
    pub(crate) staged: bool,
}

#[workflow_methods]
impl DisseminationBatch {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: BatchInput) -> Self {
        let carried = input.carried.clone().unwrap_or_else(|| BatchCarried {
            states: input
                .items
                .iter()
                .map(|i| {
                    if i.is_owned() {
                        ItemState::Waiting
                    } else {
                        ItemState::NotOwned
                    }
                })
                .collect(),
            ..Default::default()
        });
        Self {
            input,
            states: carried.states,
            cancel_requested: carried.cancel_requested,
            cancels_sent: carried.cancels_sent,
            tally: carried.tally,
            tape_requests: carried.tape_requests,
            staged: carried.staged,
        }
    }

    #[run(name = "DisseminationBatch")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<BatchView> {
        if ctx.state(|s| s.input.flow) >= 10 {
            return crate::counted::run(ctx).await;
        }
        let input = ctx.state(|s| s.input.clone());
        publish(ctx);
        loop {
            if ctx.state(|s| s.cancel_requested && !s.cancels_sent) {
                cancel_open_items(ctx).await;
            }
            release_turns(ctx, input.max_in_flight).await;
            publish(ctx);
            if ctx.state(|s| s.open() == 0) {
                break;
            }
            let limit = input.continue_after_events.unwrap_or(CONTINUE_AFTER_EVENTS);
            if ctx.history_length() > limit {
                let carried = ctx.state(|s| BatchCarried {
                    states: s.states.clone(),
                    cancel_requested: s.cancel_requested,
                    cancels_sent: s.cancels_sent,
                    ..Default::default()
                });
                let next = BatchInput {
                    carried: Some(carried),
                    ..input.clone()
                };
                ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
            }
            let (open, cancel) = ctx.state(|s| (s.open(), s.cancel_requested));
            let _ = ctx
                .wait_condition(move |s| s.open() != open || s.cancel_requested != cancel)
                .await;
        }
        Ok(completed(ctx, &input).await)
    }

    /// From an item: it reached a final status.
    #[signal(name = "item_ended")]
    pub fn item_ended(&mut self, ctx: &mut SyncWorkflowContext<Self>, ended: ItemEnded) {
        if let Some(i) = self
            .input
            .items
            .iter()
            .position(|i| i.dissemination_id.as_deref() == Some(&ended.dissemination_id))
        {
            if matches!(self.states[i], ItemState::Waiting | ItemState::Released) {
                self.states[i] = ItemState::Ended(ended.status);
                ctx.set_current_details(self.details());
            }
        }
    }

    /// From the API (DELETE): cancel every item not final yet.
    #[signal(name = "cancel_batch")]
    pub fn cancel_batch(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.cancel_requested = true;
    }

    #[query(name = "view")]
    pub fn view_query(&self, _ctx: &WorkflowContextView) -> BatchView {
        self.view()
    }

    /// Items `from..from + count`, each with the status the batch knows.
    #[query(name = "items")]
    pub fn items(&self, _ctx: &WorkflowContextView, page: (u32, u32)) -> Vec<BatchItem> {
        let (from, count) = (page.0 as usize, page.1 as usize);
        self.input
            .items
            .iter()
            .zip(&self.states)
            .skip(from)
            .take(count)
            .map(|(item, state)| BatchItem {
                status: match state {
                    ItemState::Waiting => Some(DisseminationStatus::Queued),
                    ItemState::Ended(s) => Some(*s),
                    // Working, or not the batch's: the item itself says.
                    ItemState::Released | ItemState::NotOwned => None,
                },
                ..item.clone()
            })
            .collect()
    }
}

impl DisseminationBatch {
    /// The batch's own items not final yet.
    pub(crate) fn open(&self) -> usize {
        if self.input.flow >= 10 {
            let finals = self.tally.map_or(0, |t| t.finals()) as usize;
            return self.owned().saturating_sub(finals);
        }
        self.states
            .iter()
            .filter(|s| matches!(s, ItemState::Waiting | ItemState::Released))
            .count()
    }

    fn owned(&self) -> usize {
        self.input.items.iter().filter(|i| i.is_owned()).count()
    }

    fn counts(&self) -> BatchCounts {
        let mut c = BatchCounts {
            total: self.input.items.len() as u32,
            ..Default::default()
        };
        if self.input.flow >= 10 {
            // Nothing waits for a turn: not final is in progress.
            let t = self.tally.unwrap_or_default();
            c.in_progress = self.open() as u32;
            c.disseminated = t.disseminated;
            c.failed = t.failed;
            c.rejected = t.rejected;
            c.cancelled = t.cancelled;
            for item in self.input.items.iter().filter(|i| !i.is_owned()) {
                if item.existing {
                    c.existing += 1;
                } else {
                    c.refused += 1;
                }
            }
            return c;
        }
        for (item, state) in self.input.items.iter().zip(&self.states) {
            match state {
                ItemState::Waiting => c.waiting += 1,
                ItemState::Released => c.in_progress += 1,
                ItemState::Ended(DisseminationStatus::Disseminated) => c.disseminated += 1,
                ItemState::Ended(DisseminationStatus::Rejected) => c.rejected += 1,
                ItemState::Ended(DisseminationStatus::Cancelled) => c.cancelled += 1,
                ItemState::Ended(_) => c.failed += 1,
                ItemState::NotOwned if item.existing => c.existing += 1,
                ItemState::NotOwned => c.refused += 1,
            }
        }
        c
    }

    pub(crate) fn view(&self) -> BatchView {
        BatchView::new(
            self.input.record.clone(),
            self.counts(),
            self.cancel_requested,
        )
    }

    fn details(&self) -> String {
        let c = self.counts();
        format!(
            "{} item(s): {} waiting, {} in progress, {} delivered, {} failed, {} rejected, {} cancelled, {} existing, {} refused",
            c.total, c.waiting, c.in_progress, c.disseminated, c.failed, c.rejected, c.cancelled, c.existing, c.refused
        )
    }
}

/// Every item is final: the `dissemination-batch.completed` webhook (its
/// own attempts), and the batch's final view.
pub(crate) async fn completed(
    ctx: &mut WorkflowContext<DisseminationBatch>,
    input: &BatchInput,
) -> BatchView {
    let view = ctx.state(|s| s.view());
    let message = BatchNotifyInput {
        message_id: format!("msg_{}_batch_completed", input.record.batch_id),
        occurred_at: ctx
            .workflow_time()
            .map(model::time::Timestamp::utc)
            .unwrap_or_default(),
        view: view.clone(),
    };
    let options = webhook_options(
        &input.settings,
        "webhook dissemination-batch.completed".to_owned(),
    );
    let _ = ctx
        .execute_activity(Acts::notify_batch, message, options)
        .await;
    view
}

/// The view in the memo (the API reads it without a worker) and the Web UI.
pub(crate) fn publish(ctx: &mut WorkflowContext<DisseminationBatch>) {
    let (view, details) = ctx.state(|s| (s.view(), s.details()));
    let _ = ctx.upsert_memo([(MEMO_BATCH, Some(temporalio_sdk::MemoValue::new(view)))]);
    ctx.set_current_details(details);
}

/// Gives waiting items their turn while fewer than `max` are working.
async fn release_turns(ctx: &mut WorkflowContext<DisseminationBatch>, max: u32) {
    loop {
        let next = ctx.state(|s| {
            let working = s
                .states
                .iter()
                .filter(|x| **x == ItemState::Released)
                .count();
            if s.cancel_requested || working >= max.max(1) as usize {
                return None;
            }
            s.states
                .iter()
                .position(|x| *x == ItemState::Waiting)
                .and_then(|i| Some((i, s.input.items[i].dissemination_id.clone()?)))
        });
        let Some((i, id)) = next else { return };
        ctx.state_mut(|s| s.states[i] = ItemState::Released);
        let sent = ctx
            .external_workflow(id, None)
            .signal(DisseminationWorkflow::batch_turn, (), detached_signal())
            .await;
        if sent.is_err() {
            // The item does not exist (its start failed): not the batch's.
            ctx.state_mut(|s| s.states[i] = ItemState::NotOwned);
        }
        // Items that ended meanwhile are counted now, not once the round
        // of turns is over (one memo event per turn).
        if ctx.patched(VIEW_PER_TURN_PATCH) {
            publish(ctx);
        }
    }
}

/// Cancels every item of the batch that is not final yet.
async fn cancel_open_items(ctx: &mut WorkflowContext<DisseminationBatch>) {
    let open: Vec<String> = ctx.state(|s| {
        s.input
            .items
            .iter()
            .zip(&s.states)
            .filter(|(_, st)| matches!(st, ItemState::Waiting | ItemState::Released))
            .filter_map(|(i, _)| i.dissemination_id.clone())
            .collect()
    });
    ctx.state_mut(|s| s.cancels_sent = true);
    for id in open {
        let _ = ctx
            .external_workflow(id, None)
            .cancel(Some("the batch was cancelled".into()))
            .await;
    }
}

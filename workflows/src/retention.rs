//! After the outcome: delivered objects kept for the retention period
//! (links can be regenerated) then deleted, partial deliveries discarded,
//! the in-progress lock released.

use crate::activities::DisseminationActivities as Acts;
use crate::audit::{record, Event};
use crate::contract::*;
use crate::lock::DisseminationLock;
use crate::mirror::set_status;
use crate::options::{detached, detached_signal, short_options, summarised};
use crate::outcome::failure_message;
use crate::state::DisseminationState;
use model::time::Timestamp;
use model::DisseminationStatus;
use std::time::Duration;
use temporalio_sdk::WorkflowContext;

/// Keeps the delivered objects (links can be regenerated) until retention
/// ends, then deletes them.
pub(crate) async fn retain<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
) {
    let secs = input.settings.retention_secs.unwrap_or(7 * 24 * 3600);
    let ends_at = ctx
        .workflow_time()
        .map(|t| Timestamp::utc(t + Duration::from_secs(secs)));
    ctx.state_mut(|s| s.view_mut().retention_ends_at = ends_at.clone());
    let until = ends_at.unwrap_or_default();
    set_status(
        ctx,
        DisseminationStatus::Disseminated,
        &format!("delivered; objects kept until {until}"),
    );
    // A cancel request (operator) ends retention early.
    let _ = ctx.timer(Duration::from_secs(secs)).await;
    match discard(ctx, input).await {
        Ok(count) => {
            record(
                ctx,
                Event::new(
                    EventType::Deletion,
                    Outcome::Success,
                    format!("retention ended; {count} delivered object(s) deleted"),
                ),
            );
            ctx.state_mut(|s| s.view_mut().objects_deleted = true);
            set_status(
                ctx,
                DisseminationStatus::Disseminated,
                "retention ended; objects deleted",
            );
        }
        Err(message) => {
            // Retried for the configured duration and still refused: the
            // record says so, and an operator can reset the run.
            record(
                ctx,
                Event::new(
                    EventType::Deletion,
                    Outcome::Failure,
                    format!("retention ended; deleting the delivered objects failed: {message}"),
                ),
            );
            set_status(
                ctx,
                DisseminationStatus::Disseminated,
                "retention ended; deleting the objects failed",
            );
        }
    }
}

/// Removes what reached the client's bucket: the objects deleted, or why not.
pub(crate) async fn discard<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
) -> Result<u32, String> {
    ctx.execute_activity(
        Acts::discard_delivery,
        DiscardInput {
            record: input.record.clone(),
        },
        detached(summarised(
            short_options(&input.settings, &[]),
            "remove a partial delivery".into(),
        )),
    )
    .await
    .map_err(|e| failure_message(&e))
}

pub(crate) async fn release_lock<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
) {
    if let Some(lock) = &input.lock {
        // A lock already gone (terminated by an operator) is fine.
        let _ = ctx
            .external_workflow(lock.workflow_id.clone(), Some(lock.run_id.clone()))
            .signal(DisseminationLock::release, (), detached_signal())
            .await;
    }
}

//! `redeliver` (`WebhookRecovery`): the client's events since a time that
//! its endpoint did not take with a 2xx, posted again in order, each with
//! its own `webhook-id` and the body it was first sent with (a new
//! timestamp and signature: a new attempt). One POST per event, no retry
//! here: what is still not taken is sent by the next recovery.

use crate::{
    failure::Failure,
    notify::{post_signed, taken},
    Activities,
};
use temporalio_sdk::activities::ActivityContext;
use tracing::info;
use workflows::{RecoveryHeartbeat, RecoveryInput, RecoveryOutcome};

pub(crate) async fn redeliver(
    acts: &Activities,
    ctx: &ActivityContext,
    input: RecoveryInput,
) -> Result<RecoveryOutcome, Failure> {
    let since = chrono::DateTime::parse_from_rfc3339(input.since.as_str())
        .map_err(|e| Failure::Misconfigured(format!("since {}: {e}", input.since)))?
        .with_timezone(&chrono::Utc);
    let client = input.client_id.as_str();
    let events = acts
        .feed
        .undelivered_since(client, since, input.limit as usize)
        .await
        .map_err(|e| Failure::Transient(format!("reading the event feed: {e}")))?;
    let mut out = RecoveryOutcome::default();
    for event in events {
        if ctx.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        let body = event.payload.get().as_bytes().to_vec();
        match post_signed(acts, client, &event.webhook_id, body, 0).await {
            Ok(Some(_)) => {
                taken(acts, client, &event.webhook_id).await;
                out.delivered += 1;
            }
            // No endpoint any more: nothing to send to.
            Ok(None) => return Ok(out),
            Err(f) => info!(webhook_id = %event.webhook_id, error = %f, "not taken again"),
        }
        out.sent += 1;
        let beat = RecoveryHeartbeat {
            sent: out.sent,
            delivered: out.delivered,
        };
        ctx.record_heartbeat(beat)
            .await
            .map_err(|e| Failure::Transient(format!("recording a heartbeat: {e}")))?;
    }
    info!(%client, sent = out.sent, delivered = out.delivered, "webhook recovery done");
    Ok(out)
}

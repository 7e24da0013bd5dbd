//! `WebhookRecovery` (v1.2): a client asked for every event since a time
//! that its webhook endpoint did not take with a 2xx to be sent again
//! (`POST /v1/webhooks/recover`). One execution per request, on the batch
//! queue: its one `redeliver` step walks the client's event feed and
//! posts each such event again (same `webhook-id`, a new attempt), marking
//! the ones the endpoint now takes. Durable: a worker lost mid-way hands
//! the step to another, which starts again from `since` (events already
//! taken are not sent twice: they are marked).

use crate::activities::DisseminationActivities as Acts;
use crate::contract::*;
use crate::options::{ms, retry};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

#[workflow]
pub struct WebhookRecovery {
    input: RecoveryInput,
}

#[workflow_methods]
impl WebhookRecovery {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: RecoveryInput) -> Self {
        Self { input }
    }

    #[run(name = "WebhookRecovery")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<RecoveryOutcome> {
        let input = ctx.state(|s| s.input.clone());
        let s = &input.settings;
        // Each event gets one POST within the endpoint's timeout; the step
        // heartbeats between them.
        let opts = ActivityOptions::with_start_to_close_timeout(ms(s.transfer_timeout_ms))
            .heartbeat_timeout(ms(s.heartbeat_timeout_ms))
            .retry_policy(retry(s, &[FailureType::Misconfigured]))
            .summary(format!(
                "send again the events of {} since {}",
                input.client_id, input.since
            ))
            .build();
        let outcome = ctx
            .execute_activity(Acts::redeliver, input.clone(), opts)
            .await
            .unwrap_or_default();
        Ok(outcome)
    }
}

//! Telling the client: the `dissemination.delivered` / `.failed` webhook,
//! with retries scheduled by the workflow itself (versioned: executions
//! started before retried the activity instead).

use crate::activities::DisseminationActivities as Acts;
use crate::audit::{now, record, Event};
use crate::contract::*;
use crate::options::{ms, short_options, webhook_options};
use crate::outcome::{failure_message, failure_type};
use crate::state::DisseminationState;
use model::time::Timestamp;
use model::DisseminationStatus;
use std::time::Duration;
use temporalio_common::{error::IncomingError, RetryPolicy};
use temporalio_sdk::{ActivityExecutionError, MemoValue, WorkflowContext};

/// Executions started before the workflow scheduled webhook retries itself.
const WEBHOOK_PATCH: &str = "workflow-scheduled-webhook-retries";

/// The webhook telling the client how its dissemination ended: its type
/// and `webhook-id` follow from the final status.
pub(crate) fn message<W: DisseminationState>(
    ctx: &WorkflowContext<W>,
    input: &DisseminationInput,
) -> NotifyInput {
    let view = ctx.state(|s| s.view().clone());
    let (event_type, suffix) = if view.status == DisseminationStatus::Disseminated {
        (WebhookEvent::Delivered, "delivered")
    } else {
        (WebhookEvent::Failed, "failed")
    };
    NotifyInput {
        event_type,
        message_id: format!("msg_{}_{suffix}", input.record.dissemination_id),
        occurred_at: now(ctx),
        view,
        attempt: 0,
    }
}

/// Executions before flow 10: the webhook after the lock's release.
pub(crate) async fn notify<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
) {
    let message = message(ctx, input);
    let event_type = message.event_type;
    if ctx.patched(WEBHOOK_PATCH) {
        deliver_webhook(ctx, input, message, None).await;
        return;
    }
    // Executions started before workflow-scheduled retries: Temporal's retry policy.
    let s = &input.settings;
    let _ = ctx
        .execute_activity(
            Acts::notify,
            message,
            webhook_options(s, format!("webhook {event_type}")),
        )
        .await;
}

/// Standard Webhooks delivery: one attempt per activity, retried by the
/// workflow with exponential backoff and jitter (waits drawn from
/// [½, 1] × the backoff, deterministic via the workflow's random stream),
/// at least `Retry-After` when the endpoint gave one, until
/// `webhook_give_up_after_ms` of waiting; 410 stops at once. Every attempt is
/// recorded in the view, so clients and operators see how delivery goes.
/// `first`: the first attempt, already made (by `finish`, flow 10 on).
pub(crate) async fn deliver_webhook<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
    mut message: NotifyInput,
    mut first: Option<WebhookAttempt>,
) {
    let s = &input.settings;
    let mut delivery = WebhookDelivery {
        message_id: message.message_id.clone(),
        event_type: message.event_type,
        state: WebhookState::Pending,
        ..Default::default()
    };
    let mut backoff = ms(s.webhook_retry_initial_ms);
    let mut waited = Duration::ZERO;
    loop {
        delivery.attempts += 1;
        message.attempt = delivery.attempts;
        let attempt = match first.take() {
            Some(made) => made,
            None => {
                let mut opts = short_options(s, &[]);
                opts.retry_policy = Some(RetryPolicy::builder().maximum_attempts(1).build());
                opts.summary = Some(format!(
                    "webhook {} (attempt {})",
                    message.event_type, delivery.attempts
                ));
                let result = ctx
                    .execute_activity(Acts::notify, message.clone(), opts)
                    .await;
                attempt_of(result)
            }
        };
        delivery.last_attempt_at = Some(now(ctx));
        delivery.next_attempt_at = None;
        delivery.last_error = attempt.error;
        if attempt.state != WebhookState::Pending {
            delivery.state = attempt.state;
            break;
        }
        let jittered = backoff.mul_f64(0.5 + 0.5 * ctx.random::<f64>());
        let wait = attempt
            .retry_after_ms
            .map_or(jittered, |r| ms(r).max(jittered));
        backoff = (backoff * 2).min(ms(s.webhook_retry_max_interval_ms));
        if waited + wait > ms(s.webhook_give_up_after_ms) {
            delivery.state = WebhookState::GaveUp;
            break;
        }
        delivery.next_attempt_at = ctx.workflow_time().map(|t| Timestamp::utc(t + wait));
        record_webhook(ctx, &delivery);
        let _ = ctx.timer(wait).await;
        waited += wait;
    }
    record_webhook(ctx, &delivery);
    let outcome = Outcome::of(delivery.state == WebhookState::Delivered);
    let detail = format!(
        "{} {} after {} attempt(s){}",
        delivery.event_type,
        delivery.state,
        delivery.attempts,
        delivery
            .last_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    record(ctx, Event::new(EventType::Webhook, outcome, detail));
}

pub(crate) fn record_webhook<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    delivery: &WebhookDelivery,
) {
    let view = ctx.state_mut(|s| {
        s.view_mut().webhook = Some(delivery.clone());
        s.view_mut().clone()
    });
    let _ = ctx.upsert_memo([(MEMO_VIEW, Some(MemoValue::new(view)))]);
}

/// One `notify` attempt as the schedule reads it: delivered (or no
/// endpoint) ends it, 410 Gone ends it, anything else is tried again (at
/// least after the endpoint's `Retry-After`).
fn attempt_of(result: Result<NotifyOutcome, ActivityExecutionError>) -> WebhookAttempt {
    match result {
        Ok(outcome) => WebhookAttempt {
            state: outcome.outcome,
            status_code: outcome.status_code,
            error: None,
            retry_after_ms: None,
        },
        Err(e) => {
            let state = match failure_type(&e) {
                Some(FailureType::WebhookGone) => WebhookState::Gone,
                Some(FailureType::Misconfigured) => WebhookState::NotConfigured,
                _ => WebhookState::Pending,
            };
            // The endpoint's `Retry-After`, carried as the next retry delay.
            let retry_after = match e.cause() {
                Some(IncomingError::Application(a)) => a.next_retry_delay(),
                _ => None,
            };
            WebhookAttempt {
                state,
                status_code: None,
                error: Some(failure_message(&e)),
                retry_after_ms: retry_after.map(|d| d.as_millis() as u64),
            }
        }
    }
}

//! Every timeout and retry policy of the dissemination's activities, from
//! the settings fixed in its input (so they replay the same whatever the
//! workers' configuration says now).

use crate::contract::*;
use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{
    ActivityCancellationType, ActivityOptions, SignalWorkflowOptions, WorkflowCancellationToken,
};

pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Infrastructure errors are retried for `retry_for_ms` (attempts
/// unlimited: the duration decides); executions started before that
/// counted `retry_max_attempts`.
pub(crate) fn retry(s: &WorkflowSettings, non_retryable: &[FailureType]) -> RetryPolicy {
    let attempts = if s.retry_for_ms.is_some() {
        0
    } else {
        s.retry_max_attempts
    };
    RetryPolicy::builder()
        .initial_interval(ms(s.retry_initial_ms))
        .backoff_coefficient(2.0)
        .maximum_interval(ms(s.retry_max_interval_ms))
        .maximum_attempts(attempts)
        .non_retryable_error_types(non_retryable.iter().map(|t| t.as_str()))
        .build()
}

/// Long byte-moving steps: heartbeated, retried on I/O errors.
pub(crate) fn transfer_options(s: &WorkflowSettings) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(ms(s.transfer_timeout_ms))
        .heartbeat_timeout(ms(s.heartbeat_timeout_ms))
        // On cancel, wait until the activity has stopped writing before cleaning up.
        .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
        .retry_policy(retry(
            s,
            &[FailureType::LocationUnreadable, FailureType::Misconfigured],
        ))
        .build()
}

/// A short step on the steps queue, where the execution's settings name
/// one (slots of its own: never behind its band's long transfers);
/// executions started without it keep it on their own queue.
fn on_steps_queue(mut opts: ActivityOptions, s: &WorkflowSettings) -> ActivityOptions {
    if let Some(queue) = &s.steps_queue {
        opts.task_queue = Some(queue.clone());
    }
    opts
}

/// A webhook retried by Temporal's policy: backoff from
/// `webhook_retry_initial_ms`, until `webhook_give_up_after_ms`; 410 Gone
/// and a missing configuration stop at once.
pub(crate) fn webhook_options(s: &WorkflowSettings, summary: String) -> ActivityOptions {
    let opts = ActivityOptions::with_close_timeouts(
        temporalio_common::ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: ms(s.webhook_give_up_after_ms),
            start_to_close: ms(s.short_activity_timeout_ms),
        },
    )
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(ms(s.webhook_retry_initial_ms))
            .backoff_coefficient(2.0)
            .maximum_interval(ms(s.webhook_retry_max_interval_ms))
            .non_retryable_error_types(
                [FailureType::WebhookGone, FailureType::Misconfigured].map(FailureType::as_str),
            )
            .build(),
    )
    .summary(summary)
    .build();
    on_steps_queue(opts, s)
}

/// Short steps: each attempt bounded; all of them within `retry_for_ms`;
/// on the steps queue.
pub(crate) fn short_options(
    s: &WorkflowSettings,
    non_retryable: &[FailureType],
) -> ActivityOptions {
    let mut opts = ActivityOptions::with_start_to_close_timeout(ms(s.short_activity_timeout_ms))
        .retry_policy(retry(s, non_retryable))
        .build();
    if let Some(total) = s.retry_for_ms {
        opts.close_timeouts = temporalio_common::ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: ms(total.max(s.short_activity_timeout_ms)),
            start_to_close: ms(s.short_activity_timeout_ms),
        };
    }
    on_steps_queue(opts, s)
}

/// The line operators read in the Web UI's event list.
pub(crate) fn summarised(mut opts: ActivityOptions, summary: String) -> ActivityOptions {
    opts.summary = Some(summary);
    opts
}

/// Clean-up steps run even when the workflow is being cancelled.
pub(crate) fn detached(mut opts: ActivityOptions) -> ActivityOptions {
    opts.cancellation_token = Some(WorkflowCancellationToken::new());
    opts
}

pub(crate) fn detached_signal() -> SignalWorkflowOptions {
    let mut opts = SignalWorkflowOptions::default();
    opts.cancellation_token = Some(WorkflowCancellationToken::new());
    opts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Settings as an execution's recorded input holds them, with `extra`.
    fn recorded(extra: serde_json::Value) -> WorkflowSettings {
        let mut input = json!({
            "heartbeatTimeoutMs": 30000, "transferTimeoutMs": 60000,
            "shortActivityTimeoutMs": 1000, "retryInitialMs": 100,
            "retryMaxIntervalMs": 1000, "retryMaxAttempts": 3,
            "webhookRetryInitialMs": 100, "webhookRetryMaxIntervalMs": 1000,
            "webhookGiveUpAfterMs": 10000, "linkLifetimeSecs": 60,
        });
        if let (Some(all), Some(more)) = (input.as_object_mut(), extra.as_object()) {
            all.extend(more.clone());
        }
        serde_json::from_value(input).expect("settings as recorded")
    }

    #[test]
    fn the_short_steps_go_to_the_steps_queue_the_input_names() {
        let s = recorded(json!({"stepsQueue": "d-steps"}));
        let queue = |o: ActivityOptions| o.task_queue;
        assert_eq!(queue(short_options(&s, &[])).as_deref(), Some("d-steps"));
        assert_eq!(
            queue(webhook_options(&s, "webhook".into())).as_deref(),
            Some("d-steps")
        );
        // Transfers stay on the execution's own queue and its band's slots.
        assert_eq!(queue(transfer_options(&s)), None);
    }

    #[test]
    fn an_execution_started_without_a_steps_queue_keeps_its_steps_on_its_own_queue() {
        let s = recorded(json!({}));
        assert_eq!(short_options(&s, &[]).task_queue, None);
        assert_eq!(webhook_options(&s, "webhook".into()).task_queue, None);
    }
}

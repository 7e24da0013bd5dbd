//! Telling others: the signed Standard Webhooks POST to the client's
//! endpoint (one attempt per activity; the workflow schedules retries), and
//! the best-effort signals a transfer sends its workflow when its step
//! changes.

use crate::{
    failure::Failure,
    observe::{begin, record_attributes, trace_headers},
    webhook, Activities,
};
use opentelemetry::{trace::TraceContextExt, Context, KeyValue};
use secrecy::ExposeSecret;
use std::time::Duration;
use temporalio_client::WorkflowSignalOptions;
use temporalio_sdk::activities::ActivityContext;
use tracing::{info, warn};
use workflows::{DisseminationWorkflow, NotifyInput, NotifyOutcome, WebhookEvent, WebhookState};

/// Signals the workflow this activity belongs to; a failure is only logged
/// (the signals are informative, the work goes on).
pub(crate) async fn signal_workflow<S>(
    ctx: &ActivityContext,
    signal: S,
    input: S::Input,
    what: &str,
) where
    S: temporalio_common::SignalDefinition<
        Workflow = <DisseminationWorkflow as temporalio_common::HasWorkflowDefinition>::Run,
    >,
    S::Input: Send,
{
    if let Some(handle) = ctx.workflow_handle::<DisseminationWorkflow>() {
        if let Err(e) = handle
            .signal(signal, input, WorkflowSignalOptions::default())
            .await
        {
            warn!(error = %e, "could not {what}");
        }
    }
}

pub(crate) async fn notify(
    acts: &Activities,
    ctx: &ActivityContext,
    input: NotifyInput,
) -> Result<NotifyOutcome, Failure> {
    // The workflow schedules retries itself (one attempt per activity);
    // older executions retried the activity.
    let attempt = input.attempt.max(ctx.info().attempt);
    acts.metrics.queue_wait(ctx);
    begin(
        ctx,
        record_attributes(&input.view.record).into_iter().chain([
            KeyValue::new("webhookType", input.event_type.as_str()),
            KeyValue::new("webhookAttempt", i64::from(attempt)),
        ]),
    );
    let client = acts.cfg.client(input.view.record.client_id.as_str());
    let (Some(url), Some(secret)) = (
        client.and_then(|c| c.webhook_url.clone()),
        client.and_then(|c| c.webhook_secret.as_ref()),
    ) else {
        info!(client_id = %input.view.record.client_id, "no webhook configured for the client");
        acts.metrics.webhook("not_configured");
        return Ok(NotifyOutcome {
            outcome: WebhookState::NotConfigured,
            status_code: None,
            attempt,
        });
    };
    let keys = webhook::parse_secrets(secret.expose_secret())
        .map_err(|e| Failure::Misconfigured(e.to_string()))?;
    // Links are signed here, on the way out: they never enter Temporal.
    let input = NotifyInput {
        view: input.view.clone().with_links(&acts.cfg),
        ..input
    };
    let body = serde_json::to_vec(&envelope(&input))
        .map_err(|e| Failure::Transient(format!("encoding the webhook: {e}")))?;
    let timestamp = chrono::Utc::now().timestamp();
    let signature = webhook::sign(&keys, &input.message_id, timestamp, &body);
    let mut request = acts.http.post(&url);
    for (name, value) in trace_headers() {
        request = request.header(name, value);
    }
    let response = request
        .header("content-type", "application/json")
        .header("webhook-id", &input.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            acts.metrics.webhook("error");
            Failure::Transient(format!("webhook POST failed: {}", without_url(&e)))
        })?;
    let status = response.status();
    Context::current().span().set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_success() {
        acts.metrics.webhook("delivered");
        info!(message_id = %input.message_id, status = status.as_u16(), attempt, "webhook delivered");
        return Ok(NotifyOutcome {
            outcome: WebhookState::Delivered,
            status_code: Some(status.as_u16()),
            attempt,
        });
    }
    if status.as_u16() == 410 {
        acts.metrics.webhook("gone");
        return Err(Failure::WebhookGone);
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|_| matches!(status.as_u16(), 429 | 503));
    let message = format!("the endpoint answered {status}");
    acts.metrics.webhook("rejected");
    warn!(message_id = %input.message_id, status = status.as_u16(), attempt, "webhook not accepted");
    Err(match retry_after {
        Some(secs) => Failure::RetryAfter {
            message,
            after: Duration::from_secs(secs),
        },
        None => Failure::Transient(message),
    })
}

/// A reqwest error without the URL (it may carry credentials or tokens).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        let mut e = e.to_string();
        if let Some(i) = e.find(" for url") {
            e.truncate(i);
        }
        e
    }
}

/// The Standard Webhooks envelope: `{type, timestamp, data}`.
fn envelope(input: &NotifyInput) -> serde_json::Value {
    let v = &input.view;
    let r = &v.record;
    let mut data = serde_json::json!({
        "archiveId": r.archive_id,
        "disseminationId": r.dissemination_id,
        "objectId": r.object_id,
        "clientId": r.client_id,
        "contractId": r.contract_id,
        "sumSizeInBytes": r.sum_size_in_bytes,
    });
    if input.event_type == WebhookEvent::Delivered {
        data["files"] = serde_json::json!(v.files);
    } else {
        data["status"] = serde_json::json!(v.status);
        data["reasons"] = serde_json::json!(v.reasons);
    }
    serde_json::json!({ "type": input.event_type, "timestamp": input.occurred_at, "data": data })
}

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
use workflows::{
    BatchNotifyInput, DisseminationWorkflow, NotifyInput, NotifyOutcome, WebhookEvent, WebhookState,
};

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
    // Links are signed here, on the way out: they never enter Temporal.
    let input = NotifyInput {
        view: input
            .view
            .clone()
            .with_links(acts.cfg.link_signer(input.view.record.client_id.as_str())),
        ..input
    };
    let body = serde_json::to_vec(&envelope(&input))
        .map_err(|e| Failure::Transient(format!("encoding the webhook: {e}")))?;
    let event = Published {
        client_id: input.view.record.client_id.as_str(),
        webhook_id: &input.message_id,
        event_type: input.event_type.as_str(),
        occurred_at: input.occurred_at.as_str(),
    };
    let status_code = publish(acts, event, body, attempt).await?;
    Ok(NotifyOutcome {
        outcome: if status_code.is_some() {
            WebhookState::Delivered
        } else {
            WebhookState::NotConfigured
        },
        status_code,
        attempt,
    })
}

/// The `dissemination-batch.completed` webhook (retried by Temporal's policy).
pub(crate) async fn notify_batch(
    acts: &Activities,
    ctx: &ActivityContext,
    input: BatchNotifyInput,
) -> Result<(), Failure> {
    acts.metrics.queue_wait(ctx);
    let record = &input.view.record;
    begin(
        ctx,
        [
            KeyValue::new("batchId", record.batch_id.to_string()),
            KeyValue::new("clientId", record.client_id.to_string()),
            KeyValue::new("webhookType", "dissemination-batch.completed"),
        ],
    );
    let body = serde_json::to_vec(&serde_json::json!({
        "type": "dissemination-batch.completed",
        "timestamp": input.occurred_at,
        "data": {
            "batchId": record.batch_id,
            "clientId": record.client_id,
            "dateCreated": record.date_created,
            "status": input.view.status,
            "counts": input.view.counts,
        },
    }))
    .map_err(|e| Failure::Transient(format!("encoding the webhook: {e}")))?;
    let attempt = ctx.info().attempt;
    let event = Published {
        client_id: record.client_id.as_str(),
        webhook_id: &input.message_id,
        event_type: "dissemination-batch.completed",
        occurred_at: input.occurred_at.as_str(),
    };
    publish(acts, event, body, attempt).await?;
    Ok(())
}

/// A webhook message as the client's event feed keeps it.
pub(crate) struct Published<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) webhook_id: &'a str,
    pub(crate) event_type: &'a str,
    pub(crate) occurred_at: &'a str,
}

/// The message into the client's event feed first (once per webhook id,
/// however often this is retried; also for a client with no endpoint),
/// then to the endpoint; a 2xx marks it taken (`POST /v1/webhooks/recover`
/// sends again only what was not).
async fn publish(
    acts: &Activities,
    event: Published<'_>,
    body: Vec<u8>,
    attempt: u32,
) -> Result<Option<u16>, Failure> {
    let payload = std::str::from_utf8(&body)
        .map_err(|e| Failure::Transient(format!("encoding the webhook: {e}")))?;
    let appended = acts
        .feed
        .append(&feed::NewEvent {
            client_id: event.client_id,
            webhook_id: event.webhook_id,
            event_type: event.event_type,
            occurred_at: event.occurred_at,
            payload,
        })
        .await;
    match appended {
        Ok(seq) => tracing::debug!(webhook_id = event.webhook_id, seq, "event in the feed"),
        // A message the feed cannot take (a fault of ours): logged, and
        // still sent.
        Err(e @ feed::FeedError::Invalid(_)) => {
            tracing::error!(webhook_id = event.webhook_id, error = %e, "event not in the feed")
        }
        // S3 away: the attempt is retried, so the feed never misses one.
        Err(e) => {
            return Err(Failure::Transient(format!(
                "recording the event in the feed: {e}"
            )))
        }
    }
    let status = post_signed(acts, event.client_id, event.webhook_id, body, attempt).await?;
    if status.is_some() {
        taken(acts, event.client_id, event.webhook_id).await;
    }
    Ok(status)
}

/// Marks a message the endpoint took (a failure only means it may be sent
/// again by a recovery).
pub(crate) async fn taken(acts: &Activities, client_id: &str, webhook_id: &str) {
    if let Err(e) = acts.feed.acknowledge_delivery(client_id, webhook_id).await {
        warn!(%webhook_id, error = %e, "could not mark the webhook as taken");
    }
}

/// Posts a Standard Webhooks message to the client's endpoint, signed with
/// its secret(s): `Ok(Some(status))` when accepted, `Ok(None)` when the
/// client has no webhook configured.
pub(crate) async fn post_signed(
    acts: &Activities,
    client_id: &str,
    message_id: &str,
    body: Vec<u8>,
    attempt: u32,
) -> Result<Option<u16>, Failure> {
    let client = acts.cfg.client(client_id);
    let (Some(url), Some(secret)) = (
        client.and_then(|c| c.webhook_url.clone()),
        client.and_then(|c| c.webhook_secret.as_ref()),
    ) else {
        info!(%client_id, "no webhook configured for the client");
        acts.metrics.webhook("not_configured");
        return Ok(None);
    };
    let keys = webhook::parse_secrets(secret.expose_secret())
        .map_err(|e| Failure::Misconfigured(e.to_string()))?;
    let timestamp = chrono::Utc::now().timestamp();
    let signature = webhook::sign(&keys, message_id, timestamp, &body);
    let mut request = acts.http.post(&url);
    for (name, value) in trace_headers() {
        request = request.header(name, value);
    }
    let response = request
        .header("content-type", "application/json")
        .header("webhook-id", message_id)
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
        info!(%message_id, status = status.as_u16(), attempt, "webhook delivered");
        return Ok(Some(status.as_u16()));
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
    warn!(%message_id, status = status.as_u16(), attempt, "webhook not accepted");
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

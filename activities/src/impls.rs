//! The activities registered by the worker.

use crate::{
    final_failure,
    observe::{begin, trace_headers, WorkerMetrics},
    repository::{OpenError, Repository},
    s3::{MultipartState, S3},
    staging, webhook,
};
use model::{
    catalog::{FileLocation, Fixity, RepositoryFile},
    config::Config,
};
use opentelemetry::{trace::TraceContextExt, Context, KeyValue};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use temporalio_client::WorkflowSignalOptions;
use temporalio_common::{error::ApplicationFailure, ActivityError};
use temporalio_macros::activities;
use temporalio_sdk::activities::ActivityContext;
use tracing::{info, warn};
use workflows::{
    activities::defs, failure_types, CleanupInput, DeliveredFile, DiscardInput,
    DisseminationWorkflow, DownloadInput, FixityOutcome, NotifyInput, NotifyOutcome, PresignInput,
    StagedFile, TransferInput, TransferOutcome, UploadInput,
};

pub(crate) const READ_CHUNK: usize = 1 << 20;
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Activities {
    pub(crate) cfg: Arc<Config>,
    pub(crate) repo: Repository,
    pub(crate) s3: S3,
    http: reqwest::Client,
    host_queue: String,
    /// Set when the worker shuts down: a cancel then means "stop, another
    /// worker resumes", not "the dissemination was cancelled".
    pub(crate) shutting_down: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) metrics: WorkerMetrics,
}

/// Heartbeat details of `upload`: the multipart upload to resume.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadProgress {
    pub file: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub multipart: Option<MultipartState>,
}

impl Activities {
    pub fn new(cfg: Arc<Config>, host_queue: String) -> anyhow::Result<Self> {
        let s3 = S3::new(&cfg.s3);
        let repo = Repository::new(
            cfg.repository.disk_root.clone(),
            s3.clone(),
            cfg.repository.s3_bucket.clone(),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(
                cfg.timings.webhook_request_timeout_ms,
            ))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            cfg,
            repo,
            s3,
            http,
            host_queue,
            shutting_down: Arc::default(),
            metrics: WorkerMetrics::default(),
        })
    }

    /// Records the worker's metrics with `metrics` (default: nowhere).
    pub fn with_metrics(mut self, metrics: WorkerMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn host_queue(&self) -> &str {
        &self.host_queue
    }

    /// Tells the activities the worker is shutting down (keep staged bytes).
    pub fn shutting_down(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The file's location number `index` (the workflow's choice).
pub(crate) fn location_of(
    file: &RepositoryFile,
    index: usize,
) -> Result<&FileLocation, ActivityError> {
    file.locations.get(index).ok_or_else(|| {
        final_failure(
            failure_types::MISCONFIGURED,
            format!("{} has no location {index}", file.relative_path),
        )
    })
}

/// The digest fixity is checked against: the strongest one stored.
pub(crate) fn stored_digest(file: &RepositoryFile) -> Result<&Fixity, ActivityError> {
    file.strongest_fixity().ok_or_else(|| {
        final_failure(
            failure_types::MISCONFIGURED,
            format!("{} has no stored digest", file.relative_path),
        )
    })
}

pub(crate) fn open_failure(e: OpenError) -> ActivityError {
    match e {
        OpenError::Unreadable(m) => final_failure(failure_types::LOCATION_UNREADABLE, m),
        OpenError::Misconfigured(m) => final_failure(failure_types::MISCONFIGURED, m),
        OpenError::Transient(m) => anyhow::anyhow!(m).into(),
    }
}

pub(crate) fn io(what: String) -> impl FnOnce(std::io::Error) -> ActivityError {
    move |e| anyhow::anyhow!("{what}: {e}").into()
}

#[activities]
impl Activities {
    #[activity(definition = defs::Download)]
    pub async fn download(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DownloadInput,
    ) -> Result<StagedFile, ActivityError> {
        crate::staged::download(&self, &ctx, input).await
    }

    #[activity(definition = defs::VerifyFixity)]
    pub async fn verify_fixity(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: StagedFile,
    ) -> Result<FixityOutcome, ActivityError> {
        crate::staged::verify_fixity(&self, &ctx, input).await
    }

    #[activity(definition = defs::Upload)]
    pub async fn upload(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: UploadInput,
    ) -> Result<DeliveredFile, ActivityError> {
        crate::staged::upload(&self, &ctx, input).await
    }

    #[activity(definition = defs::Transfer)]
    pub async fn transfer(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TransferInput,
    ) -> Result<TransferOutcome, ActivityError> {
        crate::transfer::transfer(&self, &ctx, input).await
    }

    #[activity(definition = defs::CleanupStaging)]
    pub async fn cleanup_staging(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CleanupInput,
    ) -> Result<(), ActivityError> {
        let dir = staging::dissemination_dir(&self.cfg.worker.staging_dir, &input.dissemination_id);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(anyhow::anyhow!("removing {}: {e}", dir.display()).into()),
        }
    }

    #[activity(definition = defs::DiscardDelivery)]
    pub async fn discard_delivery(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: DiscardInput,
    ) -> Result<u32, ActivityError> {
        let bucket = self.cfg.client_bucket(&input.record.client_id.0);
        let prefix = format!("dissemination/{}/", input.record.dissemination_id);
        Ok(self.s3.delete_prefix(&bucket, &prefix).await?)
    }

    #[activity(definition = defs::PresignLinks)]
    pub async fn presign_links(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PresignInput,
    ) -> Result<Vec<DeliveredFile>, ActivityError> {
        let record = &input.record;
        let bucket = self.cfg.client_bucket(&record.client_id.0);
        let lifetime = Duration::from_secs(input.link_lifetime_secs);
        let mut out = Vec::new();
        for file in &input.files {
            let key = object_key(record, &file.filename);
            if self.s3.object_size(&bucket, &key).await? != Some(file.filesize) {
                return Err(final_failure(
                    failure_types::OBJECTS_GONE,
                    format!("{} is no longer in the bucket", file.filename),
                ));
            }
            let expires =
                chrono::Local::now() + chrono::Duration::seconds(input.link_lifetime_secs as i64);
            out.push(DeliveredFile {
                download_url: self.s3.presign_get(&bucket, &key, lifetime).await?,
                expiration_date: model::time::rfc3339(&expires),
                ..file.clone()
            });
        }
        info!(dissemination_id = %record.dissemination_id, files = out.len(), "links regenerated");
        Ok(out)
    }

    #[activity(definition = defs::Notify)]
    pub async fn notify(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: NotifyInput,
    ) -> Result<NotifyOutcome, ActivityError> {
        // The workflow schedules retries itself (one attempt per activity);
        // older executions retried the activity.
        let attempt = input.attempt.max(ctx.info().attempt);
        self.metrics.queue_wait(&ctx);
        begin(
            &ctx,
            record_attributes(&input.view.record).into_iter().chain([
                KeyValue::new("webhookType", input.event_type.clone()),
                KeyValue::new("webhookAttempt", i64::from(attempt)),
            ]),
        );
        let client = self.cfg.client(&input.view.record.client_id.0);
        let (Some(url), Some(secret)) = (
            client.and_then(|c| c.webhook_url.clone()),
            client.and_then(|c| c.webhook_secret.as_ref()),
        ) else {
            info!(client_id = %input.view.record.client_id, "no webhook configured for the client");
            self.metrics.webhook("not_configured");
            return Ok(NotifyOutcome {
                outcome: "not_configured".into(),
                status_code: None,
                attempt,
            });
        };
        let keys = webhook::parse_secrets(secret.expose_secret())
            .map_err(|e| final_failure(failure_types::MISCONFIGURED, e.to_string()))?;
        let body = serde_json::to_vec(&envelope(&input)).map_err(anyhow::Error::from)?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = webhook::sign(&keys, &input.message_id, timestamp, &body);
        let mut request = self.http.post(&url);
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
                self.metrics.webhook("error");
                anyhow::anyhow!("webhook POST failed: {}", without_url(&e))
            })?;
        let status = response.status();
        Context::current().span().set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        ));
        if status.is_success() {
            self.metrics.webhook("delivered");
            info!(message_id = %input.message_id, status = status.as_u16(), attempt, "webhook delivered");
            return Ok(NotifyOutcome {
                outcome: "delivered".into(),
                status_code: Some(status.as_u16()),
                attempt,
            });
        }
        if status.as_u16() == 410 {
            self.metrics.webhook("gone");
            return Err(final_failure(
                failure_types::WEBHOOK_GONE,
                "the endpoint answered 410 Gone",
            ));
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|_| matches!(status.as_u16(), 429 | 503));
        let message = format!("the endpoint answered {status}");
        self.metrics.webhook("rejected");
        warn!(message_id = %input.message_id, status = status.as_u16(), attempt, "webhook not accepted");
        Err(match retry_after {
            Some(secs) => ActivityError::application(
                ApplicationFailure::builder(message)
                    .next_retry_delay(Duration::from_secs(secs))
                    .build(),
            ),
            None => anyhow::anyhow!(message).into(),
        })
    }
}

/// A progress report with an estimate of the time left: the rate since
/// `since` (when `base` bytes were done) applied to what remains.
pub(crate) fn progress(
    phase: &str,
    file: &str,
    (done, total): (u64, u64),
    (base, since): (u64, Instant),
) -> workflows::Progress {
    let elapsed = since.elapsed().as_secs_f64();
    let rate = done.saturating_sub(base) as f64 / elapsed.max(1e-3);
    let seconds_left = (rate > 0.0 && elapsed >= 0.5)
        .then(|| (total.saturating_sub(done) as f64 / rate).ceil() as u64);
    workflows::Progress {
        phase: phase.into(),
        file: file.into(),
        bytes_done: done,
        bytes_total: total,
        seconds_left,
    }
}

/// Tells the workflow how far a transfer got (best effort).
pub(crate) async fn report_progress(ctx: &ActivityContext, progress: workflows::Progress) {
    signal_workflow(
        ctx,
        DisseminationWorkflow::progress,
        progress,
        "report progress",
    )
    .await;
}

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

/// The dissemination's identity as span attributes.
pub(crate) fn record_attributes(record: &workflows::DisseminationRecord) -> Vec<KeyValue> {
    vec![
        KeyValue::new("disseminationId", record.dissemination_id.to_string()),
        KeyValue::new("archiveId", record.archive_id.to_string()),
        KeyValue::new("clientId", record.client_id.0.clone()),
        KeyValue::new("contractId", record.contract_id.to_string()),
    ]
}

/// Where a delivered file lives in the client's bucket.
pub(crate) fn object_key(record: &workflows::DisseminationRecord, filename: &str) -> String {
    format!(
        "dissemination/{}/{}/{filename}",
        record.dissemination_id, record.archive_id
    )
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
    if input.event_type == "dissemination.delivered" {
        data["files"] = serde_json::json!(v.files);
    } else {
        data["status"] = serde_json::json!(v.status);
        data["reasons"] = serde_json::json!(v.reasons);
    }
    serde_json::json!({ "type": input.event_type, "timestamp": input.occurred_at, "data": data })
}

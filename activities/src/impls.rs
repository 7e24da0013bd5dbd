//! The activities registered by the worker.

use crate::{
    digest::MultiHasher,
    final_failure,
    observe::{annotate, begin, mark_error, trace_headers, WorkerMetrics},
    repository::{OpenError, Repository},
    s3::{MultipartState, S3},
    staging, webhook,
};
use model::{
    catalog::{DigestAlgorithm, FileLocation, Fixity, RepositoryFile},
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
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tracing::{info, warn};
use workflows::{
    activities::defs, failure_types, CleanupInput, DeliveredFile, DiscardInput,
    DisseminationWorkflow, DownloadInput, DownloadProgress, FixityOutcome, NotifyInput,
    NotifyOutcome, PresignInput, StagedFile, TransferInput, TransferOutcome, UploadInput,
};

const READ_CHUNK: usize = 1 << 20;
const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

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

fn io(what: String) -> impl FnOnce(std::io::Error) -> ActivityError {
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
        self.metrics.queue_wait(&ctx);
        begin(
            &ctx,
            [
                KeyValue::new("disseminationId", input.dissemination_id.to_string()),
                KeyValue::new("file", input.file.relative_path.clone()),
                KeyValue::new("bytes", input.file.size as i64),
            ],
        );
        if input.announce_start {
            signal_workflow(
                &ctx,
                DisseminationWorkflow::download_started,
                (),
                "announce the download start",
            )
            .await;
        }
        let file = &input.file;
        let location = location_of(file, input.location_index)?;
        let path =
            staging::staged_path(&self.cfg.worker.staging_dir, &input.dissemination_id, file);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io(format!("creating {}", parent.display())))?;
        }

        // Resume from the last heartbeat when this host still holds those bytes.
        let previous: Option<DownloadProgress> =
            ctx.heartbeat_details().deserialize().ok().flatten();
        let staged_len = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let offset = previous
            .filter(|p| p.location_id == location.location_id && p.bytes_done <= staged_len)
            .map_or(0, |p| p.bytes_done);

        let algorithms = MultiHasher::algorithms_for(file);
        let mut hasher = MultiHasher::new(&algorithms);
        let mut out = tokio::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .await
            .map_err(io(format!("opening {}", path.display())))?;
        out.set_len(offset)
            .await
            .map_err(io("truncating staged copy".into()))?;
        let mut buf = vec![0u8; READ_CHUNK];
        // Rebuild the hash state from the bytes already staged.
        let mut reread = 0u64;
        while reread < offset {
            let want = READ_CHUNK.min((offset - reread) as usize);
            let n = out
                .read(&mut buf[..want])
                .await
                .map_err(io("re-reading staged copy".into()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            reread += n as u64;
        }
        out.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io("seeking staged copy".into()))?;
        info!(
            dissemination_id = %input.dissemination_id, file = %file.relative_path,
            location = %location.location_id, resume_from = offset, attempt = ctx.info().attempt,
            "download started"
        );
        annotate([
            KeyValue::new("location", location.location_id.clone()),
            KeyValue::new("resumeFrom", offset as i64),
            KeyValue::new(
                "digestAlgorithms",
                algorithms
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]);

        let mut reader = self
            .repo
            .open(location, offset)
            .await
            .map_err(open_failure)?;
        let mut done = offset;
        let mut counted = offset;
        let mut progress = DownloadProgress {
            file: file.relative_path.clone(),
            location_id: location.location_id.clone(),
            bytes_done: done,
            bytes_total: file.size,
        };
        let mut last_beat = Instant::now();
        let started = Instant::now();
        let report_every = Duration::from_millis(self.cfg.worker.progress_every_ms);
        let mut last_report = Instant::now();
        loop {
            let n = reader.read(&mut buf).await.map_err(|e| {
                ActivityError::from(anyhow::anyhow!(
                    "reading {} from {}: {e}",
                    file.relative_path,
                    location.location_id
                ))
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .await
                .map_err(io("writing staged copy".into()))?;
            done += n as u64;
            if let Some(limit) = self.cfg.repository.max_read_bytes_per_sec {
                // Stay under the configured read rate for this download.
                let due = Duration::from_secs_f64((done - offset) as f64 / limit.max(1) as f64);
                let elapsed = started.elapsed();
                if due > elapsed {
                    tokio::time::sleep(due - elapsed).await;
                }
            }
            if done > file.size {
                // Longer than the catalog says: no need to read further, fixity will refuse it.
                break;
            }
            if last_beat.elapsed() >= HEARTBEAT_EVERY {
                out.flush()
                    .await
                    .map_err(io("flushing staged copy".into()))?;
                progress.bytes_done = done;
                ctx.record_heartbeat(progress.clone()).await?;
                last_beat = Instant::now();
                self.metrics.downloaded(done - counted);
                counted = done;
                if last_report.elapsed() >= report_every {
                    last_report = Instant::now();
                    report_progress(
                        &ctx,
                        workflows::Progress {
                            phase: "download".into(),
                            file: file.relative_path.clone(),
                            bytes_done: done,
                            bytes_total: file.size,
                        },
                    )
                    .await;
                }
                if ctx.is_cancelled() {
                    // Nothing of a cancelled dissemination stays on this host;
                    // on a worker shutdown the bytes stay for the retry.
                    if !self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
                        drop(out);
                        let _ = tokio::fs::remove_file(&path).await;
                        if let Some(dir) = path.parent() {
                            let _ = tokio::fs::remove_dir(dir).await;
                        }
                    }
                    return Err(ActivityError::cancelled());
                }
            }
        }
        out.flush()
            .await
            .map_err(io("flushing staged copy".into()))?;
        progress.bytes_done = done;
        ctx.record_heartbeat(progress).await?;
        self.metrics.downloaded(done - counted);
        Ok(StagedFile {
            file: file.clone(),
            location_id: location.location_id.clone(),
            staged_path: path.to_string_lossy().into_owned(),
            host_queue: self.host_queue.clone(),
            size: done,
            digests: hasher.finish(),
            bytes_reread: reread,
            resumed_from: offset,
        })
    }

    #[activity(definition = defs::VerifyFixity)]
    pub async fn verify_fixity(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: StagedFile,
    ) -> Result<FixityOutcome, ActivityError> {
        self.metrics.queue_wait(&ctx);
        let file = &input.file;
        let stored = stored_digest(file)?;
        match tokio::fs::metadata(&input.staged_path).await {
            Ok(m) if m.len() == input.size => {}
            Ok(m) => {
                return Err(final_failure(
                    failure_types::STAGING_LOST,
                    format!(
                        "staged copy of {} changed size ({} != {})",
                        file.relative_path,
                        m.len(),
                        input.size
                    ),
                ))
            }
            Err(e) => {
                return Err(final_failure(
                    failure_types::STAGING_LOST,
                    format!("staged copy of {} is gone: {e}", file.relative_path),
                ))
            }
        }
        begin(
            &ctx,
            [
                KeyValue::new("file", file.relative_path.clone()),
                KeyValue::new("location", input.location_id.clone()),
                KeyValue::new("bytes", input.size as i64),
                KeyValue::new("digestAlgorithm", stored.algorithm.as_str()),
            ],
        );
        if input.size != file.size {
            self.metrics.fixity(stored.algorithm.as_str(), false);
            mark_error("fixity mismatch: size");
            return Err(final_failure(
                failure_types::FIXITY_MISMATCH,
                format!(
                    "{} at {} is {} bytes, the catalog says {}",
                    file.relative_path, input.location_id, input.size, file.size
                ),
            ));
        }
        let computed = input
            .digests
            .get(&stored.algorithm)
            .cloned()
            .unwrap_or_default();
        if !computed.eq_ignore_ascii_case(stored.digest.trim()) {
            self.metrics.fixity(stored.algorithm.as_str(), false);
            mark_error("fixity mismatch: digest");
            return Err(final_failure(
                failure_types::FIXITY_MISMATCH,
                format!(
                    "{} at {}: {} {} does not match the stored {}",
                    file.relative_path,
                    input.location_id,
                    stored.algorithm.as_str(),
                    computed,
                    stored.digest
                ),
            ));
        }
        self.metrics.fixity(stored.algorithm.as_str(), true);
        info!(file = %file.relative_path, location = %input.location_id, algorithm = stored.algorithm.as_str(), "fixity verified");
        Ok(FixityOutcome {
            algorithm: stored.algorithm,
            location_id: input.location_id.clone(),
            digest: computed,
        })
    }

    #[activity(definition = defs::Upload)]
    pub async fn upload(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: UploadInput,
    ) -> Result<DeliveredFile, ActivityError> {
        self.metrics.queue_wait(&ctx);
        let record = &input.record;
        let staged = &input.staged;
        begin(
            &ctx,
            record_attributes(record).into_iter().chain([
                KeyValue::new("file", staged.file.relative_path.clone()),
                KeyValue::new("bytes", staged.size as i64),
                KeyValue::new("digestAlgorithm", DigestAlgorithm::Sha256.as_str()),
            ]),
        );
        let filename = staged.file.filename().to_owned();
        let bucket = self.cfg.client_bucket(&record.client_id.0);
        let key = object_key(record, &filename);
        let sha256 = staged
            .digests
            .get(&DigestAlgorithm::Sha256)
            .cloned()
            .ok_or_else(|| {
                final_failure(failure_types::MISCONFIGURED, "no SHA-256 was computed")
            })?;
        if tokio::fs::metadata(&staged.staged_path)
            .await
            .map(|m| m.len())
            .ok()
            != Some(staged.size)
        {
            return Err(final_failure(
                failure_types::STAGING_LOST,
                format!("staged copy of {filename} is gone"),
            ));
        }
        self.s3.ensure_bucket(&bucket).await?;

        let (part_size, in_flight) = crate::s3::part_plan(
            staged.size,
            self.cfg.s3.part_size_mib,
            self.cfg.s3.upload_concurrency,
        );
        if staged.size <= part_size {
            let body = tokio::fs::read(&staged.staged_path)
                .await
                .map_err(io(format!("reading {}", staged.staged_path)))?;
            self.s3.put_small(&bucket, &key, body.into()).await?;
        } else {
            self.upload_multipart(&ctx, staged, &bucket, &key, (part_size, in_flight))
                .await?;
        }
        match self.s3.object_size(&bucket, &key).await? {
            Some(n) if n == staged.size => {}
            other => {
                return Err(anyhow::anyhow!(
                    "uploaded {key} but S3 reports size {other:?}, expected {}",
                    staged.size
                )
                .into())
            }
        }
        let lifetime = Duration::from_secs(input.link_lifetime_secs);
        let url = self.s3.presign_get(&bucket, &key, lifetime).await?;
        let expires =
            chrono::Local::now() + chrono::Duration::seconds(input.link_lifetime_secs as i64);
        self.metrics.uploaded(staged.size);
        info!(dissemination_id = %record.dissemination_id, %bucket, %key, bytes = staged.size, "uploaded");
        Ok(DeliveredFile {
            download_url: url,
            filename,
            filesize: staged.size,
            expiration_date: model::time::rfc3339(&expires),
            checksum: sha256,
            checksum_algorithm: DigestAlgorithm::Sha256.as_str().into(),
            md5: staged
                .file
                .fixity(DigestAlgorithm::Md5)
                .map(|f| f.digest.to_ascii_lowercase()),
        })
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

impl Activities {
    async fn upload_multipart(
        &self,
        ctx: &ActivityContext,
        staged: &StagedFile,
        bucket: &str,
        key: &str,
        (part_size, in_flight): (u64, usize),
    ) -> Result<(), ActivityError> {
        use futures::StreamExt;
        let previous: Option<UploadProgress> = ctx.heartbeat_details().deserialize().ok().flatten();
        let mut state = match previous.and_then(|p| p.multipart) {
            Some(s) => s,
            None => MultipartState {
                upload_id: self.s3.start_multipart(bucket, key).await?,
                parts: vec![],
            },
        };
        let parts = staged.size.div_ceil(part_size) as i32;
        let path = std::path::PathBuf::from(&staged.staged_path);
        let report_every = Duration::from_millis(self.cfg.worker.progress_every_ms);
        let mut last_report = Instant::now();
        let upload_id = state.upload_id.clone();
        let todo: Vec<i32> = (1..=parts)
            .filter(|n| !state.parts.iter().any(|(d, _)| d == n))
            .collect();
        let mut stream = futures::stream::iter(todo)
            .map(|n| {
                let path = path.clone();
                let upload_id = upload_id.clone();
                let offset = (n as u64 - 1) * part_size;
                let len = part_size.min(staged.size - offset) as usize;
                async move {
                    let body = tokio::task::spawn_blocking(move || read_at(&path, offset, len))
                        .await
                        .map_err(anyhow::Error::from)??;
                    let etag = self
                        .s3
                        .upload_part(bucket, key, &upload_id, n, body)
                        .await?;
                    Ok::<_, anyhow::Error>((n, etag))
                }
            })
            .buffer_unordered(in_flight);
        while let Some(result) = stream.next().await {
            let (n, etag) = match result {
                Ok(done) => done,
                Err(e) if e.to_string().contains("NoSuchUpload") => {
                    // The server forgot the upload: start over on the next attempt.
                    ctx.record_heartbeat(UploadProgress::default()).await?;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            state.parts.push((n, etag));
            let bytes_done = (state.parts.len() as u64 * part_size).min(staged.size);
            if last_report.elapsed() >= report_every {
                last_report = Instant::now();
                report_progress(
                    ctx,
                    workflows::Progress {
                        phase: "upload".into(),
                        file: staged.file.relative_path.clone(),
                        bytes_done,
                        bytes_total: staged.size,
                    },
                )
                .await;
            }
            ctx.record_heartbeat(UploadProgress {
                file: staged.file.relative_path.clone(),
                bytes_done,
                bytes_total: staged.size,
                multipart: Some(state.clone()),
            })
            .await?;
            if ctx.is_cancelled() {
                drop(stream);
                self.s3.abort_multipart(bucket, key, &upload_id).await;
                return Err(ActivityError::cancelled());
            }
        }
        drop(stream);
        self.s3
            .complete_multipart(bucket, key, &upload_id, &state.parts)
            .await?;
        Ok(())
    }
}

fn read_at(path: &std::path::Path, offset: u64, len: usize) -> anyhow::Result<bytes::Bytes> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf.into())
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

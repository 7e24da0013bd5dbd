//! The one-pass `transfer` activity: repository → client's bucket with no
//! staging. Bytes are read once; each chunk updates the digests and fills
//! the current part; full parts are uploaded by their own tasks while
//! reading goes on (memory stays at (concurrency + 1) × part size whatever
//! the file size). When the last byte is read the digest is compared with
//! the stored one: a match completes the multipart upload, a mismatch
//! aborts it — the object never exists unverified.
//!
//! Retries resume: the heartbeat carries the upload id and the digest
//! states at the end of the last unbroken run of uploaded parts, so a retry
//! lists the parts S3 holds and reads on from that checkpoint. An upload S3
//! no longer knows is either the completed delivery (an object carrying the
//! stored digest it was verified against, finished by an attempt that could
//! not report) or lost, and then a fresh upload starts from byte 0.
//! Live progress is the heartbeat too (read by the API with describe): it
//! costs no history events.

pub(crate) mod sink;

use crate::{
    delivery::delivered_file,
    digest::{self, MultiHasher},
    failure::Failure,
    notify::signal_workflow,
    observe::{annotate, begin, mark_error, record_attributes},
    repository::pace,
    s3::S3Error,
    Activities,
};
use bytes::BufMut;
use model::{
    catalog::{DigestAlgorithm, FileLocation, Fixity, RepositoryFile},
    DisseminationStatus,
};
use opentelemetry::{
    global,
    trace::{Span as _, SpanBuilder, Status, Tracer as _},
    Context, KeyValue,
};
use sink::Parts;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;
use tokio::io::AsyncReadExt;
use tracing::info;
use workflows::{
    DisseminationWorkflow, FixityOutcome, HashCheckpoint, MultipartState, Phase, Progress,
    TransferHeartbeat, TransferInput, TransferOutcome,
};

pub(crate) const READ_CHUNK: usize = 1 << 20;
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// Where this attempt's bytes go.
enum Sink {
    Parts(Box<Parts>),
    /// One object put whole once verified (files up to one part).
    Whole,
    /// An earlier attempt completed the object: only the digests are finished.
    Complete(Option<MultipartState>),
}

/// How an attempt starts, from the earlier attempt's heartbeat and S3.
enum Start {
    Fresh,
    Continue {
        upload_id: String,
        held: BTreeMap<i32, String>,
        checkpoint: Option<HashCheckpoint>,
    },
    Complete {
        upload: MultipartState,
        checkpoint: Option<HashCheckpoint>,
    },
}

pub(crate) async fn transfer(
    acts: &Activities,
    ctx: &ActivityContext,
    input: TransferInput,
) -> Result<TransferOutcome, ActivityError> {
    acts.metrics.queue_wait(ctx);
    begin(
        ctx,
        record_attributes(&input.record).into_iter().chain([
            KeyValue::new("file", input.file.relative_path.clone()),
            KeyValue::new("bytes", input.file.size as i64),
        ]),
    );
    if input.announce_start {
        signal_workflow(
            ctx,
            DisseminationWorkflow::download_started,
            (),
            "announce the transfer start",
        )
        .await;
    }
    let (previous, since) = previous_beat(ctx);
    let mut attempt = Attempt {
        acts,
        ctx,
        input: &input,
        last_progress: since,
        started: Instant::now(),
        base: 0,
        uploaded: 0,
    };
    match attempt.run(previous).await {
        Ok(outcome) => Ok(outcome),
        Err(failure) => Err(ended(failure, attempt.last_progress, input.retry_for_ms)),
    }
}

/// The earlier attempt's heartbeat, and when bytes last moved: as it
/// says, or when the step was scheduled.
pub(crate) fn previous_beat(ctx: &ActivityContext) -> (Option<TransferHeartbeat>, SystemTime) {
    let previous: Option<TransferHeartbeat> = ctx.heartbeat_details().deserialize().ok().flatten();
    let since = previous
        .as_ref()
        .and_then(|p| p.last_progress_unix_ms)
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .or(ctx.info().scheduled_time)
        .unwrap_or_else(SystemTime::now);
    (previous, since)
}

/// A failed attempt as the SDK's error: a retryable failure with no bytes
/// moved for longer than `retry_for_ms` ends the step for good.
pub(crate) fn ended(
    failure: Failure,
    last_progress: SystemTime,
    retry_for_ms: Option<u64>,
) -> ActivityError {
    let stuck = SystemTime::now()
        .duration_since(last_progress)
        .unwrap_or_default();
    let give_up =
        failure.is_retryable() && retry_for_ms.is_some_and(|ms| stuck > Duration::from_millis(ms));
    let failure = if give_up {
        failure.give_up(stuck)
    } else {
        failure
    };
    if !matches!(failure, Failure::Cancelled) {
        mark_error(failure.to_string());
    }
    failure.into()
}

struct Attempt<'a> {
    acts: &'a Activities,
    ctx: &'a ActivityContext,
    input: &'a TransferInput,
    /// When bytes last moved (this attempt or, from the heartbeat, an earlier one).
    last_progress: SystemTime,
    started: Instant,
    /// Bytes read before this attempt (the rate counts this attempt's only).
    base: u64,
    /// Bytes in uploaded parts at the last heartbeat.
    uploaded: u64,
}

impl Attempt<'_> {
    async fn run(
        &mut self,
        previous: Option<TransferHeartbeat>,
    ) -> Result<TransferOutcome, Failure> {
        let (acts, file, record) = (self.acts, &self.input.file, &self.input.record);
        let location = location_of(file, self.input.location_index)?;
        let stored = stored_digest(file)?;
        annotate([
            KeyValue::new("location", location.location_id.clone()),
            KeyValue::new("digestAlgorithm", stored.algorithm.as_str()),
        ]);
        let fixity_tag = format!(
            "{}:{}",
            stored.algorithm.as_str(),
            stored.digest.trim().to_ascii_lowercase()
        );
        let bucket = acts.cfg.client_bucket(record.client_id.as_str());
        let object_key = record.object_key(delivered_name(self.input));
        let key = object_key.as_str();
        acts.s3
            .ensure_bucket(&bucket)
            .await
            .map_err(|e| Failure::Upload(e.to_string()))?;
        let s3cfg = &acts.cfg.s3;
        let (part_size, max_in_flight) =
            crate::s3::part_plan(file.size, s3cfg.part_size_mib, s3cfg.upload_concurrency);
        let multipart = file.size > part_size;
        let algorithms = MultiHasher::algorithms_for(file);

        let start = if multipart {
            self.start_from(
                previous.as_ref(),
                (&bucket, key),
                location,
                part_size,
                &fixity_tag,
            )
            .await?
        } else {
            Start::Fresh
        };
        let resumed_state = |checkpoint: &Option<HashCheckpoint>| {
            checkpoint
                .as_ref()
                .and_then(|c| MultiHasher::resume(&algorithms, c).map(|h| (h, c.clone())))
        };
        let (mut hasher, mut sink, found_complete) = match start {
            Start::Fresh if multipart => {
                let upload_id = acts
                    .s3
                    .start_multipart(&bucket, key, &fixity_tag)
                    .await
                    .map_err(|e| Failure::Upload(e.to_string()))?;
                let parts = Parts::new(
                    acts.s3.clone(),
                    (bucket.clone(), object_key.clone(), upload_id),
                    (part_size, max_in_flight),
                    BTreeMap::new(),
                    None,
                );
                (
                    MultiHasher::new(&algorithms),
                    Sink::Parts(Box::new(if s3cfg.content_md5 {
                        parts
                    } else {
                        parts.without_content_md5()
                    })),
                    false,
                )
            }
            Start::Fresh => (MultiHasher::new(&algorithms), Sink::Whole, false),
            Start::Continue {
                upload_id,
                held,
                checkpoint,
            } => {
                let (hasher, checkpoint) = match resumed_state(&checkpoint) {
                    Some((h, c)) => (h, Some(c)),
                    None => (MultiHasher::new(&algorithms), None),
                };
                let parts = Parts::new(
                    acts.s3.clone(),
                    (bucket.clone(), object_key.clone(), upload_id),
                    (part_size, max_in_flight),
                    held,
                    checkpoint,
                );
                (
                    hasher,
                    Sink::Parts(Box::new(if s3cfg.content_md5 {
                        parts
                    } else {
                        parts.without_content_md5()
                    })),
                    false,
                )
            }
            Start::Complete { upload, checkpoint } => {
                let hasher = resumed_state(&checkpoint)
                    .map_or_else(|| MultiHasher::new(&algorithms), |(h, _)| h);
                (hasher, Sink::Complete(Some(upload)), true)
            }
        };
        let offset = hasher.bytes();
        self.base = offset;
        let mut reader = match acts.repo.open(location, offset).await {
            Ok(r) => r,
            Err(e) => {
                let failure = Failure::from(e);
                if matches!(
                    failure,
                    Failure::LocationUnreadable(_) | Failure::NoReader(_)
                ) {
                    acts.metrics.unreadable(&location.location_id);
                    tracing::warn!(file = %file.relative_path, location = %location.location_id,
                        error = %failure, "repository copy unreadable");
                }
                return Err(failure);
            }
        };
        info!(
            dissemination_id = %record.dissemination_id, file = %file.relative_path,
            location = %location.location_id, attempt = self.ctx.info().attempt,
            resumed_from = offset, found_complete, "transfer started"
        );

        // The steps as spans under the activity's: reading and uploading overlap.
        let step_attrs = || {
            vec![
                KeyValue::new("file", file.relative_path.clone()),
                KeyValue::new("bytes", file.size as i64),
                KeyValue::new("location", location.location_id.clone()),
            ]
        };
        let download_span = step_span("download", step_attrs());
        let upload_span = step_span("upload", step_attrs());
        let capacity = part_size.min(file.size.max(1)) as usize;
        let mut part = bytes::BytesMut::with_capacity(capacity);
        let mut part_no = (offset / part_size) as i32;
        let mut counted = offset;
        let mut last_beat = Instant::now();
        let max_rate = acts.cfg.repository.max_read_bytes_per_sec;
        let read_result: Result<(), Failure> = async {
            loop {
                // Straight into the part's spare capacity (no zero-filling).
                let want = READ_CHUNK.min(capacity.saturating_sub(part.len())).max(1);
                let from = part.len();
                let n = reader
                    .read_buf(&mut (&mut part).limit(want))
                    .await
                    .map_err(|e| {
                        Failure::Transient(format!(
                            "reading {} from {}: {e}",
                            file.relative_path, location.location_id
                        ))
                    })?;
                if n > 0 {
                    hasher.update(&part[from..]);
                    self.last_progress = SystemTime::now();
                }
                let read = hasher.bytes();
                if read > file.size {
                    break; // longer than the catalog says: fixity refuses it below
                }
                let full = part.len() >= capacity;
                let last = n == 0 && !part.is_empty();
                match &mut sink {
                    Sink::Parts(p) => {
                        if full || last {
                            while p.is_full() {
                                p.wait_one(HEARTBEAT_EVERY).await?;
                                self.beat(&sink_view(p), &hasher, Phase::Download, part_size)
                                    .await?;
                            }
                            part_no += 1;
                            let body = std::mem::replace(
                                &mut part,
                                bytes::BytesMut::with_capacity(capacity),
                            );
                            p.push(part_no, body.freeze(), hasher.checkpoint());
                        }
                        p.collect_finished()?;
                    }
                    Sink::Complete(_) => {
                        if full {
                            part.clear();
                        }
                    }
                    Sink::Whole => {
                        if full && read < file.size {
                            break; // bigger than one part after all: fixity refuses it
                        }
                    }
                }
                if n == 0 {
                    break;
                }
                pace(max_rate, read - offset, self.started).await;
                if last_beat.elapsed() >= HEARTBEAT_EVERY {
                    last_beat = Instant::now();
                    acts.metrics.downloaded(read - counted);
                    counted = read;
                    let view = match &sink {
                        Sink::Parts(p) => sink_view(p),
                        Sink::Complete(upload) => SinkView::complete(upload, &hasher),
                        Sink::Whole => SinkView::default(),
                    };
                    self.beat(&view, &hasher, Phase::Download, part_size)
                        .await?;
                }
            }
            Ok(())
        }
        .await;
        acts.metrics.downloaded(hasher.bytes() - counted);
        end_span(
            download_span,
            read_result.as_ref().err().map(|e| e.to_string()),
        );
        if let Err(e) = read_result {
            end_span(upload_span, Some("stopped".into()));
            if let Sink::Parts(p) = &mut sink {
                // The upload stays: a retry lists its parts and goes on. A
                // real cancel is cleaned up by the workflow (discard).
                p.stop();
            }
            return Err(e);
        }
        let read = hasher.bytes();

        // Every byte read: the fixity check decides whether the upload completes.
        signal_workflow(
            self.ctx,
            DisseminationWorkflow::transfer_step,
            DisseminationStatus::FixityCheck,
            "report the fixity check",
        )
        .await;
        let mut fixity_span = step_span("fixity", step_attrs());
        fixity_span.set_attribute(KeyValue::new("digestAlgorithm", stored.algorithm.as_str()));
        let digests = hasher.finish();
        let verdict = digest::verify(file, stored, &location.location_id, read, &digests);
        acts.metrics
            .fixity(stored.algorithm.as_str(), verdict.is_ok());
        end_span(fixity_span, verdict.clone().err());
        let computed = match verdict {
            Ok(computed) => computed,
            Err(message) => {
                match &mut sink {
                    Sink::Parts(p) => p.abort().await,
                    // The copy read now is not the one verified before: the
                    // object cannot be vouched for any more.
                    Sink::Complete(_) => acts.s3.delete_object(&bucket, key).await,
                    Sink::Whole => {}
                }
                end_span(upload_span, Some("aborted: fixity mismatch".into()));
                return Err(Failure::FixityMismatch(message));
            }
        };
        info!(file = %file.relative_path, location = %location.location_id,
            algorithm = stored.algorithm.as_str(), "fixity verified");
        signal_workflow(
            self.ctx,
            DisseminationWorkflow::transfer_step,
            DisseminationStatus::UploadingToS3,
            "report the upload",
        )
        .await;

        let reused = match &mut sink {
            Sink::Parts(p) => {
                while p.in_flight() > 0 {
                    p.wait_one(HEARTBEAT_EVERY).await?;
                    self.beat_upload(p, read, part_size).await?;
                }
                self.beat_upload(p, read, part_size).await?;
                match acts
                    .s3
                    .complete_multipart(&bucket, key, &p.upload_id, &p.completed_parts())
                    .await
                {
                    Ok(()) => {}
                    // Completed by a request whose answer was lost: the object says so.
                    Err(S3Error::NoSuchUpload(what)) => {
                        if !self.is_delivery(&bucket, key, &fixity_tag).await? {
                            return Err(Failure::Upload(format!(
                                "{what} (lost before completion)"
                            )));
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
                p.reused
            }
            Sink::Whole => {
                acts.s3
                    .put_verified(&bucket, key, part.freeze(), &fixity_tag)
                    .await
                    .map_err(|e| Failure::Upload(e.to_string()))?;
                0
            }
            Sink::Complete(_) => 0,
        };
        if !self.is_delivery(&bucket, key, &fixity_tag).await? {
            return Err(Failure::Upload(format!(
                "uploaded {key} but S3 does not report {} bytes verified as {fixity_tag}",
                file.size
            )));
        }
        end_span(upload_span, None);
        if !found_complete {
            acts.metrics.uploaded(file.size);
        }
        let sha256 = digests
            .get(&DigestAlgorithm::Sha256)
            .cloned()
            .unwrap_or_default();
        let delivered = delivered_file(
            file,
            delivered_name(self.input),
            sha256,
            self.input.link_lifetime_secs,
        );
        info!(dissemination_id = %record.dissemination_id, %bucket, %key, bytes = file.size,
            parts_reused = reused, resumed_from = offset, found_complete, "delivered");
        Ok(TransferOutcome {
            fixity: FixityOutcome {
                algorithm: stored.algorithm,
                location_id: location.location_id.clone(),
                digest: computed,
            },
            delivered,
            bytes_read: read - offset,
            parts_reused: reused,
            resumed_from: offset,
            found_complete,
        })
    }

    /// Where this attempt starts: the earlier attempt's upload, as S3 knows it.
    async fn start_from(
        &self,
        previous: Option<&TransferHeartbeat>,
        (bucket, key): (&str, &str),
        location: &FileLocation,
        part_size: u64,
        fixity_tag: &str,
    ) -> Result<Start, Failure> {
        let Some((p, upload)) = previous.and_then(|p| Some((p, p.multipart.clone()?))) else {
            return Ok(Start::Fresh);
        };
        if p.location_id != location.location_id || p.part_size != part_size {
            self.acts
                .s3
                .abort_multipart(bucket, key, &upload.upload_id)
                .await;
            return Ok(Start::Fresh);
        }
        match self
            .acts
            .s3
            .list_parts(bucket, key, &upload.upload_id)
            .await
        {
            Ok(held) => {
                let checkpoint = p
                    .checkpoint
                    .clone()
                    .filter(|c| Parts::can_resume(c, part_size, &held));
                Ok(Start::Continue {
                    upload_id: upload.upload_id,
                    held,
                    checkpoint,
                })
            }
            Err(S3Error::NoSuchUpload(what)) => {
                if self.is_delivery(bucket, key, fixity_tag).await? {
                    info!(%key, "the earlier attempt completed the upload");
                    Ok(Start::Complete {
                        upload,
                        checkpoint: p.checkpoint.clone(),
                    })
                } else {
                    info!(%key, "{what}: starting a fresh upload");
                    Ok(Start::Fresh)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The object is in the bucket, whole, verified against the stored digest.
    async fn is_delivery(
        &self,
        bucket: &str,
        key: &str,
        fixity_tag: &str,
    ) -> Result<bool, Failure> {
        let head = self
            .acts
            .s3
            .head(bucket, key)
            .await
            .map_err(|e| Failure::Upload(e.to_string()))?;
        Ok(head.is_some_and(|h| {
            h.size == self.input.file.size && h.fixity.as_deref() == Some(fixity_tag)
        }))
    }

    async fn beat_upload(&mut self, p: &Parts, read: u64, part_size: u64) -> Result<(), Failure> {
        let view = sink_view(p);
        let file = &self.input.file;
        let progress = progress(
            Phase::Upload,
            &file.relative_path,
            (view.uploaded, file.size),
            (0, self.started),
        );
        self.record(view, read, part_size, progress).await
    }

    async fn beat(
        &mut self,
        view: &SinkView,
        hasher: &MultiHasher,
        phase: Phase,
        part_size: u64,
    ) -> Result<(), Failure> {
        let file = &self.input.file;
        let read = hasher.bytes();
        let progress = progress(
            phase,
            &file.relative_path,
            (read, file.size),
            (self.base, self.started),
        );
        self.record(view.clone(), read, part_size, progress).await
    }

    async fn record(
        &mut self,
        view: SinkView,
        read: u64,
        part_size: u64,
        progress: Progress,
    ) -> Result<(), Failure> {
        if view.uploaded > self.uploaded {
            // Parts finishing count as progress while reading waits for them.
            self.uploaded = view.uploaded;
            self.last_progress = SystemTime::now();
        }
        let file = &self.input.file;
        let location = location_of(file, self.input.location_index)?;
        let beat = TransferHeartbeat {
            file: file.relative_path.clone(),
            location_id: location.location_id.clone(),
            bytes_read: read,
            bytes_total: file.size,
            part_size,
            multipart: view.multipart,
            checkpoint: view.checkpoint,
            progress: Some(progress),
            last_progress_unix_ms: Some(unix_ms(self.last_progress)),
        };
        self.ctx
            .record_heartbeat(beat)
            .await
            .map_err(|e| Failure::Transient(format!("recording a heartbeat: {e}")))?;
        if self.ctx.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        Ok(())
    }
}

/// What a heartbeat says about the sink.
#[derive(Clone, Default)]
struct SinkView {
    multipart: Option<MultipartState>,
    checkpoint: Option<HashCheckpoint>,
    uploaded: u64,
}

impl SinkView {
    fn complete(upload: &Option<MultipartState>, hasher: &MultiHasher) -> Self {
        Self {
            multipart: upload.clone(),
            // Nothing left to upload: any point of the reading is a checkpoint.
            checkpoint: Some(hasher.checkpoint()),
            uploaded: 0,
        }
    }
}

fn sink_view(p: &Parts) -> SinkView {
    SinkView {
        multipart: Some(p.state()),
        checkpoint: p.checkpoint().cloned(),
        uploaded: p.bytes_uploaded(u64::MAX),
    }
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// The name a file is delivered under: its relative path (normal form,
/// from the workflow's plan), or the last segment in executions before.
pub(crate) fn delivered_name(input: &TransferInput) -> &str {
    if input.keep_paths {
        &input.file.relative_path
    } else {
        input.file.filename()
    }
}

/// The file's location number `index` (the workflow's choice).
pub(crate) fn location_of(file: &RepositoryFile, index: usize) -> Result<&FileLocation, Failure> {
    file.locations.get(index).ok_or_else(|| {
        Failure::Misconfigured(format!("{} has no location {index}", file.relative_path))
    })
}

/// The digest fixity is checked against: the strongest one stored.
pub(crate) fn stored_digest(file: &RepositoryFile) -> Result<&Fixity, Failure> {
    file.strongest_fixity().ok_or_else(|| {
        Failure::Misconfigured(format!("{} has no stored digest", file.relative_path))
    })
}

/// A progress report with an estimate of the time left: the rate since
/// `since` (when `base` bytes were done) applied to what remains.
pub(crate) fn progress(
    phase: Phase,
    file: &str,
    (done, total): (u64, u64),
    (base, since): (u64, Instant),
) -> Progress {
    let elapsed = since.elapsed().as_secs_f64();
    let rate = done.saturating_sub(base) as f64 / elapsed.max(1e-3);
    let seconds_left = (rate > 0.0 && elapsed >= 0.5)
        .then(|| (total.saturating_sub(done) as f64 / rate).ceil() as u64);
    Progress {
        phase,
        file: file.into(),
        bytes_done: done,
        bytes_total: total,
        seconds_left,
    }
}

pub(crate) fn step_span(name: &'static str, attributes: Vec<KeyValue>) -> global::BoxedSpan {
    global::tracer("dissemination-worker").build_with_context(
        SpanBuilder::from_name(name).with_attributes(attributes),
        &Context::current(),
    )
}

pub(crate) fn end_span(mut span: global::BoxedSpan, error: Option<String>) {
    if let Some(e) = error {
        span.set_status(Status::error(e));
    }
    span.end();
}

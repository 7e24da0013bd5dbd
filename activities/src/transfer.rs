//! The one-pass `transfer` activity: repository → client's bucket with no
//! staging. Bytes are read once; each chunk updates the digests and fills
//! the current part; full parts are uploaded by their own tasks while
//! reading goes on (at most `s3.upload_concurrency` in flight, so memory
//! stays at (concurrency + 1) × part size whatever the file size). When the
//! last byte is read the digest is compared with the stored one: a match
//! completes the multipart upload, a mismatch aborts it — the object never
//! exists unverified. Heartbeats carry the uploaded parts; a retry reads
//! from the start again (the digest needs every byte) and reuses a part
//! only when the MD5 of the bytes read again equals its ETag.

use crate::{
    digest::{self, MultiHasher},
    final_failure,
    impls::{
        location_of, object_key, open_failure, progress, report_progress, signal_workflow,
        stored_digest,
    },
    observe::{annotate, begin, mark_error},
    repository::pace,
    s3::{MultipartState, S3},
    Activities,
};
use bytes::BufMut;
use futures::{stream::FuturesUnordered, FutureExt, StreamExt};
use md5::{Digest, Md5};
use model::{catalog::DigestAlgorithm, DisseminationStatus};
use opentelemetry::{
    global,
    trace::{Span as _, SpanBuilder, Status, Tracer as _},
    Context, KeyValue,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use temporalio_common::{error::ApplicationFailure, ActivityError};
use temporalio_sdk::activities::ActivityContext;
use tokio::{io::AsyncReadExt, task::JoinHandle};
use tracing::info;
use workflows::{
    failure_types, DeliveredFile, DisseminationWorkflow, FixityOutcome, TransferInput,
    TransferOutcome,
};

const READ_CHUNK: usize = 1 << 20;
const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// Heartbeat details of `transfer`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferProgress {
    pub file: String,
    pub location_id: String,
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub part_size: u64,
    pub multipart: Option<MultipartState>,
}

/// A retryable failure on the bucket's side (the workflow reports
/// UPLOAD_FAILED when retries run out).
fn upload_error(e: anyhow::Error) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(e.to_string())
            .type_name(failure_types::UPLOAD_ERROR.to_owned())
            .build(),
    )
}

type PartTask = JoinHandle<anyhow::Result<(i32, String)>>;

/// The parts of one multipart upload: uploaded, in flight, reusable.
struct Parts {
    s3: S3,
    bucket: String,
    key: String,
    upload_id: String,
    done: Vec<(i32, String)>,
    in_flight: FuturesUnordered<PartTask>,
    reusable: BTreeMap<i32, String>,
    reused: u32,
    max_in_flight: usize,
}

impl Parts {
    /// Uploads part `n` in its own task (waiting for a free slot first),
    /// or keeps the earlier attempt's part when its ETag is these bytes' MD5.
    async fn push(&mut self, n: i32, body: bytes::Bytes) -> Result<(), ActivityError> {
        if let Some(etag) = self.reusable.remove(&n) {
            let md5 = hex::encode(Md5::digest(&body));
            if etag.trim_matches('"').eq_ignore_ascii_case(&md5) {
                self.done.push((n, etag));
                self.reused += 1;
                return Ok(());
            }
        }
        while self.in_flight.len() >= self.max_in_flight {
            self.next_finished().await?;
        }
        let (s3, bucket, key, id) = (
            self.s3.clone(),
            self.bucket.clone(),
            self.key.clone(),
            self.upload_id.clone(),
        );
        self.in_flight.push(tokio::spawn(async move {
            let etag = s3.upload_part(&bucket, &key, &id, n, body).await?;
            Ok((n, etag))
        }));
        Ok(())
    }

    async fn next_finished(&mut self) -> Result<(), ActivityError> {
        match self.in_flight.next().await {
            Some(joined) => self.finished(joined),
            None => Ok(()),
        }
    }

    /// Collects the parts that finished meanwhile, without waiting.
    fn collect_finished(&mut self) -> Result<(), ActivityError> {
        while let Some(Some(joined)) = self.in_flight.next().now_or_never() {
            self.finished(joined)?;
        }
        Ok(())
    }

    fn finished(
        &mut self,
        joined: Result<anyhow::Result<(i32, String)>, tokio::task::JoinError>,
    ) -> Result<(), ActivityError> {
        let part = joined
            .map_err(|e| upload_error(e.into()))?
            .map_err(upload_error)?;
        self.done.push(part);
        Ok(())
    }

    fn state(&self) -> MultipartState {
        MultipartState {
            upload_id: self.upload_id.clone(),
            parts: self.done.clone(),
        }
    }

    /// Stops the part uploads and removes the multipart upload.
    async fn abort(&mut self) {
        for task in self.in_flight.iter() {
            task.abort();
        }
        self.in_flight.clear();
        self.s3
            .abort_multipart(&self.bucket, &self.key, &self.upload_id)
            .await;
    }
}

fn step_span(name: &'static str, attributes: Vec<KeyValue>) -> global::BoxedSpan {
    global::tracer("dissemination-worker").build_with_context(
        SpanBuilder::from_name(name).with_attributes(attributes),
        &Context::current(),
    )
}

fn end_span(mut span: global::BoxedSpan, error: Option<String>) {
    if let Some(e) = error {
        span.set_status(Status::error(e));
    }
    span.end();
}

pub(crate) async fn transfer(
    acts: &Activities,
    ctx: &ActivityContext,
    input: TransferInput,
) -> Result<TransferOutcome, ActivityError> {
    acts.metrics.queue_wait(ctx);
    let record = &input.record;
    let file = &input.file;
    begin(
        ctx,
        crate::impls::record_attributes(record).into_iter().chain([
            KeyValue::new("file", file.relative_path.clone()),
            KeyValue::new("bytes", file.size as i64),
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
    let location = location_of(file, input.location_index)?;
    let stored = stored_digest(file)?;
    annotate([
        KeyValue::new("location", location.location_id.clone()),
        KeyValue::new("digestAlgorithm", stored.algorithm.as_str()),
    ]);
    let filename = file.filename().to_owned();
    let bucket = acts.cfg.client_bucket(&record.client_id.0);
    let key = object_key(record, &filename);
    acts.s3.ensure_bucket(&bucket).await.map_err(upload_error)?;
    let s3cfg = &acts.cfg.s3;
    let (part_size, max_in_flight) =
        crate::s3::part_plan(file.size, s3cfg.part_size_mib, s3cfg.upload_concurrency);
    let multipart = file.size > part_size;

    // An earlier attempt's upload: reuse it from the same location, else drop it.
    let previous: Option<TransferProgress> = ctx.heartbeat_details().deserialize().ok().flatten();
    let mut resumed = None;
    if let Some(m) = previous.clone().and_then(|p| p.multipart) {
        let p = previous.as_ref().expect("checked");
        if multipart && p.location_id == location.location_id && p.part_size == part_size {
            resumed = Some(m);
        } else {
            acts.s3.abort_multipart(&bucket, &key, &m.upload_id).await;
        }
    }
    let mut reader = acts.repo.open(location, 0).await.map_err(open_failure)?;
    info!(
        dissemination_id = %record.dissemination_id, file = %file.relative_path,
        location = %location.location_id, attempt = ctx.info().attempt,
        reusable_parts = resumed.as_ref().map_or(0, |m| m.parts.len()), "transfer started"
    );
    let mut parts = if multipart {
        let upload_id = match &resumed {
            Some(m) => m.upload_id.clone(),
            None => acts
                .s3
                .start_multipart(&bucket, &key)
                .await
                .map_err(upload_error)?,
        };
        Some(Parts {
            s3: acts.s3.clone(),
            bucket: bucket.clone(),
            key: key.clone(),
            upload_id,
            done: vec![],
            in_flight: FuturesUnordered::new(),
            reusable: resumed
                .map(|m| m.parts.into_iter().collect())
                .unwrap_or_default(),
            reused: 0,
            max_in_flight,
        })
    } else {
        None
    };

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
    let beat = |bytes_read, multipart| TransferProgress {
        file: file.relative_path.clone(),
        location_id: location.location_id.clone(),
        bytes_read,
        bytes_total: file.size,
        part_size,
        multipart,
    };
    let algorithms = MultiHasher::algorithms_for(file);
    let mut hasher = MultiHasher::new(&algorithms);
    let capacity = part_size.min(file.size.max(1)) as usize;
    let mut part = bytes::BytesMut::with_capacity(capacity);
    let mut part_no = 0i32;
    let mut read = 0u64;
    let mut counted = 0u64;
    let started = Instant::now();
    let mut last_beat = Instant::now();
    let report_every = Duration::from_millis(acts.cfg.worker.progress_every_ms);
    let mut last_report = Instant::now();
    let result: Result<(), ActivityError> = async {
        loop {
            // Straight into the part's spare capacity (no zero-filling).
            let want = READ_CHUNK.min(capacity.saturating_sub(part.len())).max(1);
            let start = part.len();
            let n = reader
                .read_buf(&mut (&mut part).limit(want))
                .await
                .map_err(|e| {
                    ActivityError::from(anyhow::anyhow!(
                        "reading {} from {}: {e}",
                        file.relative_path,
                        location.location_id
                    ))
                })?;
            if n > 0 {
                hasher.update(&part[start..]);
                read += n as u64;
            }
            if read > file.size {
                break; // longer than the catalog says: fixity refuses it below
            }
            let full = part.len() >= capacity;
            if let Some(p) = parts.as_mut() {
                if full || (n == 0 && !part.is_empty()) {
                    part_no += 1;
                    let body =
                        std::mem::replace(&mut part, bytes::BytesMut::with_capacity(capacity));
                    p.push(part_no, body.freeze()).await?;
                }
                p.collect_finished()?;
            } else if full && read < file.size {
                // Bigger than one part after all: the catalog size was wrong.
                break;
            }
            if n == 0 {
                break;
            }
            pace(acts.cfg.repository.max_read_bytes_per_sec, read, started).await;
            if last_beat.elapsed() >= HEARTBEAT_EVERY {
                last_beat = Instant::now();
                acts.metrics.downloaded(read - counted);
                counted = read;
                ctx.record_heartbeat(beat(read, parts.as_ref().map(Parts::state)))
                    .await?;
                if last_report.elapsed() >= report_every {
                    last_report = Instant::now();
                    report_progress(
                        ctx,
                        progress(
                            "download",
                            &file.relative_path,
                            (read, file.size),
                            (0, started),
                        ),
                    )
                    .await;
                }
                if ctx.is_cancelled() {
                    return Err(ActivityError::cancelled());
                }
            }
        }
        Ok(())
    }
    .await;
    acts.metrics.downloaded(read - counted);
    end_span(
        download_span,
        result.as_ref().err().map(|e| format!("{e:?}")),
    );
    if let Err(e) = result {
        end_span(upload_span, Some("stopped".into()));
        if let Some(p) = parts.as_mut() {
            let cancelled =
                ctx.is_cancelled() && !acts.shutting_down.load(std::sync::atomic::Ordering::SeqCst);
            if cancelled {
                p.abort().await; // nothing of a cancelled dissemination stays
            } else {
                for task in p.in_flight.iter() {
                    task.abort(); // the retry reuses what was uploaded
                }
            }
        }
        return Err(e);
    }

    // Every byte read: the fixity check decides whether the upload completes.
    signal_workflow(
        ctx,
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
            if let Some(p) = parts.as_mut() {
                p.abort().await;
            }
            end_span(upload_span, Some("aborted: fixity mismatch".into()));
            mark_error("fixity mismatch");
            return Err(final_failure(failure_types::FIXITY_MISMATCH, message));
        }
    };
    info!(file = %file.relative_path, location = %location.location_id,
        algorithm = stored.algorithm.as_str(), "fixity verified");
    signal_workflow(
        ctx,
        DisseminationWorkflow::transfer_step,
        DisseminationStatus::UploadingToS3,
        "report the upload",
    )
    .await;

    let reused = match parts.as_mut() {
        Some(p) => {
            while !p.in_flight.is_empty() {
                p.next_finished().await?;
                let bytes_done = (p.done.len() as u64 * part_size).min(file.size);
                ctx.record_heartbeat(beat(read, Some(p.state()))).await?;
                if last_report.elapsed() >= report_every {
                    last_report = Instant::now();
                    report_progress(
                        ctx,
                        progress(
                            "upload",
                            &file.relative_path,
                            (bytes_done, file.size),
                            (0, started),
                        ),
                    )
                    .await;
                }
            }
            acts.s3
                .complete_multipart(&bucket, &key, &p.upload_id, &p.done)
                .await
                .map_err(upload_error)?;
            p.reused
        }
        None => {
            acts.s3
                .put_small(&bucket, &key, part.freeze())
                .await
                .map_err(upload_error)?;
            0
        }
    };
    match acts
        .s3
        .object_size(&bucket, &key)
        .await
        .map_err(upload_error)?
    {
        Some(n) if n == file.size => {}
        other => {
            return Err(upload_error(anyhow::anyhow!(
                "uploaded {key} but S3 reports size {other:?}, expected {}",
                file.size
            )))
        }
    }
    end_span(upload_span, None);
    acts.metrics.uploaded(file.size);
    let lifetime = Duration::from_secs(input.link_lifetime_secs);
    let url = acts
        .s3
        .presign_get(&bucket, &key, lifetime)
        .await
        .map_err(upload_error)?;
    let expires = chrono::Local::now() + chrono::Duration::seconds(input.link_lifetime_secs as i64);
    let sha256 = digests
        .get(&DigestAlgorithm::Sha256)
        .cloned()
        .unwrap_or_default();
    info!(dissemination_id = %record.dissemination_id, %bucket, %key, bytes = file.size,
        parts_reused = reused, "delivered");
    Ok(TransferOutcome {
        fixity: FixityOutcome {
            algorithm: stored.algorithm,
            location_id: location.location_id.clone(),
            digest: computed,
        },
        delivered: DeliveredFile {
            download_url: url,
            filename,
            filesize: file.size,
            expiration_date: model::time::rfc3339(&expires),
            checksum: sha256,
            checksum_algorithm: DigestAlgorithm::Sha256.as_str().into(),
            md5: file
                .fixity(DigestAlgorithm::Md5)
                .map(|f| f.digest.to_ascii_lowercase()),
        },
        bytes_read: read,
        parts_reused: reused,
    })
}

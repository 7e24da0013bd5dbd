//! The one-pass `transfer` activity: repository → client's bucket with no
//! staging. Bytes are read once; each chunk updates the digests and fills
//! the current part; full parts are uploaded by their own tasks while
//! reading goes on (memory stays at (concurrency + 1) × part size whatever
//! the file size). When the last byte is read the digest is compared with
//! the stored one: a match completes the multipart upload, a mismatch
//! aborts it — the object never exists unverified.
//!
//! The attempt runs in steps, each in its own module:
//! - `resume`: where this attempt starts (the earlier attempt's upload, as
//!   S3 knows it) and the sink it writes to;
//! - `read`: the read loop (hash, fill parts, heartbeat);
//! - `finish`: the fixity verdict, completing (or putting) the object, and
//!   whether S3 holds it as a delivery.
//!
//! Retries resume: the heartbeat carries the upload id and the digest
//! states at the end of the last unbroken run of uploaded parts, so a retry
//! lists the parts S3 holds and reads on from that checkpoint. Live
//! progress is the heartbeat too (read by the API with describe): it costs
//! no history events.

mod finish;
mod heartbeat;
mod read;
mod resume;

use crate::{
    attempt::{
        end_span, ended, file_attributes, fixity_tag, last_word, location_of, previous_beat,
        step_span, stored_digest, Headway,
    },
    digest::MultiHasher,
    failure::Failure,
    notify::signal_workflow,
    observe::{annotate, begin, record_attributes},
    repository::Reader,
    Activities,
};
use model::catalog::{DigestAlgorithm, FileLocation, Fixity, RepositoryFile};
use opentelemetry::KeyValue;
use std::time::Instant;
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;
use tracing::info;
use workflows::{DisseminationWorkflow, TransferHeartbeat, TransferInput, TransferOutcome};

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
    let (previous, headway) = previous_beat(ctx);
    let mut attempt = Attempt {
        acts,
        ctx,
        input: &input,
        headway,
        last_beat: previous.clone(),
        started: Instant::now(),
        base: 0,
    };
    match attempt.run(previous).await {
        Ok(outcome) => Ok(outcome),
        Err(failure) => {
            last_word(ctx, attempt.parting_beat(), &failure).await;
            Err(ended(failure, attempt.headway.last, input.retry_for_ms))
        }
    }
}

/// One attempt at a transfer, with what its heartbeats report.
pub(crate) struct Attempt<'a> {
    acts: &'a Activities,
    ctx: &'a ActivityContext,
    input: &'a TransferInput,
    /// How far the step has got, and when it last went further (this
    /// attempt or, from the heartbeat, an earlier one).
    headway: Headway,
    /// The heartbeat last recorded (this attempt's or the earlier one's):
    /// where a retry resumes.
    last_beat: Option<TransferHeartbeat>,
    started: Instant,
    /// Bytes read before this attempt (the rate counts this attempt's only).
    base: u64,
}

/// What an attempt reads and where it writes, fixed before the first byte.
pub(crate) struct Target<'a> {
    file: &'a RepositoryFile,
    location: &'a FileLocation,
    stored: &'a Fixity,
    /// What the object is verified against (`x-amz-meta-fixity`).
    fixity_tag: String,
    bucket: String,
    key: model::ObjectKey,
    part_size: u64,
    max_in_flight: usize,
    /// Larger than one part: a multipart upload (else one verified put).
    multipart: bool,
    algorithms: Vec<DigestAlgorithm>,
}

impl<'a> Attempt<'a> {
    async fn run(
        &mut self,
        previous: Option<TransferHeartbeat>,
    ) -> Result<TransferOutcome, Failure> {
        let target = self.target()?;
        annotate([
            KeyValue::new("location", target.location.location_id.clone()),
            KeyValue::new("digestAlgorithm", target.stored.algorithm.as_str()),
        ]);
        self.acts
            .s3
            .ensure_bucket(&target.bucket)
            .await
            .map_err(|e| Failure::Upload(e.to_string()))?;
        let start = self.start_from(&target, previous.as_ref()).await?;
        let mut written = self.open_sink(&target, start).await?;
        self.announce_upload(&written, target.part_size).await?;
        let offset = written.hasher.bytes();
        self.base = offset;
        let reader = self.open_copy(&target, offset).await?;
        info!(
            dissemination_id = %self.input.record.dissemination_id,
            file = %target.file.relative_path, location = %target.location.location_id,
            attempt = self.ctx.info().attempt, resumed_from = offset,
            found_complete = written.found_complete, "transfer started"
        );
        let upload_span = step_span("upload", file_attributes(target.file, target.location));
        if let Err(e) = self.read_all(&target, &mut written, reader).await {
            end_span(upload_span, Some("stopped".into()));
            return Err(e);
        }
        self.finish(&target, written, offset, upload_span).await
    }

    fn target(&self) -> Result<Target<'a>, Failure> {
        let (acts, input) = (self.acts, self.input);
        let file = &input.file;
        let stored = stored_digest(file)?;
        let s3cfg = &acts.cfg.s3;
        let (part_size, max_in_flight) =
            crate::s3::part_plan(file.size, s3cfg.part_size_mib, s3cfg.upload_concurrency);
        Ok(Target {
            file,
            location: location_of(file, input.location_index)?,
            stored,
            fixity_tag: fixity_tag(stored),
            bucket: acts.cfg.client_bucket(input.record.client_id.as_str()),
            key: input.record.object_key(delivered_name(input)),
            part_size,
            max_in_flight,
            multipart: file.size > part_size,
            algorithms: MultiHasher::algorithms_for(file),
        })
    }

    /// The copy, read from `offset` on; a copy that cannot be read is
    /// counted and logged for operators.
    async fn open_copy(&self, target: &Target<'_>, offset: u64) -> Result<Reader, Failure> {
        let location = target.location;
        self.acts
            .repo
            .open(location, offset, target.file.size)
            .await
            .map_err(|e| {
                let failure = Failure::from(e);
                if matches!(
                    failure,
                    Failure::LocationUnreadable(_) | Failure::NoReader(_)
                ) {
                    self.acts.metrics.unreadable(&location.location_id);
                    tracing::warn!(file = %target.file.relative_path,
                        location = %location.location_id, error = %failure,
                        "repository copy unreadable");
                }
                failure
            })
    }
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

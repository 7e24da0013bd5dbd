//! Once every byte is read: the fixity verdict decides. A match completes
//! the upload (or puts the small object whole) and the object is checked
//! in the bucket before it counts as a delivery; a mismatch aborts the
//! upload (or removes an object an earlier attempt completed), so nothing
//! unverified is ever visible.

use super::{delivered_name, resume::Sink, resume::Written, Attempt, Target};
use crate::{
    attempt::{end_span, file_attributes, step_span, HEARTBEAT_EVERY},
    delivery::delivered_file,
    digest,
    failure::Failure,
    notify::signal_workflow,
    s3::S3Error,
};
use model::{catalog::DigestAlgorithm, DisseminationStatus};
use opentelemetry::{global::BoxedSpan, trace::Span as _, KeyValue};
use tracing::info;
use workflows::{DisseminationWorkflow, FixityOutcome, TransferOutcome};

impl Attempt<'_> {
    pub(super) async fn finish(
        &mut self,
        target: &Target<'_>,
        w: Written,
        offset: u64,
        upload_span: BoxedSpan,
    ) -> Result<TransferOutcome, Failure> {
        let (file, location_id) = (target.file, &target.location.location_id);
        let Written {
            hasher,
            mut sink,
            found_complete,
            part,
        } = w;
        let read = hasher.bytes();
        self.report(DisseminationStatus::FixityCheck).await;
        let mut span = step_span("fixity", file_attributes(file, target.location));
        span.set_attribute(KeyValue::new(
            "digestAlgorithm",
            target.stored.algorithm.as_str(),
        ));
        let digests = hasher.finish();
        let verdict = digest::verify(file, target.stored, location_id, read, &digests);
        self.acts
            .metrics
            .fixity(target.stored.algorithm.as_str(), verdict.is_ok());
        end_span(span, verdict.clone().err());
        let computed = match verdict {
            Ok(computed) => computed,
            Err(message) => {
                match &mut sink {
                    Sink::Parts(p) => p.abort().await,
                    // The copy read now is not the one verified before: the
                    // object cannot be vouched for any more.
                    Sink::Complete(_) => {
                        self.acts
                            .s3
                            .delete_object(&target.bucket, target.key.as_str())
                            .await
                    }
                    Sink::Whole => {}
                }
                end_span(upload_span, Some("aborted: fixity mismatch".into()));
                return Err(Failure::FixityMismatch(message));
            }
        };
        info!(file = %file.relative_path, location = %location_id,
            algorithm = target.stored.algorithm.as_str(), "fixity verified");
        self.report(DisseminationStatus::UploadingToS3).await;
        let reused = self.complete(target, &mut sink, part, read).await?;
        // A whole object went in one PUT that S3 checked against its
        // Content-MD5: it is these bytes. A multipart object is checked in
        // the bucket (its completion may have been an earlier attempt's).
        let put_whole = matches!(sink, Sink::Whole);
        if !put_whole && !self.is_delivery(target).await? {
            return Err(Failure::Upload(format!(
                "uploaded {} but S3 does not report {} bytes verified as {}",
                target.key, file.size, target.fixity_tag
            )));
        }
        end_span(upload_span, None);
        if !found_complete {
            self.acts.metrics.uploaded(file.size);
        }
        let sha256 = digests
            .get(&DigestAlgorithm::Sha256)
            .cloned()
            .unwrap_or_default();
        let input = self.input;
        let delivered = delivered_file(
            file,
            delivered_name(input),
            sha256,
            input.link_lifetime_secs,
        );
        info!(dissemination_id = %input.record.dissemination_id, bucket = %target.bucket,
            key = %target.key, bytes = file.size, parts_reused = reused, resumed_from = offset,
            found_complete, "delivered");
        Ok(TransferOutcome {
            fixity: FixityOutcome {
                algorithm: target.stored.algorithm,
                location_id: location_id.clone(),
                digest: computed,
            },
            delivered,
            bytes_read: read - offset,
            parts_reused: reused,
            resumed_from: offset,
            found_complete,
        })
    }

    /// Tells the workflow the transfer's step (executions before flow 10:
    /// from 10 on the API reads it from the heartbeat).
    async fn report(&self, step: DisseminationStatus) {
        if !self.input.silent {
            let what = format!("report the step {step}");
            signal_workflow(self.ctx, DisseminationWorkflow::transfer_step, step, &what).await;
        }
    }

    /// The verified bytes made visible: the last parts waited for and the
    /// upload completed, or the small object put whole. Parts reused.
    async fn complete(
        &mut self,
        target: &Target<'_>,
        sink: &mut Sink,
        part: bytes::BytesMut,
        read: u64,
    ) -> Result<u32, Failure> {
        let s3 = &self.acts.s3;
        let (bucket, key) = (target.bucket.as_str(), target.key.as_str());
        match sink {
            Sink::Parts(p) => {
                while p.in_flight() > 0 {
                    p.wait_one(HEARTBEAT_EVERY).await?;
                    self.beat_upload(p, read, target.part_size).await?;
                }
                self.beat_upload(p, read, target.part_size).await?;
                match s3
                    .complete_multipart(bucket, key, &p.upload_id, &p.completed_parts())
                    .await
                {
                    Ok(()) => {}
                    // Completed by a request whose answer was lost: the object says so.
                    Err(S3Error::NoSuchUpload(what)) => {
                        if !self.is_delivery(target).await? {
                            return Err(Failure::Upload(format!(
                                "{what} (lost before completion)"
                            )));
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
                Ok(p.reused)
            }
            Sink::Whole => {
                s3.put_verified(bucket, key, part.freeze(), &target.fixity_tag)
                    .await
                    .map_err(|e| Failure::Upload(e.to_string()))?;
                Ok(0)
            }
            Sink::Complete(_) => Ok(0),
        }
    }

    /// The object is in the bucket, whole, verified against the stored digest.
    pub(super) async fn is_delivery(&self, target: &Target<'_>) -> Result<bool, Failure> {
        let head = self
            .acts
            .s3
            .head(&target.bucket, target.key.as_str())
            .await
            .map_err(|e| Failure::Upload(e.to_string()))?;
        Ok(head.is_some_and(|h| {
            h.size == self.input.file.size && h.fixity.as_deref() == Some(&target.fixity_tag)
        }))
    }
}

//! Where an attempt starts and the sink it writes to: the earlier
//! attempt's multipart upload as S3 knows it (its parts listed, the digest
//! states at the end of the last unbroken run of parts), or a completed
//! object an attempt finished without being able to report, or nothing.

use super::{heartbeat::SinkView, Attempt, Target};
use crate::parts::Parts;
use crate::{attempt::heartbeat_now, digest::MultiHasher, failure::Failure, s3::S3Error};
use std::collections::BTreeMap;
use tracing::info;
use workflows::{HashCheckpoint, MultipartState, Phase, TransferHeartbeat};

/// How an attempt starts, from the earlier attempt's heartbeat and S3.
pub(super) enum Start {
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

/// Where this attempt's bytes go.
pub(super) enum Sink {
    Parts(Box<Parts>),
    /// One object put whole once verified (files up to one part).
    Whole,
    /// An earlier attempt completed the object: only the digests are finished.
    Complete(Option<MultipartState>),
}

/// The sink and the digest states this attempt goes on from.
pub(super) struct Written {
    pub(super) hasher: MultiHasher,
    pub(super) sink: Sink,
    /// The object was already complete in the bucket.
    pub(super) found_complete: bool,
    /// The last bytes read that no part holds yet (a whole object's bytes).
    pub(super) part: bytes::BytesMut,
}

impl Attempt<'_> {
    /// Where this attempt starts: the earlier attempt's upload, as S3 knows it.
    pub(super) async fn start_from(
        &self,
        target: &Target<'_>,
        previous: Option<&TransferHeartbeat>,
    ) -> Result<Start, Failure> {
        let s3 = &self.acts.s3;
        let (bucket, key) = (target.bucket.as_str(), target.key.as_str());
        let previous = previous.filter(|_| target.multipart);
        let Some((p, upload)) = previous.and_then(|p| Some((p, p.multipart.clone()?))) else {
            return Ok(Start::Fresh);
        };
        if p.location_id != target.location.location_id || p.part_size != target.part_size {
            s3.abort_multipart(bucket, key, &upload.upload_id).await;
            return Ok(Start::Fresh);
        }
        match s3.list_parts(bucket, key, &upload.upload_id).await {
            Ok(held) => {
                let checkpoint = p
                    .checkpoint
                    .clone()
                    .filter(|c| Parts::can_resume(c, target.part_size, &held));
                Ok(Start::Continue {
                    upload_id: upload.upload_id,
                    held,
                    checkpoint,
                })
            }
            Err(S3Error::NoSuchUpload(what)) => {
                if self.is_delivery(target).await? {
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

    /// The sink for `start`, and the digest states reading goes on from.
    pub(super) async fn open_sink(
        &self,
        target: &Target<'_>,
        start: Start,
    ) -> Result<Written, Failure> {
        let resumed = |checkpoint: &Option<HashCheckpoint>| {
            checkpoint
                .as_ref()
                .and_then(|c| MultiHasher::resume(&target.algorithms, c).map(|h| (h, c.clone())))
        };
        let fresh = || MultiHasher::new(&target.algorithms);
        let (hasher, sink, found_complete) = match start {
            Start::Fresh if target.multipart => {
                // An upload of this key that Temporal never heard of (its
                // worker lost between creating it and the announcement
                // below reaching the server) is aborted, not left open
                // until retention ends.
                let s3 = &self.acts.s3;
                s3.abort_uploads_of(&target.bucket, target.key.as_str())
                    .await;
                let upload_id = s3
                    .start_multipart(&target.bucket, target.key.as_str(), &target.fixity_tag)
                    .await
                    .map_err(|e| Failure::Upload(e.to_string()))?;
                let parts = self.parts(target, upload_id, BTreeMap::new(), None);
                (fresh(), Sink::Parts(parts), false)
            }
            Start::Fresh => (fresh(), Sink::Whole, false),
            Start::Continue {
                upload_id,
                held,
                checkpoint,
            } => {
                let (hasher, checkpoint) = match resumed(&checkpoint) {
                    Some((h, c)) => (h, Some(c)),
                    None => (fresh(), None),
                };
                let parts = self.parts(target, upload_id, held, checkpoint);
                (hasher, Sink::Parts(parts), false)
            }
            Start::Complete { upload, checkpoint } => {
                let hasher = resumed(&checkpoint).map_or_else(fresh, |(h, _)| h);
                (hasher, Sink::Complete(Some(upload)), true)
            }
        };
        let capacity = target.part_size.min(target.file.size.max(1)) as usize;
        Ok(Written {
            hasher,
            sink,
            found_complete,
            part: bytes::BytesMut::with_capacity(capacity),
        })
    }

    /// A new multipart upload's id reaches Temporal before the first byte
    /// is read, so a worker dying after it leaves the next attempt an
    /// upload it can resume (one dying before it leaves an upload the next
    /// attempt aborts, see `open_sink`).
    pub(super) async fn announce_upload(
        &mut self,
        w: &Written,
        part_size: u64,
    ) -> Result<(), Failure> {
        let Sink::Parts(p) = &w.sink else {
            return Ok(());
        };
        let upload_id = p.state().upload_id;
        let known = self
            .last_beat
            .as_ref()
            .and_then(|b| b.multipart.as_ref())
            .is_some_and(|m| m.upload_id == upload_id);
        if known {
            return Ok(());
        }
        self.beat(&SinkView::of(p), &w.hasher, Phase::Download, part_size)
            .await?;
        match self.last_beat.clone() {
            Some(beat) => heartbeat_now(self.ctx, beat).await,
            None => Ok(()),
        }
    }

    /// The multipart sink, with or without each part's `Content-MD5`.
    fn parts(
        &self,
        target: &Target<'_>,
        upload_id: String,
        held: BTreeMap<i32, String>,
        checkpoint: Option<HashCheckpoint>,
    ) -> Box<Parts> {
        let parts = Parts::new(
            self.acts.s3.clone(),
            (target.bucket.clone(), target.key.clone(), upload_id),
            (target.part_size, target.max_in_flight),
            held,
            checkpoint,
        );
        Box::new(if self.acts.cfg.s3.content_md5 {
            parts
        } else {
            parts.without_content_md5()
        })
    }
}

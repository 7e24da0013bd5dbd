//! One object written as it streams: bytes fill parts of a multipart
//! upload (the transfer's sink, at most `max_in_flight` parts at once),
//! the object's SHA-256 is computed on its own thread from the parts as
//! they leave, and the upload is completed only when the caller says the
//! bytes it came from were verified. A heartbeat goes out while writing
//! waits for S3.

use super::Beat;
use crate::{
    attempt::HEARTBEAT_EVERY,
    failure::Failure,
    parts::Parts,
    s3::{S3Error, S3},
};
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use std::thread::JoinHandle;
use tokio::sync::mpsc;
use workflows::HashCheckpoint;

/// Where an object goes and how its parts are cut.
pub(crate) struct Target {
    pub(crate) s3: S3,
    pub(crate) bucket: String,
    pub(crate) key: model::ObjectKey,
    pub(crate) content_type: &'static str,
    /// `x-amz-meta-fixity`: what the object was verified against.
    pub(crate) fixity_tag: String,
    pub(crate) part_size: u64,
    /// The object's expected size: no part buffer is larger.
    pub(crate) size_hint: u64,
    pub(crate) max_in_flight: usize,
    pub(crate) content_md5: bool,
}

pub(crate) struct ObjectWriter {
    target: Target,
    parts: Option<Parts>,
    part: BytesMut,
    part_no: i32,
    written: u64,
    /// Parts to the hashing thread; bounded, so a slower hash holds back
    /// the writer instead of piling up parts in memory.
    hash_tx: Option<mpsc::Sender<Bytes>>,
    hash_thread: Option<JoinHandle<String>>,
}

impl ObjectWriter {
    pub(crate) fn new(target: Target) -> Self {
        let (tx, mut rx) = mpsc::channel::<Bytes>(2);
        let thread = std::thread::spawn(move || {
            let mut h = Sha256::new();
            while let Some(part) = rx.blocking_recv() {
                h.update(&part);
            }
            hex::encode(h.finalize())
        });
        Self {
            target,
            parts: None,
            // Allocated at the first byte: members waiting for their TAR's
            // verdict hold no buffer.
            part: BytesMut::new(),
            part_no: 0,
            written: 0,
            hash_tx: Some(tx),
            hash_thread: Some(thread),
        }
    }

    pub(crate) fn key(&self) -> &str {
        self.target.key.as_str()
    }

    /// Appends bytes; full parts go to S3 (waiting, heartbeating, for a slot).
    pub(crate) async fn write(
        &mut self,
        mut data: &[u8],
        beat: &mut Beat<'_>,
    ) -> Result<(), Failure> {
        let capacity = self.target.part_size as usize;
        while !data.is_empty() {
            if self.part.capacity() == 0 {
                let left = self.target.size_hint.saturating_sub(self.written).max(1);
                self.part = BytesMut::with_capacity(capacity.min(left as usize));
            }
            let n = (capacity - self.part.len()).min(data.len());
            self.part.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.written += n as u64;
            if self.part.len() >= capacity {
                self.send_part(beat).await?;
            }
        }
        if let Some(p) = &mut self.parts {
            p.collect_finished()?;
        }
        Ok(())
    }

    async fn send_part(&mut self, beat: &mut Beat<'_>) -> Result<(), Failure> {
        if self.part.is_empty() {
            return Ok(());
        }
        if self.parts.is_none() {
            let t = &self.target;
            let upload_id =
                t.s3.start_multipart_of(&t.bucket, t.key.as_str(), &t.fixity_tag, t.content_type)
                    .await
                    .map_err(|e| Failure::Upload(e.to_string()))?;
            let parts = Parts::new(
                t.s3.clone(),
                (t.bucket.clone(), t.key.clone(), upload_id),
                (t.part_size, t.max_in_flight),
                Default::default(),
                None,
            );
            self.parts = Some(if t.content_md5 {
                parts
            } else {
                parts.without_content_md5()
            });
        }
        let Some(parts) = self.parts.as_mut() else {
            return Err(Failure::Upload("no multipart upload".into()));
        };
        while parts.is_full() {
            parts.wait_one(HEARTBEAT_EVERY).await?;
            beat.now().await?;
        }
        let body = std::mem::take(&mut self.part).freeze();
        if let Some(tx) = &self.hash_tx {
            let _ = tx.send(body.clone()).await;
        }
        self.part_no += 1;
        parts.push(self.part_no, body, HashCheckpoint::default());
        beat.due().await
    }

    /// Sends what is left, waits for every part and completes the upload:
    /// the object becomes visible now. Returns its size and SHA-256.
    pub(crate) async fn complete(mut self, beat: &mut Beat<'_>) -> Result<(u64, String), Failure> {
        let t = &self.target;
        if self.parts.is_none() && self.written == 0 {
            // An empty object: no multipart upload for it.
            t.s3.put_verified(&t.bucket, t.key.as_str(), Bytes::new(), &t.fixity_tag)
                .await
                .map_err(|e| Failure::Upload(e.to_string()))?;
        } else {
            self.send_part(beat).await?;
            let Some(parts) = self.parts.as_mut() else {
                return Err(Failure::Upload("no multipart upload".into()));
            };
            while parts.in_flight() > 0 {
                parts.wait_one(HEARTBEAT_EVERY).await?;
                beat.now().await?;
            }
            let t = &self.target;
            match t
                .s3
                .complete_multipart(
                    &t.bucket,
                    t.key.as_str(),
                    &parts.upload_id,
                    &parts.completed_parts(),
                )
                .await
            {
                Ok(()) => {}
                Err(S3Error::NoSuchUpload(what)) => {
                    return Err(Failure::Upload(format!("{what} (lost before completion)")))
                }
                Err(e) => return Err(e.into()),
            }
        }
        let t = &self.target;
        let size =
            t.s3.object_size(&t.bucket, t.key.as_str())
                .await
                .map_err(|e| Failure::Upload(e.to_string()))?;
        if size != Some(self.written) {
            return Err(Failure::Upload(format!(
                "completed {} but S3 reports {size:?} bytes, not {}",
                t.key, self.written
            )));
        }
        drop(self.hash_tx.take());
        let sha256 = self
            .hash_thread
            .take()
            .and_then(|h| h.join().ok())
            .ok_or_else(|| Failure::Transient("hashing the object failed".into()))?;
        Ok((self.written, sha256))
    }

    /// Removes the upload: nothing of this object becomes visible.
    pub(crate) async fn abort(mut self) {
        if let Some(p) = self.parts.as_mut() {
            p.abort().await;
        }
    }

    /// Stops the part uploads of this attempt (cancel, error): the workflow's
    /// discard or the next attempt removes the upload.
    pub(crate) fn stop(&mut self) {
        if let Some(p) = self.parts.as_mut() {
            p.stop();
        }
    }
}

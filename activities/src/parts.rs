//! The parts of one multipart upload (a transfer's object, or one the
//! package step writes), sent by their own tasks while reading goes on (at
//! most `max_in_flight` at once). Tracks the unbroken run of uploaded parts
//! and the digest states at its end: the checkpoint a retry resumes from.

use crate::s3::{S3Error, S3};
use futures::{stream::FuturesUnordered, FutureExt, StreamExt};
use md5::{Digest, Md5};
use std::{collections::BTreeMap, time::Duration};
use tokio::task::JoinHandle;
use workflows::{HashCheckpoint, MultipartState};

type PartTask = JoinHandle<Result<(i32, String), S3Error>>;

pub(crate) struct Parts {
    s3: S3,
    bucket: String,
    key: model::ObjectKey,
    pub(crate) upload_id: String,
    part_size: u64,
    done: BTreeMap<i32, String>,
    in_flight: FuturesUnordered<PartTask>,
    /// Parts S3 already holds beyond the checkpoint: kept when the bytes
    /// read again have the same MD5.
    reusable: BTreeMap<i32, String>,
    pub(crate) reused: u32,
    max_in_flight: usize,
    /// Send each part's MD5 for S3 to check (`s3.content_md5`).
    content_md5: bool,
    /// Digest states at the end of each pushed part not yet in the run.
    pending: BTreeMap<i32, HashCheckpoint>,
    /// The run 1..=`run` of uploaded parts and the states at its end.
    run: i32,
    checkpoint: Option<HashCheckpoint>,
}

impl Parts {
    /// A new or resumed upload: `held` are the parts S3 lists for it, and
    /// `checkpoint` (when parts 1..=k of it are all held) where reading goes on.
    pub(crate) fn new(
        s3: S3,
        (bucket, key, upload_id): (String, model::ObjectKey, String),
        (part_size, max_in_flight): (u64, usize),
        mut held: BTreeMap<i32, String>,
        checkpoint: Option<HashCheckpoint>,
    ) -> Self {
        let run = checkpoint
            .as_ref()
            .map_or(0, |c| (c.offset / part_size) as i32);
        let done: BTreeMap<i32, String> = (1..=run).filter_map(|n| held.remove_entry(&n)).collect();
        Self {
            s3,
            bucket,
            key,
            upload_id,
            part_size,
            done,
            in_flight: FuturesUnordered::new(),
            reusable: held,
            reused: 0,
            max_in_flight,
            content_md5: true,
            pending: BTreeMap::new(),
            run,
            checkpoint,
        }
    }

    /// Whether `checkpoint` lies on a part boundary with every part before
    /// it held by S3 (else the retry reads from byte 0).
    pub(crate) fn can_resume(
        checkpoint: &HashCheckpoint,
        part_size: u64,
        held: &BTreeMap<i32, String>,
    ) -> bool {
        checkpoint.offset > 0
            && checkpoint.offset.is_multiple_of(part_size)
            && (1..=(checkpoint.offset / part_size) as i32).all(|n| held.contains_key(&n))
    }

    /// Parts go without their MD5 (only to measure what checking costs).
    pub(crate) fn without_content_md5(mut self) -> Self {
        self.content_md5 = false;
        self
    }

    pub(crate) fn is_full(&self) -> bool {
        self.in_flight.len() >= self.max_in_flight
    }

    /// Uploads part `n` in its own task (the caller waits for a free slot
    /// first), or keeps the part S3 holds when its ETag is these bytes' MD5.
    /// `after` is the digest state once `n`'s bytes are hashed.
    pub(crate) fn push(&mut self, n: i32, body: bytes::Bytes, after: HashCheckpoint) {
        self.pending.insert(n, after);
        if let Some(etag) = self.reusable.remove(&n) {
            let md5 = hex::encode(Md5::digest(&body));
            if etag.trim_matches('"').eq_ignore_ascii_case(&md5) {
                self.finished_part(n, etag);
                self.reused += 1;
                return;
            }
        }
        let (s3, bucket, key, id) = (
            self.s3.clone(),
            self.bucket.clone(),
            self.key.clone(),
            self.upload_id.clone(),
        );
        let content_md5 = self.content_md5;
        self.in_flight.push(tokio::spawn(async move {
            // The part's MD5 on another thread: S3 checks the bytes it got
            // against it, and the completed object's ETag is made of them.
            let (body, md5) = tokio::task::spawn_blocking(move || {
                let md5: Option<[u8; 16]> = content_md5.then(|| Md5::digest(&body).into());
                (body, md5)
            })
            .await
            .map_err(|e| S3Error::Other(format!("hashing part {n}: {e}")))?;
            let etag = s3
                .upload_part(&bucket, key.as_str(), &id, n, body, md5)
                .await?;
            Ok((n, etag))
        }));
    }

    /// Waits up to `at_most` for one part upload to finish.
    pub(crate) async fn wait_one(&mut self, at_most: Duration) -> Result<(), S3Error> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(at_most, self.in_flight.next()).await {
            Ok(Some(joined)) => self.joined(joined),
            Ok(None) | Err(_) => Ok(()),
        }
    }

    /// Collects the parts that finished meanwhile, without waiting.
    pub(crate) fn collect_finished(&mut self) -> Result<(), S3Error> {
        while let Some(Some(joined)) = self.in_flight.next().now_or_never() {
            self.joined(joined)?;
        }
        Ok(())
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn joined(
        &mut self,
        joined: Result<Result<(i32, String), S3Error>, tokio::task::JoinError>,
    ) -> Result<(), S3Error> {
        let (n, etag) = joined.map_err(|e| S3Error::Other(format!("part upload task: {e}")))??;
        self.finished_part(n, etag);
        Ok(())
    }

    fn finished_part(&mut self, n: i32, etag: String) {
        self.done.insert(n, etag);
        while self.done.contains_key(&(self.run + 1)) {
            self.run += 1;
        }
        let run = self.run;
        if let Some(state) = self.pending.remove(&run) {
            self.checkpoint = Some(state);
        }
        self.pending.retain(|&k, _| k > run);
    }

    /// The digest states a retry may resume from.
    pub(crate) fn checkpoint(&self) -> Option<&HashCheckpoint> {
        self.checkpoint.as_ref()
    }

    pub(crate) fn bytes_uploaded(&self, total: u64) -> u64 {
        (self.done.len() as u64 * self.part_size).min(total)
    }

    /// For the heartbeat: which upload (S3's list of parts is what a retry trusts).
    pub(crate) fn state(&self) -> MultipartState {
        MultipartState {
            upload_id: self.upload_id.clone(),
            parts: Vec::new(),
        }
    }

    pub(crate) fn completed_parts(&self) -> Vec<(i32, String)> {
        self.done.iter().map(|(n, e)| (*n, e.clone())).collect()
    }

    /// Stops the part uploads of this attempt; the upload stays for a retry.
    pub(crate) fn stop(&mut self) {
        for task in self.in_flight.iter() {
            task.abort();
        }
        self.in_flight.clear();
    }

    /// Stops the part uploads and removes the multipart upload.
    pub(crate) async fn abort(&mut self) {
        self.stop();
        self.s3
            .abort_multipart(&self.bucket, self.key.as_str(), &self.upload_id)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(offset: u64) -> HashCheckpoint {
        HashCheckpoint {
            offset,
            states: Default::default(),
        }
    }

    #[test]
    fn a_checkpoint_needs_every_part_before_it() {
        let held: BTreeMap<i32, String> = [(1, "a".into()), (2, "b".into()), (4, "d".into())]
            .into_iter()
            .collect();
        assert!(Parts::can_resume(&cp(20), 10, &held));
        assert!(!Parts::can_resume(&cp(30), 10, &held), "part 3 missing");
        assert!(!Parts::can_resume(&cp(15), 10, &held), "not a boundary");
        assert!(!Parts::can_resume(&cp(0), 10, &held));
    }
}

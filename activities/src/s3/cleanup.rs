//! Removing what a dissemination left in a bucket: its objects and any
//! multipart uploads still open under its prefix (best effort where a
//! later step repeats it).

use super::{error_text, S3};
use aws_sdk_s3::error::ProvideErrorMetadata;

impl S3 {
    /// Deletes every object and aborts every upload under `prefix`.
    pub async fn delete_prefix(&self, bucket: &str, prefix: &str) -> anyhow::Result<u32> {
        let mut deleted = 0;
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await;
            let out = match out {
                Ok(o) => o,
                Err(e) if e.code() == Some("NoSuchBucket") => return Ok(0),
                Err(e) => anyhow::bail!("listing {prefix}: {}", error_text(&e)),
            };
            for obj in out.contents() {
                if let Some(key) = obj.key() {
                    self.client
                        .delete_object()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(|e| anyhow::anyhow!("deleting {key}: {}", error_text(&e)))?;
                    deleted += 1;
                }
            }
            token = out.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        self.abort_uploads(bucket, prefix).await;
        Ok(deleted)
    }

    /// Aborts every open multipart upload under `prefix` (best effort).
    pub async fn abort_uploads(&self, bucket: &str, prefix: &str) {
        self.abort_uploads_where(bucket, prefix, |_| true).await;
    }

    /// Aborts every open multipart upload of exactly `key` (best effort):
    /// one an attempt started and no one heard of (its worker lost before
    /// Temporal recorded the upload's id), before a fresh one starts.
    pub async fn abort_uploads_of(&self, bucket: &str, key: &str) {
        self.abort_uploads_where(bucket, key, |k| k == key).await;
    }

    async fn abort_uploads_where(&self, bucket: &str, prefix: &str, of: impl Fn(&str) -> bool) {
        let mut key_marker = None;
        let mut id_marker = None;
        loop {
            let Ok(out) = self
                .client
                .list_multipart_uploads()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker)
                .set_upload_id_marker(id_marker)
                .send()
                .await
            else {
                return;
            };
            for u in out.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    if !of(key) {
                        continue;
                    }
                    self.abort_multipart(bucket, key, id).await;
                }
            }
            if out.is_truncated() != Some(true) {
                return;
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            id_marker = out.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return;
            }
        }
    }

    /// Deletes one object (best effort: a retry or the discard step repeats it).
    pub async fn delete_object(&self, bucket: &str, key: &str) {
        let _ = self
            .client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
    }
}

//! S3 access: repository reads, parallel multipart uploads to the client's
//! bucket (links are signed by `model::presign`, without the SDK).
//!
//! This module holds the client, buckets and whole objects; `multipart`
//! the uploads in parts and their ETag checks; `cleanup` the deletion of
//! what a dissemination left behind.

mod cleanup;
mod multipart;

pub use multipart::{multipart_etag, part_plan};
pub use workflows::MultipartState;

use crate::repository::{OpenError, Reader};
use aws_sdk_s3::{error::ProvideErrorMetadata, primitives::ByteStream, Client};
use md5::Digest as _;
use platform::config::S3Config;
use std::{collections::HashSet, sync::Arc};
use tokio::sync::Mutex;

/// Object metadata naming the stored digest a delivered object was verified
/// against: an object carrying it was completed only after that digest
/// matched, so a retry that finds it has found the delivery.
pub const FIXITY_METADATA: &str = "fixity";

/// What the transfer needs to tell apart among S3's answers (by the error's
/// code, never by its message).
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The multipart upload is gone: aborted, expired, lost, or completed.
    #[error("{0}: the multipart upload no longer exists")]
    NoSuchUpload(String),
    /// Anything else: worth retrying.
    #[error("{0}")]
    Other(String),
}

impl S3Error {
    fn from_sdk<E>(what: String, e: &E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error,
    {
        if e.code() == Some("NoSuchUpload") {
            Self::NoSuchUpload(what)
        } else {
            Self::Other(format!("{what}: {}", error_text(e)))
        }
    }
}

/// An object's size and the fixity it was verified against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    pub fixity: Option<String>,
}

#[derive(Clone)]
pub struct S3 {
    client: Client,
    known_buckets: Arc<Mutex<HashSet<String>>>,
    /// `s3.expected_bucket_owner`: sent with every request, so S3 refuses
    /// to act on a bucket someone else owns; buckets are then never created.
    owner: Option<String>,
}

fn client_for(cfg: &S3Config, endpoint: &str) -> Client {
    // The one way the service builds an S3 client (also the event feed's).
    feed::s3_client(cfg, endpoint)
}

impl S3 {
    pub fn new(cfg: &S3Config) -> Self {
        Self {
            client: client_for(cfg, &cfg.endpoint),
            known_buckets: Arc::default(),
            owner: cfg.expected_bucket_owner.clone(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn open_object(
        &self,
        bucket: &str,
        key: &str,
        offset: u64,
    ) -> Result<Reader, OpenError> {
        let mut req = self.client.get_object().bucket(bucket).key(key);
        if offset > 0 {
            req = req.range(format!("bytes={offset}-"));
        }
        match req.send().await {
            Ok(out) => Ok(Box::new(out.body.into_async_read())),
            Err(e) => {
                let code = e.code().unwrap_or_default().to_owned();
                if matches!(
                    code.as_str(),
                    "NoSuchKey" | "NoSuchBucket" | "AccessDenied" | "InvalidRange"
                ) {
                    Err(OpenError::Unreadable(format!(
                        "s3://{bucket}/{key}: {code}"
                    )))
                } else {
                    Err(OpenError::Transient(format!(
                        "s3://{bucket}/{key}: {}",
                        error_text(&e)
                    )))
                }
            }
        }
    }

    /// The bucket answers (a repository location's readiness; nothing is created).
    pub async fn check_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        self.client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!(error_text(&e)))
    }

    /// Checks the bucket is there (and, with an expected owner, owned by
    /// it); without an expected owner a missing bucket is created (the
    /// embedded default). A bucket that exists under someone else is an error.
    pub async fn ensure_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let mut known = self.known_buckets.lock().await;
        if known.contains(bucket) {
            return Ok(());
        }
        let head = self
            .client
            .head_bucket()
            .bucket(bucket)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await;
        match head {
            Ok(_) => {}
            Err(e) if self.owner.is_some() => anyhow::bail!(
                "bucket {bucket} is not there or not owned by the expected owner: {}",
                error_text(&e)
            ),
            Err(_) => match self.client.create_bucket().bucket(bucket).send().await {
                Ok(_) => {}
                Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {}
                Err(e) if e.code() == Some("BucketAlreadyExists") => {
                    anyhow::bail!("bucket {bucket} exists and belongs to someone else")
                }
                Err(e) => anyhow::bail!("creating bucket {bucket}: {}", error_text(&e)),
            },
        }
        known.insert(bucket.to_owned());
        Ok(())
    }

    /// Puts a small object whole (repository copies, demo data).
    pub async fn put_small(
        &self,
        bucket: &str,
        key: &str,
        body: bytes::Bytes,
    ) -> anyhow::Result<()> {
        self.put(bucket, key, body, None).await
    }

    /// Puts a small delivered object verified against `fixity`.
    pub async fn put_verified(
        &self,
        bucket: &str,
        key: &str,
        body: bytes::Bytes,
        fixity: &str,
    ) -> anyhow::Result<()> {
        self.put(bucket, key, body, Some(fixity)).await
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: bytes::Bytes,
        fixity: Option<&str>,
    ) -> anyhow::Result<()> {
        let md5 = base64_md5(&md5::Md5::digest(&body).into());
        let mut req = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/x-tar")
            .content_length(body.len() as i64)
            .content_md5(md5)
            .set_expected_bucket_owner(self.owner.clone())
            .body(ByteStream::from(body));
        if let Some(f) = fixity {
            req = req.metadata(FIXITY_METADATA, f);
        }
        req.send()
            .await
            .map_err(|e| anyhow::anyhow!("uploading {key}: {}", error_text(&e)))?;
        Ok(())
    }

    /// Size of an object, or None when it does not exist.
    pub async fn object_size(&self, bucket: &str, key: &str) -> anyhow::Result<Option<u64>> {
        Ok(self.head(bucket, key).await?.map(|h| h.size))
    }

    /// Size and fixity metadata of an object, or None when it does not exist.
    pub async fn head(&self, bucket: &str, key: &str) -> anyhow::Result<Option<ObjectHead>> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectHead {
                size: out.content_length.unwrap_or(0).max(0) as u64,
                fixity: out.metadata().and_then(|m| m.get(FIXITY_METADATA)).cloned(),
            })),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => anyhow::bail!("checking {key}: {}", error_text(&e)),
        }
    }
}

fn base64_md5(md5: &[u8; 16]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(md5)
}

/// An SDK error in one line: code and message, or the causes of a request
/// that got no answer; never credentials.
pub fn error_text<E: ProvideErrorMetadata + std::error::Error>(e: &E) -> String {
    feed::s3_error_text(e)
}

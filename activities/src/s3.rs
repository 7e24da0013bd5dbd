//! S3 access: repository reads, parallel multipart uploads to the client's
//! bucket, presigned GET links signed for the public endpoint.

use crate::repository::{OpenError, Reader};
use aws_sdk_s3::{
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation,
    },
    error::ProvideErrorMetadata,
    presigning::PresigningConfig,
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
    Client,
};
use model::config::S3Config;
use secrecy::ExposeSecret;
use std::{collections::HashSet, sync::Arc, time::Duration};
use tokio::sync::Mutex;

#[derive(Clone)]
pub struct S3 {
    client: Client,
    /// Same credentials, the endpoint clients download from: presigned URLs
    /// carry its host in their signature.
    public: Client,
    known_buckets: Arc<Mutex<HashSet<String>>>,
}

fn client_for(cfg: &S3Config, endpoint: &str) -> Client {
    let creds = Credentials::new(
        cfg.access_key.clone(),
        cfg.secret_key.expose_secret().to_owned(),
        None,
        None,
        "dissemination-config",
    );
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(cfg.region.clone()))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(conf)
}

/// S3's limit on parts per upload.
const MAX_PARTS: u64 = 10_000;

/// Part size and parts in flight for a file of `size` bytes: the configured
/// part size unless the file needs bigger parts to fit in 10,000, and then
/// fewer in flight, so the bytes held stay about the configured budget.
pub fn part_plan(size: u64, part_size_mib: u64, concurrency: usize) -> (u64, usize) {
    const MIB: u64 = 1024 * 1024;
    let configured = part_size_mib.max(5) * MIB;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    let part = configured.max(needed);
    let budget = configured * concurrency.max(1) as u64;
    let in_flight = (budget / part).max(1) as usize;
    (part, in_flight.min(concurrency.max(1)))
}

/// Progress of a multipart upload, kept in heartbeats so a retry resumes.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct MultipartState {
    pub upload_id: String,
    /// (part number, ETag) of the parts already uploaded.
    pub parts: Vec<(i32, String)>,
}

impl S3 {
    pub fn new(cfg: &S3Config) -> Self {
        Self {
            client: client_for(cfg, &cfg.endpoint),
            public: client_for(cfg, cfg.public_endpoint()),
            known_buckets: Arc::default(),
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

    /// Creates the bucket unless this process has already seen it.
    pub async fn ensure_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let mut known = self.known_buckets.lock().await;
        if known.contains(bucket) {
            return Ok(());
        }
        if self
            .client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .is_err()
        {
            match self.client.create_bucket().bucket(bucket).send().await {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.code(),
                        Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                    ) => {}
                Err(e) => anyhow::bail!("creating bucket {bucket}: {}", error_text(&e)),
            }
        }
        known.insert(bucket.to_owned());
        Ok(())
    }

    pub async fn start_multipart(&self, bucket: &str, key: &str) -> anyhow::Result<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type("application/x-tar")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("starting upload of {key}: {}", error_text(&e)))?;
        out.upload_id
            .ok_or_else(|| anyhow::anyhow!("S3 returned no upload id for {key}"))
    }

    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: bytes::Bytes,
    ) -> anyhow::Result<String> {
        let out = self
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            // UNSIGNED-PAYLOAD: the part's SHA-256 is not computed a second
            // time for the signature (the S3 write path is the bottleneck and
            // shares the CPU); TLS to the endpoint protects the bytes in transit.
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("uploading part {part_number} of {key}: {}", error_text(&e))
            })?;
        out.e_tag
            .ok_or_else(|| anyhow::anyhow!("S3 returned no ETag for part {part_number} of {key}"))
    }

    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> anyhow::Result<()> {
        let mut sorted = parts.to_vec();
        sorted.sort_by_key(|p| p.0);
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                sorted
                    .into_iter()
                    .map(|(n, etag)| CompletedPart::builder().part_number(n).e_tag(etag).build())
                    .collect(),
            ))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("completing upload of {key}: {}", error_text(&e)))?;
        Ok(())
    }

    pub async fn put_small(
        &self,
        bucket: &str,
        key: &str,
        body: bytes::Bytes,
    ) -> anyhow::Result<()> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/x-tar")
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("uploading {key}: {}", error_text(&e)))?;
        Ok(())
    }

    /// Size of an object, or None when it does not exist.
    pub async fn object_size(&self, bucket: &str, key: &str) -> anyhow::Result<Option<u64>> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length.unwrap_or(0).max(0) as u64)),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => anyhow::bail!("checking {key}: {}", error_text(&e)),
        }
    }

    pub async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        lifetime: Duration,
    ) -> anyhow::Result<String> {
        let conf = PresigningConfig::expires_in(lifetime)?;
        let req = self
            .public
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(conf)
            .await?;
        Ok(req.uri().to_owned())
    }

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
        if let Ok(out) = self
            .client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
        {
            for u in out.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    let _ = self
                        .client
                        .abort_multipart_upload()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(id)
                        .send()
                        .await;
                }
            }
        }
        Ok(deleted)
    }

    pub async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
    }
}

/// An SDK error in one line: code and message, never credentials.
pub fn error_text<E: ProvideErrorMetadata + std::fmt::Display>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        _ => format!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::part_plan;
    const MIB: u64 = 1024 * 1024;

    #[test]
    fn parts_grow_for_huge_files_and_fewer_fly_at_once() {
        assert_eq!(part_plan(2048 * MIB, 8, 4), (8 * MIB, 4));
        assert_eq!(part_plan(MIB, 8, 4), (8 * MIB, 4));
        // 1 TiB needs parts of at least 105 MiB to fit in 10,000.
        let (part, in_flight) = part_plan(1024 * 1024 * MIB, 8, 4);
        assert_eq!(part, 105 * MIB);
        assert!(1024 * 1024 * MIB <= part * 10_000);
        assert_eq!(in_flight, 1, "memory stays near 4 × 8 MiB");
        assert_eq!(part_plan(100 * 1024 * MIB, 8, 4), (11 * MIB, 2));
    }
}

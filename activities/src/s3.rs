//! S3 access: repository reads, parallel multipart uploads to the client's
//! bucket (links are signed by `model::presign`, without the SDK).

use crate::repository::{OpenError, Reader};
use aws_sdk_s3::{
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation,
    },
    error::ProvideErrorMetadata,
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
    Client,
};
use aws_smithy_types::timeout::TimeoutConfig;
use md5::Digest as _;
use platform::config::S3Config;
use secrecy::ExposeSecret;
use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};
use tokio::sync::Mutex;
pub use workflows::MultipartState;

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
        E: ProvideErrorMetadata + std::fmt::Display,
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
        // A server that stops answering (SIGSTOP, a dead link) must fail the
        // request, not hang the transfer: the retry policy takes over.
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
                .operation_attempt_timeout(Duration::from_millis(cfg.request_timeout_ms))
                .build(),
        )
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

    /// Starts a multipart upload of an object to be verified against `fixity`.
    pub async fn start_multipart(
        &self,
        bucket: &str,
        key: &str,
        fixity: &str,
    ) -> anyhow::Result<String> {
        self.start_multipart_of(bucket, key, fixity, "application/x-tar")
            .await
    }

    /// The same, for an object of another content type.
    pub async fn start_multipart_of(
        &self,
        bucket: &str,
        key: &str,
        fixity: &str,
        content_type: &str,
    ) -> anyhow::Result<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .metadata(FIXITY_METADATA, fixity)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("starting upload of {key}: {}", error_text(&e)))?;
        out.upload_id
            .ok_or_else(|| anyhow::anyhow!("S3 returned no upload id for {key}"))
    }

    /// Uploads one part with its MD5 (`Content-MD5`: S3 refuses bytes that
    /// arrive otherwise) and checks the ETag S3 answers names that MD5;
    /// without an MD5 (`s3.content_md5 = false`, to measure its cost) S3's
    /// own ETags still make up the completed object's.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: bytes::Bytes,
        md5: Option<[u8; 16]>,
    ) -> Result<String, S3Error> {
        let out = self
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(body.len() as i64)
            .set_content_md5(md5.as_ref().map(base64_md5))
            .set_expected_bucket_owner(self.owner.clone())
            .body(ByteStream::from(body))
            // UNSIGNED-PAYLOAD: the part's SHA-256 is not computed a second
            // time for the signature (the S3 write path is the bottleneck and
            // shares the CPU); TLS to the endpoint protects the bytes in transit.
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(format!("uploading part {part_number} of {key}"), &e))?;
        let etag = out.e_tag.ok_or_else(|| {
            S3Error::Other(format!(
                "S3 returned no ETag for part {part_number} of {key}"
            ))
        })?;
        if md5.is_some_and(|m| !etag.trim_matches('"').eq_ignore_ascii_case(&hex::encode(m))) {
            return Err(S3Error::Other(format!(
                "part {part_number} of {key}: S3 stored other bytes (ETag {etag})"
            )));
        }
        Ok(etag)
    }

    /// The parts S3 holds for an upload, (part number → ETag), all pages.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<BTreeMap<i32, String>, S3Error> {
        let mut parts = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_parts()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .set_expected_bucket_owner(self.owner.clone())
                .send()
                .await
                .map_err(|e| S3Error::from_sdk(format!("listing the parts of {key}"), &e))?;
            for p in out.parts() {
                if let (Some(n), Some(etag)) = (p.part_number(), p.e_tag()) {
                    parts.insert(n, etag.to_owned());
                }
            }
            match out.next_part_number_marker() {
                Some(next)
                    if out.is_truncated() == Some(true) && marker.as_deref() != Some(next) =>
                {
                    marker = Some(next.to_owned());
                }
                _ => break,
            }
        }
        Ok(parts)
    }

    /// Completes the upload from `parts` and checks the object's ETag is the
    /// multipart ETag of exactly those parts (MD5 of their MD5s, `-N`).
    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<(), S3Error> {
        let expected = multipart_etag(parts);
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
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(format!("completing the upload of {key}"), &e))?;
        match (out.e_tag(), expected) {
            (Some(got), Some(want)) if !got.trim_matches('"').eq_ignore_ascii_case(&want) => {
                Err(S3Error::Other(format!(
                    "completed {key} with ETag {got}, not {want} of the parts sent"
                )))
            }
            _ => Ok(()),
        }
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

fn base64_md5(md5: &[u8; 16]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(md5)
}

/// The ETag S3 gives a multipart object: MD5 of the parts' MD5s, `-N`;
/// `None` when a part's ETag is not a plain MD5 (then it is not checked).
pub fn multipart_etag(parts: &[(i32, String)]) -> Option<String> {
    let mut sorted = parts.to_vec();
    sorted.sort_by_key(|p| p.0);
    let mut all = Vec::with_capacity(16 * sorted.len());
    for (_, etag) in &sorted {
        all.extend(
            hex::decode(etag.trim_matches('"'))
                .ok()
                .filter(|b| b.len() == 16)?,
        );
    }
    Some(format!(
        "{}-{}",
        hex::encode(md5::Md5::digest(&all)),
        sorted.len()
    ))
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
    use super::{multipart_etag, part_plan};

    #[test]
    fn the_multipart_etag_is_the_md5_of_the_part_md5s() {
        use md5::Digest;
        let (a, b) = (md5::Md5::digest(b"part one"), md5::Md5::digest(b"part two"));
        let parts = vec![(2, format!("\"{}\"", hex::encode(b))), (1, hex::encode(a))];
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        let want = format!("{}-2", hex::encode(md5::Md5::digest(&both)));
        assert_eq!(multipart_etag(&parts), Some(want));
        assert_eq!(multipart_etag(&[(1, "not-an-md5".into())]), None);
    }
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

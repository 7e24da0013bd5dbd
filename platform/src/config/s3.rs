//! `[s3]`: the delivery S3 (endpoint, credentials, the default bucket) and
//! how uploads to it are made (part size, parts in flight, timeouts).

use super::expose;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct S3Config {
    pub endpoint: String,
    /// Endpoint clients download from; presigned URLs are signed for its host.
    pub public_endpoint: Option<String>,
    pub region: String,
    pub access_key: String,
    #[serde(serialize_with = "expose")]
    pub secret_key: SecretString,
    /// Bucket for clients without one of their own.
    pub default_bucket: String,
    /// Multipart part size; larger files get larger parts (S3 allows
    /// 10,000 parts), with fewer in flight so memory stays the same.
    pub part_size_mib: u64,
    /// Parts uploaded at once. Memory per transfer is about
    /// (upload_concurrency + 1) × part size. Measured on SeaweedFS
    /// (scripts/bench.sh): 8 MiB × 4 keeps up with `aws s3 cp` at ~135 MiB RSS.
    pub upload_concurrency: usize,
    /// How long one S3 request may take before it fails and is retried (a
    /// server that stopped answering must not hang a transfer).
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Each part goes with its `Content-MD5`, which S3 checks; off only to
    /// measure what that costs (`scripts/bench.sh`).
    pub content_md5: bool,
    /// The account that must own the clients' buckets (AWS account id):
    /// sent with every request, and buckets are then never created.
    pub expected_bucket_owner: Option<String>,
}

impl S3Config {
    pub fn public_endpoint(&self) -> &str {
        self.public_endpoint.as_deref().unwrap_or(&self.endpoint)
    }
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:8333".into(),
            public_endpoint: None,
            region: "us-east-1".into(),
            access_key: "dissemination".into(),
            secret_key: SecretString::from("dissemination-secret"),
            default_bucket: "dissemination".into(),
            part_size_mib: 8,
            upload_concurrency: 4,
            request_timeout_ms: 120_000,
            connect_timeout_ms: 5_000,
            content_md5: true,
            expected_bucket_owner: None,
        }
    }
}

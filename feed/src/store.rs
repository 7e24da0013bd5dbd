//! The few S3 calls the feed makes, with S3's answers sorted into what the
//! protocol tells apart: created or already there (412), present or not.

use crate::FeedError;
use aws_sdk_s3::{
    config::{
        http::HttpResponse, timeout::TimeoutConfig, BehaviorVersion, Credentials, Region,
        RequestChecksumCalculation, ResponseChecksumValidation,
    },
    error::{ProvideErrorMetadata, SdkError},
    primitives::ByteStream,
    Client,
};
use chrono::{DateTime, Utc};
use platform::config::S3Config;
use secrecy::ExposeSecret;
use std::time::Duration;

/// What a conditional PUT found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Put {
    Created,
    /// The key was already there (412): someone else's object, untouched.
    Exists,
}

/// One listed object.
#[derive(Clone, Debug)]
pub(crate) struct Listed {
    pub key: String,
    pub last_modified: Option<DateTime<Utc>>,
}

pub(crate) struct Listing {
    pub objects: Vec<Listed>,
    pub truncated: bool,
}

#[derive(Clone)]
pub(crate) struct Store {
    client: Client,
    bucket: String,
    /// `s3.expected_bucket_owner`: sent with every request; the bucket is
    /// then never created.
    owner: Option<String>,
}

/// How often a PUT that met a concurrent conditional write (409) is tried again.
const CONFLICT_TRIES: u32 = 5;

/// The S3 client the service uses for `cfg` at `endpoint`: path-style,
/// checksums only where required, and a server that stops answering
/// fails the request (connect and per-attempt timeouts) instead of hanging
/// it, so the caller's retry policy takes over.
pub fn s3_client(cfg: &S3Config, endpoint: &str) -> Client {
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
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
                .operation_attempt_timeout(Duration::from_millis(cfg.request_timeout_ms))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

impl Store {
    pub(crate) fn new(cfg: &S3Config, bucket: &str) -> Self {
        Self {
            client: s3_client(cfg, &cfg.endpoint),
            bucket: bucket.to_owned(),
            owner: cfg.expected_bucket_owner.clone(),
        }
    }

    /// Checks the bucket is there (owned by the expected owner, if one is
    /// configured); without an expected owner a missing bucket is created.
    pub(crate) async fn ensure_bucket(&self) -> Result<(), FeedError> {
        let head = self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await;
        match head {
            Ok(_) => Ok(()),
            Err(e) if self.owner.is_some() => Err(unavailable(
                &format!("bucket {} (expected owner)", self.bucket),
                &e,
            )),
            Err(_) => match self
                .client
                .create_bucket()
                .bucket(&self.bucket)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
                Err(e) => Err(unavailable(&format!("creating bucket {}", self.bucket), &e)),
            },
        }
    }

    /// PUT with `If-None-Match: *`: the object is written only if the key
    /// is free, atomically against every other such PUT.
    pub(crate) async fn put_if_absent(&self, key: &str, body: &[u8]) -> Result<Put, FeedError> {
        let mut tries = 0;
        loop {
            let sent = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type("application/json")
                .body(ByteStream::from(body.to_vec()))
                .set_expected_bucket_owner(self.owner.clone())
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(Put::Created),
                Err(e) if status(&e) == Some(412) => return Ok(Put::Exists),
                // AWS answers 409 while another conditional write of the
                // key is in flight: its outcome decides, so ask again.
                Err(e) if status(&e) == Some(409) && tries < CONFLICT_TRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20 << tries)).await;
                }
                Err(e) => return Err(unavailable(&format!("conditional PUT {key}"), &e)),
            }
        }
    }

    pub(crate) async fn put(&self, key: &str, body: &[u8]) -> Result<(), FeedError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable(&format!("PUT {key}"), &e))
    }

    /// The object's bytes, `None` if there is no such key.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, FeedError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || (status(&e) == Some(404) && e.code() != Some("NoSuchBucket")) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(unavailable(&format!("GET {key}"), &e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| FeedError::Unavailable(format!("reading {key}: {e}")))?;
        Ok(Some(bytes.to_vec()))
    }

    /// When the object was written, `None` if there is no such key.
    pub(crate) async fn head(&self, key: &str) -> Result<Option<DateTime<Utc>>, FeedError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await;
        match out {
            Ok(out) => Ok(Some(
                out.last_modified()
                    .and_then(to_chrono)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            )),
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_not_found())
                    || status(&e) == Some(404) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable(&format!("HEAD {key}"), &e)),
        }
    }

    /// Up to `max_keys` keys under `prefix` after `start_after`, in key order.
    pub(crate) async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max_keys: usize,
    ) -> Result<Listing, FeedError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .max_keys(max_keys.clamp(1, 1000) as i32)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|e| unavailable(&format!("listing {prefix}"), &e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_owned(),
                    last_modified: o.last_modified().and_then(to_chrono),
                })
            })
            .collect();
        Ok(Listing {
            objects,
            truncated: out.is_truncated().unwrap_or(false),
        })
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), FeedError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable(&format!("DELETE {key}"), &e))
    }
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// S3's code and message (never the SDK's debug dump) with what we were doing.
fn unavailable<E: ProvideErrorMetadata + std::error::Error>(what: &str, e: &E) -> FeedError {
    FeedError::Unavailable(format!("{what}: {}", s3_error_text(e)))
}

/// An S3 error as an operator reads it: S3's code and message, or, for a
/// request that got no answer (a timeout, a refused connection), the chain
/// of causes that says which (the SDK's own text is only "dispatch
/// failure").
pub fn s3_error_text<E: ProvideErrorMetadata + std::error::Error>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        _ => {
            let mut text = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

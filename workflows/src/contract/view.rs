//! What clients and operators see of a dissemination: its view (GET, the
//! memo, the webhook's `data`), delivered files, reasons, progress, the
//! webhook's delivery and the audit trail. The REST schema is derived from
//! these types.

use super::{DisseminationRecord, ReasonCode};
use model::{catalog::DigestAlgorithm, DisseminationStatus};
use serde::{Deserialize, Serialize};

/// What the API shows a client: identity, current status and, once
/// delivered, where the files are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisseminationView {
    #[serde(flatten)]
    pub record: DisseminationRecord,
    pub status: DisseminationStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DeliveredFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    /// When the delivered objects will be (or were) deleted; links can be
    /// regenerated until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub retention_ends_at: Option<model::time::Timestamp>,
    /// The delivered objects were deleted at the end of retention.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub objects_deleted: bool,
    /// Delivery of the webhook telling the client about this dissemination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookDelivery>,
    /// Bytes done of the file being downloaded or uploaded (from the
    /// transfer's heartbeat; not kept in the memo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// What a step is waiting for while a dependency is down (from the
    /// pending activity's last failure; not kept in the memo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// The client confirmed every delivered file's digest (v1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Acknowledged>,
    /// While QUEUED: its place in its band (v1.2; computed on read, not
    /// kept in the memo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueuePosition>,
}

/// A QUEUED dissemination's place: how many requests start before it on
/// its queue (its band's, or the one every band's AIPs of its size class
/// share; a batch's items have queues of their own) by priority, then
/// age, and, from the queue's recent throughput, an estimate of when it
/// starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuePosition {
    pub ahead: u32,
    /// The priority band (`urgent`, `high`, `normal`, `low` by default).
    pub band: String,
    /// An estimate (RFC 3339), from the items the band finished over the
    /// last minutes; absent while there is no rate to go by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub estimated_start: Option<model::time::Timestamp>,
}

/// A successful acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Acknowledged {
    /// RFC 3339.
    #[schema(value_type = String)]
    pub at: model::time::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A step retrying after an infrastructure error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    /// `S3`, `the bit repository` or `a worker`.
    #[serde(rename = "for")]
    pub waiting_for: String,
    /// The last error, in one line.
    pub reason: String,
    /// Attempts made so far.
    pub attempt: u32,
    /// RFC 3339, when the next attempt is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub next_attempt_at: Option<model::time::Timestamp>,
}

impl DisseminationView {
    /// A dissemination just accepted: RECEIVED, nothing done yet.
    pub fn received(record: DisseminationRecord) -> Self {
        Self {
            record,
            status: DisseminationStatus::Received,
            files: Vec::new(),
            reasons: Vec::new(),
            retention_ends_at: None,
            objects_deleted: false,
            webhook: None,
            progress: None,
            waiting: None,
            acknowledged: None,
            queue: None,
        }
    }
}

/// The outcome of an audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn of(ok: bool) -> Self {
        if ok {
            Self::Success
        } else {
            Self::Failure
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// What an audit event records (PREMIS event types, in words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "dissemination requested")]
    Requested,
    #[serde(rename = "retrieval")]
    Retrieval,
    #[serde(rename = "fixity check")]
    FixityCheck,
    #[serde(rename = "delivery")]
    Delivery,
    #[serde(rename = "link regeneration")]
    LinkRegeneration,
    #[serde(rename = "webhook")]
    Webhook,
    #[serde(rename = "cancellation")]
    Cancellation,
    #[serde(rename = "deletion")]
    Deletion,
    #[serde(rename = "failure")]
    Failure,
    /// The receiving archive checked what it downloaded (v1.2).
    #[serde(rename = "acknowledgement")]
    Acknowledgement,
}

/// Which half of a transfer the progress is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Bytes read from the bit repository.
    #[default]
    Download,
    /// Parts landing in the client's bucket.
    Upload,
    /// Files being recalled from tape (status STAGING).
    #[serde(rename = "STAGING")]
    Staging,
}

/// Where the webhook delivery stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookState {
    /// Not delivered yet; retried on schedule.
    #[default]
    Pending,
    Delivered,
    /// The endpoint answered 410 Gone: not retried.
    Gone,
    /// The client has no webhook endpoint.
    NotConfigured,
    /// Retried for the whole schedule without success.
    GaveUp,
}

/// The webhook messages the service sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEvent {
    #[default]
    #[serde(rename = "dissemination.delivered")]
    Delivered,
    #[serde(rename = "dissemination.failed")]
    Failed,
}

impl WebhookEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "dissemination.delivered",
            Self::Failed => "dissemination.failed",
        }
    }
}

impl WebhookState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Gone => "gone",
            Self::NotConfigured => "not_configured",
            Self::GaveUp => "gave_up",
        }
    }
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Upload => "upload",
            Self::Staging => "STAGING",
        }
    }
}

impl std::fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for WebhookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a long transfer has got.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub phase: Phase,
    pub file: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Estimated seconds until this phase of this file is done, from the
    /// rate so far (absent until there is a rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<u64>,
    /// STAGING: files on disk so far, of how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_staged: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_total: Option<u32>,
    /// STAGING: bytes on disk so far (of `bytesTotal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_staged: Option<u64>,
    /// STAGING: when the tape system started on the recall, where it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub staging_started_at: Option<model::time::Timestamp>,
    /// An estimate (RFC 3339) of when this phase of this file ends, from
    /// its own rate (`secondsLeft` from now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub estimated_end: Option<model::time::Timestamp>,
}

impl Progress {
    /// The progress GET shows while STAGING.
    pub fn staging(p: &super::StagingProgress) -> Self {
        Self {
            phase: Phase::Staging,
            file: String::new(),
            bytes_done: p.bytes_staged,
            bytes_total: p.bytes_total,
            seconds_left: None,
            files_staged: Some(p.files_staged),
            files_total: Some(p.files_total),
            bytes_staged: Some(p.bytes_staged),
            staging_started_at: p.started_at.clone(),
            estimated_end: None,
        }
    }
}

/// How the webhook delivery went: visible to the client and operators.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// `webhook-id`, the same on every attempt.
    pub message_id: String,
    pub event_type: WebhookEvent,
    pub state: WebhookState,
    pub attempts: u32,
    /// RFC 3339, when the last attempt was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub last_attempt_at: Option<model::time::Timestamp>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// RFC 3339, when the next attempt is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub next_attempt_at: Option<model::time::Timestamp>,
}

/// A delivered file, as in the `dissemination.delivered` webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredFile {
    /// Presigned GET link, signed on the way out (never kept in Temporal:
    /// empty in the workflow's state since links became bearer secrets).
    #[serde(rename = "downloadURL", default)]
    pub download_url: String,
    pub filename: String,
    pub filesize: u64,
    /// RFC 3339: when the download URL stops working.
    #[schema(value_type = String)]
    pub expiration_date: model::time::Timestamp,
    pub checksum: String,
    /// `SHA-256`.
    #[schema(value_type = String, example = "SHA-256")]
    pub checksum_algorithm: DigestAlgorithm,
    /// MD5 of the bytes when the catalog holds one (clients that need MD5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// RFC 3339: when the link was signed (it is valid until
    /// `expirationDate`); only in the workflow's state, never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub link_signed_at: Option<model::time::Timestamp>,
}

/// Why a dissemination ended FAILED or REJECTED.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
}

/// One entry of a dissemination's audit trail, PREMIS-style: what happened,
/// when (workflow time), with what outcome, to which file where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisseminationEvent {
    pub event_type: EventType,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub date_time: model::time::Timestamp,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Digest algorithm of a fixity check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
}

impl DisseminationView {
    /// The view as a client sees it: every delivered file with its link,
    /// signed by `sign` (object key, signing time, lifetime) from the times
    /// kept in the record, so the same record gives the same link. Links
    /// are bearer secrets: the workflow keeps none, whoever answers signs.
    pub fn with_links(
        mut self,
        sign: impl Fn(&model::ObjectKey, std::time::SystemTime, std::time::Duration) -> String,
    ) -> Self {
        for file in &mut self.files {
            let Some(signed_at) = file.link_signed_at.take() else {
                continue; // signed before links left the record: kept as recorded
            };
            let (Some(at), Some(until)) = (
                model::presign::parse_time(signed_at.as_str()),
                model::presign::parse_time(file.expiration_date.as_str()),
            ) else {
                continue;
            };
            let lifetime = until.duration_since(at).unwrap_or_default();
            file.download_url = sign(&self.record.object_key(&file.filename), at, lifetime);
        }
        self
    }
}

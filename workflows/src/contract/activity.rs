//! The activities' inputs, heartbeats and outcomes. Each is recorded in
//! every history that scheduled it: add optional fields only, never rename.

use super::{
    DeliveredFile, DisseminationEvent, DisseminationRecord, DisseminationView, LockRef, Progress,
    ReasonCode, WebhookEvent, WebhookState,
};
use model::catalog::{DigestAlgorithm, RepositoryFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixityOutcome {
    pub algorithm: DigestAlgorithm,
    pub location_id: String,
    pub digest: String,
}

/// One file from one location straight into the client's bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferInput {
    pub record: DisseminationRecord,
    pub file: RepositoryFile,
    pub location_index: usize,
    /// Tell the workflow when a worker starts (QUEUED ends then).
    pub announce_start: bool,
    pub link_lifetime_secs: u64,
    /// Retryable errors with no progress for this long end the transfer
    /// (non-retryable); absent: the retry policy's attempts decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_for_ms: Option<u64>,
    /// The file is delivered under its (normal) relative path, folders
    /// kept; false in executions that delivered under the last segment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_paths: bool,
    /// No signal for the steps (FIXITY_CHECK, UPLOADING_TO_S3): the API
    /// reads them from the heartbeat (flow 10 on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent: bool,
}

/// Heartbeat details of `transfer`: where a retry resumes, and the live
/// progress the API shows (read from the pending activity with describe, so
/// progress costs no history events).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferHeartbeat {
    pub file: String,
    pub location_id: String,
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub part_size: u64,
    /// The multipart upload under way (its parts are listed from S3 on resume).
    pub multipart: Option<MultipartState>,
    /// Digest states at the end of the last part of an unbroken run of
    /// uploaded parts: a retry reads on from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<HashCheckpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Unix milliseconds of the last byte read or part uploaded: retries
    /// without progress end after `retry_for_ms` from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_progress_unix_ms: Option<u64>,
    /// How far any attempt of the step has got: only going beyond it is
    /// progress, so re-reading what an earlier attempt read does not keep
    /// a failing step retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<Reached>,
}

/// The furthest any attempt has got: bytes read from the copy, bytes in
/// uploaded parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reached {
    pub read: u64,
    #[serde(default)]
    pub uploaded: u64,
}

/// A multipart upload in a heartbeat (field names as first recorded).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartState {
    pub upload_id: String,
    /// (part number, ETag); S3's own list of parts is what a retry trusts.
    #[serde(default)]
    pub parts: Vec<(i32, String)>,
}

/// Serialized digest states after `offset` bytes, hex, keyed by algorithm.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HashCheckpoint {
    pub offset: u64,
    pub states: BTreeMap<DigestAlgorithm, String>,
}

/// What `transfer` did: the verified digest and the delivered object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferOutcome {
    pub fixity: FixityOutcome,
    pub delivered: DeliveredFile,
    pub bytes_read: u64,
    /// Parts a retry found already uploaded (checked against their MD5).
    pub parts_reused: u32,
    /// Where this attempt started reading (a retry's checkpoint; 0: the start).
    #[serde(default)]
    pub resumed_from: u64,
    /// The object was already complete in the bucket (an earlier attempt
    /// finished it but could not report).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub found_complete: bool,
}

/// The `package` step: every repository file read once, in order, from
/// the location the workflow chose for it; its selected members (or the
/// files whole) streamed into their objects or into one bag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageInput {
    pub record: DisseminationRecord,
    pub files: Vec<RepositoryFile>,
    /// Per file, the index of the location to read it from.
    pub locations: Vec<usize>,
    /// `format: "files"`: files already delivered by an earlier call
    /// (their members are complete in the bucket), not read again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<PackagedFile>,
    /// Tell the workflow when a worker starts (QUEUED ends then).
    pub announce_start: bool,
    pub link_lifetime_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_for_ms: Option<u64>,
    /// The audit trail so far, for the bag's `premis.xml`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<DisseminationEvent>,
    /// Files and members keep their (normal) paths, folders included; a
    /// name delivered twice is refused (`DUPLICATE_PATH`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_paths: bool,
    /// No signal for the steps (see `TransferInput::silent`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent: bool,
}

/// One repository file read and verified by `package`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackagedFile {
    pub fixity: FixityOutcome,
    pub bytes_read: u64,
    /// Members taken from it (the file itself when it is delivered whole).
    pub members: u32,
    /// `format: "files"`: its delivered members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<DeliveredFile>,
}

/// What `package` ended with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum PackageOutcome {
    /// Everything verified and complete in the bucket.
    Delivered {
        files: Vec<PackagedFile>,
        delivered: Vec<DeliveredFile>,
    },
    /// File number `file` at its chosen location does not match its stored
    /// digest (`mismatch`) or cannot be opened (`unreadable`); nothing read
    /// from it was completed. `done`: the files verified before it.
    CopyRefused {
        file: usize,
        unreadable: bool,
        message: String,
        done: Vec<PackagedFile>,
        /// No reader for that location on the worker: the next copy at once.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_reader: bool,
    },
    /// The request cannot be served from this AIP.
    Rejected { code: ReasonCode, message: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscardInput {
    pub record: DisseminationRecord,
}

/// Input of `presign_links`: fresh links for objects already delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignInput {
    pub record: DisseminationRecord,
    pub files: Vec<DeliveredFile>,
    pub link_lifetime_secs: u64,
}

/// What the webhook says; the activity adds id, timestamp and signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyInput {
    pub event_type: WebhookEvent,
    /// Stable across retries: `webhook-id`.
    pub message_id: String,
    /// When the event happened (workflow time), RFC 3339.
    pub occurred_at: model::time::Timestamp,
    pub view: DisseminationView,
    /// Which delivery attempt this is (the workflow schedules retries).
    #[serde(default)]
    pub attempt: u32,
}

/// `finish` (flow 10 on): once the final status is recorded, the
/// in-progress lock released and the webhook's first attempt made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishInput {
    /// The webhook (none for a dissemination the client cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockRef>,
    /// Tape copies read through stage requests: their pins released (and
    /// the requests deleted where they are this dissemination's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<super::TapeRelease>,
}

/// How `finish` went: the lock is released (else the step failed and is
/// retried); the webhook's first attempt, whatever the endpoint answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookAttempt>,
    /// Tape pins released (request ids), and why any was not (the tape
    /// system away: they expire after their `diskLifetime`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_released: Vec<String>,
}

/// One webhook attempt, as the workflow's retry schedule needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttempt {
    /// `delivered`, `not_configured`, `gone` (410: never again) or
    /// `pending` (to be tried again).
    pub state: WebhookState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The endpoint's `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyOutcome {
    /// `delivered` or `not_configured` (410 Gone is a failure).
    pub outcome: WebhookState,
    pub status_code: Option<u16>,
    pub attempt: u32,
}

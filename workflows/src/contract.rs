//! Types that cross the Temporal boundary. Their JSON shape is part of every
//! recorded history: add optional fields only, never rename.

use model::{
    catalog::{DigestAlgorithm, RepositoryFile},
    ArchiveId, ClientId, ContractId, DisseminationId, DisseminationStatus, Priority,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Workflow type names, fixed so renaming a Rust type breaks nothing.
pub const DISSEMINATION_WORKFLOW: &str = "DisseminationWorkflow";
pub const LOCK_WORKFLOW: &str = "DisseminationLock";

/// Memo key holding the latest [`DisseminationView`].
pub const MEMO_VIEW: &str = "dissemination";
/// Memo key of a lock workflow naming the dissemination holding it.
pub const MEMO_LOCK_HOLDER: &str = "disseminationId";

/// Application failure types the workflow reacts to.
pub mod failure_types {
    /// The bytes read do not match the stored digest (never retried blindly).
    pub const FIXITY_MISMATCH: &str = "FixityMismatch";
    /// The copy at this location cannot be read at all (missing, refused).
    pub const LOCATION_UNREADABLE: &str = "LocationUnreadable";
    /// The client's webhook endpoint answered 410 Gone.
    pub const WEBHOOK_GONE: &str = "WebhookGone";
    /// Configuration refuses the work (e.g. unknown location kind).
    pub const MISCONFIGURED: &str = "Misconfigured";
    /// The staged copy is gone from its host (restart with a clean folder).
    pub const STAGING_LOST: &str = "StagingLost";
    /// Delivered objects are no longer in the bucket.
    pub const OBJECTS_GONE: &str = "ObjectsGone";
    /// The client's bucket refused or failed a write (retryable).
    pub const UPLOAD_ERROR: &str = "UploadError";
    /// No reader for the copy's location on this worker (not configured,
    /// or a kind it cannot read): the next copy, at once.
    pub const NO_READER: &str = "NoReader";
}

/// Stable reason codes reported to clients.
pub mod reason_codes {
    pub const FIXITY_MISMATCH: &str = "FIXITY_MISMATCH";
    pub const NO_READABLE_COPY: &str = "NO_READABLE_COPY";
    pub const DOWNLOAD_FAILED: &str = "DOWNLOAD_FAILED";
    pub const UPLOAD_FAILED: &str = "UPLOAD_FAILED";
    pub const CANCELLED: &str = "CANCELLED";
    /// `select` matched no member of the AIP.
    pub const NOTHING_SELECTED: &str = "NOTHING_SELECTED";
    /// `select` with `format: "files"` matched more than 100 members.
    pub const TOO_MANY_FILES: &str = "TOO_MANY_FILES";
    /// A selected member is no regular file (a link, a sparse file…).
    pub const UNSUPPORTED_MEMBER: &str = "UNSUPPORTED_MEMBER";
    /// A repository file named `.tar` whose stored bytes are no readable TAR.
    pub const UNREADABLE_ARCHIVE: &str = "UNREADABLE_ARCHIVE";
    /// Two delivered files would have one name (or one would be a folder
    /// of the other): refused before any byte is uploaded.
    pub const DUPLICATE_PATH: &str = "DUPLICATE_PATH";
    /// The catalog describes a repository file in a way no copy can be
    /// read from (no location, no path, no digest, a path that leaves the AIP).
    pub const INVALID_CATALOG_ENTRY: &str = "INVALID_CATALOG_ENTRY";
}

/// The identity of a dissemination, fixed at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisseminationRecord {
    /// 22 base62 characters (a random 128-bit value).
    #[schema(value_type = String, pattern = "^[0-9A-Za-z]{22}$", example = "8Z7x1T9rN0Xc2B5Yq4L3zP")]
    pub dissemination_id: DisseminationId,
    /// The AIP's id: a UUID, or a legacy 24-hex object id.
    #[schema(value_type = String, example = "019e404e-60ab-7457-b7c9-94c453242c69")]
    pub archive_id: ArchiveId,
    /// The requesting client (from its token).
    #[schema(value_type = String, example = "client-id")]
    pub client_id: ClientId,
    /// The AIP's contract (4 hex characters).
    #[schema(value_type = String, pattern = "^[0-9a-f]{4}$", example = "2d17")]
    pub contract_id: ContractId,
    /// The client's own id for the object.
    pub object_id: String,
    pub sum_size_in_bytes: u64,
    /// 1 (most urgent) to 100.
    #[schema(value_type = u8, minimum = 1, maximum = 100, example = 50)]
    pub priority: Priority,
    /// RFC 3339 with fractional seconds and an explicit offset.
    #[schema(value_type = String, example = "2025-09-09T12:34:56.123456+01:00")]
    pub date_created: model::time::Timestamp,
    /// How the AIP is delivered: `files` (each repository file, or each
    /// selected member, as its own object; the default) or `bagit` (one
    /// BagIt bag as one TAR object).
    #[serde(default, skip_serializing_if = "Format::is_files")]
    pub format: Format,
    /// Member paths or globs inside the AIP's TAR files (`*` within a
    /// segment, `**` across segments): only the matching members are
    /// delivered. Absent: the repository files as stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<String>,
}

/// How a dissemination is delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Each repository file as stored (or each selected member): one
    /// object and one link each.
    #[default]
    Files,
    /// One BagIt 1.0 bag (RFC 8493) serialized as one TAR object.
    Bagit,
}

impl Format {
    pub fn is_files(&self) -> bool {
        *self == Self::Files
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Files => "files",
            Self::Bagit => "bagit",
        }
    }
}

impl DisseminationRecord {
    /// The dissemination reads into the TARs or writes a bag: the
    /// `package` step instead of one `transfer` per file.
    pub fn is_packaged(&self) -> bool {
        self.format == Format::Bagit || !self.select.is_empty()
    }
}

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
    pub checksum_algorithm: String,
    /// MD5 of the bytes when the catalog holds one (clients that need MD5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// RFC 3339: when the link was signed (it is valid until
    /// `expirationDate`); only in the workflow's state, never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub link_signed_at: Option<model::time::Timestamp>,
}

impl DisseminationRecord {
    /// Where a delivered file lives in the client's bucket.
    pub fn object_key(&self, filename: &str) -> model::ObjectKey {
        model::ObjectKey::delivered(&self.dissemination_id, &self.archive_id, filename)
    }

    /// The prefix every object of this dissemination starts with.
    pub fn object_prefix(&self) -> String {
        model::ObjectKey::prefix_of(&self.dissemination_id, &self.archive_id)
    }
}

impl DisseminationView {
    /// The view as a client sees it: every delivered file with its link,
    /// signed from the record (the same link for the same record).
    pub fn with_links(mut self, cfg: &platform::config::Config) -> Self {
        let bucket = cfg.client_bucket(self.record.client_id.as_str());
        let secret = secrecy::ExposeSecret::expose_secret(&cfg.s3.secret_key).to_owned();
        let signer = model::presign::Signer {
            endpoint: cfg.s3.public_endpoint(),
            region: &cfg.s3.region,
            access_key: &cfg.s3.access_key,
            secret_key: &secret,
        };
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
            let key = self.record.object_key(&file.filename);
            file.download_url = signer.presign_get(&bucket, key.as_str(), at, lifetime);
        }
        self
    }
}

/// Why a dissemination ended FAILED or REJECTED.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
}

/// The lock a dissemination releases when it reaches a final status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockRef {
    pub workflow_id: String,
    pub run_id: String,
}

/// Timeouts and retry schedules, fixed per execution at start so the
/// workflow stays deterministic whatever the workers' configuration says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSettings {
    pub heartbeat_timeout_ms: u64,
    pub transfer_timeout_ms: u64,
    pub short_activity_timeout_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_interval_ms: u64,
    pub retry_max_attempts: u32,
    pub host_schedule_to_start_ms: u64,
    pub webhook_retry_initial_ms: u64,
    pub webhook_retry_max_interval_ms: u64,
    pub webhook_give_up_after_ms: u64,
    pub link_lifetime_secs: u64,
    /// Absent in executions started before retention existed.
    #[serde(default)]
    pub retention_secs: Option<u64>,
    /// One-pass transfers (`transfer` activity) instead of staging; false
    /// in executions started before they existed.
    #[serde(default)]
    pub streaming: bool,
    /// How long infrastructure errors (S3, the repository, a lost worker)
    /// are retried without progress before the dissemination fails; absent
    /// in executions started when retries were counted (`retry_max_attempts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_for_ms: Option<u64>,
    /// How long a copy that cannot be opened is tried again before the next
    /// location (or REJECTED); absent: tried once, as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_retry_ms: Option<u64>,
    /// Link regenerations allowed per dissemination (each is a few history
    /// events); absent: no cap, as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_link_regenerations: Option<u32>,
    /// The bit repository's locations as configured at start: copies are
    /// tried in the order they give (absent in executions that tried the
    /// catalog's order).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub locations: BTreeMap<String, LocationPolicy>,
}

/// A configured location of the bit repository: how it is read and how
/// much it is preferred (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationPolicy {
    pub kind: model::catalog::LocationKind,
    pub preference: u32,
}

impl From<&platform::config::Config> for WorkflowSettings {
    fn from(cfg: &platform::config::Config) -> Self {
        let t = &cfg.timings;
        let locations = cfg
            .repository
            .locations
            .iter()
            .map(|(id, l)| {
                let policy = LocationPolicy {
                    kind: l.kind(),
                    preference: l.preference(),
                };
                (id.clone(), policy)
            })
            .collect();
        Self {
            heartbeat_timeout_ms: t.heartbeat_timeout_ms,
            transfer_timeout_ms: t.transfer_timeout_ms,
            short_activity_timeout_ms: t.short_activity_timeout_ms,
            retry_initial_ms: t.retry_initial_ms,
            retry_max_interval_ms: t.retry_max_interval_ms,
            retry_max_attempts: t.retry_max_attempts,
            host_schedule_to_start_ms: t.host_schedule_to_start_ms,
            webhook_retry_initial_ms: t.webhook_retry_initial_ms,
            webhook_retry_max_interval_ms: t.webhook_retry_max_interval_ms,
            webhook_give_up_after_ms: t.webhook_give_up_after_ms,
            link_lifetime_secs: t.link_lifetime_secs,
            retention_secs: Some(t.retention_secs),
            streaming: true,
            retry_for_ms: Some(t.retry_for_ms),
            unreadable_retry_ms: Some(t.unreadable_retry_ms),
            max_link_regenerations: Some(t.max_link_regenerations),
            locations,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisseminationInput {
    pub record: DisseminationRecord,
    /// The catalog's description of the AIP's files when the request was accepted.
    pub files: Vec<RepositoryFile>,
    pub lock: Option<LockRef>,
    pub settings: WorkflowSettings,
    /// The batch this dissemination belongs to: it waits for its turn
    /// (`batch_turn`) and reports its end to the batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// A batch's request, fixed at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    /// 22 base62 characters.
    pub batch_id: String,
    #[schema(value_type = String)]
    pub client_id: ClientId,
    #[schema(value_type = u8, minimum = 1, maximum = 100)]
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Format::is_files")]
    pub format: Format,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<String>,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub date_created: model::time::Timestamp,
}

/// Why a batch item was refused (as a single POST would be).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemError {
    pub code: String,
    pub message: String,
}

/// One archiveId of a batch: its dissemination (started by the batch, or
/// `existing`: one was already in progress), or why it was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchItem {
    pub archive_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dissemination_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub existing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
    /// The item's status as the batch knows it (GET only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<model::DisseminationStatus>)]
    pub status: Option<DisseminationStatus>,
}

impl BatchItem {
    /// Started by this batch (it releases it and counts its end).
    pub fn is_owned(&self) -> bool {
        self.dissemination_id.is_some() && !self.existing && self.error.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInput {
    pub record: BatchRecord,
    pub items: Vec<BatchItem>,
    /// Items of this batch transferring at once.
    pub max_in_flight: u32,
    pub settings: WorkflowSettings,
    /// A history longer than this continues as new (default 20,000 events;
    /// Temporal's limit is 51,200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_after_events: Option<u32>,
    /// Carried over a continue-as-new: where each item stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<BatchCarried>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCarried {
    pub states: Vec<ItemState>,
    pub cancel_requested: bool,
    pub cancels_sent: bool,
}

/// Where a batch's own item stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "status")]
pub enum ItemState {
    /// Waiting for its turn.
    #[default]
    Waiting,
    /// Its turn was given.
    Released,
    /// Final, with its status.
    Ended(DisseminationStatus),
    /// Not the batch's (existing, refused) or never started.
    NotOwned,
}

/// What an item reports when it ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemEnded {
    pub dissemination_id: String,
    pub status: DisseminationStatus,
}

/// Counts of a batch's items, by where they stand.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchCounts {
    pub total: u32,
    /// Started by the batch, waiting for their turn.
    pub waiting: u32,
    /// Started by the batch and working.
    pub in_progress: u32,
    pub disseminated: u32,
    pub failed: u32,
    pub rejected: u32,
    pub cancelled: u32,
    /// Already in progress when the batch was made (not counted as the batch's).
    pub existing: u32,
    /// Refused as a single POST would be.
    pub refused: u32,
}

/// A batch as the API shows it (without its items: they are paged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchView {
    #[serde(flatten)]
    pub record: BatchRecord,
    /// `IN_PROGRESS` or `COMPLETED` (every item final).
    pub status: String,
    pub counts: BatchCounts,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_requested: bool,
}

/// The `dissemination-batch.completed` webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchNotifyInput {
    pub message_id: String,
    pub occurred_at: model::time::Timestamp,
    pub view: BatchView,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockInput {
    pub dissemination_id: DisseminationId,
}

/// Input of `download`: one repository file from one of its locations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadInput {
    pub dissemination_id: DisseminationId,
    pub file: RepositoryFile,
    pub location_index: usize,
    /// Tell the workflow when a worker starts (QUEUED ends then).
    #[serde(default)]
    pub announce_start: bool,
}

/// Heartbeat details of `download`: how far it got, to resume from there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadProgress {
    pub file: String,
    pub location_id: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedFile {
    pub file: RepositoryFile,
    pub location_id: String,
    /// Path in the staging folder of the host that downloaded it.
    pub staged_path: String,
    /// Task queue of that host: the steps reading the staged copy run there.
    pub host_queue: String,
    pub size: u64,
    /// Digests computed while reading, lowercase hex, keyed by algorithm.
    pub digests: BTreeMap<DigestAlgorithm, String>,
    /// Bytes read from staging again to rebuild the hash state on resume.
    pub bytes_reread: u64,
    pub resumed_from: u64,
}

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
    /// The request cannot be served from this AIP (a `reason_codes` code).
    Rejected { code: String, message: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadInput {
    pub record: DisseminationRecord,
    pub staged: StagedFile,
    pub link_lifetime_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupInput {
    pub dissemination_id: DisseminationId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscardInput {
    pub record: DisseminationRecord,
}

/// What the webhook says; the activity adds id, timestamp and signature.
/// Input of `presign_links`: fresh links for objects already delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignInput {
    pub record: DisseminationRecord,
    pub files: Vec<DeliveredFile>,
    pub link_lifetime_secs: u64,
}

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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyOutcome {
    /// `delivered` or `not_configured` (410 Gone is a failure).
    pub outcome: WebhookState,
    pub status_code: Option<u16>,
    pub attempt: u32,
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

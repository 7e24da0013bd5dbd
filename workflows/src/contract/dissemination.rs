//! A dissemination's identity and its workflow's input: the record fixed
//! at creation, the catalog's files, the timings and location preferences
//! snapshotted at start (so replay never depends on configuration changed
//! later), and the lock it releases.

use model::{catalog::RepositoryFile, ArchiveId, ClientId, ContractId, DisseminationId, Priority};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

    /// Where a delivered file lives in the client's bucket.
    pub fn object_key(&self, filename: &str) -> model::ObjectKey {
        model::ObjectKey::delivered(&self.dissemination_id, &self.archive_id, filename)
    }

    /// The prefix every object of this dissemination starts with.
    pub fn object_prefix(&self) -> String {
        model::ObjectKey::prefix_of(&self.dissemination_id, &self.archive_id)
    }
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
    pub webhook_retry_initial_ms: u64,
    pub webhook_retry_max_interval_ms: u64,
    pub webhook_give_up_after_ms: u64,
    pub link_lifetime_secs: u64,
    /// Absent in executions started before retention existed.
    #[serde(default)]
    pub retention_secs: Option<u64>,
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
    /// AIPs up to this many bytes move inside the workflow's task (local
    /// activities); absent: every transfer is an activity of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_max_bytes: Option<u64>,
    /// How often a batch counts its items (it backs off to 30× this while
    /// nothing changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_poll_ms: Option<u64>,
    /// The queue of the `stage` steps (flow 11 on): waiting for tape holds
    /// no transfer slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_queue: Option<String>,
    /// The queue of the short steps (`finish`, webhook attempts,
    /// clean-ups), with slots of their own; absent: they run on the
    /// execution's own queue, behind its band's transfers, as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_queue: Option<String>,
    /// A recall not done after this long makes its copy unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_timeout_ms: Option<u64>,
    /// A successful acknowledgement deletes the delivered objects at once
    /// (absent: they are kept until retention ends).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub release_on_ack: bool,
}

/// A configured location of the bit repository: how it is read and how
/// much it is preferred (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationPolicy {
    pub kind: model::catalog::LocationKind,
    pub preference: u32,
}

/// The flow of the executions the API starts now: every change of the
/// workflow's commands since is chosen by `DisseminationInput::flow` (the
/// execution's recorded input, so replay is exact) instead of a patch
/// marker, which would cost every execution two history events forever.
/// Workers are upgraded before the API: a worker refuses a flow newer than
/// it knows (the task fails and waits for a newer worker).
///
/// - 10: a small AIP's whole life in three workflow tasks (`flow`).
/// - 11: tape copies are staged before they are read (`staging`); a
///   batch's tape files are staged by the batch.
/// - 12: a failed run removes what it left in the client's bucket with one
///   quick attempt before its final status; if S3 does not answer, the
///   status and the webhook go first and the removal goes on after them
///   (before, both waited for the removal's whole retry budget).
pub const FLOW: u32 = 12;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisseminationInput {
    pub record: DisseminationRecord,
    /// The catalog's description of the AIP's files when the request was accepted.
    pub files: Vec<RepositoryFile>,
    pub lock: Option<LockRef>,
    pub settings: WorkflowSettings,
    /// The batch this dissemination belongs to (before flow 10 it waited
    /// for its turn, `batch_turn`, and reported its end to the batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<model::BatchId>,
    /// Which flow the execution follows (`FLOW` when it started; 0 before
    /// flows were numbered: the patches of that code decide).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flow: u32,
    /// Its batch stages its tape files (flow 11 on): it waits for the
    /// batch's `tape_ready` before reading them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub staged_by_batch: bool,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl DisseminationInput {
    /// The sum of the repository files' sizes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The AIP is small enough to be moved inside the workflow's task (a
    /// local activity: no activity task, no extra workflow task).
    pub fn moves_locally(&self) -> bool {
        self.flow >= 10
            && self
                .settings
                .local_max_bytes
                .is_some_and(|max| self.total_bytes() <= max)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockInput {
    pub dissemination_id: DisseminationId,
}

//! Bringing tape copies online (flow 11 on): the `stage` step's input,
//! heartbeat and outcome, the batch's signal to an item whose files are
//! online, and what `finish` releases afterwards.

use serde::{Deserialize, Serialize};

/// A tape copy to bring online: its location, the catalog's `filePath`
/// there and the size the staged copy must have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapeFile {
    pub location_id: String,
    pub file_path: String,
    pub size: u64,
}

/// One dissemination's tape files: a single request's own, or one item's
/// among its batch's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageGroup {
    /// The batch item to signal (`tape_ready`) once its files are settled;
    /// none: the dissemination that runs the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dissemination_id: Option<String>,
    pub files: Vec<TapeFile>,
}

/// The `stage` step: its files' locality asked first (a file already on
/// disk is not staged, a lost one is unreadable), the others staged in as
/// few requests as `tape.max_files_per_stage_request` allows, polled until
/// each is online, failed, or past `deadline_unix_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageInput {
    pub groups: Vec<StageGroup>,
    /// A recall not done by then makes its copy unreadable (its request is
    /// cancelled for that file).
    pub deadline_unix_ms: u64,
    /// How long the tape system may fail to answer (5xx, garbage, no
    /// connection) before the files waiting on it are given up.
    pub unreachable_for_ms: u64,
}

/// Where one tape copy stands once the step is done with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StagedState {
    /// On disk: read it now.
    Online,
    /// Not readable from tape (lost, unavailable, empty, unknown, no reader,
    /// the tape system unreachable): the next copy.
    Unreadable,
    /// The recall failed or did not finish in time: the next copy; none
    /// left: `STAGING_FAILED`.
    StagingFailed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedFile {
    pub state: StagedState,
    /// Why, for the audit trail (the tape system's own words where it
    /// gave any).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The stage request that pins it (none: it was online already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A stage request to clean up once its files are read: released (every
/// pin of ours on `file_paths` ends) and, when `delete`, deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapeRelease {
    pub location_id: String,
    pub request_id: String,
    /// The catalog's `filePath`s (the step maps them to namespace paths).
    pub file_paths: Vec<String>,
    /// The request is this dissemination's own (a batch's request is
    /// deleted by the batch once every item is final).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
}

/// What `stage` did: per group, per file, in input order; and the
/// requests it made (for the batch to delete at its end).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageOutcome {
    pub groups: Vec<Vec<StagedFile>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<TapeRelease>,
}

/// The batch's signal to an item: its tape files are settled (same order
/// as the item's group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapeReady {
    pub files: Vec<StagedFile>,
}

/// A stage request under way, in the heartbeat: a retried step finds it
/// again instead of making another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedRequest {
    pub location_id: String,
    pub request_id: String,
    /// Indexes into the flattened files (group by group).
    pub files: Vec<u32>,
    /// Resubmitted after the tape system forgot it this many times.
    #[serde(default)]
    pub resubmitted: u32,
}

/// Heartbeat details of `stage`: where a retry resumes (its requests,
/// polled again, tell each file's state; what was not in a request is
/// asked again), and the live progress the API shows (status STAGING).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageHeartbeat {
    pub requests: Vec<SubmittedRequest>,
    /// Groups whose item was signalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signalled: Vec<u32>,
    pub progress: StagingProgress,
    /// Per group: files online so far (a batch item's progress).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub online_per_group: Vec<u32>,
}

/// How far a recall has got, as GET shows it (`progress` while STAGING).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagingProgress {
    pub files_staged: u32,
    pub files_total: u32,
    pub bytes_staged: u64,
    pub bytes_total: u64,
    /// When the tape system started on the request (its `startedAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<model::time::Timestamp>,
}

/// Memo of a batch item whose tape files its batch stages (flow 11 on):
/// until the batch signals it, the API shows it STAGING, with the
/// progress of its group in the batch's `stage` heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedByBatch {
    pub batch_id: model::BatchId,
    /// Its group in the batch's `tape` (the item's place in the batch).
    pub group: u32,
    pub files: u32,
    pub bytes: u64,
}

//! Batches: the request fixed at creation, its items (started, existing
//! or refused), where each of its own items stands, the counts and the
//! view the API shows, and the `dissemination-batch.completed` message.

use super::{Format, ItemErrorCode, WorkflowSettings};
use model::{BatchId, ClientId, DisseminationStatus, Priority};
use serde::{Deserialize, Serialize};

/// A batch's request, fixed at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchRecord {
    /// 22 base62 characters.
    #[schema(value_type = String)]
    pub batch_id: BatchId,
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
    pub code: ItemErrorCode,
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
    /// Which flow the batch follows (see `FLOW`): from 10 on its items do
    /// not wait for turns; the batch counts them in the visibility store.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flow: u32,
    /// Flow 11 on: its items' first tape copies, staged by the batch in
    /// bulk (each group names its item, which waits for `tape_ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tape: Vec<super::StageGroup>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// How a batch's items stand in the visibility store, by the `BatchId`
/// each carries (flow 10 on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemTally {
    /// Items the store knows (an item just started may not be there yet).
    pub visible: u32,
    pub disseminated: u32,
    pub failed: u32,
    pub rejected: u32,
    pub cancelled: u32,
}

impl ItemTally {
    pub fn finals(&self) -> u32 {
        self.disseminated + self.failed + self.rejected + self.cancelled
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCarried {
    pub states: Vec<ItemState>,
    pub cancel_requested: bool,
    pub cancels_sent: bool,
    /// The last count of the items (flow 10 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tally: Option<ItemTally>,
    /// Its stage requests, deleted once every item is final (flow 11 on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tape_requests: Vec<super::TapeRelease>,
    /// Its staging is over (flow 11 on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub staged: bool,
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
    pub status: BatchStatus,
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

/// Where a batch stands as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchStatus {
    /// Some of its own items are not final yet.
    InProgress,
    /// Every item it started is final.
    Completed,
}

impl BatchView {
    /// The batch's view from its counts: the one place its status is decided.
    pub fn new(record: BatchRecord, counts: BatchCounts, cancel_requested: bool) -> Self {
        let open = counts.waiting + counts.in_progress;
        Self {
            record,
            status: if open == 0 {
                BatchStatus::Completed
            } else {
                BatchStatus::InProgress
            },
            counts,
            cancel_requested,
        }
    }
}

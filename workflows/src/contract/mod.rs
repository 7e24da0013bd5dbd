//! Types that cross the Temporal boundary, by concern: the codes, what a
//! client sees (`view`), a dissemination's record and input, batches, and
//! the activities' inputs and outcomes. Their JSON shape is part of every
//! recorded history: add optional fields only, never rename.

mod ack;
mod activity;
mod batch;
mod codes;
mod dissemination;
mod tape;
mod view;

pub use ack::*;
pub use activity::*;
pub use batch::*;
pub use codes::*;
pub use dissemination::*;
pub use tape::*;
pub use view::*;

/// Workflow type names, fixed so renaming a Rust type breaks nothing.
pub const DISSEMINATION_WORKFLOW: &str = "DisseminationWorkflow";
pub const LOCK_WORKFLOW: &str = "DisseminationLock";

/// Memo key holding the latest [`DisseminationView`].
pub const MEMO_VIEW: &str = "dissemination";
/// Memo key: the dissemination moves inside its first workflow task (a
/// small AIP, flow 10 on): while that task runs, it is transferring.
pub const MEMO_MOVES_LOCALLY: &str = "movesLocally";
/// Memo key: a batch item whose tape files its batch stages (flow 11
/// on): `{batchId, group, files}`; until the batch signals it, STAGING.
pub const MEMO_STAGED_BY_BATCH: &str = "stagedByBatch";
/// Memo key of a lock workflow naming the dissemination holding it.
pub const MEMO_LOCK_HOLDER: &str = "disseminationId";

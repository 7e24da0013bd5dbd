//! Status mirroring: the view in the memo and `DisseminationStatus` in the
//! search attributes (the API and operators read them without a worker),
//! and the Web UI's "current details" in words.

use crate::contract::*;
use crate::state::DisseminationState;
use model::DisseminationStatus;
use temporalio_common::search_attributes::SearchAttributeKey;
use temporalio_sdk::{MemoValue, SyncWorkflowContext, WorkflowContext};

pub const SA_ARCHIVE_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ArchiveId");
pub const SA_CLIENT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ClientId");
pub const SA_CONTRACT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ContractId");
pub const SA_STATUS: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("DisseminationStatus");
/// The batch a dissemination belongs to (set at start, flow 10 on): the
/// batch counts its items by it, the API lists them by it.
pub const SA_BATCH_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("BatchId");
/// The request's priority (set at start, v1.2): its place in its band's
/// queue is counted by it.
pub const SA_PRIORITY: SearchAttributeKey<i64> = SearchAttributeKey::int("DisseminationPriority");

/// The Web UI's "current details": the status and what is happening, in words.
pub(crate) fn describe<W: DisseminationState>(ctx: &mut WorkflowContext<W>, what: String) {
    let status = ctx.state(|s| s.view().status);
    ctx.set_current_details(format!("{status}: {what}"));
}

/// 3.4 GiB, 12.0 MiB, 512 B.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Sets the status and mirrors it for readers without a worker.
pub(crate) fn set_status<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    status: DisseminationStatus,
    details: &str,
) {
    let view = ctx.state_mut(|s| {
        s.view_mut().status = status;
        s.view_mut().progress = None;
        s.view_mut().clone()
    });
    let _ = ctx.upsert_memo([(MEMO_VIEW, Some(MemoValue::new(view.clone())))]);
    ctx.upsert_search_attributes([SA_STATUS.value_set(status.as_str().to_owned())]);
    ctx.set_current_details(format!("{status}: {details}"));
}

pub(crate) fn mirror<W: DisseminationState>(
    ctx: &mut SyncWorkflowContext<W>,
    view: &DisseminationView,
    details: &str,
) {
    let _ = ctx.upsert_memo([(MEMO_VIEW, Some(MemoValue::new(view.clone())))]);
    ctx.upsert_search_attributes([SA_STATUS.value_set(view.status.as_str().to_owned())]);
    ctx.set_current_details(format!("{}: {details}", view.status));
}

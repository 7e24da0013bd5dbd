//! The audit trail: PREMIS-style events stamped with workflow time
//! (deterministic), kept in the workflow's state and answered by query.

use crate::contract::{DeliveredFile, DisseminationEvent, DisseminationRecord, EventType, Outcome};
use crate::state::DisseminationState;
use model::time::Timestamp;
use temporalio_sdk::WorkflowContext;

/// Workflow time (deterministic).
pub(crate) fn now<W: DisseminationState>(ctx: &WorkflowContext<W>) -> Timestamp {
    ctx.workflow_time().map(Timestamp::utc).unwrap_or_default()
}

/// Builds an audit event.
pub(crate) struct Event(DisseminationEvent);

impl Event {
    pub(crate) fn new(event_type: EventType, outcome: Outcome, detail: String) -> Self {
        Self(DisseminationEvent {
            event_type,
            date_time: Timestamp::default(),
            outcome,
            detail,
            file: None,
            location: None,
            algorithm: None,
        })
    }
    /// The request itself: who asked, and with which priority.
    pub(crate) fn requested(r: &DisseminationRecord) -> Self {
        let detail = format!(
            "requested by {} with priority {}",
            r.client_id,
            r.priority.get()
        );
        Self::new(EventType::Requested, Outcome::Success, detail)
    }
    /// The delivery: how many files, and their names.
    pub(crate) fn delivered(files: &[DeliveredFile]) -> Self {
        let names: Vec<&str> = files.iter().map(|f| f.filename.as_str()).collect();
        let detail = format!("{} file(s) available: {}", files.len(), names.join(", "));
        Self::new(EventType::Delivery, Outcome::Success, detail)
    }
    /// A copy that could not be read, on the record: `why` it failed.
    pub(crate) fn unreadable(path: &str, location_id: &str, why: String) -> Self {
        Self::new(EventType::Retrieval, Outcome::Failure, why)
            .file(path)
            .location(location_id)
    }
    pub(crate) fn file(mut self, f: &str) -> Self {
        self.0.file = Some(f.into());
        self
    }
    pub(crate) fn location(mut self, l: &str) -> Self {
        self.0.location = Some(l.into());
        self
    }
    pub(crate) fn algorithm(mut self, a: &str) -> Self {
        self.0.algorithm = Some(a.into());
        self
    }
}

/// Appends to the audit trail, stamped with workflow time (deterministic).
pub(crate) fn record<W: DisseminationState>(ctx: &mut WorkflowContext<W>, event: Event) {
    let mut e = event.0;
    e.date_time = now(ctx);
    ctx.state_mut(|s| s.events_mut().push(e));
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What clients read in GET …/events and in the PREMIS receipt: the
    /// texts as every earlier flow wrote them.
    #[test]
    fn the_request_delivery_and_an_unreadable_copy_read_as_before() {
        let record: DisseminationRecord = serde_json::from_value(json!({
            "disseminationId": "8Z7x1T9rN0Xc2B5Yq4L3zP",
            "archiveId": "019e404e-60ab-7457-b7c9-94c453242c69",
            "clientId": "client-a",
            "contractId": "2d17",
            "objectId": "obj",
            "sumSizeInBytes": 10,
            "priority": 7,
            "dateCreated": "2026-12-06T10:00:00.000+01:00",
        }))
        .expect("a record");
        let requested = Event::requested(&record).0;
        assert_eq!(requested.event_type, EventType::Requested);
        assert_eq!(requested.outcome, Outcome::Success);
        assert_eq!(requested.detail, "requested by client-a with priority 7");

        let file = |name: &str| -> DeliveredFile {
            serde_json::from_value(json!({
                "filename": name,
                "filesize": 5,
                "expirationDate": "2026-12-13T10:00:00.000+01:00",
                "checksum": "ab",
                "checksumAlgorithm": "SHA-256",
            }))
            .expect("a delivered file")
        };
        let delivered = Event::delivered(&[file("a.tar"), file("b.tar")]).0;
        assert_eq!(delivered.event_type, EventType::Delivery);
        assert_eq!(delivered.outcome, Outcome::Success);
        assert_eq!(delivered.detail, "2 file(s) available: a.tar, b.tar");

        let unreadable = Event::unreadable("a.tar", "disk", "why".into()).0;
        assert_eq!(unreadable.event_type, EventType::Retrieval);
        assert_eq!(unreadable.outcome, Outcome::Failure);
        assert_eq!(unreadable.detail, "why");
        assert_eq!(unreadable.file.as_deref(), Some("a.tar"));
        assert_eq!(unreadable.location.as_deref(), Some("disk"));
    }
}

//! The receiving archive's acknowledgement (v1.2, the `acknowledge`
//! update): every delivered file named once with the SHA-256 the client
//! computed on what it downloaded. All match: an `acknowledgement` event
//! with the client as agent, `acknowledged` in the view, and (with
//! `release_on_ack`) the objects deleted at once instead of at the end of
//! retention (`flow::retain` waits for either). A mismatch: the event with
//! outcome failure, naming the files; the objects stay.

use crate::audit::{record, Event};
use crate::contract::*;
use crate::dissemination::DisseminationWorkflow;
use model::DisseminationStatus;
use std::collections::BTreeMap;
use temporalio_sdk::{MemoValue, WorkflowContext};

/// The handler's first run in an execution records this marker: an
/// execution whose history has an acknowledgement replays it with the
/// handler's commands (the memo write) only where the marker says so.
const ACK_PATCH: &str = "client-acknowledgement";

/// Acknowledgements one dissemination takes (each costs a few history
/// events: a client retrying a mismatch forever must not fill it).
pub const MAX_ACKNOWLEDGEMENTS: u32 = 20;

/// Why an acknowledgement is refused before it runs.
pub(crate) fn check(
    view: &DisseminationView,
    made: u32,
    ack: &Acknowledgement,
) -> Result<(), UpdateRefusal> {
    if view.status != DisseminationStatus::Disseminated {
        return Err(UpdateRefusal::NotDelivered {
            status: view.status,
        });
    }
    if view.acknowledged.is_some() {
        return Err(UpdateRefusal::AlreadyAcknowledged);
    }
    if made >= MAX_ACKNOWLEDGEMENTS {
        return Err(UpdateRefusal::AcknowledgementCapReached {
            cap: MAX_ACKNOWLEDGEMENTS,
        });
    }
    let mut named: BTreeMap<&str, u32> = BTreeMap::new();
    for f in &ack.files {
        *named.entry(f.path.as_str()).or_default() += 1;
    }
    let invalid = |what: &str, paths: Vec<&str>| UpdateRefusal::InvalidAcknowledgement {
        reason: format!("{what}: {}", paths.join(", ")),
    };
    let twice: Vec<&str> = named
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(p, _)| *p)
        .collect();
    if !twice.is_empty() {
        return Err(invalid("named more than once", twice));
    }
    let delivered: Vec<&str> = view.files.iter().map(|f| f.filename.as_str()).collect();
    let unknown: Vec<&str> = named
        .keys()
        .filter(|p| !delivered.contains(p))
        .copied()
        .collect();
    if !unknown.is_empty() {
        return Err(invalid("not delivered by this dissemination", unknown));
    }
    let missing: Vec<&str> = delivered
        .iter()
        .filter(|p| !named.contains_key(*p))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(invalid("delivered but not named", missing));
    }
    Ok(())
}

/// Compares the client's digests with the delivered ones and records
/// the outcome.
pub(crate) fn acknowledge(
    ctx: &mut WorkflowContext<DisseminationWorkflow>,
    ack: &Acknowledgement,
) -> AcknowledgementOutcome {
    ctx.patched(ACK_PATCH);
    let files = ctx.state(|s| s.view.files.clone());
    let mismatched: Vec<String> = ack
        .files
        .iter()
        .filter(|a| {
            files
                .iter()
                .find(|d| d.filename == a.path)
                .is_some_and(|d| !d.checksum.eq_ignore_ascii_case(&a.sha256))
        })
        .map(|a| a.path.clone())
        .collect();
    let note = ack
        .note
        .as_deref()
        .map(|n| format!("; note: {n}"))
        .unwrap_or_default();
    let (outcome, detail) = if mismatched.is_empty() {
        (
            Outcome::Success,
            format!(
                "the receiving archive confirmed the SHA-256 of {} file(s){note}",
                ack.files.len()
            ),
        )
    } else {
        (
            Outcome::Failure,
            format!(
                "the receiving archive's SHA-256 differs for {}{note}",
                mismatched.join(", ")
            ),
        )
    };
    record(ctx, Event::new(EventType::Acknowledgement, outcome, detail));
    let at = crate::audit::now(ctx);
    let view = ctx.state_mut(|s| {
        s.acknowledgements += 1;
        if mismatched.is_empty() {
            s.view.acknowledged = Some(Acknowledged {
                at,
                note: ack.note.clone(),
            });
        }
        s.view.clone()
    });
    if mismatched.is_empty() {
        let _ = ctx.upsert_memo([(MEMO_VIEW, Some(MemoValue::new(view.clone())))]);
    }
    AcknowledgementOutcome { mismatched, view }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(names: &[&str]) -> DisseminationView {
        let record: DisseminationRecord = serde_json::from_value(serde_json::json!({
            "disseminationId": "8Z7x1T9rN0Xc2B5Yq4L3zP",
            "archiveId": "019e404e-60ab-7457-b7c9-94c453242c69",
            "clientId": "c", "contractId": "2d17", "objectId": "o",
            "sumSizeInBytes": 1, "priority": 50,
            "dateCreated": "2025-09-09T12:34:56.123456+01:00"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut view = DisseminationView::received(record);
        view.status = DisseminationStatus::Disseminated;
        view.files = names
            .iter()
            .map(|n| DeliveredFile {
                download_url: String::new(),
                filename: (*n).into(),
                filesize: 1,
                expiration_date: Default::default(),
                checksum: "ab".into(),
                checksum_algorithm: model::catalog::DigestAlgorithm::Sha256,
                md5: None,
                link_signed_at: None,
            })
            .collect();
        view
    }

    fn ack(paths: &[&str]) -> Acknowledgement {
        Acknowledgement {
            files: paths
                .iter()
                .map(|p| AcknowledgedFile {
                    path: (*p).into(),
                    sha256: "ab".into(),
                })
                .collect(),
            note: None,
        }
    }

    #[test]
    fn every_delivered_file_is_named_once() {
        let view = delivered(&["a.tar", "v1/b.tar"]);
        assert_eq!(check(&view, 0, &ack(&["v1/b.tar", "a.tar"])), Ok(()));
        let reason = |r: Result<(), UpdateRefusal>| match r {
            Err(UpdateRefusal::InvalidAcknowledgement { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason(check(&view, 0, &ack(&["a.tar"]))).contains("not named: v1/b.tar"));
        assert!(
            reason(check(&view, 0, &ack(&["a.tar", "v1/b.tar", "c"]))).contains("not delivered")
        );
        assert!(
            reason(check(&view, 0, &ack(&["a.tar", "a.tar", "v1/b.tar"])))
                .contains("more than once")
        );
        assert_eq!(
            check(&view, MAX_ACKNOWLEDGEMENTS, &ack(&["a.tar", "v1/b.tar"])),
            Err(UpdateRefusal::AcknowledgementCapReached {
                cap: MAX_ACKNOWLEDGEMENTS
            })
        );
        let mut done = view.clone();
        done.acknowledged = Some(Acknowledged {
            at: Default::default(),
            note: None,
        });
        assert_eq!(
            check(&done, 1, &ack(&["a.tar"])),
            Err(UpdateRefusal::AlreadyAcknowledged)
        );
        let mut queued = view;
        queued.status = DisseminationStatus::Queued;
        assert!(matches!(
            check(&queued, 0, &ack(&[])),
            Err(UpdateRefusal::NotDelivered { .. })
        ));
    }
}

//! A dissemination's record as the PREMIS 3.0 receipt: the AIP and its
//! repository files, what was delivered, and the audit trail. The same
//! builder serves `GET …/receipt` and a bag's `premis.xml`.

use crate::contract::{DeliveredFile, DisseminationEvent, DisseminationRecord, EventType};
use model::catalog::RepositoryFile;
use packaging::premis::{FileObject, Receipt, ReceiptEvent};

/// The service as PREMIS names its agent.
pub const SERVICE_NAME: &str = "Dissemination Service";

pub fn receipt(
    record: &DisseminationRecord,
    files: &[RepositoryFile],
    delivered: &[DeliveredFile],
    events: &[DisseminationEvent],
) -> Receipt {
    Receipt {
        dissemination_id: record.dissemination_id.to_string(),
        archive_id: record.archive_id.to_string(),
        object_id: record.object_id.clone(),
        client_id: record.client_id.as_str().to_owned(),
        contract_id: record.contract_id.to_string(),
        service_name: SERVICE_NAME.into(),
        service_version: env!("CARGO_PKG_VERSION").into(),
        repository_files: files
            .iter()
            .map(|f| FileObject {
                name: f.relative_path.clone(),
                size: f.size,
                digests: f
                    .fixities
                    .iter()
                    .map(|x| {
                        (
                            x.algorithm.as_str().to_owned(),
                            x.digest.to_ascii_lowercase(),
                        )
                    })
                    .collect(),
            })
            .collect(),
        delivered: delivered
            .iter()
            .map(|d| FileObject {
                name: d.filename.clone(),
                size: d.filesize,
                digests: std::iter::once((
                    d.checksum_algorithm.as_str().to_owned(),
                    d.checksum.clone(),
                ))
                .chain(d.md5.iter().map(|m| ("MD5".to_owned(), m.clone())))
                .collect(),
            })
            .collect(),
        events: events
            .iter()
            .map(|e| ReceiptEvent {
                event_type: event_type(e.event_type).into(),
                date_time: e.date_time.to_string(),
                detail: e.detail.clone(),
                outcome: e.outcome.as_str().into(),
                location: e.location.clone(),
                object: e.file.clone(),
                algorithm: e.algorithm.clone(),
            })
            .collect(),
    }
}

/// The event's type in words (its wire name).
fn event_type(t: EventType) -> &'static str {
    match t {
        EventType::Requested => "dissemination requested",
        EventType::Retrieval => "retrieval",
        EventType::FixityCheck => "fixity check",
        EventType::Delivery => "delivery",
        EventType::LinkRegeneration => "link regeneration",
        EventType::Webhook => "webhook",
        EventType::Cancellation => "cancellation",
        EventType::Deletion => "deletion",
        EventType::Failure => "failure",
        EventType::Acknowledgement => "acknowledgement",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_type_words_are_the_wire_names() {
        use crate::contract::EventType::*;
        for t in [
            Requested,
            Retrieval,
            FixityCheck,
            Delivery,
            LinkRegeneration,
            Webhook,
            Cancellation,
            Deletion,
            Failure,
            Acknowledgement,
        ] {
            let wire = serde_json::to_value(t).expect("serializes");
            assert_eq!(wire.as_str(), Some(super::event_type(t)));
        }
    }
}

//! How a dissemination ends when it does not deliver: the final status and
//! reasons, per-file location tries, and what an activity failure says.

use crate::contract::*;
use model::{catalog::RepositoryFile, DisseminationStatus};
use temporalio_common::error::IncomingError;
use temporalio_sdk::ActivityExecutionError;

/// A final status other than DISSEMINATED, with its reasons.
pub(crate) struct Ending {
    pub(crate) status: DisseminationStatus,
    pub(crate) reasons: Vec<Reason>,
    /// Objects may have reached the client's bucket and must be removed.
    pub(crate) discard: bool,
}

impl Ending {
    pub(crate) fn failed(code: ReasonCode, message: String, file: Option<&str>) -> Self {
        Self {
            status: DisseminationStatus::Failed,
            reasons: vec![Reason {
                code,
                message,
                file_path: file.map(Into::into),
            }],
            discard: false,
        }
    }

    pub(crate) fn cancelled() -> Self {
        Self {
            status: DisseminationStatus::Cancelled,
            reasons: vec![Reason {
                code: ReasonCode::Cancelled,
                message: "cancelled at the client's request".into(),
                file_path: None,
            }],
            discard: true,
        }
    }

    /// The audit event that records this end: a cancellation, or a
    /// failure naming every reason.
    pub(crate) fn event(&self) -> crate::audit::Event {
        let kind = if self.status == DisseminationStatus::Cancelled {
            EventType::Cancellation
        } else {
            EventType::Failure
        };
        let detail = self
            .reasons
            .iter()
            .map(|r| format!("{}: {}", r.code, r.message))
            .collect::<Vec<_>>()
            .join("; ");
        crate::audit::Event::new(kind, Outcome::Failure, detail)
    }

    pub(crate) fn summary(&self) -> String {
        let codes: Vec<&str> = self.reasons.iter().map(|r| r.code.as_str()).collect();
        format!("{}: {}", self.status, codes.join(", "))
    }
}

/// Per file: which location is being tried and what went wrong so far.
pub(crate) struct FileTry {
    pub(crate) file: RepositoryFile,
    pub(crate) location_index: usize,
    pub(crate) mismatches: Vec<String>,
    pub(crate) unreadable: Vec<String>,
    /// Tape copies whose recall failed or timed out (flow 11 on).
    pub(crate) staging_failed: Vec<String>,
}

impl FileTry {
    /// A file about to be tried at its first location.
    pub(crate) fn first(file: &RepositoryFile) -> Self {
        Self {
            file: file.clone(),
            location_index: 0,
            mismatches: vec![],
            unreadable: vec![],
            staging_failed: vec![],
        }
    }
}

pub(crate) fn no_copy_left(t: &FileTry) -> Ending {
    let path = Some(t.file.relative_path.as_str());
    if !t.mismatches.is_empty() {
        let mut all = t.mismatches.clone();
        all.extend(t.unreadable.iter().cloned());
        Ending::failed(
            ReasonCode::FixityMismatch,
            format!(
                "no copy of {} matches its stored digest ({})",
                t.file.relative_path,
                all.join("; ")
            ),
            path,
        )
    } else if !t.staging_failed.is_empty() {
        let mut all = t.staging_failed.clone();
        all.extend(t.unreadable.iter().cloned());
        Ending::failed(
            ReasonCode::StagingFailed,
            format!(
                "no copy of {} could be recalled from tape ({})",
                t.file.relative_path,
                all.join("; ")
            ),
            path,
        )
    } else {
        Ending {
            status: DisseminationStatus::Rejected,
            reasons: vec![Reason {
                code: ReasonCode::NoReadableCopy,
                message: format!(
                    "no readable copy of {} in the bit repository ({})",
                    t.file.relative_path,
                    t.unreadable.join("; ")
                ),
                file_path: path.map(Into::into),
            }],
            discard: false,
        }
    }
}

/// The failure type an activity's failure names, if it is one of ours.
pub(crate) fn failure_type(e: &ActivityExecutionError) -> Option<FailureType> {
    match e.cause() {
        Some(IncomingError::Application(a)) => a.type_name().and_then(FailureType::parse),
        _ => None,
    }
}

pub(crate) fn failure_message(e: &ActivityExecutionError) -> String {
    match e.cause() {
        Some(c) => c.failure().message.clone(),
        None => e.to_string(),
    }
}

//! How a dissemination ends when it does not deliver: the final status and
//! reasons, per-file location tries, and what an activity failure says.

use crate::contract::*;
use model::{catalog::RepositoryFile, DisseminationStatus};
use temporalio_common::error::IncomingError;
use temporalio_sdk::{ActivityExecutionError, TimeoutType};

/// A final status other than DISSEMINATED, with its reasons.
pub(crate) struct Ending {
    pub(crate) status: DisseminationStatus,
    pub(crate) reasons: Vec<Reason>,
    /// Objects may have reached the client's bucket and must be removed.
    pub(crate) discard: bool,
}

impl Ending {
    pub(crate) fn failed(code: &str, message: String, file: Option<&str>) -> Self {
        Self {
            status: DisseminationStatus::Failed,
            reasons: vec![Reason {
                code: code.into(),
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
                code: reason_codes::CANCELLED.into(),
                message: "cancelled at the client's request".into(),
                file_path: None,
            }],
            discard: true,
        }
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
}

impl FileTry {
    /// A file about to be tried at its first location.
    pub(crate) fn first(file: &RepositoryFile) -> Self {
        Self {
            file: file.clone(),
            location_index: 0,
            mismatches: vec![],
            unreadable: vec![],
        }
    }
}

pub(crate) fn no_copy_left(t: &FileTry) -> Ending {
    let path = Some(t.file.relative_path.as_str());
    if !t.mismatches.is_empty() {
        let mut all = t.mismatches.clone();
        all.extend(t.unreadable.iter().cloned());
        Ending::failed(
            reason_codes::FIXITY_MISMATCH,
            format!(
                "no copy of {} matches its stored digest ({})",
                t.file.relative_path,
                all.join("; ")
            ),
            path,
        )
    } else {
        Ending {
            status: DisseminationStatus::Rejected,
            reasons: vec![Reason {
                code: reason_codes::NO_READABLE_COPY.into(),
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

pub(crate) fn failure_type(e: &ActivityExecutionError) -> Option<&str> {
    match e.cause() {
        Some(IncomingError::Application(a)) => a.type_name(),
        _ => None,
    }
}

pub(crate) fn failure_message(e: &ActivityExecutionError) -> String {
    match e.cause() {
        Some(c) => c.failure().message.clone(),
        None => e.to_string(),
    }
}

/// A staged step never started: its host stopped polling.
pub(crate) fn is_host_lost(e: &ActivityExecutionError) -> bool {
    e.as_timeout()
        .is_some_and(|t| t.timeout_type() == TimeoutType::ScheduleToStart)
}

//! The codes that cross crates and the Temporal boundary, typed: an
//! activity's failure type (what the workflow reacts to), a dissemination's
//! reason code (what a client is told) and a batch item's refusal. Each
//! spells itself exactly as recorded histories and clients know it.

use serde::{Deserialize, Serialize};

/// The `type` of an activity's application failure: what the workflow
/// reacts to. Carried as text in Temporal's failure, so `as_str` and
/// `parse` are the wire form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureType {
    /// The bytes read do not match the stored digest (never retried blindly).
    FixityMismatch,
    /// The copy at this location cannot be read at all (missing, refused).
    LocationUnreadable,
    /// No reader for the copy's location on this worker (not configured,
    /// or a kind it cannot read): the next copy, at once.
    NoReader,
    /// The client's webhook endpoint answered 410 Gone.
    WebhookGone,
    /// Configuration refuses the work.
    Misconfigured,
    /// Delivered objects are no longer in the bucket.
    ObjectsGone,
    /// The client's bucket refused or failed a write (retryable).
    UploadError,
    /// An update refused because the dissemination used up its link
    /// regenerations.
    LinkCapReached,
}

impl FailureType {
    const ALL: [FailureType; 8] = [
        Self::FixityMismatch,
        Self::LocationUnreadable,
        Self::NoReader,
        Self::WebhookGone,
        Self::Misconfigured,
        Self::ObjectsGone,
        Self::UploadError,
        Self::LinkCapReached,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FixityMismatch => "FixityMismatch",
            Self::LocationUnreadable => "LocationUnreadable",
            Self::NoReader => "NoReader",
            Self::WebhookGone => "WebhookGone",
            Self::Misconfigured => "Misconfigured",
            Self::ObjectsGone => "ObjectsGone",
            Self::UploadError => "UploadError",
            Self::LinkCapReached => "LinkCapReached",
        }
    }

    /// The type a failure names, if it is one of ours.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Why a dissemination ended FAILED, REJECTED or CANCELLED: stable, upper
/// snake case, in GET, the webhook and the receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// No copy of a file matches its stored digest.
    FixityMismatch,
    /// No copy of a file can be read (each named, with why).
    NoReadableCopy,
    /// Reading failed for good (not a copy's fault).
    DownloadFailed,
    /// The client's bucket failed for good.
    UploadFailed,
    Cancelled,
    /// `select` matched no member of the AIP.
    NothingSelected,
    /// `select` with `format: "files"` matched more than 100 members.
    TooManyFiles,
    /// A selected member is no regular file (a link, a sparse file…).
    UnsupportedMember,
    /// A repository file named `.tar` whose stored bytes are no readable TAR.
    UnreadableArchive,
    /// Two delivered files would have one name (or one would be a folder
    /// of the other): refused before any byte is uploaded.
    DuplicatePath,
    /// The catalog describes a repository file in a way no copy can be
    /// read from (no location, no path, no digest, a path that leaves the AIP).
    InvalidCatalogEntry,
    /// A file's last copies were on tape and their recall failed or did
    /// not finish within `timings.stage_timeout_ms` (the tape system's
    /// reason in the message).
    StagingFailed,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FixityMismatch => "FIXITY_MISMATCH",
            Self::NoReadableCopy => "NO_READABLE_COPY",
            Self::DownloadFailed => "DOWNLOAD_FAILED",
            Self::UploadFailed => "UPLOAD_FAILED",
            Self::Cancelled => "CANCELLED",
            Self::NothingSelected => "NOTHING_SELECTED",
            Self::TooManyFiles => "TOO_MANY_FILES",
            Self::UnsupportedMember => "UNSUPPORTED_MEMBER",
            Self::UnreadableArchive => "UNREADABLE_ARCHIVE",
            Self::DuplicatePath => "DUPLICATE_PATH",
            Self::InvalidCatalogEntry => "INVALID_CATALOG_ENTRY",
            Self::StagingFailed => "STAGING_FAILED",
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one archiveId of a batch was refused: what a single POST of it
/// would have answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemErrorCode {
    /// 404: no such AIP.
    ArchiveNotFound,
    /// 403: the token has no role for the AIP's contract.
    Forbidden,
    /// 422: the AIP is not `preserved`.
    ArchiveNotPreserved,
    /// 422: the AIP has more repository files than one dissemination carries.
    TooManyRepositoryFiles,
}

/// Why the workflow refused an update (a link regeneration): carried as
/// the rejection's message, in JSON, so the API maps it by type, not by
/// phrase. (Temporal keeps no type on an update's rejection.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateRefusal {
    /// The dissemination is not (or not yet) delivered.
    NotDelivered { status: model::DisseminationStatus },
    /// The delivered objects are no longer retained.
    ObjectsGone,
    /// Links were regenerated `cap` times already.
    LinkCapReached { cap: u32 },
    /// Acknowledged already (successfully).
    AlreadyAcknowledged,
    /// The acknowledgement does not name every delivered file exactly once.
    InvalidAcknowledgement { reason: String },
    /// `cap` acknowledgements were made already (each is a few events).
    AcknowledgementCapReached { cap: u32 },
}

impl UpdateRefusal {
    /// The refusal a rejected update's message carries, if it is one.
    pub fn from_message(message: &str) -> Option<Self> {
        serde_json::from_str(message).ok()
    }
}

impl std::fmt::Display for UpdateRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&json)
    }
}

impl std::error::Error for UpdateRefusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_recorded_ones() {
        for t in FailureType::ALL {
            assert_eq!(FailureType::parse(t.as_str()), Some(t));
        }
        assert_eq!(
            FailureType::parse("LocationUnreadable"),
            Some(FailureType::LocationUnreadable)
        );
        for code in [
            ReasonCode::FixityMismatch,
            ReasonCode::NoReadableCopy,
            ReasonCode::NothingSelected,
            ReasonCode::InvalidCatalogEntry,
            ReasonCode::StagingFailed,
        ] {
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ReasonCode>(&json).ok(), Some(code));
        }
        assert_eq!(
            serde_json::to_string(&ItemErrorCode::ArchiveNotPreserved).unwrap_or_default(),
            "\"ARCHIVE_NOT_PRESERVED\""
        );
        let refusal = UpdateRefusal::LinkCapReached { cap: 3 };
        assert_eq!(
            UpdateRefusal::from_message(&refusal.to_string()),
            Some(refusal)
        );
        assert_eq!(UpdateRefusal::from_message("over the limit of 3"), None);
    }
}

//! The dissemination status list of the contract. Names are never reused
//! for another meaning.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DisseminationStatus {
    Received,
    /// Waiting for a worker: no worker has started the download yet.
    Queued,
    /// Waiting for a file to be recalled from tape (v1.2).
    Staging,
    DownloadingFromRepository,
    FixityCheck,
    UploadingToS3,
    Disseminated,
    Failed,
    /// Refused after it was accepted (no readable copy, no longer preserved).
    Rejected,
    /// Stopped at the client's request before it was delivered; nothing of
    /// it is left in the client's bucket.
    Cancelled,
}

impl DisseminationStatus {
    /// Every status, in flow order.
    pub const ALL: [Self; 10] = [
        Self::Received,
        Self::Queued,
        Self::Staging,
        Self::DownloadingFromRepository,
        Self::FixityCheck,
        Self::UploadingToS3,
        Self::Disseminated,
        Self::Failed,
        Self::Rejected,
        Self::Cancelled,
    ];

    /// DISSEMINATED, FAILED, REJECTED and CANCELLED are final.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Disseminated | Self::Failed | Self::Rejected | Self::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::Queued => "QUEUED",
            Self::Staging => "STAGING",
            Self::DownloadingFromRepository => "DOWNLOADING_FROM_REPOSITORY",
            Self::FixityCheck => "FIXITY_CHECK",
            Self::UploadingToS3 => "UPLOADING_TO_S3",
            Self::Disseminated => "DISSEMINATED",
            Self::Failed => "FAILED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for DisseminationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::DisseminationStatus as S;

    #[test]
    fn wire_names_match_display() {
        for s in S::ALL {
            let json = serde_json::to_string(&s).expect("serialises");
            assert_eq!(json, format!("\"{s}\""));
        }
        assert!(S::Rejected.is_final() && !S::UploadingToS3.is_final());
    }
}

//! The receiving archive's acknowledgement (v1.2): the digests it
//! computed on what it downloaded, checked by the workflow against what
//! was delivered (the `acknowledge` update).

use serde::{Deserialize, Serialize};

/// One delivered file as the client names it, with the SHA-256 it computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcknowledgedFile {
    /// The delivered file's `filename` (its path).
    #[schema(min_length = 1)]
    pub path: String,
    /// 64 lowercase or uppercase hex digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub sha256: String,
}

/// `POST /v1/disseminations/{id}/acknowledgement`: every delivered file
/// named once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Acknowledgement {
    #[schema(min_items = 1)]
    pub files: Vec<AcknowledgedFile>,
    /// Free text from the receiving archive, kept in the record (at most
    /// 1,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

/// What the workflow found: every digest matches (`mismatched` empty), or
/// the files whose digest differs from the delivered one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcknowledgementOutcome {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatched: Vec<String>,
    /// The view after it (with `acknowledged` when all matched).
    pub view: super::DisseminationView,
}

/// `WebhookRecovery`'s input: the client's events since `since` that its
/// endpoint did not take, sent again (at most `limit`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryInput {
    pub client_id: String,
    /// RFC 3339.
    pub since: model::time::Timestamp,
    pub limit: u32,
    pub settings: super::WorkflowSettings,
}

/// What a recovery did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryOutcome {
    /// Events posted again.
    pub sent: u32,
    /// Of those, the ones the endpoint took (2xx).
    pub delivered: u32,
}

/// `redeliver`'s heartbeat: how far it got.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryHeartbeat {
    pub sent: u32,
    pub delivered: u32,
}

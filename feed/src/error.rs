//! The crate's one error type: what a caller must tell apart.

/// Why a feed operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// A cursor that this service did not issue to this client (tampered,
    /// truncated, another client's, or signed with another key): 400.
    #[error("bad cursor: {0}")]
    BadCursor(String),
    /// An event or id the feed cannot store (empty id, a payload that is
    /// not JSON, a time that is not RFC 3339): a bug of the caller.
    #[error("invalid event: {0}")]
    Invalid(String),
    /// S3 failed or answered something unexpected: worth retrying (503).
    #[error("event store unavailable: {0}")]
    Unavailable(String),
}

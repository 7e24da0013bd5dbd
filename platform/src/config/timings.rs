//! `[timings]`: every timeout and retry schedule of a dissemination, fixed
//! in its workflow's input when it starts (tests shrink them).

use serde::{Deserialize, Serialize};

/// Timeouts and retry schedules, all in milliseconds unless named otherwise.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Timings {
    pub heartbeat_timeout_ms: u64,
    pub transfer_timeout_ms: u64,
    pub short_activity_timeout_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_interval_ms: u64,
    /// Attempts of short steps in executions started before retries were
    /// timed (kept for them; new work retries for `retry_for_ms`).
    pub retry_max_attempts: u32,
    /// How long infrastructure errors (S3, the repository, Temporal, a lost
    /// worker) are retried without progress before a dissemination fails.
    pub retry_for_ms: u64,
    /// How long a repository copy that cannot be opened (absent, refused,
    /// an I/O error) is tried again before the next location.
    pub unreadable_retry_ms: u64,
    /// Link regenerations allowed per dissemination.
    pub max_link_regenerations: u32,
    pub webhook_request_timeout_ms: u64,
    pub webhook_retry_initial_ms: u64,
    pub webhook_retry_max_interval_ms: u64,
    /// Total time webhook delivery is retried (5 days).
    pub webhook_give_up_after_ms: u64,
    pub link_lifetime_secs: u64,
    /// How long delivered objects are kept before the workflow deletes them.
    pub retention_secs: u64,
    /// A recall from tape not done after this long makes that copy
    /// unreadable (the next copy is tried; none left: STAGING_FAILED).
    pub stage_timeout_ms: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            heartbeat_timeout_ms: 30_000,
            transfer_timeout_ms: 12 * 3600 * 1000,
            short_activity_timeout_ms: 60_000,
            retry_initial_ms: 1_000,
            retry_max_interval_ms: 60_000,
            retry_max_attempts: 10,
            retry_for_ms: 6 * 3600 * 1000,
            unreadable_retry_ms: 5 * 60 * 1000,
            max_link_regenerations: 100,
            webhook_request_timeout_ms: 10_000,
            webhook_retry_initial_ms: 5_000,
            webhook_retry_max_interval_ms: 3600 * 1000,
            webhook_give_up_after_ms: 5 * 24 * 3600 * 1000,
            link_lifetime_secs: 24 * 3600,
            retention_secs: 7 * 24 * 3600,
            stage_timeout_ms: 48 * 3600 * 1000,
        }
    }
}

//! `[api]`: the HTTP API's listener, limits (body sizes, rate, files per
//! AIP, batch sizes), metrics, and how persistently it starts work.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ApiConfig {
    pub listen: String,
    /// Where the routes are mounted, e.g. `/dps-submission`; empty for `/`.
    pub base_path: String,
    pub body_limit_bytes: usize,
    /// Requests a client may make per minute (token bucket refill rate).
    pub rate_limit_per_minute: u32,
    /// Requests a client may make in a burst above the steady rate.
    pub rate_limit_burst: u32,
    /// Repository files one dissemination may carry (Temporal's payload
    /// limit); an AIP with more is refused with 422.
    pub max_repository_files: usize,
    /// Prometheus `/metrics`, on its own listener (never the public one);
    /// loopback by default, so only the host's scraper reaches it.
    pub metrics_listen: String,
    /// How long the disseminations-by-status counts (Temporal visibility
    /// queries) are reused between scrapes.
    pub metrics_count_cache_ms: u64,
    /// archiveIds one batch may carry.
    pub batch_max_items: usize,
    /// Body limit of a batch request (its archiveIds).
    pub batch_body_limit_bytes: usize,
    /// Items of one batch transferring at once: the rest wait for their
    /// turn, so a large batch never holds more workers than this.
    pub batch_max_in_flight: u32,
    /// Items of a batch request started at once by the API.
    pub batch_start_concurrency: usize,
    /// How often a batch counts its items (backing off to 30× this while
    /// nothing changes): how soon its counts and its completion show.
    pub batch_poll_ms: u64,
    /// How often a single POST asks Temporal or the catalog what did not
    /// answer (pauses of 250 ms, doubling; each ask is idempotent by the
    /// dissemination id); still unanswered, it is refused with 503.
    pub start_tries: usize,
    /// How often the API asks Temporal or the catalog for one item of a
    /// batch request, or Temporal for the batch's workflow, when it does
    /// not answer (pauses of 250 ms, doubling); still unanswered, the batch
    /// is refused with 503.
    pub batch_start_tries: usize,
    /// A batch's history longer than this continues as new.
    pub batch_continue_after_events: u32,
    /// How often each API replica counts every band's finished
    /// disseminations, the throughput a QUEUED one's `queue.estimatedStart`
    /// is estimated from.
    pub queue_sample_ms: u64,
    /// A dissemination's (client, AIP) lock is a workflow no worker runs,
    /// started with this delay: Temporal schedules no task for it before,
    /// so a lock released sooner (every one but the longest transfers)
    /// leaves nothing in the task queue of the locks, which no worker
    /// polls. Its start timer stays in Temporal's timer queue this long.
    pub lock_start_delay_secs: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            base_path: String::new(),
            body_limit_bytes: 16 * 1024,
            rate_limit_per_minute: 600,
            rate_limit_burst: 60,
            max_repository_files: 1000,
            metrics_listen: "127.0.0.1:9090".into(),
            metrics_count_cache_ms: 15_000,
            batch_max_items: 1000,
            batch_body_limit_bytes: 128 * 1024,
            batch_max_in_flight: 3,
            batch_start_concurrency: 32,
            batch_poll_ms: 2_000,
            start_tries: 3,
            batch_start_tries: 3,
            batch_continue_after_events: 20_000,
            queue_sample_ms: 10_000,
            lock_start_delay_secs: 30 * 24 * 3600,
        }
    }
}

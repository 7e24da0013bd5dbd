//! `[worker]` and `[[bands]]`: the worker process (identity, shutdown,
//! heartbeats, probes, the small AIPs it moves inside their workflow task)
//! and the priority bands, each a task queue with its own slots.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct WorkerConfig {
    pub identity: Option<String>,
    /// On shutdown, how long running activities may take to finish.
    pub graceful_shutdown_secs: u64,
    /// Longest interval between heartbeats sent to the server (the SDK
    /// otherwise waits up to 0.8 × the heartbeat timeout): how much a retry
    /// after a crash may have to fetch again.
    pub heartbeat_throttle_ms: u64,
    /// Prometheus endpoint (`/metrics`) for the worker's own and the
    /// Temporal SDK's metrics, e.g. `127.0.0.1:9464`; unset: none.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The worker's probes (`/healthz`, `/readyz`: every repository
    /// location readable), e.g. `127.0.0.1:9465`; unset: none.
    pub health_addr: Option<std::net::SocketAddr>,
    /// AIPs up to this many bytes in all move inside their workflow's task
    /// (local activities: no activity task, fewer workflow tasks); larger
    /// ones in an activity of their own (heartbeats, resume). 0: none.
    pub local_max_bytes: u64,
    /// Local activities a worker runs at once, per band (small AIPs).
    pub local_slots: usize,
    /// The same for a band's batch items. Fewer than `local_slots`: a
    /// collection of small AIPs leaves a single request of the band the
    /// CPU and the Temporal server it needs (with `batch_nice`).
    pub batch_local_slots: usize,
    /// Short steps a worker runs at once on the queue `{prefix}-steps`:
    /// `finish` (the lock released, the webhook's first attempt), the
    /// webhook's later attempts and the clean-ups. Slots of their own, so
    /// a band whose activity slots all hold long transfers still releases
    /// every other dissemination's lock and sends its webhook.
    pub steps_slots: usize,
    /// The same for batch items, on `{prefix}-steps-batched`, on the batch
    /// items' threads (`batch_nice`): a collection's steps never hold the
    /// slots a single request's take, and no more of them than this press
    /// on the Temporal server at once beside another client's request.
    pub batch_steps_slots: usize,
    /// Single requests for AIPs up to this many bytes in all (and over
    /// `local_max_bytes`) run on the queue `{prefix}-small`, with
    /// `small_slots` of their own: a photograph never waits behind its
    /// band's terabyte transfers, which hold the band's slots for hours.
    /// A batch's items of that size run on `{prefix}-small-batched` with
    /// `small_slots` of their own on the batch items' threads. 0: no small
    /// class (the next class up, or the band's queue, takes them).
    pub small_max_bytes: u64,
    /// Transfers a worker runs at once on `{prefix}-small`, every band's
    /// (the server hands them out urgent first). Each holds at most its
    /// AIP's size, and never more than a large transfer's part buffers.
    pub small_slots: usize,
    /// AIPs over `small_max_bytes` and up to this many bytes in all (a
    /// book's scans, an hour of film) run on `{prefix}-medium` (a batch's:
    /// `{prefix}-medium-batched`) with `medium_slots` of their own: they
    /// wait at most behind transfers of their own class, never behind a
    /// band's terabyte ones. 0: no medium class (the next class up, or the
    /// band's queue, takes them).
    pub medium_max_bytes: u64,
    /// Transfers a worker runs at once on `{prefix}-medium`, every band's,
    /// and as many on `{prefix}-medium-batched`. Each holds a large
    /// transfer's part buffers: (`s3.upload_concurrency` + 1) × part size.
    pub medium_slots: usize,
    /// AIPs over `medium_max_bytes` and up to this many bytes in all (a
    /// film scanned frame by frame, a web harvest) run on `{prefix}-large`
    /// (a batch's: `{prefix}-large-batched`) with `large_slots` of their
    /// own: one just over `medium_max_bytes` waits at most behind a
    /// transfer of this size, never behind a band's terabyte ones. Only
    /// AIPs over it take their band's slots. 0: every AIP over the classes
    /// below on its band's queue.
    pub large_max_bytes: u64,
    /// Transfers a worker runs at once on `{prefix}-large`, every band's,
    /// and as many on `{prefix}-large-batched`. Each holds a large
    /// transfer's part buffers.
    pub large_slots: usize,
    /// Transfers a worker runs at once on each size class's queue of the
    /// most urgent band (the first of `[[bands]]`): its single requests of
    /// a class run on `{prefix}-{class}-{band}` (`dissemination-large-urgent`
    /// with the defaults), not on the class's queue every band shares,
    /// so they never wait for a less urgent transfer of their class to end
    /// (for the large class, up to an hour or so): only for one of their
    /// own band. Each holds at most a large transfer's part buffers.
    /// 0 (or a single band): they share the class's queue, where they are
    /// served first, once one of its transfers ends.
    pub urgent_class_slots: usize,
    /// How many nice levels below the rest of the worker the threads that
    /// run batch items work (0 to 19): beside a single request, a batch
    /// then gets the CPU only when the request leaves it some; alone, it
    /// takes every core.
    pub batch_nice: i32,
    /// Whether the worker's memory may be backed by transparent huge pages
    /// where the kernel offers them (`madvise` or `always`). Off: its
    /// allocator's arenas then grow by 4 KiB pages as they are touched, not
    /// by 2 MiB ones, which keeps the idle worker about 45 MiB smaller.
    pub transparent_huge_pages: bool,
}

impl WorkerConfig {
    /// `graceful_shutdown_secs`, as the SDK's workers take it.
    pub fn graceful_shutdown(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.graceful_shutdown_secs)
    }

    /// `heartbeat_throttle_ms`, as the SDK's workers take it.
    pub fn heartbeat_throttle(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.heartbeat_throttle_ms)
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            identity: None,
            graceful_shutdown_secs: 30,
            heartbeat_throttle_ms: 2_000,
            metrics_addr: None,
            health_addr: None,
            local_max_bytes: 1024 * 1024,
            local_slots: 20,
            batch_local_slots: 3,
            steps_slots: 32,
            batch_steps_slots: 4,
            small_max_bytes: 64 * 1024 * 1024,
            small_slots: 4,
            medium_max_bytes: 4 * 1024 * 1024 * 1024,
            medium_slots: 4,
            large_max_bytes: 256 * 1024 * 1024 * 1024,
            large_slots: 2,
            urgent_class_slots: 2,
            batch_nice: 19,
            transparent_huge_pages: false,
        }
    }
}

/// A range of AIP sizes with task queues and slots of their own, so that
/// an AIP waits at most behind transfers of its own class, never behind a
/// band's terabyte ones: `small` up to `worker.small_max_bytes`, `medium`
/// up to `worker.medium_max_bytes`, `large` up to `worker.large_max_bytes`
/// (smallest class first). The bounds are 64 times apart by default, so an
/// AIP waits at most behind transfers of about 64 times its size, where
/// without the classes it could wait behind terabytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeClass {
    Small,
    Medium,
    Large,
}

impl SizeClass {
    /// Every class, smallest first.
    pub const ALL: [SizeClass; 3] = [SizeClass::Small, SizeClass::Medium, SizeClass::Large];

    /// The name its queues carry.
    pub fn name(self) -> &'static str {
        match self {
            SizeClass::Small => "small",
            SizeClass::Medium => "medium",
            SizeClass::Large => "large",
        }
    }
}

/// A priority band: priorities up to `max_priority` share a task queue.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct BandConfig {
    pub name: String,
    pub max_priority: u8,
    /// Concurrent activities a worker runs for this band.
    #[serde(default = "default_slots")]
    pub slots: usize,
    /// Concurrent activities a worker runs for the band's batch items,
    /// which have a task queue and slots of their own (unset: `slots`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_slots: Option<usize>,
}

fn default_slots() -> usize {
    4
}

impl BandConfig {
    pub fn defaults() -> Vec<Self> {
        [("urgent", 10), ("high", 40), ("normal", 70), ("low", 100)]
            .into_iter()
            .map(|(name, max_priority)| Self {
                name: name.into(),
                max_priority,
                slots: default_slots(),
                batch_slots: None,
            })
            .collect()
    }

    /// Activity slots for the band's batch items.
    pub fn batch_slots(&self) -> usize {
        self.batch_slots.unwrap_or(self.slots)
    }
}

//! The clients' event feed: every webhook message the service sends (or
//! would send, to a client without a webhook URL) is also an event in its
//! client's feed, kept in an S3 bucket (`events.bucket`) for at least
//! `events.retention_days`. `GET /v1/events` walks it with a cursor,
//! `POST /v1/webhooks/recover` resends what the endpoint did not take.
//!
//! # The log
//!
//! Per client, a gapless sequence: event `n` is the object
//! `log/{client}/{n:020}`. A writer claims a number with a conditional PUT
//! (`If-None-Match: *`, atomic in S3 and SeaweedFS) and on 412 tries the
//! next; it only tries `n + 1` once `n` exists. So when a reader lists `n`,
//! every `m < n` is already listed too: a reader that walks past `n` can
//! never miss an event written later, whatever the number of writers
//! (workers) and readers (API replicas).
//!
//! # Exactly once per message
//!
//! The writer is an activity and may be retried after a crash between its
//! steps, so one message can end up claimed twice. `ids/{client}/{webhookId}`
//! names the one canonical number (written with `If-None-Match`, so the
//! first to write it wins, and it never changes). A writer reads it first
//! (present: already appended), then claims, then writes it. A reader
//! serving `n` reads it too, writes it as `n` itself if it is missing (a
//! writer that crashed after its claim), and serves `n` only if it names
//! `n`. Every reader therefore serves each message at exactly one number.
//! (So readers, too, need write access to the bucket.)
//!
//! # Retention and deletion
//!
//! Pages skip events older than `retention_days`; recovery does not reach
//! further back ([`Feed::oldest_allowed`]). [`Feed::prune`] deletes what
//! is a day past the window: log objects (always keeping the newest, see
//! below), index entries and acknowledgements. An append starts it for its
//! client, in the background, at most once per `events.prune_every_secs`
//! per process: a feed grows only while its client gets events, and then
//! it is pruned. (An operator may call it too.)
//!
//! A bucket lifecycle rule may expire `ids/` and `acked/` (expiration at
//! least `retention_days + 2` days) but must **not** cover `log/`: the
//! newest log object of a client is the high-water mark of its sequence. A
//! lifecycle rule would expire it too once a client has been idle for the
//! window, the sequence would restart at 1, and a client holding a cursor
//! at 500 would never see events 1 to 500 of the new run.
//!
//! Cursors are described in [`Cursor`]'s module: opaque, URL-safe, bound
//! to the client by a MAC.

mod append;
mod cursor;
mod error;
mod keys;
mod prune;
mod read;
mod store;

pub use cursor::Cursor;
pub use error::FeedError;
pub use store::{s3_client, s3_error_text};

use chrono::{DateTime, Utc};
use platform::config::{EventsConfig, S3Config};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// The event types the service emits.
pub const EVENT_TYPES: [&str; 3] = [
    "dissemination.delivered",
    "dissemination.failed",
    "dissemination-batch.completed",
];

/// A webhook message, to be appended to its client's feed.
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    pub client_id: &'a str,
    /// The message's `webhook-id`: one event per id, however often appended.
    pub webhook_id: &'a str,
    /// One of [`EVENT_TYPES`].
    pub event_type: &'a str,
    /// RFC 3339.
    pub occurred_at: &'a str,
    /// The exact JSON body of the webhook.
    pub payload: &'a str,
}

/// An event as the feed serves it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// Its place in the client's feed.
    pub seq: u64,
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: String,
    /// The webhook's body, byte for byte.
    pub payload: Box<RawValue>,
}

/// One page of a client's feed.
#[derive(Clone, Debug)]
pub struct Page {
    /// The events, in order, each with the cursor that resumes after it.
    pub events: Vec<(Cursor, StoredEvent)>,
    /// Where to resume: after the last event examined (also those the type
    /// filter left out), or where the page started if nothing was new.
    /// Always present, also for an empty feed, so a client always has one.
    pub next: Cursor,
    /// The page stopped before the end of the feed: it is full, or it read
    /// the most a page reads (2,000 events) with too few of the asked types
    /// among them. More can be had at once with `next`; when false, the
    /// client is up to date.
    pub more: bool,
}

/// A log object's body (its number is its key).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryOut<'a> {
    webhook_id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    occurred_at: &'a str,
    payload: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryIn {
    webhook_id: String,
    #[serde(rename = "type")]
    event_type: String,
    occurred_at: String,
    payload: Box<RawValue>,
}

/// The event feed of every client, on one bucket. Cheap to clone; clones
/// share the tails this process has seen.
#[derive(Clone)]
pub struct Feed {
    store: store::Store,
    retention_days: u32,
    max_page_size: usize,
    cursors: cursor::CursorKey,
    /// Per client, the number to try next and when it was learnt.
    tails: Arc<Mutex<HashMap<String, append::Tail>>>,
    /// How often an append prunes its client's feed (`None`: never).
    prune_every: Option<std::time::Duration>,
    /// Per client, when this process last started pruning its feed.
    pruned: Arc<Mutex<HashMap<String, std::time::Instant>>>,
}

impl Feed {
    /// `cursor_key` signs the cursors: every API replica must have the same,
    /// and changing it invalidates the cursors clients hold.
    pub fn new(s3: &S3Config, events: &EventsConfig, cursor_key: &[u8]) -> Self {
        Self {
            store: store::Store::new(s3, &events.bucket),
            // A window of less than a day would let `prune` race writers.
            retention_days: events.retention_days.max(1),
            max_page_size: events.max_page_size.max(1),
            cursors: cursor::CursorKey::new(cursor_key),
            tails: Arc::default(),
            prune_every: (events.prune_every_secs > 0)
                .then(|| std::time::Duration::from_secs(events.prune_every_secs)),
            pruned: Arc::default(),
        }
    }

    /// Checks the bucket (creating it when missing, unless an expected
    /// owner is configured): once at startup.
    pub async fn ensure_bucket(&self) -> Result<(), FeedError> {
        self.store.ensure_bucket().await
    }

    /// The largest page [`Feed::page`] returns.
    pub fn max_page_size(&self) -> usize {
        self.max_page_size
    }

    /// The oldest time the feed still serves: a recovery `since` before it
    /// is refused by the API.
    pub fn oldest_allowed(&self) -> DateTime<Utc> {
        Utc::now() - chrono::Duration::days(i64::from(self.retention_days))
    }

    /// Records that the client's endpoint answered the message with a 2xx,
    /// so recovery does not resend it.
    #[tracing::instrument(skip_all, fields(client_id = client_id, webhook_id = webhook_id))]
    pub async fn acknowledge_delivery(
        &self,
        client_id: &str,
        webhook_id: &str,
    ) -> Result<(), FeedError> {
        let key = keys::ClientKeys::new(client_id)?.acked(webhook_id)?;
        self.store.put(&key, b"").await
    }
}

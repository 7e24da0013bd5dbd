//! Appending: claim the next number of the client's log, then name it in
//! the message's index. A retried append finds the index and stops there.
//!
//! Where a writer starts: this process's hint for the client (the number
//! after its own last claim, trusted for an hour: far inside the window, so
//! the number before it cannot have been pruned), else the tail found with
//! O(log n) requests. A stale hint only costs 412s; after a few in a row
//! the tail is searched again from the last number known to exist.

use crate::{
    keys::ClientKeys,
    store::{Listed, Put},
    EntryOut, Feed, FeedError, NewEvent,
};
use serde_json::value::RawValue;
use std::{
    sync::PoisonError,
    time::{Duration, Instant},
};

/// How long a process trusts its own idea of a client's next number.
const HINT_TTL: Duration = Duration::from_secs(3600);
/// 412s in a row before the tail is searched instead of walked to.
const MISSES_BEFORE_SEARCH: u32 = 4;

pub(crate) struct Tail {
    next: u64,
    learnt: Instant,
}

impl Feed {
    /// Appends the message to its client's feed, once: appending the same
    /// `(client_id, webhook_id)` again (a retried activity) returns the
    /// number it already has. Returns its sequence number.
    #[tracing::instrument(skip_all, fields(client_id = e.client_id, webhook_id = e.webhook_id))]
    pub async fn append(&self, e: &NewEvent<'_>) -> Result<u64, FeedError> {
        let keys = ClientKeys::new(e.client_id)?;
        let index = keys.id(e.webhook_id)?;
        let entry = entry_bytes(e)?;
        if let Some(seq) = self.read_index(&index).await? {
            return Ok(seq);
        }
        let seq = self.claim_entry(&keys, e.client_id, &entry).await?;
        let seq = self.settle(&index, seq).await?;
        self.prune_when_due(e.client_id);
        Ok(seq)
    }

    /// The first step of [`Feed::append`] alone, as a writer that crashed
    /// before writing the index leaves it: for tests of that crash.
    #[doc(hidden)]
    pub async fn claim(&self, e: &NewEvent<'_>) -> Result<u64, FeedError> {
        let keys = ClientKeys::new(e.client_id)?;
        keys.id(e.webhook_id)?;
        self.claim_entry(&keys, e.client_id, &entry_bytes(e)?).await
    }

    /// Names `seq` as the message's number unless another number was named
    /// first; returns the canonical one.
    pub(crate) async fn settle(&self, index: &str, seq: u64) -> Result<u64, FeedError> {
        match self
            .store
            .put_if_absent(index, seq.to_string().as_bytes())
            .await?
        {
            Put::Created => Ok(seq),
            Put::Exists => self.read_index(index).await?.ok_or_else(|| {
                FeedError::Unavailable(format!("{index} exists (412) but cannot be read"))
            }),
        }
    }

    pub(crate) async fn read_index(&self, index: &str) -> Result<Option<u64>, FeedError> {
        let Some(bytes) = self.store.get(index).await? else {
            return Ok(None);
        };
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| FeedError::Unavailable(format!("{index} holds no sequence number")))
    }

    async fn claim_entry(
        &self,
        keys: &ClientKeys,
        client_id: &str,
        entry: &[u8],
    ) -> Result<u64, FeedError> {
        let mut seq = match self.hint(client_id) {
            Some(next) => next,
            None => self.find_tail(keys, None).await? + 1,
        };
        let mut misses = 0;
        loop {
            match self.store.put_if_absent(&keys.log(seq), entry).await? {
                Put::Created => {
                    self.remember(client_id, seq + 1);
                    return Ok(seq);
                }
                // `seq` exists now, so `seq + 1` may be tried.
                Put::Exists => {
                    misses += 1;
                    seq = if misses % MISSES_BEFORE_SEARCH == 0 {
                        self.find_tail(keys, Some(seq)).await? + 1
                    } else {
                        seq + 1
                    };
                }
            }
        }
    }

    /// The highest number in the client's log (0: none yet), searched up
    /// from `known` (a number known to exist) or the first listed key:
    /// galloping, then binary search with HEADs. The result is checked
    /// with one listing after it, which also covers a `prune` deleting the
    /// start of the log meanwhile (it never deletes the newest object).
    pub(crate) async fn find_tail(
        &self,
        keys: &ClientKeys,
        known: Option<u64>,
    ) -> Result<u64, FeedError> {
        let mut lo = match known {
            Some(seq) => seq,
            None => match self.first_listed(keys).await? {
                Some((seq, _)) => seq,
                None => return Ok(0),
            },
        };
        loop {
            let mut step = 1u64;
            let mut hi = loop {
                let probe = lo.saturating_add(step);
                if self.store.head(&keys.log(probe)).await?.is_some() {
                    lo = probe;
                    step = step.saturating_mul(2);
                } else {
                    break probe;
                }
            };
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.store.head(&keys.log(mid)).await?.is_some() {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let after = self
                .store
                .list(keys.log_prefix(), Some(&keys.log(lo)), 1)
                .await?;
            match after.objects.first().and_then(|o| keys.seq_of(&o.key)) {
                Some(later) => lo = later,
                None => return Ok(lo),
            }
        }
    }

    /// The first object of the client's log, if any.
    pub(crate) async fn first_listed(
        &self,
        keys: &ClientKeys,
    ) -> Result<Option<(u64, Listed)>, FeedError> {
        let listing = self.store.list(keys.log_prefix(), None, 1).await?;
        Ok(listing
            .objects
            .into_iter()
            .next()
            .and_then(|o| Some((keys.seq_of(&o.key)?, o))))
    }

    fn hint(&self, client_id: &str) -> Option<u64> {
        let tails = self.tails.lock().unwrap_or_else(PoisonError::into_inner);
        tails
            .get(client_id)
            .filter(|t| t.learnt.elapsed() < HINT_TTL)
            .map(|t| t.next)
    }

    fn remember(&self, client_id: &str, next: u64) {
        let mut tails = self.tails.lock().unwrap_or_else(PoisonError::into_inner);
        let tail = tails.entry(client_id.to_owned()).or_insert(Tail {
            next,
            learnt: Instant::now(),
        });
        // Concurrent appends in this process finish in any order.
        if next >= tail.next || tail.learnt.elapsed() >= HINT_TTL {
            tail.next = next;
        }
        tail.learnt = Instant::now();
    }
}

/// A log object's body; refuses what the feed could not serve back.
fn entry_bytes(e: &NewEvent<'_>) -> Result<Vec<u8>, FeedError> {
    if e.event_type.is_empty() {
        return Err(FeedError::Invalid("empty event type".into()));
    }
    chrono::DateTime::parse_from_rfc3339(e.occurred_at)
        .map_err(|err| FeedError::Invalid(format!("occurredAt {:?}: {err}", e.occurred_at)))?;
    let payload: &RawValue = serde_json::from_str(e.payload)
        .map_err(|err| FeedError::Invalid(format!("payload is not JSON: {err}")))?;
    serde_json::to_vec(&EntryOut {
        webhook_id: e.webhook_id,
        event_type: e.event_type,
        occurred_at: e.occurred_at,
        payload,
    })
    .map_err(|err| FeedError::Invalid(format!("encoding the entry: {err}")))
}

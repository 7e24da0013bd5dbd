//! Reading: a page along a cursor, and the undelivered events since a time.
//!
//! Both walk the log from a position with `ListObjectsV2` (`StartAfter`),
//! read bodies a few at a time, in order, and keep an event only if it is
//! inside the window and canonical (its index names it; a missing index is
//! written by the reader: see the crate docs). Filters apply after that
//! check, so a message claimed twice is settled however it is filtered.

use crate::{keys::ClientKeys, store::Listed, Cursor, EntryIn, Feed, FeedError, Page, StoredEvent};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;

/// Bodies read at once along a walk.
const READ_AHEAD: usize = 8;

/// Clock skew allowed for where S3's time of a write (`LastModified`, whole
/// seconds) stands in for the event's time, which is never later.
fn skew() -> chrono::Duration {
    chrono::Duration::minutes(5)
}

/// Bodies one page reads at most: a rare type filtered out of a long log
/// must not make one request read all of it. The page then ends early,
/// with `more`, and its cursor after what was read.
const PAGE_READ_BUDGET: usize = 2_000;

struct Walked {
    found: Vec<StoredEvent>,
    /// The last number examined.
    last: u64,
    /// The walk stopped before the end of the log.
    more: bool,
}

/// Which canonical events a walk keeps.
enum Want<'a> {
    /// Of these types (all if empty).
    Types(&'a [String]),
    /// Occurred at or after `since`, without an acknowledgement.
    Undelivered { since: DateTime<Utc> },
}

impl Feed {
    /// Up to `page_size` (at most `events.max_page_size`) of the client's
    /// events after the cursor `after` (from the start without one), of
    /// the given types (all if empty), in order. A page with a filter may
    /// end early (see [`Page::more`]).
    #[tracing::instrument(skip_all, fields(client_id = client_id))]
    pub async fn page(
        &self,
        client_id: &str,
        after: Option<&str>,
        types: &[String],
        page_size: usize,
    ) -> Result<Page, FeedError> {
        let keys = ClientKeys::new(client_id)?;
        let from = match after {
            Some(cursor) => self.cursors.open(client_id, cursor)?,
            None => 0,
        };
        let limit = page_size.clamp(1, self.max_page_size);
        let want = Want::Types(types);
        let walked = self
            .walk(&keys, from, limit, PAGE_READ_BUDGET, &want)
            .await?;
        let cursor = |seq| -> Cursor { self.cursors.issue(client_id, seq) };
        Ok(Page {
            events: walked
                .found
                .into_iter()
                .map(|e| (cursor(e.seq), e))
                .collect(),
            next: cursor(walked.last),
            more: walked.more,
        })
    }

    /// The client's events that occurred at or after `since` (no further
    /// back than the window) and that its endpoint did not acknowledge, in
    /// order, at most `limit`.
    ///
    /// The walk starts at the first event S3 wrote at or after `since`
    /// (less the skew), found by binary search over the sequence with
    /// HEADs: write times grow with the sequence (`n + 1` is written after
    /// `n`) and an event is written after it occurred, so no event that
    /// occurred since then is before it. The event's own time is not
    /// ordered that way (a retried activity appends late), so it only
    /// filters. O(log n) requests, then only the events since then.
    #[tracing::instrument(skip_all, fields(client_id = client_id))]
    pub async fn undelivered_since(
        &self,
        client_id: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, FeedError> {
        let keys = ClientKeys::new(client_id)?;
        let since = since.max(self.oldest_allowed());
        let Some(first) = self.first_written_since(&keys, since - skew()).await? else {
            return Ok(Vec::new());
        };
        let want = Want::Undelivered { since };
        let limit = limit.max(1);
        // No budget: recovery is rare, and must not stop short.
        let walked = self
            .walk(&keys, first - 1, limit, usize::MAX, &want)
            .await?;
        Ok(walked.found)
    }

    /// The smallest number S3 wrote at or after `t` (one past the tail if
    /// none), `None` for an empty log.
    async fn first_written_since(
        &self,
        keys: &ClientKeys,
        t: DateTime<Utc>,
    ) -> Result<Option<u64>, FeedError> {
        let Some((first, listed)) = self.first_listed(keys).await? else {
            return Ok(None);
        };
        if listed.last_modified.is_none_or(|w| w >= t) {
            return Ok(Some(first));
        }
        // `lo` was written before `t`; `hi` at or after it (or is past the end).
        let (mut lo, mut hi) = (first, self.find_tail(keys, Some(first)).await? + 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.store.head(&keys.log(mid)).await? {
                Some(written) if written >= t => hi = mid,
                // Written before, or pruned (only old objects are).
                _ => lo = mid,
            }
        }
        Ok(Some(hi))
    }

    /// The events after `from` that `want` keeps, at most `limit`, reading
    /// at most `budget` bodies.
    async fn walk(
        &self,
        keys: &ClientKeys,
        from: u64,
        limit: usize,
        budget: usize,
        want: &Want<'_>,
    ) -> Result<Walked, FeedError> {
        let oldest = self.oldest_allowed();
        let batch = (limit * 2).clamp(64, 1000);
        let (mut found, mut last, mut reads) = (Vec::new(), from, 0);
        let mut start_after = keys.log(from);
        loop {
            let listing = self
                .store
                .list(keys.log_prefix(), Some(&start_after), batch)
                .await?;
            if let Some(o) = listing.objects.last() {
                start_after.clone_from(&o.key);
            }
            let listed: Vec<(u64, Listed)> = listing
                .objects
                .into_iter()
                .filter_map(|o| Some((keys.seq_of(&o.key).filter(|&s| s > last)?, o)))
                .collect();
            let mut left = listed.len();
            let mut examined = futures::stream::iter(listed)
                .map(|(seq, o)| self.examine(keys, seq, o, oldest, want))
                .buffered(READ_AHEAD);
            while let Some(result) = examined.next().await {
                let (seq, read, event) = result?;
                (last, left) = (seq, left - 1);
                reads += usize::from(read);
                found.extend(event);
                if found.len() >= limit || reads >= budget {
                    let more = left > 0 || listing.truncated;
                    return Ok(Walked { found, last, more });
                }
            }
            if !listing.truncated {
                let more = false;
                return Ok(Walked { found, last, more });
            }
        }
    }

    /// Event `seq`, whether its body was read, and the event if `want`
    /// keeps it.
    async fn examine(
        &self,
        keys: &ClientKeys,
        seq: u64,
        listed: Listed,
        oldest: DateTime<Utc>,
        want: &Want<'_>,
    ) -> Result<(u64, bool, Option<StoredEvent>), FeedError> {
        // Written before the window opened: it occurred even earlier.
        if listed.last_modified.is_some_and(|w| w < oldest - skew()) {
            return Ok((seq, false, None));
        }
        // Gone: pruned since it was listed.
        let Some(bytes) = self.store.get(&listed.key).await? else {
            return Ok((seq, true, None));
        };
        let Some((entry, occurred)) = parse_entry(&bytes) else {
            // Only this crate writes here: a bug to see, not a feed to block.
            tracing::error!(key = listed.key, "unreadable feed entry skipped");
            return Ok((seq, true, None));
        };
        if occurred < oldest {
            return Ok((seq, true, None));
        }
        let index = keys.id(&entry.webhook_id)?;
        let canonical = match self.read_index(&index).await? {
            Some(canonical) => canonical,
            None => self.settle(&index, seq).await?,
        };
        if canonical != seq {
            return Ok((seq, true, None));
        }
        let keep = match want {
            Want::Types(types) => types.is_empty() || types.contains(&entry.event_type),
            Want::Undelivered { since } => {
                occurred >= *since
                    && self
                        .store
                        .head(&keys.acked(&entry.webhook_id)?)
                        .await?
                        .is_none()
            }
        };
        Ok((
            seq,
            true,
            keep.then_some(StoredEvent {
                seq,
                webhook_id: entry.webhook_id,
                event_type: entry.event_type,
                occurred_at: entry.occurred_at,
                payload: entry.payload,
            }),
        ))
    }
}

fn parse_entry(bytes: &[u8]) -> Option<(EntryIn, DateTime<Utc>)> {
    let entry: EntryIn = serde_json::from_slice(bytes).ok()?;
    let occurred = DateTime::parse_from_rfc3339(&entry.occurred_at).ok()?;
    (!entry.webhook_id.is_empty()).then(|| (entry, occurred.to_utc()))
}

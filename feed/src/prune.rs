//! Pruning: what is a day past the window (the margin covers clocks that
//! disagree; pages skip these events already). The log is ordered by age,
//! so its walk stops at the first young object, and it never deletes the
//! newest object: that is where the next writer's search starts (see the
//! crate docs). Index entries and acknowledgements are unordered: their
//! listings are walked whole.

use crate::{keys::ClientKeys, Feed, FeedError};
use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use std::{
    sync::PoisonError,
    time::{Duration, Instant},
};

const DELETES_AT_ONCE: usize = 8;

/// Whether a client last pruned at `last` is due again at `now`.
fn due(last: Option<Instant>, now: Instant, every: Duration) -> bool {
    last.is_none_or(|t| now.duration_since(t) >= every)
}

impl Feed {
    /// After an append: prunes the client's feed in the background if this
    /// process has not in `events.prune_every_secs`. A failure is logged
    /// and tried again at the next append.
    pub(crate) fn prune_when_due(&self, client_id: &str) {
        let Some(every) = self.prune_every else {
            return;
        };
        {
            let mut pruned = self.pruned.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if !due(pruned.get(client_id).copied(), now, every) {
                return;
            }
            pruned.insert(client_id.to_owned(), now);
        }
        let (feed, client_id) = (self.clone(), client_id.to_owned());
        tokio::spawn(async move {
            match feed.prune(&client_id).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(client_id, deleted = n, "event feed pruned"),
                Err(e) => {
                    tracing::warn!(client_id, error = %e, "pruning the event feed");
                    let mut pruned = feed.pruned.lock().unwrap_or_else(PoisonError::into_inner);
                    pruned.remove(&client_id);
                }
            }
        });
    }

    /// Deletes the client's objects that are a day past the window;
    /// returns how many. Now and then, per client.
    #[tracing::instrument(skip_all, fields(client_id = client_id))]
    pub async fn prune(&self, client_id: &str) -> Result<u32, FeedError> {
        let before = self.oldest_allowed() - chrono::Duration::days(1);
        self.prune_before(client_id, before).await
    }

    /// [`Feed::prune`] with any boundary: for tests, which cannot age objects.
    #[doc(hidden)]
    pub async fn prune_before(
        &self,
        client_id: &str,
        before: DateTime<Utc>,
    ) -> Result<u32, FeedError> {
        let keys = ClientKeys::new(client_id)?;
        let mut deleted = self.prune_log(&keys, before).await?;
        for prefix in [keys.ids_prefix(), keys.acked_prefix()] {
            deleted += self.prune_prefix(&prefix, before).await?;
        }
        Ok(deleted)
    }

    async fn prune_log(&self, keys: &ClientKeys, before: DateTime<Utc>) -> Result<u32, FeedError> {
        let mut deleted = 0;
        // The latest old object seen: deleted only once a later one shows.
        let mut held: Option<String> = None;
        let mut start_after: Option<String> = None;
        loop {
            let listing = self
                .store
                .list(keys.log_prefix(), start_after.as_deref(), 1000)
                .await?;
            let mut doomed = Vec::new();
            let mut young = false;
            for o in &listing.objects {
                doomed.extend(held.take());
                if o.last_modified.is_some_and(|w| w < before) {
                    held = Some(o.key.clone());
                } else {
                    young = true;
                    break;
                }
            }
            deleted += self.delete_all(doomed).await?;
            if young || !listing.truncated {
                return Ok(deleted);
            }
            start_after = listing.objects.last().map(|o| o.key.clone());
        }
    }

    async fn prune_prefix(&self, prefix: &str, before: DateTime<Utc>) -> Result<u32, FeedError> {
        let mut deleted = 0;
        let mut start_after: Option<String> = None;
        loop {
            let listing = self
                .store
                .list(prefix, start_after.as_deref(), 1000)
                .await?;
            start_after = listing.objects.last().map(|o| o.key.clone());
            let doomed = listing
                .objects
                .into_iter()
                .filter(|o| o.last_modified.is_some_and(|w| w < before))
                .map(|o| o.key)
                .collect();
            deleted += self.delete_all(doomed).await?;
            if !listing.truncated {
                return Ok(deleted);
            }
        }
    }

    async fn delete_all(&self, keys: Vec<String>) -> Result<u32, FeedError> {
        futures::stream::iter(keys)
            .map(|key| async move { self.store.delete(&key).await })
            .buffer_unordered(DELETES_AT_ONCE)
            .try_fold(0, |n, ()| async move { Ok(n + 1) })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_pruned_at_most_once_per_interval() {
        let every = Duration::from_secs(3600);
        let t0 = Instant::now();
        assert!(due(None, t0, every), "never pruned: due");
        assert!(!due(Some(t0), t0 + Duration::from_secs(60), every));
        assert!(!due(Some(t0), t0 + every - Duration::from_millis(1), every));
        assert!(due(Some(t0), t0 + every, every));
    }
}

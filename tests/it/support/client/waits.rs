//! Bounded waits on what the API shows: a dissemination until it reaches
//! a state, a batch until it completes.

use super::{Api, BatchPage};
use model::DisseminationStatus;
use serde_json::Value;
use std::time::{Duration, Instant};
use workflows::{BatchCounts, BatchItem, BatchStatus, DisseminationView};

impl Api {
    /// GETs dissemination `id` until `done` holds for the body (bounded);
    /// every distinct status seen, in order, and the last body.
    pub async fn poll_until(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> (Vec<String>, Value) {
        let deadline = Instant::now() + timeout;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let answer = self.view(id).answer().await;
            if answer.status == 503 && Instant::now() < deadline {
                // A dependency coming back (Temporal restarted): as a client
                // would, honour Retry-After (shortened here) and ask again.
                assert!(
                    answer.header("retry-after").is_some(),
                    "503 without Retry-After"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            answer.expect_status(200, &format!("GET {id}"));
            let body: Value = answer.json();
            let status = body["status"].as_str().unwrap_or_default().to_owned();
            if seen.last() != Some(&status) {
                seen.push(status);
            }
            if done(&body) {
                return (seen, body);
            }
            assert!(
                Instant::now() < deadline,
                "timed out; statuses seen: {seen:?}; last: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (bounded) until the view satisfies `done`: every distinct
    /// status seen, in order, and the last view.
    pub async fn track(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&DisseminationView) -> bool,
    ) -> (Vec<DisseminationStatus>, DisseminationView) {
        let (seen, body) = self
            .poll_until(id, timeout, |b| {
                serde_json::from_value(b.clone()).is_ok_and(|v| done(&v))
            })
            .await;
        let seen = seen
            .iter()
            .map(|s| serde_json::from_value(Value::String(s.clone())).unwrap())
            .collect();
        (seen, serde_json::from_value(body).unwrap())
    }

    /// Waits (bounded) until the view satisfies `done`; the last view.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&DisseminationView) -> bool,
    ) -> DisseminationView {
        self.track(id, timeout, done).await.1
    }

    /// Waits (bounded) until `id`'s transfer holds a worker's slot.
    pub async fn until_transferring(&self, id: &str) -> DisseminationView {
        let timeout = Duration::from_secs(60);
        self.wait_for(id, timeout, |v| super::is_transferring(v.status))
            .await
    }

    /// Asserts that `id`'s transfer still holds its slot; `why` says what
    /// it would mean otherwise.
    pub async fn assert_transferring(&self, id: &str, why: &str) {
        let now = self.view(id).await.status;
        assert!(super::is_transferring(now), "{why}, but it is {now:?}");
    }

    /// POSTs `body` and waits (bounded) until it is DISSEMINATED: its id
    /// and view.
    pub async fn deliver(&self, body: Value, timeout: Duration) -> (String, DisseminationView) {
        let id = self.create(body).await.dissemination_id;
        let done = |v: &DisseminationView| v.status == DisseminationStatus::Disseminated;
        let view = self.wait_for(&id, timeout, done).await;
        (id, view)
    }

    /// Waits (bounded) until the dissemination is final; the last view.
    pub async fn until_final(&self, id: &str, timeout: Duration) -> DisseminationView {
        self.wait_for(id, timeout, |v| v.status.is_final()).await
    }

    /// GETs batch `id` until COMPLETED (bounded): its last page and every
    /// count seen on the way. Behind a proxy, a 502 or 503 (a replica or
    /// Temporal restarting) is asked again.
    pub async fn until_batch_completed(
        &self,
        id: &str,
        timeout: Duration,
    ) -> (BatchPage, Vec<BatchCounts>) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let answer = self.batch(id).answer().await;
            if answer.status == 200 {
                let page: BatchPage = answer.json();
                seen.push(page.batch.counts.clone());
                if page.batch.status == BatchStatus::Completed {
                    return (page, seen);
                }
            } else {
                assert!(
                    [502, 503].contains(&answer.status),
                    "GET batch: {} {}",
                    answer.status,
                    answer.text
                );
            }
            assert!(
                Instant::now() < deadline,
                "batch {id} not completed: {:?}",
                seen.last()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every item of batch `id`, all pages.
    pub async fn batch_items(&self, id: &str) -> Vec<BatchItem> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.batch_page(id, cursor.as_deref()).await;
            items.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return items,
            }
        }
    }
}

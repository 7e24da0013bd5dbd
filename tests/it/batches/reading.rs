//! A batch is read from Temporal's visibility store and the batch's own
//! workflow, never from a worker: with none running, a completed batch and
//! one whose items all wait both answer.

use super::small_aips;
use crate::support::{spawn_worker_process, Options, TestApp};
use model::DisseminationStatus;
use serde_json::json;
use std::{sync::Arc, time::Duration};
use workflows::{BatchCounts, BatchStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_read_with_no_worker_running() {
    let app = TestApp::start_with(Options {
        configure: Some(Arc::new(|cfg| cfg.api.batch_poll_ms = 200)),
        ..Options::without_worker()
    })
    .await;
    let api = app.api(&app.client_token());
    let smalls = small_aips(&app, "b0a7", 40).await;
    let worker = spawn_worker_process(&app.cfg, "worker-batch-read");
    let done_id = api
        .create_batch(json!({"archiveIds": smalls[..20]}))
        .await
        .id();
    api.until_batch_completed(&done_id, Duration::from_secs(120))
        .await;
    worker.kill_hard();

    // With no worker: the completed batch, and one whose items all wait.
    let waiting_id = api
        .create_batch(json!({"archiveIds": smalls[20..]}))
        .await
        .id();
    let disseminated: fn(&BatchCounts) -> u32 = |c| c.disseminated;
    let in_progress: fn(&BatchCounts) -> u32 = |c| c.in_progress;
    for (id, status, counted, item_status) in [
        (
            &done_id,
            BatchStatus::Completed,
            disseminated,
            DisseminationStatus::Disseminated,
        ),
        (
            &waiting_id,
            BatchStatus::InProgress,
            in_progress,
            DisseminationStatus::Queued,
        ),
    ] {
        // No worker is needed to read a batch.
        let page = api.batch(id).await;
        assert_eq!(page.batch.status, status, "{page:?}");
        assert_eq!(counted(&page.batch.counts), 20, "{page:?}");
        assert_eq!(page.items.len(), 20);
        assert!(
            page.items.iter().all(|i| i.status == Some(item_status)),
            "{:?}",
            page.items
        );
    }
}

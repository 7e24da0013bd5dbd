//! Priorities that hold: an urgent request starts next, however full the
//! low band's queue.

use crate::support::{Options, TestApp};
use model::DisseminationStatus as Status;
use serde_json::json;
use std::time::{Duration, Instant};
use worker::demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_request_starts_next_however_full_the_low_queue_is() {
    // One slot per band (for small AIPs too), downloads slowed to ~4 s each.
    let app = TestApp::start_with(Options {
        band_slots: Some(1),
        max_read_bytes_per_sec: Some(64 * 1024),
        configure: Some(std::sync::Arc::new(|cfg| cfg.worker.local_slots = 1)),
        ..Default::default()
    })
    .await;
    let mut low = Vec::new();
    for i in 0..20 {
        let token = app.token(&format!("low-client-{i}"), &["2d17_R"]);
        let id = app.create(&token, demo::DEMO_SINGLE, 90).await;
        low.push((token, id));
    }
    // The low band's one slot is busy; the others wait. A low item that has
    // ended holds no slot (on a loaded machine the first may end while the
    // twenty are posted): at most one is transferring at any time.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = statuses(&app, &low).await;
        let transferring = now.iter().filter(|s| is_transferring(**s)).count();
        assert!(
            transferring <= 1,
            "one slot, yet {transferring} low-priority transfers at once: {now:?}"
        );
        if transferring == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no low-priority download started: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let urgent = app.api(&app.token("urgent-client", &["2d17_R"]));
    let id = urgent
        .create(json!({"archiveId": demo::DEMO_SINGLE, "priority": 1}))
        .await
        .dissemination_id;
    urgent
        .wait_for(&id, Duration::from_secs(10), |v| {
            v.status == Status::DownloadingFromRepository
        })
        .await;
    let now = statuses(&app, &low).await;
    let queued = now.iter().filter(|s| **s == Status::Queued).count();
    // Behind the queue, the urgent one would have started after all twenty
    // (~80 s). Ahead of it, most are still queued; on a loaded machine a few
    // low items (~4 s each) end while the urgent one is posted and starts.
    assert!(
        queued >= 15,
        "the urgent request waited behind the low-priority queue: {queued} of 20 still queued: {now:?}"
    );
}

/// The statuses of `items` (token, id) at one moment (read at once, not
/// one by one).
async fn statuses(app: &TestApp, items: &[(String, String)]) -> Vec<Status> {
    let views = items
        .iter()
        .map(|(token, id)| async move { app.api(token).view(id).await.status });
    futures::future::join_all(views).await
}

/// Holding a worker's slot: the one-pass transfer reads, checks and uploads.
fn is_transferring(status: Status) -> bool {
    matches!(
        status,
        Status::DownloadingFromRepository | Status::FixityCheck | Status::UploadingToS3
    )
}

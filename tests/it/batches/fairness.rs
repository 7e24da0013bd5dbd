//! A batch's items run on task queues with worker slots of their own, and
//! clients share them by fairness key: another client's request is not
//! held behind a large batch, whether its items are small or large, and a
//! batch's small AIPs are not held behind its large ones.

use super::small_aips;
use crate::support::{
    is_transferring, ok_when, spawn_worker_process, Options, TestApp, Wait, OTHER_CLIENT,
};
use serde_json::json;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_request_is_not_held_behind_a_large_batch() {
    // Two of the batch's small AIPs move at a time (its own local slots;
    // single requests keep the default), each slowed to about a second,
    // on threads at the default lower priority (the suite's apps run them
    // at the same priority: on a loaded host, their own threads could
    // then take the CPU from a request's, which is what this test is for).
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(16 * 1024),
        configure: Some(Arc::new(|cfg| {
            cfg.worker.batch_local_slots = 2;
            cfg.worker.batch_nice = platform::config::Config::default().worker.batch_nice;
        })),
        ..Default::default()
    })
    .await;
    let a = app.api(&app.client_token());
    let b = app.token(OTHER_CLIENT, &["2d17_R"]);
    let smalls = small_aips(&app, "fa12", 21).await;
    let created = a.create_batch(json!({"archiveIds": smalls[..20]})).await;
    let batch_id = created.id();
    let items = created.owned();
    // The batch moves no more items at once than its slots, though the
    // worker has more for single requests (before they had as many: 10 of
    // the 20 showed a transfer at once). The twenty reads are not one
    // instant: while they run, each slot may pass from an item ending to
    // the next, which both read as moving: at most twice the slots.
    let mut most = 0;
    for _ in 0..10 {
        let views =
            futures::future::join_all(items.iter().map(|id| async { a.view(id).await })).await;
        let moving = views.iter().filter(|v| is_transferring(v.status)).count();
        assert!(
            moving <= 4,
            "two slots for batch items, yet {moving} moved at once: {views:?}"
        );
        most = most.max(moving);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(most >= 1, "no item of the batch moved");
    let started = Instant::now();
    let (id, _) = app.create_until(&b, &smalls[20], "DISSEMINATED").await;
    let waited = started.elapsed();
    let page = a.batch(&batch_id).await;
    let ahead = page.batch.counts.disseminated;
    println!("client B's request took {waited:?}; {ahead} of the batch's 20 items ended before it");
    // Beside the batch's queue (its items have slots of their own, and
    // clients share by fairness key): after the items already moving and a
    // few more on a busy machine, never after the whole batch.
    assert!(
        ahead <= 10,
        "{ahead} items of the batch went first: {page:?}"
    );
    assert!(!id.is_empty());
    a.until_batch_completed(&batch_id, Duration::from_secs(120))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_does_not_wait_for_a_batch_item_holding_every_slot_of_its_band() {
    // One activity slot per band, and reads of 1 MiB/s: the batch's first
    // large item holds it for about 24 s, the second waits for it. Every
    // request on its band's queue (none on a size class's).
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(1024 * 1024),
        band_slots: Some(1),
        configure: Some(std::sync::Arc::new(|cfg| {
            cfg.worker.small_max_bytes = 0;
            cfg.worker.medium_max_bytes = 0;
            cfg.worker.large_max_bytes = 0;
        })),
        ..Default::default()
    })
    .await;
    let a = app.api(&app.client_token());
    let large: Vec<String> = (0..2)
        .map(|i| format!("019e404e-fa1a-7000-8000-{i:012x}"))
        .collect();
    for id in &large {
        worker::demo::seed_large(&app.cfg, id, 24).await.unwrap();
    }
    // Client B's request is large too (over `local_max_bytes`): it needs an
    // activity slot of the band, not only a workflow task.
    let own = "019e404e-fa1b-7000-8000-000000000000";
    worker::demo::seed_large(&app.cfg, own, 2).await.unwrap();
    let created = a.create_batch(json!({"archiveIds": large})).await;
    let batch_id = created.id();
    let items = created.owned();
    // One of them moving bytes (it holds the band's slot for batch items).
    let one_moving = || async {
        for id in &items {
            let view = a.view(id).await;
            if view.status == model::DisseminationStatus::DownloadingFromRepository {
                return Ok(view);
            }
        }
        Err("none")
    };
    let moving = Wait::secs(60)
        .until("an item of the batch moving", one_moving)
        .await;
    let b = app.api(&app.token(OTHER_CLIENT, &["2d17_R"]));
    let id = b
        .create(json!({"archiveId": own, "priority": 50}))
        .await
        .dissemination_id;
    let done = b.until_final(&id, Duration::from_secs(120)).await;
    assert_eq!(
        done.status,
        model::DisseminationStatus::Disseminated,
        "{done:?}"
    );
    // The batch's items have slots of their own: B's request did not wait
    // for the item holding the band's one slot (which the batch's second
    // item is still waiting for).
    let page = a.batch(&batch_id).await;
    assert_eq!(
        page.batch.counts.disseminated, 0,
        "client B's request waited for the batch's item: {page:?} (it was moving: {moving:?})"
    );
    a.cancel_batch(&batch_id).await;
    a.until_batch_completed(&batch_id, Duration::from_secs(120))
        .await;
}

/// A batch's small, medium and large AIPs have slots of their own: while
/// the band's slot for batch items holds one of the client's terabyte-like
/// items for minutes, a photograph-sized item, a medium one and a large one
/// of its next batch are delivered, not after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batchs_small_items_never_wait_behind_its_large_ones() {
    // One slot per band for batch items, held for about 100 s by a 24 MiB
    // AIP; AIPs up to 2.5 MiB are small, up to 3.5 MiB medium, up to 8
    // MiB large.
    let app = TestApp::start_with(Options::one_slot_held_long()).await;
    let a = app.api(&app.client_token());
    let (huge, small, medium, large) = (
        "019e404e-fa1c-7000-8000-000000000000",
        "019e404e-fa1c-7000-8000-000000000001",
        "019e404e-fa1c-7000-8000-000000000002",
        "019e404e-fa1c-7000-8000-000000000003",
    );
    for (archive_id, mib) in [(huge, 24), (small, 2), (medium, 3), (large, 4)] {
        worker::demo::seed_large(&app.cfg, archive_id, mib)
            .await
            .unwrap();
    }
    let huge_batch = a.create_batch(json!({"archiveIds": [huge]})).await;
    let held = huge_batch.owned().remove(0);
    a.until_transferring(&held).await;
    // Over 1 MiB: a transfer of its own (about 8 s at this pace), on the
    // batch items' small AIPs' queue; the medium one (about 12 s) and the
    // large one (about 16 s) on the batch items' queues of their classes,
    // beside it.
    let small_batch = a
        .create_batch(json!({"archiveIds": [small, medium, large]}))
        .await;
    let items = small_batch.owned();
    assert_eq!(items.len(), 3, "{small_batch:?}");
    for item in items {
        app.delivered(&item).await;
    }
    let why = "the batch's smaller items waited for its terabyte-like one";
    a.assert_transferring(&held, why).await;
    a.until_batch_completed(&small_batch.id(), Duration::from_secs(60))
        .await;
    a.cancel_batch(&huge_batch.id()).await;
    a.until_batch_completed(&huge_batch.id(), Duration::from_secs(120))
        .await;
}

/// A worker process runs the batch items on threads of their own,
/// `worker.batch_nice` levels below the rest: beside single requests, the
/// kernel gives those the CPU first.
#[tokio::test]
async fn a_worker_runs_batch_items_at_a_lower_cpu_priority() {
    let app = TestApp::start_with(Options::without_worker()).await;
    let mut cfg = (*app.cfg).clone();
    cfg.worker.batch_nice = platform::config::Config::default().worker.batch_nice;
    assert!(cfg.worker.batch_nice > 0, "a batch yields by default");
    let worker = spawn_worker_process(&cfg, "worker-nice");
    let threads = Wait::secs(30)
        .until("the batch items' threads", || async {
            let threads = worker.thread_nices();
            let started = threads.iter().any(|(name, _)| name == "batch-items");
            ok_when(started, threads.clone()).map(|()| threads)
        })
        .await;
    let nice_of = |name: &str| -> Vec<i32> {
        threads
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, nice)| *nice)
            .collect()
    };
    let batch = nice_of("batch-items");
    assert!(
        batch.iter().all(|&n| n == cfg.worker.batch_nice),
        "batch items' threads at {batch:?}, not {}",
        cfg.worker.batch_nice
    );
    let rest = nice_of("tokio-rt-worker");
    assert!(
        !rest.is_empty() && rest.iter().all(|&n| n == 0),
        "single requests' threads at {rest:?}"
    );
}

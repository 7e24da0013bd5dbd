//! A mixed batch: items refused, already in progress and started, counted
//! as they end, the batch continued as new on the way, each item delivered
//! once and the batch told once; another client sees none of it; bad
//! batches are refused whole.

use super::{small_aips, BATCH_COMPLETED};
use crate::support::{verify_with_standardwebhooks, Options, TestApp, OTHER_CLIENT};
use model::DisseminationStatus;
use serde_json::json;
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use worker::demo;
use workflows::{BatchItem, ItemErrorCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_delivers_the_rest_gradually_counts_right_and_tells_once() {
    // Two small AIPs move at a time, each in about half a second: the
    // batch counts its items several times on the way.
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(40 * 1024),
        configure: Some(Arc::new(|cfg| {
            // Short histories: the batch continues as new several times.
            cfg.api.batch_continue_after_events = 6;
            cfg.api.batch_poll_ms = 200;
            cfg.worker.batch_local_slots = 2;
        })),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let api = app.api(&token);
    let smalls = small_aips(&app, "ba7c", 12).await;
    // An AIP already in progress for this client (large, throttled).
    let busy = "019e404e-ba7c-7000-8000-00000000ffff";
    demo::seed_large(&app.cfg, busy, 32).await.unwrap();
    let busy_id = app.create(&token, busy, 50).await;
    let unknown = "019e404e-ba7c-7000-8000-00000000eeee";
    let mut ids: Vec<String> = smalls.clone();
    ids.extend([
        unknown.to_owned(),
        demo::DEMO_OTHER_CONTRACT.to_owned(),
        demo::DEMO_NOT_PRESERVED.to_owned(),
        busy.to_owned(),
    ]);
    let created = api
        .create_batch(json!({"archiveIds": ids, "priority": 70}))
        .await;
    assert!(created.location.contains("/v1/dissemination-batches/"));
    let batch_id = created.id();
    assert_eq!(batch_id.len(), 22);
    assert!(!created.batch.record.date_created.as_str().is_empty());
    assert_eq!(created.items.len(), ids.len());
    let by_archive: BTreeMap<&str, &BatchItem> = created
        .items
        .iter()
        .map(|i| (i.archive_id.as_str(), i))
        .collect();
    let refused = |a: &str| by_archive[a].error.as_ref().map(|e| e.code);
    assert_eq!(refused(unknown), Some(ItemErrorCode::ArchiveNotFound));
    assert_eq!(
        refused(demo::DEMO_OTHER_CONTRACT),
        Some(ItemErrorCode::Forbidden)
    );
    assert_eq!(
        refused(demo::DEMO_NOT_PRESERVED),
        Some(ItemErrorCode::ArchiveNotPreserved)
    );
    assert!(by_archive[busy].existing);
    assert_eq!(
        by_archive[busy].dissemination_id.as_deref(),
        Some(busy_id.as_str())
    );
    let owned: Vec<String> = smalls
        .iter()
        .map(|a| by_archive[a.as_str()].dissemination_id.clone().unwrap())
        .collect();
    let c = &created.batch.counts;
    assert_eq!(
        (c.in_progress, c.waiting, c.refused, c.existing),
        (12, 0, 3, 1)
    );

    // Each item is an ordinary dissemination, readable at once.
    api.view(&owned[0]).await;

    let (done, seen) = api
        .until_batch_completed(&batch_id, Duration::from_secs(120))
        .await;
    assert!(
        seen.iter().any(|c| c.disseminated < 12),
        "the counts moved as the items ended: {seen:?}"
    );
    let c = &done.batch.counts;
    assert_eq!(
        (c.total, c.disseminated, c.existing, c.refused),
        (16, 12, 1, 3),
        "{done:?}"
    );
    let all = api.batch_items(&batch_id).await;
    assert_eq!(all.len(), 16);
    // It continued as new on the way, and its counts survived.
    let runs = app.temporal_cli(&[
        "workflow",
        "count",
        "--query",
        &format!("WorkflowId = '{batch_id}'"),
    ]);
    let runs = String::from_utf8_lossy(&runs.stdout).to_string();
    let runs: u32 = runs
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .next()
        .unwrap_or(0);
    assert!(runs > 1, "the batch continued as new ({runs} run(s))");
    for id in &owned {
        let item = all
            .iter()
            .find(|i| i.dissemination_id.as_deref() == Some(id.as_str()))
            .unwrap();
        assert_eq!(
            item.status,
            Some(DisseminationStatus::Disseminated),
            "{item:?}"
        );
    }

    // One delivered webhook per item, the bytes as the catalog says, and
    // the batch's webhook once, with the counts.
    app.hooks_until(Duration::from_secs(30), "the batch's webhook", |hooks| {
        hooks.iter().any(|(h, _)| h.kind == BATCH_COMPLETED)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hooks = app.hooks();
    let batch_hooks: Vec<_> = hooks
        .iter()
        .filter(|(h, _)| h.kind == BATCH_COMPLETED)
        .collect();
    assert_eq!(batch_hooks.len(), 1, "the batch webhook arrives once");
    let (hook, raw) = batch_hooks[0];
    verify_with_standardwebhooks(&app.webhook_secret, raw).expect("signature verifies");
    assert_eq!(hook.data.batch_id.as_deref(), Some(batch_id.as_str()));
    let counts = hook.data.counts.as_ref().unwrap();
    assert_eq!((counts.disseminated, counts.refused), (12, 3));
    for (archive_id, id) in smalls.iter().zip(&owned) {
        app.assert_delivered_once(&hooks, archive_id, id).await;
    }

    // Another client's batch does not exist for the caller.
    let other = app.api(&app.token(OTHER_CLIENT, &["2d17_R"]));
    other.batch(&batch_id).refused(404, "BATCH_NOT_FOUND").await;
    other
        .cancel_batch(&batch_id)
        .refused(404, "BATCH_NOT_FOUND")
        .await;
    // A completed batch cannot be cancelled.
    api.cancel_batch(&batch_id)
        .refused(409, "BATCH_ENDED")
        .await;
    // The caller's batches are listed (the visibility store is eventually consistent).
    api.batches()
        .until(Duration::from_secs(20), |list| {
            list.items
                .iter()
                .any(|b| b.record.batch_id.as_str() == batch_id)
        })
        .await;
    let theirs = other.batches().await;
    assert!(theirs.items.is_empty(), "{theirs:?}");

    // Bad batches are 400 with the error envelope; nothing starts.
    let many: Vec<String> = (0..1001)
        .map(|i| format!("019e404e-ba7c-7000-8000-{i:012x}"))
        .collect();
    for bad in [
        json!({"archiveIds": []}),
        json!({"archiveIds": [smalls[0], smalls[0]]}),
        json!({"archiveIds": ["nope"]}),
        json!({"archiveIds": smalls[0]}),
        json!({"archiveIds": many}),
        json!({}),
    ] {
        api.create_batch(bad)
            .refused(400, "INVALID_ARCHIVE_ID")
            .await;
    }
    let zipped = json!({"archiveIds": [smalls[0]], "format": "zip"});
    api.create_batch(zipped)
        .refused(400, "INVALID_FORMAT")
        .await;
}

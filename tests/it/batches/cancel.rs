//! Cancelling a batch cancels every item not final, the moving one and
//! those waiting for their turn, and tells the client once.

use super::BATCH_COMPLETED;
use crate::support::{ok_when, Options, TestApp, Wait};
use model::DisseminationStatus;
use serde_json::json;
use std::{sync::Arc, time::Duration};
use worker::demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_batch_cancels_every_item_not_final() {
    // One slot: one large item moves bytes (for about 24 s, so the cancel
    // reaches it while it moves, however loaded the host), the others wait
    // in its queue.
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(1024 * 1024),
        band_slots: Some(1),
        configure: Some(Arc::new(|cfg| cfg.api.batch_poll_ms = 200)),
        ..Default::default()
    })
    .await;
    let api = app.api(&app.client_token());
    let large: Vec<String> = (0..3)
        .map(|i| format!("019e404e-ca9c-7000-8000-{i:012x}"))
        .collect();
    for id in &large {
        demo::seed_large(&app.cfg, id, 24).await.unwrap();
    }
    let created = api.create_batch(json!({"archiveIds": large})).await;
    let batch_id = created.id();
    // One item is moving bytes; the others wait for the slot.
    let ids = created.owned();
    let one_moving = || async {
        let mut statuses = Vec::new();
        for id in &ids {
            statuses.push(api.view(id).await.status);
        }
        let count = |s| statuses.iter().filter(|t| **t == s).count();
        let moving = count(DisseminationStatus::DownloadingFromRepository);
        ok_when(
            moving == 1 && count(DisseminationStatus::Queued) == 2,
            statuses,
        )
    };
    Wait::secs(30)
        .until("one item moving, two waiting", one_moving)
        .await;
    api.cancel_batch(&batch_id).await;
    let (done, _) = api
        .until_batch_completed(&batch_id, Duration::from_secs(60))
        .await;
    assert_eq!(done.batch.counts.cancelled, 3, "{done:?}");
    assert!(done.batch.cancel_requested);
    for id in &ids {
        let view = api.view(id).await;
        assert_eq!(view.status, DisseminationStatus::Cancelled, "{view:?}");
        assert!(app.delivered_keys(id).await.is_empty());
    }
    crate::faults::no_open_upload(&app).await;
    // The batch's webhook once; no item webhooks for cancelled items.
    let hooks = app
        .hooks_until(Duration::from_secs(30), "the batch's webhook", |hooks| {
            hooks.iter().any(|(h, _)| h.kind == BATCH_COMPLETED)
        })
        .await;
    let told = hooks.iter().filter(|(h, _)| h.kind == BATCH_COMPLETED);
    assert_eq!(told.count(), 1);
    assert_eq!(hooks[0].0.data.counts.as_ref().unwrap().cancelled, 3);
    // The AIPs may be asked for again.
    api.create(json!({"archiveId": large[0]})).await;
}

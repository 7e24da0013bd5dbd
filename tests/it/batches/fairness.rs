//! A batch's items yield to single requests, and clients share the workers
//! by fairness key: another client's request is not held behind a large
//! batch.

use super::small_aips;
use crate::support::{Options, TestApp, OTHER_CLIENT};
use serde_json::json;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_request_is_not_held_behind_a_large_batch() {
    // Two small AIPs move at a time, each slowed to about a second.
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(16 * 1024),
        configure: Some(Arc::new(|cfg| cfg.worker.local_slots = 2)),
        ..Default::default()
    })
    .await;
    let a = app.api(&app.client_token());
    let b = app.token(OTHER_CLIENT, &["2d17_R"]);
    let smalls = small_aips(&app, "fa12", 21).await;
    let batch_id = a
        .create_batch(json!({"archiveIds": smalls[..20]}))
        .await
        .id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (id, _) = app.create_until(&b, &smalls[20], "DISSEMINATED").await;
    let waited = started.elapsed();
    let page = a.batch(&batch_id).await;
    let ahead = page.batch.counts.disseminated;
    println!("client B's request took {waited:?}; {ahead} of the batch's 20 items ended before it");
    // Ahead of the batch's queue (its items yield to single requests, and
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

//! A client that hangs up while its batch is being admitted (its own
//! timeout, a proxy's) leaves a whole batch, not items without one.

use crate::support::TestApp;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_post_leaves_a_whole_batch() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let smalls = super::small_aips(&app, "a5c0", 100).await;
    // Two workflow starts per item: a hundred take seconds, the client
    // waits 200 ms.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let posted = impatient
        .post(format!("{}/v1/dissemination-batches", app.api_url))
        .bearer_auth(&token)
        .json(&json!({"archiveIds": smalls}))
        .send()
        .await;
    assert!(
        posted.as_ref().is_err_and(|e| e.is_timeout()),
        "the POST was to outlast the client's patience: {posted:?}"
    );
    let api = app.api(&token);
    let deadline = Instant::now() + Duration::from_secs(120);
    let batch = loop {
        let list = api.batches().await;
        if let Some(b) = list.items.first() {
            break b.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no batch: the items started before the hang-up have none"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(batch.counts.total, 100, "{batch:?}");
    let id = batch.record.batch_id.to_string();
    let (done, _) = api
        .until_batch_completed(&id, Duration::from_secs(240))
        .await;
    assert_eq!(done.batch.counts.disseminated, 100, "{done:?}");
}

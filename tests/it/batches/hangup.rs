//! A client that hangs up while its batch is being admitted (its own
//! timeout, a proxy's) leaves a whole batch, not items without one; also
//! when the API is sent SIGTERM right after.

use crate::support::{spawn_api_process, TestApp, Wait};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_post_leaves_a_whole_batch() {
    let app = TestApp::start().await;
    let smalls = super::small_aips(&app, "a5c0", 100).await;
    hang_up_mid_post(&app, &app.api_url, &smalls).await;
    one_whole_batch_delivered(&app, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_after_the_client_hung_up_still_admits_the_whole_batch() {
    let app = TestApp::start().await;
    let smalls = super::small_aips(&app, "a5c1", 100).await;
    // The API as its own process, on its own port, same configuration.
    let port = crate::support::free_ports(1)[0];
    let mut cfg = (*app.cfg).clone();
    cfg.api.listen = format!("127.0.0.1:{port}");
    let mut api = spawn_api_process(&cfg, "api-hangup").await;
    hang_up_mid_post(&app, &format!("http://127.0.0.1:{port}"), &smalls).await;
    // No connection is open any more: the shutdown waits for the admission
    // alone.
    api.sigterm();
    api.exits_cleanly_within(Duration::from_secs(120));
    one_whole_batch_delivered(&app, 100).await;
}

/// Posts a batch of `archive_ids` at `base` and hangs up after 200 ms (two
/// workflow starts per item: a hundred take seconds).
async fn hang_up_mid_post(app: &TestApp, base: &str, archive_ids: &[String]) {
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let posted = impatient
        .post(format!("{base}/v1/dissemination-batches"))
        .bearer_auth(app.client_token())
        .json(&json!({"archiveIds": archive_ids}))
        .send()
        .await;
    assert!(
        posted.as_ref().is_err_and(|e| e.is_timeout()),
        "the POST was to outlast the client's patience: {posted:?}"
    );
}

/// The client's one batch shows up with `total` items, and all are
/// delivered.
async fn one_whole_batch_delivered(app: &TestApp, total: u32) {
    let api = app.api(&app.client_token());
    // None would leave the items started before the hang-up without one.
    let listed = || async { api.batches().await.items.first().cloned().ok_or("none") };
    let batch = Wait::secs(120)
        .every_ms(250)
        .until("the batch listed", listed)
        .await;
    assert_eq!(batch.counts.total, total, "{batch:?}");
    let id = batch.record.batch_id.to_string();
    let (done, _) = api
        .until_batch_completed(&id, Duration::from_secs(240))
        .await;
    assert_eq!(done.batch.counts.disseminated, total, "{done:?}");
}

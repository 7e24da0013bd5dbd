//! Processes stopped mid-work: a worker sent SIGTERM or killed outright
//! mid-transfer resumes from its checkpoint on another, delivering once; an
//! API sent SIGTERM among requests finishes those in flight and leaves
//! nothing half-done.

use super::{delivered_intact, large_transfer_under_way, no_open_upload, transfer_results};
use crate::support::{ok_when, spawn_api_process, spawn_worker_process, Options, TestApp, Wait};
use serde_json::json;
use std::time::Duration;
use worker::demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_worker_mid_transfer_loses_and_duplicates_nothing() {
    let app = TestApp::start_with(Options::workers_apart_reading_at(4 * 1024 * 1024)).await;
    let (first, aip, token, id) =
        large_transfer_under_way(&app, "019e404e-ffff-7000-8000-0000000000bb", 24).await;
    first.sigterm();
    drop(first); // waits for the process to exit
    delivered_intact(&app, &aip, &token, &id).await;

    let results = transfer_results(&app, &id).await;
    assert_eq!(results.len(), 1, "one completed transfer, no duplicate");
    println!(
        "after SIGTERM the transfer resumed from {} of {} bytes",
        results[0]["resumedFrom"], aip.intellectual_entity.sum_size_in_bytes
    );
    assert!(results[0]["resumedFrom"].as_u64().unwrap() > 0);
    let keys = app.delivered_keys(&id).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_transfer_resumes_from_its_checkpoint() {
    let app = TestApp::start_with(Options::workers_apart_reading_at(4 * 1024 * 1024)).await;
    let large = "019e404e-ffff-7000-8000-0000000000ab";
    let (first, aip, token, id) = large_transfer_under_way(&app, large, 24).await;
    first.kill_hard();
    delivered_intact(&app, &aip, &token, &id).await;

    let results = transfer_results(&app, &id).await;
    assert_eq!(results.len(), 1, "one completed transfer");
    let size = aip.intellectual_entity.sum_size_in_bytes;
    let resumed_from = results[0]["resumedFrom"].as_u64().unwrap();
    let reread = results[0]["bytesRead"].as_u64().unwrap();
    println!("after kill -9 the retry resumed at byte {resumed_from} of {size} and read {reread}");
    assert!(resumed_from > 0, "resumed from the checkpoint, not byte 0");
    assert_eq!(
        resumed_from + reread,
        size,
        "nothing before the checkpoint read again"
    );
    no_open_upload(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_as_its_upload_starts_leaves_no_upload_behind() {
    let app = TestApp::start_with(Options::workers_apart_reading_at(4 * 1024 * 1024)).await;
    let archive = "019e404e-ffff-7000-8000-0000000000ac";
    let aip = demo::seed_large(&app.cfg, archive, 24).await.unwrap();
    let first = spawn_worker_process(&app.cfg, "worker-1");
    let token = app.client_token();
    let id = app.create(&token, archive, 50).await;
    // Killed as soon as its multipart upload exists: before the transfer's
    // first periodic heartbeat (after 500 ms of reading), and mostly before
    // the upload's own announcement reaches Temporal. The next attempt
    // either goes on with the upload it was told of, or aborts the one it
    // was not told of and starts afresh.
    let started = || async {
        let open = open_uploads_if_any(&app).await;
        ok_when(open > 0, open)
    };
    Wait::secs(60)
        .every_ms(10)
        .until("a multipart upload", started)
        .await;
    first.kill_hard();
    delivered_intact(&app, &aip, &token, &id).await;
    assert_eq!(transfer_results(&app, &id).await.len(), 1);
    // None is left open.
    no_open_upload(&app).await;
}

/// Multipart uploads open in the client's bucket (0 while it does not exist).
async fn open_uploads_if_any(app: &TestApp) -> usize {
    app.s3()
        .client()
        .list_multipart_uploads()
        .bucket(app.cfg.client_bucket(crate::support::CLIENT))
        .send()
        .await
        .map_or(0, |o| o.uploads().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_api_finishes_requests_in_flight_and_loses_nothing() {
    let app = TestApp::start_with(Options::without_worker()).await;
    // The API as its own process, on its own port, same configuration.
    let port = crate::support::free_ports(1)[0];
    let mut cfg = (*app.cfg).clone();
    cfg.api.listen = format!("127.0.0.1:{port}");
    let mut api = spawn_api_process(&cfg, "api-sigterm").await;
    let url = format!("http://127.0.0.1:{port}");

    // Twenty clients create disseminations at once; SIGTERM lands among them.
    let posts: Vec<_> = (0..20)
        .map(|i| {
            let client = app.api_at(&url, &app.token(&format!("term-client-{i}"), &["2d17_R"]));
            tokio::spawn(async move {
                let post = client.create(json!({"archiveId": demo::DEMO_SINGLE}));
                post.try_answer().await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    api.sigterm();
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for (i, p) in posts.into_iter().enumerate() {
        match p.await.unwrap() {
            Ok(answer) => {
                answer.expect_status(201, "a request in flight completes");
                created.push(answer.created().dissemination_id);
            }
            // Never answered (the listener or a pooled connection closed):
            // the client retries; see below that nothing was left half-done.
            Err(_) => refused.push(format!("term-client-{i}")),
        }
    }
    api.exits_cleanly_within(Duration::from_secs(60));
    println!("{} created, {} not answered", created.len(), refused.len());
    // Every 201 names a dissemination that exists (read through the in-test API).
    let client = app.stack_client().await;
    for id in &created {
        let d = client
            .get_workflow_handle::<workflows::DisseminationWorkflow>(id.clone())
            .describe(Default::default())
            .await;
        assert!(d.is_ok(), "{id} was answered 201 but does not exist");
    }
    // An unanswered request left either nothing, or a lock and the
    // dissemination it names (a retry then gets 409 pointing at it).
    for c in &refused {
        let lock = client.get_workflow_handle::<workflows::DisseminationLock>(
            workflows::lock::lock_id(c, demo::DEMO_SINGLE),
        );
        if let Ok(desc) = lock.describe(Default::default()).await {
            let holder: String = desc
                .memo()
                .get(workflows::MEMO_LOCK_HOLDER)
                .unwrap()
                .unwrap();
            let d = client
                .get_workflow_handle::<workflows::DisseminationWorkflow>(holder.clone())
                .describe(Default::default())
                .await;
            assert!(
                d.is_ok(),
                "lock of {c} names {holder}, which does not exist"
            );
        }
    }
}

//! Recording the workflow histories that the determinism guard replays
//! (`workflows/tests/replay.rs`, `cargo test -p workflows --test replay`,
//! no server needed). Re-record only for a deliberate, versioned change:
//! `cargo test -p e2e-tests --test it -- --ignored record_histories`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::TestApp;
use std::{path::PathBuf, time::Duration};
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowGetResultOptions};
use worker::demo;
use workflows::{DisseminationLock, DisseminationWorkflow};

fn histories_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("histories")
}

pub(crate) async fn record(app: &TestApp, workflow_id: &str, name: &str) {
    let handle = app
        .stack_client()
        .await
        .get_workflow_handle::<DisseminationWorkflow>(workflow_id.to_owned());
    let _ = handle.get_result(WorkflowGetResultOptions::default()).await;
    save_history(handle, name).await;
}

pub(crate) async fn save_history<W: temporalio_common::HasWorkflowDefinition>(
    handle: temporalio_client::WorkflowHandle<temporalio_client::Client, W>,
    name: &str,
) {
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .unwrap();
    std::fs::write(histories_dir().join(format!("{name}.json")), json).unwrap();
}

/// Creates a dissemination with these options and waits for `until`.
async fn disseminate_with(app: &TestApp, body: serde_json::Value, until: &str) -> String {
    let token = app.client_token();
    let res = app.post(Some(&token), body).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["disseminationId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.poll_until(&token, &id, Duration::from_secs(60), |b| {
        b["status"] == until
    })
    .await;
    id
}

async fn disseminate(app: &TestApp, archive_id: &str, until: &str) -> String {
    app.create_until(&app.client_token(), archive_id, until)
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records new histories: only for deliberate, versioned workflow changes"]
async fn record_histories() {
    // Histories are named by the workflow version that made them; earlier
    // versions' files stay, so running executions of every version are covered.
    const VERSION: &str = "v10";
    let app = TestApp::start_with(crate::support::Options {
        retention_secs: 2,
        max_read_bytes_per_sec: Some(8 * 1024 * 1024),
        unreadable_retry_ms: Some(30_000),
        ..Default::default()
    })
    .await;
    let id = disseminate(&app, demo::DEMO_SINGLE, "DISSEMINATED").await;
    // A link regeneration while the objects are retained.
    let res = app
        .http
        .post(format!("{}/v1/disseminations/{id}/links", app.api_url))
        .bearer_auth(app.client_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    record(
        &app,
        &id,
        &format!("{VERSION}-delivered-links-regenerated-retention-ended"),
    )
    .await;
    let lock = workflows::lock::lock_id(crate::support::CLIENT, demo::DEMO_SINGLE);
    let lock_handle = app
        .stack_client()
        .await
        .get_workflow_handle::<DisseminationLock>(lock.clone());
    let _ = lock_handle
        .get_result(WorkflowGetResultOptions::default())
        .await;
    let json = lock_handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .unwrap();
    std::fs::write(
        histories_dir().join(format!("{VERSION}-lock-released.json")),
        json,
    )
    .unwrap();

    let id = disseminate(&app, demo::DEMO_TWO_FILES, "DISSEMINATED").await;
    record(&app, &id, &format!("{VERSION}-delivered-two-files")).await;

    // Packaged deliveries: the AIP as one bag, selected members, nothing selected.
    let two = demo::DEMO_TWO_FILES;
    let id = disseminate_with(
        &app,
        serde_json::json!({"archiveId": two, "format": "bagit"}),
        "DISSEMINATED",
    )
    .await;
    record(&app, &id, &format!("{VERSION}-bag-delivered")).await;
    let id = disseminate_with(
        &app,
        serde_json::json!({"archiveId": two, "select": ["mets.xml", "*.tif"]}),
        "DISSEMINATED",
    )
    .await;
    record(&app, &id, &format!("{VERSION}-selected-members-delivered")).await;
    let id = disseminate_with(
        &app,
        serde_json::json!({"archiveId": two, "select": ["nothing/*"]}),
        "REJECTED",
    )
    .await;
    record(&app, &id, &format!("{VERSION}-nothing-selected")).await;

    // Disk copy corrupt, S3 copy good: delivered from the second location.
    let single = app.catalog_doc(demo::DEMO_SINGLE);
    let disk = app
        .disk_root()
        .join(&single.repository_files[0].locations[0].file_path);
    let mut bytes = std::fs::read(&disk).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&disk, &bytes).unwrap();
    let id = disseminate(&app, demo::DEMO_SINGLE, "DISSEMINATED").await;
    record(&app, &id, &format!("{VERSION}-delivered-after-fallback")).await;
    let id = disseminate_with(
        &app,
        serde_json::json!({"archiveId": demo::DEMO_SINGLE, "format": "bagit", "select": ["*.tif"]}),
        "DISSEMINATED",
    )
    .await;
    record(&app, &id, &format!("{VERSION}-bag-after-fallback")).await;

    // Every copy corrupt: FAILED with FIXITY_MISMATCH.
    let key = &single.repository_files[0].locations[1].file_path;
    app.s3()
        .put_small(&app.repository_bucket(), key, bytes.into())
        .await
        .unwrap();
    let id = disseminate(&app, demo::DEMO_SINGLE, "FAILED").await;
    record(&app, &id, &format!("{VERSION}-failed-fixity")).await;

    // The only copy absent for a moment: tried again, then delivered.
    let blip = "019e404e-ffff-7000-8000-00000000000e";
    worker::demo::seed_large(&app.cfg, blip, 1).await.unwrap();
    let back = app.hide_only_copy(blip, Duration::from_secs(3));
    let id = app.create(&app.client_token(), blip, 50).await;
    back.await.unwrap();
    app.poll_until(&app.client_token(), &id, Duration::from_secs(60), |b| {
        b["status"] == "DISSEMINATED"
    })
    .await;
    record(
        &app,
        &id,
        &format!("{VERSION}-delivered-after-unreadable-copy"),
    )
    .await;

    // v1.2: names kept (two files sharing a base name), copies by
    // preference (an unconfigured copy listed first is passed over, one
    // nobody reads is skipped), a name listed twice and a faulty entry
    // refused before anything moves.
    use crate::copies::{put_aip, tar, File};
    let paths = "019e404e-c0c0-7000-8000-0000000009a1";
    let skipped = "019e404e-c0c0-7000-8000-0000000009a2";
    let twice = "019e404e-c0c0-7000-8000-0000000009a3";
    let file = |path, seed, copies| File {
        path,
        bytes: tar(seed, &["mets.xml"]),
        copies,
    };
    put_aip(
        &app,
        paths,
        vec![
            file("v1/primary.tar", 1, vec![("hpss", None), ("disk", None)]),
            file("v2/primary.tar", 2, vec![("s3", None), ("disk", None)]),
        ],
    )
    .await;
    let id = disseminate(&app, paths, "DISSEMINATED").await;
    record(
        &app,
        &id,
        &format!("{VERSION}-paths-kept-copies-by-preference"),
    )
    .await;
    put_aip(
        &app,
        skipped,
        vec![file(
            "primary.tar",
            3,
            vec![("hpss", None), ("nearline", None)],
        )],
    )
    .await;
    let id = disseminate(&app, skipped, "REJECTED").await;
    record(&app, &id, &format!("{VERSION}-no-readable-copy")).await;
    put_aip(
        &app,
        twice,
        vec![
            file("a/primary.tar", 4, vec![("disk", None)]),
            file("a/./primary.tar", 5, vec![("disk", None)]),
        ],
    )
    .await;
    let id = disseminate(&app, twice, "REJECTED").await;
    record(&app, &id, &format!("{VERSION}-duplicate-path")).await;

    // Cancelled while downloading.
    let large = "019e404e-ffff-7000-8000-00000000000d";
    worker::demo::seed_large(&app.cfg, large, 32).await.unwrap();
    let id = disseminate(&app, large, "DOWNLOADING_FROM_REPOSITORY").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let res = app.cancel(&app.client_token(), &id).await;
    assert_eq!(res.status(), 202);
    app.poll_until(&app.client_token(), &id, Duration::from_secs(30), |b| {
        b["status"] == "CANCELLED"
    })
    .await;
    record(&app, &id, &format!("{VERSION}-cancelled-while-downloading")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records new histories: only for deliberate, versioned workflow changes"]
async fn record_batch_histories() {
    const VERSION: &str = "v10";
    let app = TestApp::start_with(crate::support::Options {
        retention_secs: 2,
        max_read_bytes_per_sec: Some(4 * 1024 * 1024),
        configure: Some(std::sync::Arc::new(|cfg| cfg.api.batch_max_in_flight = 1)),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let base = app.api_url.clone();
    let client = app.stack_client().await;
    let batch_of = |created: &serde_json::Value| created["batchId"].as_str().unwrap().to_owned();

    // A batch delivered: two items, one refused.
    let res = crate::batches::post_batch(
        &app,
        &base,
        &token,
        serde_json::json!({"archiveIds": [demo::DEMO_SINGLE, demo::DEMO_TWO_FILES, demo::DEMO_NOT_PRESERVED]}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    let batch = batch_of(&created);
    crate::batches::until_completed(&app, &base, &token, &batch, Duration::from_secs(60)).await;
    let item = created["items"][1]["disseminationId"]
        .as_str()
        .unwrap()
        .to_owned();
    record(&app, &item, &format!("{VERSION}-batch-item-delivered")).await;
    let handle = client.get_workflow_handle::<workflows::DisseminationBatch>(batch);
    let _ = handle.get_result(WorkflowGetResultOptions::default()).await;
    save_history(handle, &format!("{VERSION}-batch-completed")).await;

    // A batch cancelled while its first item moves bytes and the second waits.
    let large = [
        "019e404e-ffff-7000-8000-0000000000b1",
        "019e404e-ffff-7000-8000-0000000000b2",
    ];
    for id in large {
        worker::demo::seed_large(&app.cfg, id, 16).await.unwrap();
    }
    let res = crate::batches::post_batch(
        &app,
        &base,
        &token,
        serde_json::json!({"archiveIds": large}),
    )
    .await;
    let created: serde_json::Value = res.json().await.unwrap();
    let batch = batch_of(&created);
    let items: Vec<String> = (0..2)
        .map(|i| {
            created["items"][i]["disseminationId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // Whichever took the one slot moves bytes; the other waits for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        let mut moving = None;
        for (i, id) in items.iter().enumerate() {
            let view: serde_json::Value = app.get(&token, id).await.json().await.unwrap();
            if view["progress"]["bytesDone"].as_u64().unwrap_or(0) > 0 {
                moving = Some(i);
            }
        }
        if let Some(i) = moving {
            break items[1 - i].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no item moved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let res = crate::batches::delete_batch(&app, &base, &token, &batch).await;
    assert_eq!(res.status(), 202);
    crate::batches::until_completed(&app, &base, &token, &batch, Duration::from_secs(60)).await;
    record(
        &app,
        &waiting,
        &format!("{VERSION}-batch-item-cancelled-while-waiting"),
    )
    .await;
    let handle = client.get_workflow_handle::<workflows::DisseminationBatch>(batch);
    let _ = handle.get_result(WorkflowGetResultOptions::default()).await;
    save_history(handle, &format!("{VERSION}-batch-cancelled")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records new histories: only for deliberate, versioned workflow changes"]
async fn record_removal_histories() {
    // Flow 12: what a failed run left in the client's bucket, removed at
    // once, or after the status and the webhook when S3 is away.
    const VERSION: &str = "v12";
    use crate::copies::{put_aip, tar};
    use crate::support::AipFile;
    let mut app = TestApp::start_with(crate::support::Options::private_stack()).await;
    app.stack.stop_s3();
    let token = app.client_token();
    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    app.poll_until(&token, &id, Duration::from_secs(180), |b| {
        b["status"] == "FAILED"
    })
    .await;
    app.stack.start_s3().await.unwrap();
    record(
        &app,
        &id,
        &format!("{VERSION}-failed-while-s3-away-removed-after-the-webhook"),
    )
    .await;

    let aip = "019e404e-c0c0-7000-8000-0000000009b1";
    let file = |path, seed| AipFile {
        path,
        bytes: tar(seed, &["mets.xml"]),
        copies: vec![("disk", None)],
    };
    put_aip(&app, aip, vec![file("a.tar", 11), file("b.tar", 12)]).await;
    // The second file's only copy is corrupt: the first is delivered, then
    // removed.
    let second = app.disk_root().join(format!("{aip}/1-b.tar"));
    let mut bytes = std::fs::read(&second).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&second, bytes).unwrap();
    let id = disseminate(&app, aip, "FAILED").await;
    assert!(app.delivered_keys(&id).await.is_empty());
    record(
        &app,
        &id,
        &format!("{VERSION}-failed-after-a-delivered-file-removed"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records new histories: only for deliberate, versioned workflow changes"]
async fn record_steps_histories() {
    // The short steps (`finish`, the webhook's later attempts, a link
    // regeneration, a batch's counting) on the steps queue, which the
    // execution's settings name (`stepsQueue`).
    const VERSION: &str = "v13";
    let app = TestApp::start_with(crate::support::Options {
        retention_secs: 2,
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let api = app.api(&token);
    let id = disseminate(&app, demo::DEMO_SINGLE, "DISSEMINATED").await;
    api.links(&id).await;
    record(
        &app,
        &id,
        &format!("{VERSION}-delivered-links-regenerated-retention-ended"),
    )
    .await;

    // The endpoint down for the first attempts, then back.
    app.receiver.go_down().await;
    let id = app.create(&token, demo::DEMO_TWO_FILES, 50).await;
    api.wait_for(&id, Duration::from_secs(60), |v| {
        v.webhook.as_ref().is_some_and(|w| w.attempts >= 2)
    })
    .await;
    app.receiver.come_back().await;
    record(&app, &id, &format!("{VERSION}-delivered-webhook-retried")).await;

    // A batch of two, one item refused.
    let created = api
        .create_batch(
            serde_json::json!({"archiveIds": [demo::DEMO_SINGLE, demo::DEMO_NOT_PRESERVED]}),
        )
        .await;
    let item = created.items[0].dissemination_id.clone().unwrap();
    let handle = app
        .stack_client()
        .await
        .get_workflow_handle::<workflows::DisseminationBatch>(
            created.batch.record.batch_id.to_string(),
        );
    let _ = handle.get_result(WorkflowGetResultOptions::default()).await;
    save_history(handle, &format!("{VERSION}-batch-completed")).await;
    record(&app, &item, &format!("{VERSION}-batch-item-delivered")).await;
}

//! Recording the v11 histories (tape): only for deliberate, versioned
//! workflow changes (see docs/determinism.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::app_with_slow;
use crate::support::{tape_aip, tempdir, AipFile, Options, TapeAip, TapeLibrary};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records new histories: only for deliberate, versioned workflow changes"]
async fn record_tape_histories() {
    const VERSION: &str = "v11";
    let (quick_dir, slow_dir) = (tempdir().unwrap(), tempdir().unwrap());
    let ids: Vec<String> = (0..5)
        .map(|n| format!("019e404e-7a9e-7000-8000-0000000002{n:02}"))
        .collect();
    let one = |n: usize, at: &'static str| {
        let file = AipFile {
            path: "primary.tar",
            bytes: crate::copies::tar(200 + n as u64, &["mets.xml"]),
            copies: vec![(at, None)],
        };
        tape_aip(&ids[n], &[file], "V001", n as u64)
    };
    let quick = [one(0, "hpss"), one(1, "hpss"), one(2, "hpss")];
    let slow = [one(3, "hpss-slow"), one(4, "hpss-slow")];
    let entries = |aips: &[TapeAip]| aips.iter().flat_map(TapeAip::entries).collect::<Vec<_>>();
    let quick_lib = TapeLibrary::mounting_in(quick_dir.path(), &entries(&quick), 300).await;
    let slow_lib = TapeLibrary::mounting_in(slow_dir.path(), &entries(&slow), 600_000).await;
    let opts = Options {
        retention_secs: 2,
        ..Default::default()
    };
    let app = app_with_slow(&quick_lib, &slow_lib, opts, |cfg| {
        cfg.timings.stage_timeout_ms = 5_000;
    })
    .await;
    for aip in quick.iter().chain(&slow) {
        aip.put(&app).await;
    }
    let token = app.client_token();
    use crate::replay::{record, save_history};

    let (id, _) = app.create_until(&token, &ids[0], "DISSEMINATED").await;
    record(&app, &id, &format!("{VERSION}-tape-staged-delivered")).await;
    let created = app
        .api(&token)
        .create(json!({"archiveId": ids[1], "format": "bagit"}))
        .await;
    app.poll_until(
        &token,
        &created.dissemination_id,
        Duration::from_secs(60),
        |b| b["status"] == "DISSEMINATED",
    )
    .await;
    record(
        &app,
        &created.dissemination_id,
        &format!("{VERSION}-tape-bag-delivered"),
    )
    .await;
    let (id, _) = app.create_until(&token, &ids[3], "FAILED").await;
    record(&app, &id, &format!("{VERSION}-tape-staging-failed")).await;
    let (id, _) = app.create_until(&token, &ids[4], "STAGING").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.cancel(&token, &id).await.status(), 202);
    record(
        &app,
        &id,
        &format!("{VERSION}-tape-cancelled-while-staging"),
    )
    .await;

    // A batch of one tape AIP: the batch stages, the item waits for it.
    let base = app.api_url.clone();
    let res =
        crate::batches::post_batch(&app, &base, &token, json!({ "archiveIds": [ids[2]] })).await;
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    let batch = created["batchId"].as_str().unwrap().to_owned();
    crate::batches::until_completed(&app, &base, &token, &batch, Duration::from_secs(60)).await;
    let item = created["items"][0]["disseminationId"].as_str().unwrap();
    record(&app, item, &format!("{VERSION}-tape-batch-item-delivered")).await;
    let handle = app
        .stack_client()
        .await
        .get_workflow_handle::<workflows::DisseminationBatch>(batch);
    let _ = handle
        .get_result(temporalio_client::WorkflowGetResultOptions::default())
        .await;
    save_history(handle, &format!("{VERSION}-tape-batch-completed")).await;
}

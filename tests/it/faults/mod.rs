//! Durability and operations, by concern: priorities that hold
//! (`priority`), delivery despite a corrupt copy or an outage and after an
//! operator's reset (`recovery`), processes stopped mid-work (`shutdown`),
//! a failing webhook endpoint (`webhooks`). The helpers here, for a
//! transfer cut short and what it leaves in the client's bucket, serve
//! other modules too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod priority;
mod recovery;
mod shutdown;
mod webhooks;

use crate::support::{spawn_worker_process, ChildGuard, TestApp, CLIENT};
use model::DisseminationStatus;
use serde_json::Value;
use std::time::Duration;

/// A large AIP transferring slowly on a worker process, half of the way
/// in: the process, the AIP, the client's token and the dissemination.
pub(crate) async fn large_transfer_under_way(
    app: &TestApp,
    archive_id: &str,
    mib: u64,
) -> (ChildGuard, model::catalog::Aip, String, String) {
    let aip = worker::demo::seed_large(&app.cfg, archive_id, mib)
        .await
        .unwrap();
    let size = aip.intellectual_entity.sum_size_in_bytes;
    let first = spawn_worker_process(&app.cfg, "worker-1");
    let token = app.client_token();
    let id = app.create(&token, archive_id, 50).await;
    // Half read: the first parts (5 MiB each) are uploaded and their
    // checkpoint heartbeated, even on a loaded host.
    app.api(&token)
        .wait_for(&id, Duration::from_secs(30), |v| {
            v.progress
                .as_ref()
                .is_some_and(|p| p.bytes_done >= size / 2)
        })
        .await;
    // Its memory in pages of 4 KiB, not 2 MiB (`worker.transparent_huge_pages`).
    assert!(
        !first.huge_pages_allowed(),
        "the worker asks for no huge pages"
    );
    (first, aip, token, id)
}

/// Waits for delivery on a second worker process (one let have huge
/// pages) and checks the bytes.
pub(crate) async fn delivered_intact(
    app: &TestApp,
    aip: &model::catalog::Aip,
    token: &str,
    id: &str,
) {
    // The second one is let have huge pages: the setting reaches the process.
    let mut cfg = (*app.cfg).clone();
    cfg.worker.transparent_huge_pages = true;
    let second = spawn_worker_process(&cfg, "worker-2");
    let done = app
        .api(token)
        .wait_for(id, Duration::from_secs(90), |v| {
            v.status == DisseminationStatus::Disseminated
        })
        .await;
    assert!(
        second.huge_pages_allowed(),
        "worker.transparent_huge_pages = true"
    );
    let archive_id = aip.intellectual_entity.archive_id.as_str();
    assert_eq!(
        app.download_sha256(&done.files[0].download_url).await,
        app.stored_sha256(archive_id, None)
    );
}

/// Completed activities' results (those with field `marker`) in a history.
async fn activity_results(app: &TestApp, id: &str, marker: &str) -> Vec<Value> {
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    let events = app.history(id).await;
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => a.result.as_ref(),
            _ => None,
        })
        .filter_map(|p| serde_json::from_slice::<Value>(&p.payloads.first()?.data).ok())
        .filter(|v| v.get(marker).is_some())
        .collect()
}

/// `transfer` results (one-pass flow) in a workflow's history.
pub(crate) async fn transfer_results(app: &TestApp, id: &str) -> Vec<Value> {
    activity_results(app, id, "partsReused").await
}

/// The multipart uploads open in the client's bucket.
pub(crate) async fn open_uploads(app: &TestApp) -> Vec<aws_sdk_s3::types::MultipartUpload> {
    app.s3()
        .client()
        .list_multipart_uploads()
        .bucket(app.cfg.client_bucket(CLIENT))
        .send()
        .await
        .unwrap()
        .uploads()
        .to_vec()
}

/// No multipart upload left open in the client's bucket.
pub(crate) async fn no_open_upload(app: &TestApp) {
    let open = open_uploads(app).await;
    assert!(open.is_empty(), "no multipart upload left open: {open:?}");
}

//! Bags and bad copies: a bag comes from a TAR's good copy, fails whole
//! when every copy is corrupt, and a cancel while bagging leaves nothing.

use super::{assert_valid_premis, validate_bag, write_test_aip, TestAip, FINAL};
use crate::faults::{no_open_upload, open_uploads};
use crate::support::{Options, TestApp};
use model::DisseminationStatus as Status;
use serde_json::json;
use std::time::Duration;
use worker::demo;
use workflows::{EventType, ReasonCode};

/// Flips bits `mask` of byte `at` in the AIP's file `name` at its
/// `location`th copy (on disk); that copy's location id.
fn corrupt(
    app: &TestApp,
    aip: &TestAip,
    name: &str,
    location: usize,
    at: usize,
    mask: u8,
) -> String {
    let doc = app.catalog_doc(&aip.archive_id);
    let file = doc
        .repository_files
        .iter()
        .find(|f| f.relative_path == name)
        .unwrap();
    let loc = &file.locations[location];
    let path = app.disk_root().join(&loc.file_path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at] ^= mask;
    std::fs::write(&path, &bytes).unwrap();
    loc.location_id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bags_come_from_good_copies_fail_whole_on_corrupt_ones_and_cancel_cleanly() {
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(16 * 1024 * 1024),
        ..Default::default()
    })
    .await;
    let api = app.api(&app.client_token());
    let dir = crate::support::tempdir().unwrap();

    // 1. select + bagit, the disk copy of the primary TAR corrupt: the bag
    //    comes from its good s3 copy.
    let aip = write_test_aip(
        &app,
        "019e404e-b0b0-7000-8000-000000000003",
        vec!["disk", "s3"],
    )
    .await;
    let location = corrupt(&app, &aip, "primary_20250325.tar", 0, 2048, 0x55);
    assert_eq!(location, "disk");
    let id = api
        .create(json!({"archiveId": aip.archive_id, "format": "bagit", "select": ["content/images/**"]}))
        .await
        .dissemination_id;
    let done = api.until_final(&id, FINAL).await;
    assert_eq!(done.status, Status::Disseminated, "{done:?}");
    let bag = app.download(&done.files[0].download_url).await;
    let tar_path = dir.path().join("good.tar");
    std::fs::write(&tar_path, &bag).unwrap();
    let extracted = dir.path().join("good");
    validate_bag(&tar_path, &extracted, &aip.archive_id);
    let data = extracted.join(&aip.archive_id).join("data");
    for ((stem, path), content) in &aip.members {
        let at = data.join(stem).join(path);
        if path.starts_with("content/images/") {
            assert_eq!(
                &std::fs::read(&at).unwrap(),
                content,
                "{path} from the good copy"
            );
        } else {
            assert!(!at.exists(), "{path} was not selected");
        }
    }
    assert_valid_premis(&extracted.join(&aip.archive_id).join("premis.xml"));
    let events = api.events(&id).await;
    let fixity: Vec<(&str, &str, &str)> = events
        .iter()
        .filter(|e| e.event_type == EventType::FixityCheck)
        .map(|e| {
            (
                e.file.as_deref().unwrap(),
                e.location.as_deref().unwrap(),
                e.outcome.as_str(),
            )
        })
        .collect();
    assert!(
        fixity.contains(&("primary_20250325.tar", "disk", "failure"))
            && fixity.contains(&("primary_20250325.tar", "s3", "success")),
        "{fixity:?}"
    );

    // 2. Every copy of a TAR corrupt: FAILED FIXITY_MISMATCH, nothing in the
    //    bucket, not even a bag, and no open upload.
    let aip = write_test_aip(&app, "019e404e-b0b0-7000-8000-000000000004", vec!["disk"]).await;
    corrupt(&app, &aip, "metadata.tar", 0, 700, 0x01);
    let id = api
        .create(json!({"archiveId": aip.archive_id, "format": "bagit", "select": ["**/*.jp2", "METS.xml"]}))
        .await
        .dissemination_id;
    let done = api.until_final(&id, FINAL).await;
    assert_eq!(done.status, Status::Failed, "{done:?}");
    assert_eq!(done.reasons[0].code, ReasonCode::FixityMismatch);
    assert!(app.delivered_keys(&id).await.is_empty());
    no_open_upload(&app).await;
    let hook = app.webhook_of(&id).await;
    assert_eq!(hook.kind, "dissemination.failed");

    // 3. Cancel while bagging: CANCELLED, no object, no open multipart upload.
    let large = "019e404e-b0b0-7000-8000-000000000005";
    demo::seed_large(&app.cfg, large, 64).await.unwrap();
    let id = api
        .create(json!({"archiveId": large, "format": "bagit"}))
        .await
        .dissemination_id;
    api.wait_for(&id, Duration::from_secs(30), |v| {
        v.progress
            .as_ref()
            .is_some_and(|p| p.bytes_done >= 16 * 1024 * 1024)
    })
    .await;
    assert_eq!(
        open_uploads(&app).await.len(),
        1,
        "the bag's upload is under way"
    );
    api.cancel(&id).await;
    let done = api.until_final(&id, FINAL).await;
    assert_eq!(done.status, Status::Cancelled, "{done:?}");
    assert!(app.delivered_keys(&id).await.is_empty());
    no_open_upload(&app).await;
}

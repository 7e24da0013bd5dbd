//! Delivering all the same: from a second location when the first copy is
//! corrupt, after S3 was away at the start (and Temporal restarted), and
//! after an operator's reset of a run an S3 outage failed.

use crate::support::{Options, TestApp, Wait};
use model::DisseminationStatus as Status;
use std::time::Duration;
use worker::demo;
use workflows::{DisseminationEvent, DisseminationView, EventType, Outcome, ReasonCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_first_copy_is_delivered_from_the_second_location() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let api = app.api(&token);
    let aip = app.catalog_doc(demo::DEMO_SINGLE);
    let disk = app
        .disk_root()
        .join(&aip.repository_files[0].locations[0].file_path);
    let mut bytes = std::fs::read(&disk).unwrap();
    bytes[4096] ^= 0x80;
    std::fs::write(&disk, &bytes).unwrap();

    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    let (seen, done) = api
        .track(&id, Duration::from_secs(60), |v| v.status.is_final())
        .await;
    assert_eq!(done.status, Status::Disseminated, "{seen:?} {done:?}");
    assert_eq!(
        app.download_sha256(&done.files[0].download_url).await,
        app.stored_sha256(demo::DEMO_SINGLE, None),
        "the good copy, not the corrupt one"
    );
    // The audit trail tells the story: disk failed fixity, s3 passed.
    let events = api.events(&id).await;
    let fixity: Vec<(&str, &str, &str)> = events
        .iter()
        .filter(|e| e.event_type == EventType::FixityCheck)
        .map(|e| {
            (
                e.location.as_deref().unwrap(),
                e.outcome.as_str(),
                e.algorithm.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fixity,
        [("disk", "failure", "SHA-256"), ("s3", "success", "SHA-256")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_s3_outage_an_operator_reset_delivers() {
    let mut app = TestApp::start_with(Options::private_stack()).await;
    let token = app.client_token();
    let api = app.api(&token);
    // One delivery first: the worker knows the client's bucket, so the
    // next attempts read the whole copy before their upload fails.
    let first = app.create(&token, demo::DEMO_SINGLE, 50).await;
    let first = api.until_final(&first, Duration::from_secs(60)).await;
    assert_eq!(first.status, Status::Disseminated, "{first:?}");
    app.stack.stop_s3();
    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    // FAILED comes once the transfer has gone no further than its first
    // attempt for the suite's `retry_for_ms` (20 s; reading the same bytes
    // again is not progress) and one quick attempt at removing what it
    // left found S3 still away: about 35 s. The status does not wait for
    // the removal's retries (60 s here, hours in production).
    let failed = api
        .wait_for(&id, Duration::from_secs(75), |v| v.status == Status::Failed)
        .await;
    assert_eq!(
        failed.reasons[0].code,
        ReasonCode::UploadFailed,
        "{failed:?}"
    );
    let deletions = |events: &[DisseminationEvent]| -> Vec<(Outcome, String)> {
        events
            .iter()
            .filter(|e| e.event_type == EventType::Deletion)
            .map(|e| (e.outcome, e.detail.clone()))
            .collect()
    };
    let events = api.events(&id).await;
    assert!(
        matches!(&deletions(&events)[..], [(Outcome::Failure, d)] if d.contains("not removed yet")),
        "the record says the removal goes on: {events:?}"
    );

    // S3 is back: the webhook goes out (it is written to the client's event
    // feed first, in S3), then the removal's next attempt ends it, and the
    // record says so.
    app.stack.start_s3().await.unwrap();
    let hook = app.webhook_of(&id).await;
    assert_eq!(hook.kind, "dissemination.failed", "{hook:?}");
    let second = || async {
        let events = api.events(&id).await;
        match deletions(&events)[..] {
            [_, (outcome, _)] => Ok((outcome, events)),
            _ => Err(events),
        }
    };
    let (outcome, events) = Wait::secs(90)
        .every_ms(500)
        .until("a second deletion", second)
        .await;
    assert_eq!(outcome, Outcome::Success, "{events:?}");

    // The operator resets the run (as the Web UI's Reset does).
    app.temporal_cli(&[
        "workflow",
        "reset",
        "--workflow-id",
        &id,
        "--type",
        "FirstWorkflowTask",
        "--reason",
        "S3 outage over",
        "--yes",
    ]);
    let done = api
        .wait_for(&id, Duration::from_secs(120), |v| {
            v.status == Status::Disseminated
        })
        .await;
    app.download(&done.files[0].download_url).await;
    assert!(!app.delivered_keys(&id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_an_s3_outage_at_the_start_and_a_temporal_restart() {
    let mut app = TestApp::start_with(Options::private_stack()).await;
    let token = app.client_token();
    let api = app.api(&token);

    // S3 down when the transfer starts: GET says what the step waits for.
    app.stack.stop_s3();
    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    let waiting = api
        .wait_for(&id, Duration::from_secs(30), |v| {
            v.waiting.as_ref().is_some_and(|w| w.waiting_for == "S3")
        })
        .await;
    let next_attempt = waiting.waiting.as_ref().unwrap().next_attempt_at.as_ref();
    assert!(next_attempt.is_some(), "{waiting:?}");
    app.stack.start_s3().await.unwrap();
    let done = api.until_final(&id, Duration::from_secs(60)).await;
    assert_eq!(done.status, Status::Disseminated, "{done:?}");
    files_match_catalog(&app, demo::DEMO_SINGLE, &done).await;

    // The Temporal server restarts (file-backed): the next dissemination and
    // the one above are still there.
    let second = app.create(&token, demo::DEMO_TWO_FILES, 50).await;
    app.stack.restart_temporal().await.unwrap();
    let done2 = api
        .wait_for(&second, Duration::from_secs(90), |v| {
            v.status == Status::Disseminated
        })
        .await;
    files_match_catalog(&app, demo::DEMO_TWO_FILES, &done2).await;
    assert_eq!(api.view(&id).await.status, Status::Disseminated);
}

/// Every delivered file downloads with the SHA-256 the catalog stores.
async fn files_match_catalog(app: &TestApp, archive_id: &str, view: &DisseminationView) {
    let aip = app.catalog_doc(archive_id);
    assert_eq!(view.files.len(), aip.repository_files.len());
    for f in &view.files {
        let name = f.filename.as_str();
        let stored = app.stored_sha256(archive_id, Some(name));
        assert_eq!(app.download_sha256(&f.download_url).await, stored, "{name}");
        assert_eq!(f.checksum, stored, "{name}: the checksum given for it");
    }
}

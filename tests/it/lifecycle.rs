//! After delivery and before it: link regeneration, retention, cancel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{ok_when, Options, TestApp, Wait};
use model::DisseminationStatus;
use serde_json::{json, Value};
use std::time::Duration;
use worker::demo;
use workflows::{DisseminationView, EventType, Outcome, Phase, ReasonCode, WebhookState};

/// A large AIP created for the client, its transfer under way (12 MiB
/// read): the moment a cancel lands among uploaded parts.
async fn large_under_way(app: &TestApp, archive_id: &str) -> String {
    demo::seed_large(&app.cfg, archive_id, 48).await.unwrap();
    let api = app.api(&app.client_token());
    let id = api
        .create(json!({"archiveId": archive_id}))
        .await
        .dissemination_id;
    api.wait_for(&id, Duration::from_secs(30), |v| {
        v.progress
            .as_ref()
            .is_some_and(|p| p.bytes_done >= 12 * 1024 * 1024)
    })
    .await;
    id
}

/// Cancels dissemination `id` and waits for CANCELLED: it never reached
/// the upload; its last view.
async fn cancel_before_upload(app: &TestApp, id: &str) -> DisseminationView {
    let api = app.api(&app.client_token());
    api.cancel(id).await;
    let (seen, done) = api
        .track(id, Duration::from_secs(30), |v| {
            v.status == DisseminationStatus::Cancelled
        })
        .await;
    assert!(
        !seen.contains(&DisseminationStatus::UploadingToS3),
        "{seen:?}"
    );
    done
}

/// Transfers read at 8 MiB/s: a large one is under way long enough to
/// be cancelled.
fn slow_reads() -> Options {
    Options {
        max_read_bytes_per_sec: Some(8 * 1024 * 1024),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_regenerate_without_a_transfer_until_retention_deletes_the_objects() {
    let app = TestApp::start_with(Options {
        retention_secs: 8,
        ..Default::default()
    })
    .await;
    let api = app.api(&app.client_token());
    let body = json!({"archiveId": demo::DEMO_SINGLE});
    let (id, delivered) = api.deliver(body, Duration::from_secs(60)).await;
    let old = &delivered.files[0];

    // Proof that nothing is fetched again: the repository copies are gone.
    let aip = app.catalog_doc(demo::DEMO_SINGLE);
    let file = &aip.repository_files[0];
    std::fs::remove_file(app.disk_root().join(&file.locations[0].file_path)).unwrap();
    app.s3()
        .client()
        .delete_object()
        .bucket(app.repository_bucket())
        .key(&file.locations[1].file_path)
        .send()
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(1100)).await; // a new signing second
    let renewed = api.links(&id).await;
    let new = &renewed.files[0];
    assert_ne!(new.download_url, old.download_url);
    assert!(new.expiration_date.as_str() > old.expiration_date.as_str());
    assert_eq!(app.download_sha256(&new.download_url).await, old.checksum);
    assert_eq!(
        app.download_sha256(&old.download_url).await,
        old.checksum,
        "the old link stays valid until its expiry"
    );
    assert!(renewed.retention_ends_at.is_some());
    // GET shows the new links; one download happened in all.
    assert_eq!(api.view(&id).await.files, renewed.files);
    assert_eq!(
        app.steps_run(&id, "transfer").await,
        1,
        "one transfer in all"
    );

    // Retention ends: the workflow deletes the objects; links cannot be regenerated.
    let expired = api
        .wait_for(&id, Duration::from_secs(30), |v| v.objects_deleted)
        .await;
    assert_eq!(expired.status, DisseminationStatus::Disseminated);
    assert!(app.delivered_keys(&id).await.is_empty());
    let types = api.event_types(&id).await;
    assert!(types.contains(&EventType::LinkRegeneration), "{types:?}");
    assert_eq!(types.last(), Some(&EventType::Deletion), "{types:?}");
    api.links(&id).refused(410, "RETENTION_ENDED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_download_leaves_nothing_behind() {
    let app = TestApp::start_with(slow_reads()).await;
    let large = "019e404e-ffff-7000-8000-00000000000c";
    // Parts are in the multipart upload when the cancel lands.
    let id = large_under_way(&app, large).await;
    let api = app.api(&app.client_token());
    let done = cancel_before_upload(&app, &id).await;
    assert_eq!(done.reasons[0].code, ReasonCode::Cancelled);
    assert!(app.delivered_keys(&id).await.is_empty());
    crate::faults::no_open_upload(&app).await;

    // It is final: a second cancel is refused, and the AIP may be requested again.
    api.cancel(&id).refused(409, "DISSEMINATION_ENDED").await;
    api.create(json!({"archiveId": large})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_one_pass_transfer_aborts_the_upload() {
    let app = TestApp::start_with(slow_reads()).await;
    // Parts are being uploaded while the file is read.
    let id = large_under_way(&app, "019e404e-ffff-7000-8000-00000000000e").await;
    let open = || async { crate::faults::open_uploads(&app).await.len() };
    assert_eq!(open().await, 1, "a multipart upload is under way");
    cancel_before_upload(&app, &id).await;
    assert_eq!(open().await, 0, "the multipart upload was aborted");
    assert!(app.delivered_keys(&id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_shows_bytes_done_while_a_large_aip_downloads() {
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(4 * 1024 * 1024),
        ..Default::default()
    })
    .await;
    let large = "019e404e-ffff-7000-8000-00000000000e";
    let aip = demo::seed_large(&app.cfg, large, 16).await.unwrap();
    let total = aip.intellectual_entity.sum_size_in_bytes;
    let token = app.client_token();
    let api = app.api(&token);
    let id = app.create(&token, large, 50).await;
    let mut seen = Vec::new();
    let mut left_seen: Vec<u64> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let view = api.view(&id).await;
        if view.status == DisseminationStatus::DownloadingFromRepository {
            if let Some(p) = &view.progress {
                assert_eq!(p.bytes_total, total);
                assert_eq!(p.phase, Phase::Download);
                if seen.last() != Some(&p.bytes_done) {
                    seen.push(p.bytes_done);
                    left_seen.extend(p.seconds_left);
                }
            }
        }
        if view.status == DisseminationStatus::Disseminated {
            assert!(view.progress.is_none(), "no progress once done");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{view:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("bytes done seen on GET: {seen:?} of {total}, seconds left: {left_seen:?}");
    // 16 MiB at 4 MiB/s: the estimate is a few seconds and shrinks.
    assert!(!left_seen.is_empty(), "an estimate of the time left");
    assert!(left_seen.iter().all(|s| *s <= 6), "{left_seen:?}");
    assert!(left_seen.last() <= left_seen.first(), "{left_seen:?}");
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "increasing: {seen:?}");
    // All bytes done while the upload completes and the fixity is checked.
    assert!(seen.iter().all(|d| *d <= total), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_that_fails_at_retention_is_retried_and_recorded_as_failed() {
    let app = TestApp::start_with(Options {
        private_stack: true,
        retention_secs: 5,
        retry_for_ms: Some(4_000),
        // A step's retries last at least one attempt's time limit.
        configure: Some(std::sync::Arc::new(|cfg| {
            cfg.timings.short_activity_timeout_ms = 3_000;
        })),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let api = app.api(&token);
    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    // Retention runs once the client was told (the webhook, recorded in
    // the event feed, needs S3 too).
    api.wait_for(&id, Duration::from_secs(60), |v| {
        let told = v.webhook.as_ref().map(|w| w.state) == Some(WebhookState::Delivered);
        v.status == DisseminationStatus::Disseminated && v.retention_ends_at.is_some() && told
    })
    .await;
    let keys = app.delivered_keys(&id).await;
    assert_eq!(keys.len(), 1);
    // S3 is gone when retention ends: the deletion is tried again and again
    // for `retry_for_ms`, then the record says it failed.
    let mut app = app;
    app.stack.stop_s3();
    let deletion = || async {
        let events = api.events(&id).await;
        let deletion = events.iter().find(|e| e.event_type == EventType::Deletion);
        deletion.cloned().ok_or(events)
    };
    let deletion = Wait::secs(30).every_ms(200).within(deletion).await;
    let deletion = deletion.unwrap_or_else(|events| {
        let d = app.temporal_cli(&["workflow", "describe", "--workflow-id", &id]);
        panic!(
            "no deletion event: {events:?}\n{}",
            String::from_utf8_lossy(&d.stdout)
        )
    });
    assert_eq!(deletion.outcome, Outcome::Failure, "{deletion:?}");
    assert!(deletion.detail.contains("failed"), "{deletion:?}");
    let view = api.view(&id).await;
    assert_eq!(view.status, DisseminationStatus::Disseminated);
    assert!(!view.objects_deleted, "{view:?}");
    // It was retried: the discard activity ran more than one attempt.
    let history = app.temporal_cli(&["workflow", "show", "--workflow-id", &id, "--output", "json"]);
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let events = history["events"].as_array().unwrap();
    let discard_scheduled: Vec<&str> = events
        .iter()
        .filter(|e| {
            e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == "discard_delivery"
        })
        .map(|e| e["eventId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(discard_scheduled.len(), 1, "one deletion step");
    let attempts = events
        .iter()
        .filter_map(|e| {
            let a = &e["activityTaskStartedEventAttributes"];
            (a["scheduledEventId"].as_str() == Some(discard_scheduled[0]))
                .then(|| a["attempt"].as_u64().unwrap_or(1))
        })
        .max()
        .unwrap_or(0);
    // It ended failed after several attempts, or timed out (its retry
    // budget spent) carrying the last attempt's failure.
    let ended = events
        .iter()
        .find_map(|e| {
            [
                "activityTaskFailedEventAttributes",
                "activityTaskTimedOutEventAttributes",
            ]
            .iter()
            .map(|k| &e[*k])
            .find(|a| a["scheduledEventId"].as_str() == Some(discard_scheduled[0]))
        })
        .expect("the deletion step ended");
    let budget_spent = ended["retryState"]
        .as_str()
        .is_some_and(|r| r.to_ascii_uppercase().contains("TIMEOUT"))
        && ended["failure"]["cause"].is_object();
    assert!(
        attempts > 1 || budget_spent,
        "the deletion was retried (attempt {attempts}): {ended}"
    );
    // The objects are still there once S3 is back: the record told the
    // truth. (Its listing answers a while after its port does, longer on a
    // loaded machine.)
    app.stack.start_s3().await.unwrap();
    let kept = || async {
        let now = app.try_delivered_keys(&id).await;
        ok_when(now.as_ref().is_ok_and(|now| *now == keys), now)
    };
    let what = format!("the objects {keys:?} listed after S3 came back");
    Wait::secs(90).every_ms(500).until(&what, kept).await;
}

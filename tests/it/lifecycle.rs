//! After delivery and before it: link regeneration, retention, cancel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{Options, TestApp, CLIENT};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use worker::demo;

async fn post_links(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    let path = format!("/v1/disseminations/{id}/links");
    app.call(reqwest::Method::POST, &path, token).await
}

async fn sha256_of(url: &str) -> String {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    hex::encode(Sha256::digest(res.bytes().await.unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_regenerate_without_a_transfer_until_retention_deletes_the_objects() {
    let app = TestApp::start_with(Options {
        retention_secs: 8,
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let res = app
        .post(Some(&token), json!({"archiveId": demo::DEMO_SINGLE}))
        .await;
    let id = res.json::<Value>().await.unwrap()["disseminationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, delivered) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["status"] == "DISSEMINATED"
        })
        .await;
    let old_url = delivered["files"][0]["downloadURL"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = delivered["files"][0]["checksum"]
        .as_str()
        .unwrap()
        .to_owned();

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
    let res = post_links(&app, &token, &id).await;
    assert_eq!(res.status(), 200);
    let renewed: Value = res.json().await.unwrap();
    let new_url = renewed["files"][0]["downloadURL"].as_str().unwrap();
    assert_ne!(new_url, old_url);
    assert!(
        renewed["files"][0]["expirationDate"].as_str().unwrap()
            > delivered["files"][0]["expirationDate"].as_str().unwrap()
    );
    assert_eq!(sha256_of(new_url).await, digest);
    assert_eq!(
        sha256_of(&old_url).await,
        digest,
        "the old link stays valid until its expiry"
    );
    assert!(renewed["retentionEndsAt"].is_string());
    // GET shows the new links; one download happened in all.
    let now: Value = app.get(&token, &id).await.json().await.unwrap();
    assert_eq!(now["files"], renewed["files"]);
    assert_eq!(
        app.steps_run(&id, "transfer").await,
        1,
        "one transfer in all"
    );

    // Retention ends: the workflow deletes the objects; links cannot be regenerated.
    let (_, expired) = app
        .poll_until(&token, &id, Duration::from_secs(30), |b| {
            b["objectsDeleted"] == true
        })
        .await;
    assert_eq!(expired["status"], "DISSEMINATED");
    let bucket = app.cfg.client_bucket(CLIENT);
    assert!(app
        .list_keys(&bucket, &format!("dissemination/{id}/"))
        .await
        .is_empty());
    let types = app.event_types(&token, &id).await;
    assert!(types.contains(&"link regeneration".to_owned()), "{types:?}");
    assert_eq!(
        types.last().map(String::as_str),
        Some("deletion"),
        "{types:?}"
    );
    crate::support::refused(post_links(&app, &token, &id).await, 410, "RETENTION_ENDED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_download_leaves_nothing_behind() {
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(8 * 1024 * 1024),
        ..Default::default()
    })
    .await;
    let large = "019e404e-ffff-7000-8000-00000000000c";
    worker::demo::seed_large(&app.cfg, large, 48).await.unwrap();
    let token = app.client_token();
    let res = app.post(Some(&token), json!({"archiveId": large})).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["disseminationId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Parts are in the multipart upload when the cancel lands.
    app.poll_until(&token, &id, Duration::from_secs(30), |b| {
        b["progress"]["bytesDone"].as_u64().unwrap_or(0) >= 12 * 1024 * 1024
    })
    .await;

    let res = app.cancel(&token, &id).await;
    assert_eq!(res.status(), 202);
    let (seen, done) = app
        .poll_until(&token, &id, Duration::from_secs(30), |b| {
            b["status"] == "CANCELLED"
        })
        .await;
    assert!(!seen.iter().any(|s| s == "UPLOADING_TO_S3"), "{seen:?}");
    assert_eq!(done["reasons"][0]["code"], "CANCELLED");
    let bucket = app.cfg.client_bucket(CLIENT);
    assert!(app
        .list_keys(&bucket, &format!("dissemination/{id}/"))
        .await
        .is_empty());
    crate::faults::no_open_upload(&app).await;

    // It is final: a second cancel is refused, and the AIP may be requested again.
    crate::support::refused(app.cancel(&token, &id).await, 409, "DISSEMINATION_ENDED").await;
    assert_eq!(
        app.post(Some(&token), json!({"archiveId": large}))
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_one_pass_transfer_aborts_the_upload() {
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(8 * 1024 * 1024),
        ..Default::default()
    })
    .await;
    let large = "019e404e-ffff-7000-8000-00000000000e";
    worker::demo::seed_large(&app.cfg, large, 48).await.unwrap();
    let token = app.client_token();
    let res = app.post(Some(&token), json!({"archiveId": large})).await;
    let id = res.json::<Value>().await.unwrap()["disseminationId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Parts are being uploaded while the file is read.
    app.poll_until(&token, &id, Duration::from_secs(30), |b| {
        b["progress"]["bytesDone"].as_u64().unwrap_or(0) >= 12 * 1024 * 1024
    })
    .await;
    let bucket = app.cfg.client_bucket(CLIENT);
    let s3 = app.s3();
    let open = || async {
        s3.client()
            .list_multipart_uploads()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .uploads()
            .len()
    };
    assert_eq!(open().await, 1, "a multipart upload is under way");
    let res = app.cancel(&token, &id).await;
    assert_eq!(res.status(), 202);
    let (seen, _) = app
        .poll_until(&token, &id, Duration::from_secs(30), |b| {
            b["status"] == "CANCELLED"
        })
        .await;
    assert!(!seen.iter().any(|s| s == "UPLOADING_TO_S3"), "{seen:?}");
    assert_eq!(open().await, 0, "the multipart upload was aborted");
    assert!(app
        .list_keys(&bucket, &format!("dissemination/{id}/"))
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_shows_bytes_done_while_a_large_aip_downloads() {
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(4 * 1024 * 1024),
        ..Default::default()
    })
    .await;
    let large = "019e404e-ffff-7000-8000-00000000000e";
    let aip = worker::demo::seed_large(&app.cfg, large, 16).await.unwrap();
    let total = aip.intellectual_entity.sum_size_in_bytes;
    let token = app.client_token();
    let id = app.create(&token, large, 50).await;
    let mut seen = Vec::new();
    let mut left_seen: Vec<u64> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let body: Value = app.get(&token, &id).await.json().await.unwrap();
        if body["status"] == "DOWNLOADING_FROM_REPOSITORY" {
            if let Some(done) = body["progress"]["bytesDone"].as_u64() {
                assert_eq!(body["progress"]["bytesTotal"].as_u64(), Some(total));
                assert_eq!(body["progress"]["phase"], "download");
                if seen.last() != Some(&done) {
                    seen.push(done);
                    if let Some(left) = body["progress"]["secondsLeft"].as_u64() {
                        left_seen.push(left);
                    }
                }
            }
        }
        if body["status"] == "DISSEMINATED" {
            assert!(body.get("progress").is_none(), "no progress once done");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
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
    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    // Retention starts once the client was told.
    app.poll_until(&token, &id, Duration::from_secs(60), |b| {
        b["status"] == "DISSEMINATED" && b["retentionEndsAt"].is_string()
    })
    .await;
    let keys = app.delivered_keys(&id).await;
    assert_eq!(keys.len(), 1);
    // S3 is gone when retention ends: the deletion is tried again and again
    // for `retry_for_ms`, then the record says it failed.
    let mut app = app;
    app.stack.stop_s3();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let deletion = loop {
        let events = app.events(&token, &id).await;
        if let Some(e) = events.iter().find(|e| e["eventType"] == "deletion") {
            break e.clone();
        }
        if std::time::Instant::now() >= deadline {
            let d = app.temporal_cli(&["workflow", "describe", "--workflow-id", &id]);
            panic!(
                "no deletion event: {events:?}\n{}",
                String::from_utf8_lossy(&d.stdout)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(deletion["outcome"], "failure", "{deletion}");
    assert!(
        deletion["detail"].as_str().unwrap().contains("failed"),
        "{deletion}"
    );
    let view: Value = app.get(&token, &id).await.json().await.unwrap();
    assert_eq!(view["status"], "DISSEMINATED");
    assert!(view.get("objectsDeleted").is_none(), "{view}");
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
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let now = app.try_delivered_keys(&id).await;
        if now.as_ref().is_ok_and(|now| *now == keys) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after S3 came back: {now:?}, not {keys:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

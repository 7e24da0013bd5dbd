//! Durability and operations: priorities that hold, replica fallback,
//! webhook retry schedule, and an operator's reset after an outage.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{verify_with_standardwebhooks, Options, TestApp, CLIENT};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use worker::demo;

async fn create(app: &TestApp, token: &str, archive_id: &str, priority: u8) -> String {
    app.create(token, archive_id, priority).await
}

async fn status(app: &TestApp, token: &str, id: &str) -> String {
    let body: Value = app.get(token, id).await.json().await.unwrap();
    body["status"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_request_starts_next_however_full_the_low_queue_is() {
    // One slot per band (for small AIPs too), downloads slowed to ~4 s each.
    let app = TestApp::start_with(Options {
        band_slots: Some(1),
        max_read_bytes_per_sec: Some(64 * 1024),
        configure: Some(std::sync::Arc::new(|cfg| cfg.worker.local_slots = 1)),
        ..Default::default()
    })
    .await;
    let mut low = Vec::new();
    for i in 0..20 {
        let token = app.token(&format!("low-client-{i}"), &["2d17_R"]);
        let id = create(&app, &token, demo::DEMO_SINGLE, 90).await;
        low.push((token, id));
    }
    // The low band's one slot is busy; the others wait. A low item that has
    // ended holds no slot (on a loaded machine the first may end while the
    // twenty are posted): at most one is transferring at any time.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = statuses(&app, &low).await;
        let transferring = now.iter().filter(|s| is_transferring(s)).count();
        assert!(
            transferring <= 1,
            "one slot, yet {transferring} low-priority transfers at once: {now:?}"
        );
        if transferring == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no low-priority download started: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let urgent_token = app.token("urgent-client", &["2d17_R"]);
    let urgent = create(&app, &urgent_token, demo::DEMO_SINGLE, 1).await;
    app.poll_until(&urgent_token, &urgent, Duration::from_secs(10), |b| {
        b["status"] == "DOWNLOADING_FROM_REPOSITORY"
    })
    .await;
    let now = statuses(&app, &low).await;
    let queued = now.iter().filter(|s| *s == "QUEUED").count();
    // Behind the queue, the urgent one would have started after all twenty
    // (~80 s). Ahead of it, most are still queued; on a loaded machine a few
    // low items (~4 s each) end while the urgent one is posted and starts.
    assert!(
        queued >= 15,
        "the urgent request waited behind the low-priority queue: {queued} of 20 still queued: {now:?}"
    );
}

/// The statuses of `items` at one moment (read at once, not one by one).
async fn statuses(app: &TestApp, items: &[(String, String)]) -> Vec<String> {
    futures::future::join_all(items.iter().map(|(t, id)| status(app, t, id))).await
}

/// Holding a worker's slot: the one-pass transfer reads, checks and uploads.
fn is_transferring(status: &str) -> bool {
    matches!(
        status,
        "DOWNLOADING_FROM_REPOSITORY" | "FIXITY_CHECK" | "UPLOADING_TO_S3"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_first_copy_is_delivered_from_the_second_location() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let aip = app.catalog_doc(demo::DEMO_SINGLE);
    let file = &aip.repository_files[0];
    let disk = app.disk_root().join(&file.locations[0].file_path);
    let mut bytes = std::fs::read(&disk).unwrap();
    bytes[4096] ^= 0x80;
    std::fs::write(&disk, &bytes).unwrap();

    let id = create(&app, &token, demo::DEMO_SINGLE, 50).await;
    let (seen, done) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["status"] == "DISSEMINATED" || b["status"] == "FAILED"
        })
        .await;
    assert_eq!(done["status"], "DISSEMINATED", "{seen:?} {done}");
    let url = done["files"][0]["downloadURL"].as_str().unwrap();
    let delivered = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let stored = &file
        .fixity(model::catalog::DigestAlgorithm::Sha256)
        .unwrap()
        .digest;
    assert_eq!(
        &hex::encode(Sha256::digest(&delivered)),
        stored,
        "the good copy, not the corrupt one"
    );
    // The audit trail tells the story: disk failed fixity, s3 passed.
    let events = app.events(&token, &id).await;
    let fixity: Vec<(&str, &str, &str)> = events
        .iter()
        .filter(|e| e["eventType"] == "fixity check")
        .map(|e| {
            (
                e["location"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["algorithm"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fixity,
        [("disk", "failure", "SHA-256"), ("s3", "success", "SHA-256")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_keep_their_id_follow_the_schedule_and_honour_retry_after() {
    // Seconds, not milliseconds: Temporal's timers have about a second of precision.
    let app = TestApp::start_with(Options {
        webhook_retry_initial_ms: Some(2_000),
        ..Default::default()
    })
    .await;
    app.receiver.plan.lock().unwrap().extend([
        (500, None),
        (500, None),
        (429, Some("10".to_owned())),
    ]);
    let token = app.client_token();
    let id = create(&app, &token, demo::DEMO_SINGLE, 50).await;
    let hooks = app.wait_webhooks(4, Duration::from_secs(60)).await;
    assert_eq!(
        hooks.len(),
        4,
        "delivered on the fourth attempt and not again"
    );
    let ids: Vec<&str> = hooks
        .iter()
        .map(|h| h.headers["webhook-id"].to_str().unwrap())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(ids[0], format!("msg_{id}_delivered"));
    for h in &hooks {
        verify_with_standardwebhooks(&app.webhook_secret, h).expect("every attempt is signed");
    }
    // Configured schedule: 2 s doubling, each wait drawn from [½, 1] × the
    // backoff (jitter); Retry-After: 10 s wins over the schedule's 4–8 s.
    // The waits as the workflow scheduled them (its timers, in the history)
    // are exact whatever the machine's load; the attempts came no sooner.
    let waits = webhook_waits(&app, &id).await;
    let gaps: Vec<Duration> = hooks.windows(2).map(|w| w[1].at - w[0].at).collect();
    println!("webhook waits scheduled: {waits:?}; attempt gaps: {gaps:?}");
    let within = |g: Duration, lo: u64, hi: u64| {
        g >= Duration::from_millis(lo) && g <= Duration::from_millis(hi)
    };
    assert_eq!(waits.len(), 3, "a wait before each retry: {waits:?}");
    assert!(within(waits[0], 1_000, 2_000), "{waits:?}");
    assert!(within(waits[1], 2_000, 4_000), "{waits:?}");
    assert_eq!(waits[2], Duration::from_secs(10), "Retry-After honoured");
    for (gap, wait) in gaps.iter().zip(&waits) {
        // Timers do not fire early; Temporal's are precise to about a second.
        assert!(*gap + Duration::from_secs(1) >= *wait, "{gaps:?} {waits:?}");
        assert!(
            *gap <= *wait + Duration::from_secs(10),
            "{gaps:?} {waits:?}"
        );
    }
    let body: Value = serde_json::from_slice(&hooks[3].body).unwrap();
    assert_eq!(body["type"], "dissemination.delivered");

    // The delivery attempts are visible on GET.
    let (_, view) = app
        .poll_until(&token, &id, Duration::from_secs(10), |b| {
            b["webhook"]["state"] == "delivered"
        })
        .await;
    assert_eq!(view["status"], "DISSEMINATED");
    assert_eq!(view["webhook"]["attempts"], 4);
    assert_eq!(view["webhook"]["messageId"], format!("msg_{id}_delivered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_s3_outage_an_operator_reset_delivers() {
    let mut app = TestApp::start_with(Options {
        private_stack: true,
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    app.stack.stop_s3();
    let id = create(&app, &token, demo::DEMO_SINGLE, 50).await;
    let (_, failed) = app
        .poll_until(&token, &id, Duration::from_secs(90), |b| {
            b["status"] == "FAILED"
        })
        .await;
    assert_eq!(failed["reasons"][0]["code"], "UPLOAD_FAILED", "{failed}");

    // S3 is back; the operator resets the run (as the Web UI's Reset does).
    app.stack.start_s3().await.unwrap();
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
    let (_, done) = app
        .poll_until(&token, &id, Duration::from_secs(120), |b| {
            b["status"] == "DISSEMINATED"
        })
        .await;
    let url = done["files"][0]["downloadURL"].as_str().unwrap();
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
    assert!(!app.delivered_keys(&id).await.is_empty());
}

/// The timers a workflow started between its first and its last webhook
/// attempt: the waits of its webhook schedule.
async fn webhook_waits(app: &TestApp, id: &str) -> Vec<Duration> {
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    let events = app.history(id).await;
    // The first attempt is `finish`'s (flow 10 on), the retries `notify`.
    let is_notify = |a: &Option<Attributes>| {
        matches!(a, Some(Attributes::ActivityTaskScheduledEventAttributes(s))
            if s.activity_type.as_ref().is_some_and(|t| ["notify", "finish"].contains(&t.name.as_str())))
    };
    let first = events.iter().position(|e| is_notify(&e.attributes));
    let last = events.iter().rposition(|e| is_notify(&e.attributes));
    let (Some(first), Some(last)) = (first, last) else {
        return Vec::new();
    };
    events[first..last]
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::TimerStartedEventAttributes(t)) => t.start_to_fire_timeout.as_ref(),
            _ => None,
        })
        .map(|d| Duration::new(d.seconds as u64, d.nanos as u32))
        .collect()
}

/// Completed activities' results (those with field `marker`) in a history.
pub(crate) async fn activity_results(app: &TestApp, id: &str, marker: &str) -> Vec<Value> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_an_s3_outage_at_the_start_and_a_temporal_restart() {
    let mut app = TestApp::start_with(Options {
        private_stack: true,
        ..Default::default()
    })
    .await;
    let token = app.client_token();

    // S3 down when the transfer starts: GET says what the step waits for.
    app.stack.stop_s3();
    let id = create(&app, &token, demo::DEMO_SINGLE, 50).await;
    let (_, waiting) = app
        .poll_until(&token, &id, Duration::from_secs(30), |b| {
            b["waiting"]["for"] == "S3"
        })
        .await;
    assert!(waiting["waiting"]["nextAttemptAt"].is_string(), "{waiting}");
    app.stack.start_s3().await.unwrap();
    let (_, done) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["status"] == "DISSEMINATED" || b["status"] == "FAILED"
        })
        .await;
    assert_eq!(done["status"], "DISSEMINATED", "{done}");
    files_match_catalog(&app, demo::DEMO_SINGLE, &done).await;

    // The Temporal server restarts (file-backed): the next dissemination and
    // the one above are still there.
    let second = create(&app, &token, demo::DEMO_TWO_FILES, 50).await;
    app.stack.restart_temporal().await.unwrap();
    let (_, done2) = app
        .poll_until(&token, &second, Duration::from_secs(90), |b| {
            b["status"] == "DISSEMINATED"
        })
        .await;
    files_match_catalog(&app, demo::DEMO_TWO_FILES, &done2).await;
    assert_eq!(status(&app, &token, &id).await, "DISSEMINATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_worker_mid_transfer_loses_and_duplicates_nothing() {
    let app = TestApp::start_with(Options {
        with_worker: false,
        max_read_bytes_per_sec: Some(4 * 1024 * 1024),
        ..Default::default()
    })
    .await;
    let (first, aip, token, id) =
        large_transfer_under_way(&app, "019e404e-ffff-7000-8000-0000000000bb", 24).await;
    let pid = first.pid().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
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

/// A large AIP transferring slowly on a worker process, a third of the way in.
pub(crate) async fn large_transfer_under_way(
    app: &TestApp,
    archive_id: &str,
    mib: u64,
) -> (
    crate::support::ChildGuard,
    model::catalog::Aip,
    String,
    String,
) {
    let aip = worker::demo::seed_large(&app.cfg, archive_id, mib)
        .await
        .unwrap();
    let size = aip.intellectual_entity.sum_size_in_bytes;
    let first = crate::support::spawn_worker_process(&app.cfg, "worker-1");
    let token = app.client_token();
    let id = create(app, &token, archive_id, 50).await;
    // Half read: the first parts (5 MiB each) are uploaded and their
    // checkpoint heartbeated, even on a loaded host.
    app.poll_until(&token, &id, Duration::from_secs(30), |b| {
        b["progress"]["bytesDone"].as_u64().unwrap_or(0) >= size / 2
    })
    .await;
    (first, aip, token, id)
}

/// Waits for delivery on a second worker process and checks the bytes.
pub(crate) async fn delivered_intact(
    app: &TestApp,
    aip: &model::catalog::Aip,
    token: &str,
    id: &str,
) {
    let _second = crate::support::spawn_worker_process(&app.cfg, "worker-2");
    let (_, done) = app
        .poll_until(token, id, Duration::from_secs(90), |b| {
            b["status"] == "DISSEMINATED"
        })
        .await;
    let url = done["files"][0]["downloadURL"].as_str().unwrap();
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let stored = &aip.repository_files[0]
        .fixity(model::catalog::DigestAlgorithm::Sha256)
        .unwrap()
        .digest;
    assert_eq!(&hex::encode(Sha256::digest(&bytes)), stored);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_transfer_resumes_from_its_checkpoint() {
    let app = TestApp::start_with(Options {
        with_worker: false,
        max_read_bytes_per_sec: Some(4 * 1024 * 1024),
        ..Default::default()
    })
    .await;
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
async fn a_gone_webhook_endpoint_stops_retries() {
    let app = TestApp::start().await;
    app.receiver.plan.lock().unwrap().push((410, None));
    let token = app.client_token();
    let id = create(&app, &token, demo::DEMO_SINGLE, 50).await;
    let (_, view) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["webhook"]["state"] == "gone"
        })
        .await;
    assert_eq!(
        view["status"], "DISSEMINATED",
        "the files are available all the same"
    );
    assert_eq!(view["webhook"]["attempts"], 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.receiver.all().len(), 1, "no retry after 410");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_endpoint_that_is_down_then_slow_still_gets_the_message() {
    let app = TestApp::start_with(Options {
        webhook_request_timeout_ms: Some(1_000),
        ..Default::default()
    })
    .await;
    app.receiver.go_down().await;
    let token = app.client_token();
    let id = create(&app, &token, demo::DEMO_SINGLE, 50).await;
    let (_, down) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["webhook"]["attempts"].as_u64().unwrap_or(0) >= 2
        })
        .await;
    assert_eq!(
        down["status"], "DISSEMINATED",
        "the files are there whatever the webhook does"
    );
    assert_eq!(down["webhook"]["state"], "pending");
    assert!(
        down["webhook"]["lastError"]
            .as_str()
            .unwrap()
            .contains("connect"),
        "{down}"
    );
    assert!(down["webhook"]["nextAttemptAt"].is_string());

    // Back, but the first answer takes longer than the endpoint's 1 s.
    app.receiver
        .plan
        .lock()
        .unwrap()
        .push((0, Some("3000".to_owned())));
    app.receiver.come_back().await;
    let (_, done) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["webhook"]["state"] == "delivered"
        })
        .await;
    let hooks = app.receiver.all();
    assert!(
        hooks.len() >= 2,
        "the slow attempt timed out and was retried"
    );
    assert!(hooks
        .iter()
        .all(|h| h.headers["webhook-id"] == hooks[0].headers["webhook-id"]));
    assert!(done["webhook"]["attempts"].as_u64().unwrap() >= 4);
    let url = done["files"][0]["downloadURL"].as_str().unwrap();
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
}

/// Every delivered file downloads with the SHA-256 the catalog stores.
async fn files_match_catalog(app: &TestApp, archive_id: &str, view: &Value) {
    let aip = app.catalog_doc(archive_id);
    let files = view["files"].as_array().unwrap();
    assert_eq!(files.len(), aip.repository_files.len());
    for f in files {
        let name = f["filename"].as_str().unwrap();
        let stored = aip
            .repository_files
            .iter()
            .find(|r| r.relative_path == name)
            .unwrap()
            .fixity(model::catalog::DigestAlgorithm::Sha256)
            .unwrap()
            .digest
            .clone();
        let bytes = reqwest::get(f["downloadURL"].as_str().unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), stored, "{name}");
        assert_eq!(
            f["checksum"],
            stored.as_str(),
            "{name}: the checksum given for it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_api_finishes_requests_in_flight_and_loses_nothing() {
    let app = TestApp::start_with(Options {
        with_worker: false,
        ..Default::default()
    })
    .await;
    // The API as its own process, on its own port, same configuration.
    let port = crate::support::free_ports(1)[0];
    let mut cfg = (*app.cfg).clone();
    cfg.api.listen = format!("127.0.0.1:{port}");
    let toml = crate::support::write_config_toml(&cfg, "api-sigterm");
    let bin =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/dissemination-api");
    let mut api = std::process::Command::new(bin)
        .args(["--config", toml.to_str().unwrap(), "serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{url}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the API process did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Twenty clients create disseminations at once; SIGTERM lands among them.
    let posts: Vec<_> = (0..20)
        .map(|i| {
            let (http, url, token) = (
                http.clone(),
                url.clone(),
                app.token(&format!("term-client-{i}"), &["2d17_R"]),
            );
            tokio::spawn(async move {
                http.post(format!("{url}/v1/disseminations"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({"archiveId": demo::DEMO_SINGLE}))
                    .send()
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let pid = api.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for (i, p) in posts.into_iter().enumerate() {
        match p.await.unwrap() {
            Ok(res) => {
                assert_eq!(res.status(), 201, "a request in flight completes");
                let body: Value = res.json().await.unwrap();
                created.push(body["disseminationId"].as_str().unwrap().to_owned());
            }
            // Never answered (the listener or a pooled connection closed):
            // the client retries; see below that nothing was left half-done.
            Err(_) => refused.push(format!("term-client-{i}")),
        }
    }
    let status = api.wait().unwrap();
    assert!(
        status.success(),
        "the API exits cleanly on SIGTERM: {status}"
    );
    println!("{} created, {} not answered", created.len(), refused.len());
    // Every 201 names a dissemination that exists (read through the in-test API).
    for id in &created {
        let client = app.stack_client().await;
        let d = client
            .get_workflow_handle::<workflows::DisseminationWorkflow>(id.clone())
            .describe(Default::default())
            .await;
        assert!(d.is_ok(), "{id} was answered 201 but does not exist");
    }
    // An unanswered request left either nothing, or a lock and the
    // dissemination it names (a retry then gets 409 pointing at it).
    let client = app.stack_client().await;
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

//! Tape copies on the real stack: the tape library (our stand-in speaking
//! the WLCG Tape REST API v1, over HTTPS with a bearer token) as its own
//! process, Temporal, SeaweedFS and the webhook receiver. A nearline file
//! is staged (STAGING, with progress), read, verified and released; one
//! already on disk, or with a disk copy preferred, is read without a
//! recall; a lost one falls back; a cancel, a timeout, a lost worker, a
//! Temporal restart and a tape library restart each end as they must; a
//! batch's files are recalled in bulk and its items transfer in the order
//! their files come online.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    tape_aip, tempdir, AipFile, Options, TapeAip, TapeEntry, TapeLibrary, TapeOptions, TapeState,
    TestApp, TAPE_PREFIX,
};
use model::DisseminationStatus;
use platform::config::{Config, LocationConfig};
use serde_json::json;
use std::{sync::Arc, time::Duration};
use workflows::{DisseminationEvent, EventType, Outcome, Phase};

/// Bytes of a test file: `n` bytes from a seed (not compressible, distinct).
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn tape_only(archive_id: &str, files: &[(&'static str, Vec<u8>)], volume: &str) -> TapeAip {
    let files: Vec<AipFile> = files
        .iter()
        .map(|(path, b)| AipFile {
            path,
            bytes: b.clone(),
            copies: vec![("hpss", None)],
        })
        .collect();
    tape_aip(archive_id, &files, volume, 1)
}

/// The service with `lib` as its `hpss` location (and `more` applied).
async fn app_with(
    lib: &TapeLibrary,
    opts: Options,
    more: impl Fn(&mut Config) + Send + Sync + 'static,
) -> TestApp {
    let hpss = lib.location_config(TAPE_PREFIX);
    let configure: Arc<dyn Fn(&mut Config) + Send + Sync> = Arc::new(move |cfg: &mut Config| {
        cfg.repository
            .locations
            .insert("hpss".into(), LocationConfig::Tape(hpss.clone()));
        more(cfg);
    });
    TestApp::start_with(Options {
        configure: Some(configure),
        ..opts
    })
    .await
}

fn has_event(events: &[DisseminationEvent], kind: EventType, outcome: Outcome, text: &str) -> bool {
    events
        .iter()
        .any(|e| e.event_type == kind && e.outcome == outcome && e.detail.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tape_only_aip_is_staged_read_verified_and_released() {
    let dir = tempdir().unwrap();
    let id_aip = "019e404e-7a9e-7000-8000-000000000001";
    // Two files over the local limit (each in an activity of its own, so
    // DOWNLOADING is seen), recalled in one request.
    let aip = tape_only(
        id_aip,
        &[
            ("v1/primary.tar", bytes(1, 1536 * 1024)),
            ("v2/primary.tar", bytes(2, 1536 * 1024)),
        ],
        "V001",
    );
    let lib = TapeLibrary::start(
        dir.path(),
        &aip.entries(),
        TapeOptions {
            mount_ms: 1_500,
            ..Default::default()
        },
    )
    .await;
    let app = app_with(
        &lib,
        Options {
            max_read_bytes_per_sec: Some(1024 * 1024),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    aip.put(&app).await;
    let token = app.client_token();
    let created = app.api(&token).create(json!({"archiveId": id_aip})).await;
    let id = created.dissemination_id;
    // STAGING with its progress, before any byte is read.
    let staging = app
        .api(&token)
        .wait_for(&id, Duration::from_secs(30), |v| {
            v.status == DisseminationStatus::Staging && v.progress.is_some()
        })
        .await;
    let progress = staging.progress.expect("STAGING shows progress");
    assert_eq!(progress.phase, Phase::Staging);
    assert_eq!(progress.files_total, Some(2));
    assert_eq!(progress.bytes_total, 3 * 1024 * 1024);
    assert!(progress.files_staged.unwrap() < 2);
    let (seen, _) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["status"] == "DISSEMINATED"
        })
        .await;
    let downloading = seen.iter().position(|s| s == "DOWNLOADING_FROM_REPOSITORY");
    assert!(
        downloading.is_some() && seen[..downloading.unwrap()].iter().all(|s| s == "STAGING"),
        "STAGING, then DOWNLOADING_FROM_REPOSITORY: {seen:?}"
    );
    let delivered = app.assert_every_link_delivers(&token, &id).await;
    assert_eq!(delivered["v1/primary.tar"], bytes(1, 1536 * 1024));
    assert_eq!(delivered["v2/primary.tar"], bytes(2, 1536 * 1024));
    // One request for both, released and deleted: nothing pinned for us.
    assert_eq!(lib.stage_requests_seen(), 1, "{}", lib.log_text());
    assert_eq!(lib.pins().await, 0, "{}", lib.state().await);
    assert!(lib.requests().await.is_empty(), "{}", lib.state().await);
    let events = app.api(&token).events(&id).await;
    assert!(has_event(
        &events,
        EventType::Retrieval,
        Outcome::Success,
        "recalled from tape"
    ));
    assert!(has_event(
        &events,
        EventType::Retrieval,
        Outcome::Success,
        "tape copies released"
    ));
    // Two files verified from the staged bytes.
    let verified = events
        .iter()
        .filter(|e| e.event_type == EventType::FixityCheck && e.outcome == Outcome::Success)
        .count();
    assert_eq!(verified, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tape_and_disk_is_read_from_disk_and_a_lost_tape_copy_falls_back() {
    let dir = tempdir().unwrap();
    let both = "019e404e-7a9e-7000-8000-000000000011";
    let lost_s3 = "019e404e-7a9e-7000-8000-000000000012";
    let lost_only = "019e404e-7a9e-7000-8000-000000000013";
    let file = |seed, copies| AipFile {
        path: "primary.tar",
        bytes: bytes(seed, 64 * 1024),
        copies,
    };
    let a = tape_aip(
        both,
        &[file(11, vec![("hpss", None), ("disk", None)])],
        "V001",
        1,
    );
    let b = tape_aip(
        lost_s3,
        &[file(12, vec![("hpss", None), ("s3", None)])],
        "V001",
        2,
    );
    let c = tape_aip(lost_only, &[file(13, vec![("hpss", None)])], "V002", 1);
    // The tape copies of b and c are lost (the catalog still names them);
    // b's s3 copy is preferred less than tape.
    let mut entries = a.entries();
    for aip in [&b, &c] {
        entries.extend(aip.entries().into_iter().map(|e| TapeEntry {
            state: TapeState::Lost,
            ..e
        }));
    }
    let lib = TapeLibrary::start(dir.path(), &entries, TapeOptions::default()).await;
    let app = app_with(&lib, Options::default(), |cfg| {
        if let Some(LocationConfig::S3(s3)) = cfg.repository.locations.get_mut("s3") {
            s3.preference = Some(95);
        }
    })
    .await;
    for aip in [&a, &b, &c] {
        aip.put(&app).await;
    }
    let token = app.client_token();

    let (id, _) = app.create_until(&token, both, "DISSEMINATED").await;
    app.assert_every_link_delivers(&token, &id).await;
    let events = app.api(&token).events(&id).await;
    assert!(has_event(
        &events,
        EventType::Retrieval,
        Outcome::Success,
        "hpss: lower preference (90)"
    ));

    let (id, _) = app.create_until(&token, lost_s3, "DISSEMINATED").await;
    app.assert_every_link_delivers(&token, &id).await;
    let events = app.api(&token).events(&id).await;
    assert!(
        has_event(&events, EventType::Retrieval, Outcome::Failure, "LOST"),
        "the lost tape copy is on the record: {events:?}"
    );

    let (_, body) = app.create_until(&token, lost_only, "REJECTED").await;
    assert_eq!(body["reasons"][0]["code"], "NO_READABLE_COPY", "{body}");
    let message = body["reasons"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("hpss") && message.contains("LOST"),
        "{message}"
    );
    // Nothing was recalled: the disk copy was preferred, the lost ones
    // were known lost from their locality.
    assert_eq!(lib.stage_requests_seen(), 0, "{}", lib.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_staging_cancels_and_deletes_the_request() {
    let dir = tempdir().unwrap();
    let archive = "019e404e-7a9e-7000-8000-000000000021";
    let aip = tape_only(archive, &[("primary.tar", bytes(21, 64 * 1024))], "V001");
    let lib = TapeLibrary::start(
        dir.path(),
        &aip.entries(),
        TapeOptions {
            mount_ms: 120_000,
            ..Default::default()
        },
    )
    .await;
    let app = app_with(&lib, Options::default(), |_| {}).await;
    aip.put(&app).await;
    let token = app.client_token();
    let (id, _) = app.create_until(&token, archive, "STAGING").await;
    // The request is at the library, its recall queued or mounting.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lib.requests().await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no stage request");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.cancel(&token, &id).await.status(), 202);
    let (_, body) = app
        .poll_until(&token, &id, Duration::from_secs(30), |b| {
            b["status"] == "CANCELLED"
        })
        .await;
    assert_eq!(body["reasons"][0]["code"], "CANCELLED");
    assert!(lib.requests().await.is_empty(), "{}", lib.state().await);
    assert_eq!(lib.pins().await, 0);
    assert!(
        lib.log_text().contains("method=DELETE"),
        "the request was deleted: {}",
        lib.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_past_the_stage_timeout_fails_staging_failed() {
    let dir = tempdir().unwrap();
    let archive = "019e404e-7a9e-7000-8000-000000000031";
    let aip = tape_only(archive, &[("primary.tar", bytes(31, 64 * 1024))], "V001");
    let lib = TapeLibrary::start(
        dir.path(),
        &aip.entries(),
        TapeOptions {
            mount_ms: 120_000,
            ..Default::default()
        },
    )
    .await;
    let app = app_with(&lib, Options::default(), |cfg| {
        cfg.timings.stage_timeout_ms = 3_000;
    })
    .await;
    aip.put(&app).await;
    let token = app.client_token();
    let (_, body) = app.create_until(&token, archive, "FAILED").await;
    assert_eq!(body["reasons"][0]["code"], "STAGING_FAILED", "{body}");
    assert!(
        body["reasons"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not recalled from tape by the deadline"),
        "{body}"
    );
    // Its recall cancelled, its request deleted.
    assert!(lib.requests().await.is_empty(), "{}", lib.state().await);
    assert_eq!(lib.state().await["queuedFiles"], 0);
}

/// Waits (bounded) until the library holds a stage request.
async fn until_requested(lib: &TapeLibrary) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lib.requests().await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no stage request");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_and_a_temporal_restart_during_staging_deliver_once_from_one_request() {
    let dir = tempdir().unwrap();
    let archive = "019e404e-7a9e-7000-8000-000000000041";
    let aip = tape_only(
        archive,
        &[("primary.tar", bytes(41, 2 * 1024 * 1024))],
        "V001",
    );
    let lib = TapeLibrary::start(
        dir.path(),
        &aip.entries(),
        TapeOptions {
            mount_ms: 30_000,
            ..Default::default()
        },
    )
    .await;
    let mut app = app_with(
        &lib,
        Options {
            private_stack: true,
            with_worker: false,
            retry_for_ms: Some(15 * 60 * 1000),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    aip.put(&app).await;
    let first = crate::support::spawn_worker_process(&app.cfg, "worker-tape-1");
    let token = app.client_token();
    let (id, _) = app.create_until(&token, archive, "STAGING").await;
    until_requested(&lib).await;
    // The worker waiting on the recall dies; another takes the step over
    // (after the heartbeat timeout) and finds the request again.
    first.kill_hard();
    let _second = crate::support::spawn_worker_process(&app.cfg, "worker-tape-2");
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Temporal goes away and comes back while the recall goes on.
    app.stack.stop_temporal();
    tokio::time::sleep(Duration::from_secs(5)).await;
    app.stack.start_temporal().await.unwrap();
    let (_, body) = app
        .poll_until(&token, &id, Duration::from_secs(120), |b| {
            b["status"] == "DISSEMINATED"
        })
        .await;
    assert_eq!(body["files"].as_array().unwrap().len(), 1);
    app.assert_every_link_delivers(&token, &id).await;
    assert_eq!(app.delivered_keys(&id).await.len(), 1);
    assert_eq!(lib.stage_requests_seen(), 1, "{}", lib.log_text());
    assert_eq!(lib.mounts().await, 1);
    assert_eq!(lib.pins().await, 0, "{}", lib.state().await);
    let hooks = app.wait_webhooks(1, Duration::from_secs(90)).await;
    let ids: std::collections::BTreeSet<String> = hooks
        .iter()
        .map(|h| h.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one delivered message id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tape_library_restart_during_a_recall_is_resubmitted_and_delivered() {
    let dir = tempdir().unwrap();
    let archive = "019e404e-7a9e-7000-8000-000000000051";
    let aip = tape_only(archive, &[("primary.tar", bytes(51, 256 * 1024))], "V001");
    let mut lib = TapeLibrary::start(
        dir.path(),
        &aip.entries(),
        TapeOptions {
            mount_ms: 4_000,
            ..Default::default()
        },
    )
    .await;
    let app = app_with(
        &lib,
        Options {
            // The tape system may be away this long before its copies are
            // given up.
            unreadable_retry_ms: Some(60_000),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    aip.put(&app).await;
    let token = app.client_token();
    let (id, _) = app.create_until(&token, archive, "STAGING").await;
    until_requested(&lib).await;
    lib.kill_hard();
    tokio::time::sleep(Duration::from_secs(2)).await;
    lib.restart().await;
    app.poll_until(&token, &id, Duration::from_secs(60), |b| {
        b["status"] == "DISSEMINATED"
    })
    .await;
    app.assert_every_link_delivers(&token, &id).await;
    // Forgotten by the restart, made again once; nothing pinned after.
    assert_eq!(lib.stage_requests_seen(), 2, "{}", lib.log_text());
    assert_eq!(lib.pins().await, 0, "{}", lib.state().await);
    assert!(lib.requests().await.is_empty());
}

/// History events other than workflow tasks (as the outage tests count).
async fn history_events(app: &TestApp, id: &str) -> usize {
    use temporalio_common::protos::temporal::api::enums::v1::EventType as E;
    app.history(id)
        .await
        .iter()
        .filter(|e| {
            !matches!(
                E::try_from(e.event_type),
                Ok(E::WorkflowTaskScheduled
                    | E::WorkflowTaskStarted
                    | E::WorkflowTaskCompleted
                    | E::WorkflowTaskTimedOut
                    | E::WorkflowTaskFailed)
            )
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_does_not_grow_with_recall_time() {
    // The same AIP recalled by a quick library and by a slow one (a mount
    // 60 times longer): the same history, however long the wait.
    let (quick_dir, slow_dir) = (tempdir().unwrap(), tempdir().unwrap());
    let quick_id = "019e404e-7a9e-7000-8000-000000000061";
    let slow_id = "019e404e-7a9e-7000-8000-000000000062";
    let file = |seed, at| AipFile {
        path: "primary.tar",
        bytes: bytes(seed, 256 * 1024),
        copies: vec![(at, None)],
    };
    let quick = tape_aip(quick_id, &[file(61, "hpss")], "V001", 1);
    let slow = tape_aip(slow_id, &[file(62, "hpss-slow")], "V001", 1);
    let quick_lib = TapeLibrary::start(
        quick_dir.path(),
        &quick.entries(),
        TapeOptions {
            mount_ms: 250,
            ..Default::default()
        },
    )
    .await;
    let slow_lib = TapeLibrary::start(
        slow_dir.path(),
        &slow.entries(),
        TapeOptions {
            mount_ms: 15_000,
            ..Default::default()
        },
    )
    .await;
    let slow_location = slow_lib.location_config(TAPE_PREFIX);
    let app = app_with(&quick_lib, Options::default(), move |cfg| {
        cfg.repository.locations.insert(
            "hpss-slow".into(),
            LocationConfig::Tape(slow_location.clone()),
        );
    })
    .await;
    quick.put(&app).await;
    slow.put(&app).await;
    let token = app.client_token();
    let mut counts = Vec::new();
    for archive in [quick_id, slow_id] {
        let started = std::time::Instant::now();
        let (id, _) = app.create_until(&token, archive, "DISSEMINATED").await;
        counts.push((history_events(&app, &id).await, started.elapsed()));
    }
    println!("history events but workflow tasks (recall time): {counts:?}");
    assert!(counts[1].1 >= Duration::from_secs(15), "{counts:?}");
    assert!(
        counts[0].0.abs_diff(counts[1].0) <= 2,
        "history length depends on recall time: {counts:?}"
    );
}

/// A server that answers every request with `status` and `body`, or a
/// redirect to `location` (for the tests of bad answers).
async fn answering(status: u16, body: &'static str, location: Option<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move {
        let mut res = axum::response::Response::builder().status(status);
        if let Some(l) = location {
            res = res.header("location", l);
        }
        res.body(axum::body::Body::from(body)).unwrap()
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tape_answers_make_the_copy_unreadable_and_the_next_one_serves() {
    let dir = tempdir().unwrap();
    let garbage = "019e404e-7a9e-7000-8000-000000000071";
    let resized = "019e404e-7a9e-7000-8000-000000000072";
    let redirected = "019e404e-7a9e-7000-8000-000000000073";
    let file = |seed, at| AipFile {
        path: "primary.tar",
        bytes: bytes(seed, 128 * 1024),
        copies: vec![(at, None), ("disk", None)],
    };
    let a = tape_aip(garbage, &[file(71, "junk")], "V001", 1);
    let b = tape_aip(resized, &[file(72, "hpss")], "V001", 2);
    let c = tape_aip(redirected, &[file(73, "redirected")], "V001", 3);
    // On tape, b's copy is one byte longer than the catalog says.
    let mut entries = b.entries();
    entries[0].bytes.push(0);
    entries.extend(c.entries());
    let lib = TapeLibrary::start(dir.path(), &entries, TapeOptions::default()).await;
    let junk_api = answering(500, "{\"title\": \"boom\"", None).await;
    let elsewhere = answering(302, "", Some("http://127.0.0.1:1/elsewhere")).await;
    let (mut junk, mut redirect) = (
        lib.location_config(TAPE_PREFIX),
        lib.location_config(TAPE_PREFIX),
    );
    junk.api_url = Some(format!("{junk_api}/api/v1"));
    redirect.read_url = Some(elsewhere);
    let app = app_with(&lib, Options::default(), move |cfg| {
        for (id, mut location) in [("junk", junk.clone()), ("redirected", redirect.clone())] {
            location.preference = Some(1);
            cfg.repository
                .locations
                .insert(id.into(), LocationConfig::Tape(location));
        }
        if let Some(LocationConfig::Tape(hpss)) = cfg.repository.locations.get_mut("hpss") {
            hpss.preference = Some(1);
        }
    })
    .await;
    for aip in [&a, &b, &c] {
        aip.put(&app).await;
    }
    let token = app.client_token();
    for (archive, said) in [
        (garbage, "did not answer"),
        (resized, "bytes"),
        (redirected, "redirected outside"),
    ] {
        let (id, _) = app.create_until(&token, archive, "DISSEMINATED").await;
        app.assert_every_link_delivers(&token, &id).await;
        let events = app.api(&token).events(&id).await;
        assert!(
            has_event(&events, EventType::Retrieval, Outcome::Failure, said),
            "{archive}: the tape copy's refusal is on the record ({said}): {events:?}"
        );
        assert!(
            has_event(&events, EventType::FixityCheck, Outcome::Success, ""),
            "{archive}: verified from disk"
        );
    }
    assert!(
        lib.pins().await == 0 && lib.requests().await.is_empty(),
        "{}",
        lib.state().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_recalls_in_bulk_and_its_items_transfer_as_their_files_come_online() {
    let dir = tempdir().unwrap();
    // Six AIPs on three volumes, the batch alternating volumes.
    let ids: Vec<String> = (0..6)
        .map(|n| format!("019e404e-7a9e-7000-8000-0000000001{n:02}"))
        .collect();
    let volume = |n: usize| format!("V00{}", n % 3 + 1);
    let aips: Vec<TapeAip> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let file = AipFile {
                path: "primary.tar",
                bytes: bytes(100 + n as u64, 256 * 1024),
                copies: vec![("hpss", None)],
            };
            tape_aip(id, &[file], &volume(n), n as u64)
        })
        .collect();
    let entries: Vec<TapeEntry> = aips.iter().flat_map(TapeAip::entries).collect();
    let lib = TapeLibrary::start(
        dir.path(),
        &entries,
        TapeOptions {
            drives: 1,
            mount_ms: 1_000,
            read_bytes_per_sec: 1024 * 1024,
            ..Default::default()
        },
    )
    .await;
    let app = app_with(&lib, Options::default(), |_| {}).await;
    for aip in &aips {
        aip.put(&app).await;
    }
    let token = app.client_token();
    let base = app.api_url.clone();
    let res = crate::batches::post_batch(&app, &base, &token, json!({ "archiveIds": ids })).await;
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    let batch = created["batchId"].as_str().unwrap().to_owned();
    let items: Vec<String> = created["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["disseminationId"].as_str().unwrap().to_owned())
        .collect();
    // Each item's turn as its file comes online: when it was first seen
    // delivered, in order.
    let mut delivered: Vec<usize> = Vec::new();
    let mut staging_seen = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while delivered.len() < items.len() {
        for (n, id) in items.iter().enumerate() {
            if delivered.contains(&n) {
                continue;
            }
            let view = app.api(&token).view(id).await;
            if view.status == DisseminationStatus::Staging {
                let p = view.progress.expect("a batch item STAGING shows progress");
                assert_eq!((p.phase, p.files_total), (Phase::Staging, Some(1)));
                staging_seen = true;
            }
            if view.status == DisseminationStatus::Disseminated {
                delivered.push(n);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivered so far: {delivered:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "items delivered in the order {delivered:?} (batch order 0..6, volumes {:?})",
        (0..6).map(volume).collect::<Vec<_>>()
    );
    assert!(
        staging_seen,
        "items were STAGING while their files were recalled"
    );
    // Volume by volume (the first volume's items, #0 and #3, before the
    // batch's #1 and #2): not the batch's order.
    let rank = |n: usize| delivered.iter().position(|d| *d == n).unwrap();
    assert!(rank(3) < rank(1) && rank(3) < rank(2), "{delivered:?}");
    assert!(rank(0).max(rank(3)) < rank(2).min(rank(5)), "{delivered:?}");
    crate::batches::until_completed(&app, &base, &token, &batch, Duration::from_secs(60)).await;
    // One request, one mount per volume; nothing left pinned or requested.
    assert_eq!(lib.stage_requests_seen(), 1, "{}", lib.log_text());
    assert_eq!(lib.mounts().await, 3, "{}", lib.state().await);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(lib.pins().await == 0 && lib.requests().await.is_empty()) {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            lib.state().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in &items {
        app.assert_every_link_delivers(&token, id).await;
    }
}

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
    let quick_lib = TapeLibrary::start(
        quick_dir.path(),
        &quick.iter().flat_map(TapeAip::entries).collect::<Vec<_>>(),
        TapeOptions {
            mount_ms: 300,
            ..Default::default()
        },
    )
    .await;
    let slow_lib = TapeLibrary::start(
        slow_dir.path(),
        &slow.iter().flat_map(TapeAip::entries).collect::<Vec<_>>(),
        TapeOptions {
            mount_ms: 600_000,
            ..Default::default()
        },
    )
    .await;
    let slow_location = slow_lib.location_config(TAPE_PREFIX);
    let app = app_with(
        &quick_lib,
        Options {
            retention_secs: 2,
            ..Default::default()
        },
        move |cfg| {
            cfg.timings.stage_timeout_ms = 5_000;
            cfg.repository.locations.insert(
                "hpss-slow".into(),
                LocationConfig::Tape(slow_location.clone()),
            );
        },
    )
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

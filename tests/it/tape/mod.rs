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

mod batch;
mod outages;
mod record;

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
pub(super) fn bytes(seed: u64, n: usize) -> Vec<u8> {
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

pub(super) fn tape_only(
    archive_id: &str,
    files: &[(&'static str, Vec<u8>)],
    volume: &str,
) -> TapeAip {
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

/// A library holding one tape-only AIP (`files` on volume V001, recalled
/// after a mount of `mount_ms`) and the service reading it, the AIP in its
/// catalog; the folder holds the library's files while the test runs.
pub(super) async fn on_tape(
    archive_id: &str,
    files: &[(&'static str, Vec<u8>)],
    mount_ms: u64,
    opts: Options,
    more: impl Fn(&mut Config) + Send + Sync + 'static,
) -> (crate::support::TempDir, TapeLibrary, TestApp) {
    let dir = tempdir().unwrap();
    let aip = tape_only(archive_id, files, "V001");
    let lib = TapeLibrary::mounting_in(dir.path(), &aip.entries(), mount_ms).await;
    let app = app_with(&lib, opts, more).await;
    aip.put(&app).await;
    (dir, lib, app)
}

/// The service with `quick` as its `hpss` location and `slow` as
/// `hpss-slow` (and `more` applied).
pub(super) async fn app_with_slow(
    quick: &TapeLibrary,
    slow: &TapeLibrary,
    opts: Options,
    more: impl Fn(&mut Config) + Send + Sync + 'static,
) -> TestApp {
    let slow = LocationConfig::Tape(slow.location_config(TAPE_PREFIX));
    app_with(quick, opts, move |cfg| {
        let slow = slow.clone();
        cfg.repository.locations.insert("hpss-slow".into(), slow);
        more(cfg);
    })
    .await
}

/// The service with `lib` as its `hpss` location (and `more` applied).
pub(super) async fn app_with(
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

pub(super) fn has_event(
    events: &[DisseminationEvent],
    kind: EventType,
    outcome: Outcome,
    text: &str,
) -> bool {
    events
        .iter()
        .any(|e| e.event_type == kind && e.outcome == outcome && e.detail.contains(text))
}

/// Waits (bounded) until the library holds a stage request.
pub(super) async fn until_requested(lib: &TapeLibrary) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lib.requests().await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no stage request");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tape_only_aip_is_staged_read_verified_and_released() {
    let id_aip = "019e404e-7a9e-7000-8000-000000000001";
    // Two files over the local limit (each in an activity of its own, so
    // DOWNLOADING is seen), recalled in one request.
    let (_dir, lib, app) = on_tape(
        id_aip,
        &[
            ("v1/primary.tar", bytes(1, 1536 * 1024)),
            ("v2/primary.tar", bytes(2, 1536 * 1024)),
        ],
        1_500,
        Options {
            max_read_bytes_per_sec: Some(1024 * 1024),
            ..Default::default()
        },
        |_| {},
    )
    .await;
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
    let archive = "019e404e-7a9e-7000-8000-000000000021";
    let (_dir, lib, app) = on_tape(
        archive,
        &[("primary.tar", bytes(21, 64 * 1024))],
        120_000,
        Options::default(),
        |_| {},
    )
    .await;
    let token = app.client_token();
    let (id, _) = app.create_until(&token, archive, "STAGING").await;
    // The request is at the library, its recall queued or mounting.
    until_requested(&lib).await;
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
    let archive = "019e404e-7a9e-7000-8000-000000000031";
    let (_dir, lib, app) = on_tape(
        archive,
        &[("primary.tar", bytes(31, 64 * 1024))],
        120_000,
        Options::default(),
        |cfg| {
            cfg.timings.stage_timeout_ms = 3_000;
        },
    )
    .await;
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

//! A batch's tape files recalled in bulk: items transfer in the order their
//! files come online, one request, one mount per volume.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{app_with, bytes};
use crate::support::{
    tape_aip, tempdir, AipFile, Options, TapeAip, TapeEntry, TapeLibrary, TapeOptions,
};
use model::DisseminationStatus;
use serde_json::json;
use std::time::Duration;
use workflows::Phase;

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

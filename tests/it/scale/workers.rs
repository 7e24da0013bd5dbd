//! Work shared by worker processes behind the proxy: twenty AIPs delivered
//! once each by both workers, and a 200-item batch that survives a killed
//! worker and a restarted replica.

use super::{activity_identities, assert_spread};
use crate::support::{
    start_replicas, start_workers, verify_with_standardwebhooks, worker_identity, Haproxy, Options,
    Received, TestApp,
};
use model::DisseminationStatus as Status;
use serde_json::json;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_aips_through_haproxy_are_delivered_once_each_by_both_workers() {
    let app = TestApp::start_with(Options {
        // Two slots per band and worker, and transfers that take a moment:
        // one worker alone cannot take all twenty.
        band_slots: Some(2),
        max_read_bytes_per_sec: Some(1024 * 1024),
        ..Options::without_worker()
    })
    .await;
    let _workers = start_workers(&app, 2);
    let (_replicas, urls) = start_replicas(&app, 2).await;
    let proxy = Haproxy::start(app.dir.path(), &urls).await;
    let api = app.api_at(&proxy.url, &app.client_token());
    let aips = crate::batches::small_aips(&app, "5ca2", 20).await;

    let before = proxy.responses_by_server().await;
    let started = Instant::now();
    let caller = &api;
    let posts = aips.iter().map(|aip| async move {
        let created = caller
            .create(json!({"archiveId": aip, "priority": 30}))
            .await;
        (created.dissemination_id, aip.clone())
    });
    // disseminationId -> archiveId
    let ids: BTreeMap<String, String> =
        futures::future::join_all(posts).await.into_iter().collect();
    assert_eq!(ids.len(), 20, "twenty distinct disseminations");
    assert_spread(&proxy, &before).await;

    // All delivered, each file byte for byte what the catalog describes.
    for (id, aip) in &ids {
        let done = api.until_final(id, Duration::from_secs(180)).await;
        assert_eq!(done.status, Status::Disseminated, "{done:?}");
        let file = &done.files[0];
        let expected = app.stored_sha256(aip, None);
        assert_eq!(file.checksum, expected);
        assert_eq!(app.download_sha256(&file.download_url).await, expected);
        assert_eq!(app.delivered_keys(id).await.len(), 1, "{id}: one object");
    }
    println!(
        "20 disseminations over 2 workers and 2 replicas: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // One verified webhook per dissemination, and no second one.
    app.wait_webhooks(20, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // a duplicate would be on its way
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for (hook, r) in app.hooks() {
        assert_eq!(hook.kind, "dissemination.delivered", "{hook:?}");
        verify_with_standardwebhooks(&app.webhook_secret, &r).expect("signature verifies");
        *per_id
            .entry(hook.data.dissemination_id.unwrap())
            .or_default() += 1;
    }
    assert_eq!(
        per_id.keys().collect::<Vec<_>>(),
        ids.keys().collect::<Vec<_>>()
    );
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");

    // Both workers did part of the work, and nobody else did any.
    let mut transfers: BTreeMap<String, usize> = BTreeMap::new();
    let mut all = BTreeSet::new();
    for id in ids.keys() {
        let identities = activity_identities(&app, id);
        assert!(!identities.is_empty(), "{id}: no activity started");
        for i in &identities {
            *transfers.entry(i.clone()).or_default() += 1;
        }
        all.extend(identities);
    }
    let expected: BTreeSet<String> = [worker_identity(1), worker_identity(2)].into();
    assert_eq!(all, expected, "activities per worker: {transfers:?}");
    println!("disseminations each worker ran activities of: {transfers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_item_batch_survives_a_killed_worker_and_a_restarted_replica() {
    let app = TestApp::start_with(Options {
        configure: Some(std::sync::Arc::new(|cfg| cfg.api.batch_poll_ms = 500)),
        ..Options::without_worker()
    })
    .await;
    let smalls = crate::batches::small_aips(&app, "5ca1", 200).await;
    let mut workers = start_workers(&app, 3);
    let (mut replicas, urls) = start_replicas(&app, 2).await;
    let proxy = Haproxy::start(app.dir.path(), &urls).await;
    let api = app.api_at(&proxy.url, &app.client_token());

    let posted = std::time::Instant::now();
    let created = api.create_batch(json!({"archiveIds": smalls})).await;
    println!(
        "a 200-item batch created in {:.1} s",
        posted.elapsed().as_secs_f64()
    );
    let batch_id = created.id();
    let owned: Vec<String> = created
        .items
        .iter()
        .map(|i| {
            let id = i.dissemination_id.clone();
            id.unwrap_or_else(|| panic!("an item not started: {i:?}"))
        })
        .collect();
    assert_eq!(owned.len(), 200);
    assert_eq!(created.batch.counts.in_progress, 200);

    // Under way: then one of three workers killed hard, one of two
    // replicas stopped and started again on its port.
    api.batch(&batch_id)
        .until(Duration::from_secs(120), |page| {
            page.batch.counts.disseminated >= 40
        })
        .await;
    workers.remove(0).kill_hard();
    replicas.remove(1).kill_hard();
    let mut cfg = (*app.cfg).clone();
    cfg.api.listen = urls[1].trim_start_matches("http://").to_owned();
    cfg.api.metrics_listen = format!("127.0.0.1:{}", crate::support::free_ports(1)[0]);
    replicas.push(crate::support::spawn_api_process(&cfg, "api-replica-2-restarted").await);

    let (done, _) = api
        .until_batch_completed(&batch_id, Duration::from_secs(240))
        .await;
    let c = &done.batch.counts;
    assert_eq!(
        (c.total, c.disseminated, c.failed),
        (200, 200, 0),
        "{done:?}"
    );

    // Each item delivered exactly once: one webhook id each, the bytes the
    // catalog's; the batch told once.
    let batch_done = |kind: &str| kind == "dissemination-batch.completed";
    let hooks = app
        .hooks_until(
            Duration::from_secs(60),
            "every item's webhook and the batch's",
            |hooks| {
                hooks.iter().any(|(h, _)| batch_done(&h.kind))
                    && owned
                        .iter()
                        .all(|id| hooks.iter().any(|(h, _)| h.delivered(id)))
            },
        )
        .await;
    let batch_hooks: Vec<&Received> = hooks
        .iter()
        .filter(|(h, _)| batch_done(&h.kind))
        .map(|(_, r)| r)
        .collect();
    let batch_ids: BTreeSet<String> = batch_hooks.iter().map(|r| r.webhook_id()).collect();
    assert_eq!(batch_ids.len(), 1, "the batch webhook arrives once");
    verify_with_standardwebhooks(&app.webhook_secret, batch_hooks[0]).expect("signature verifies");
    let counts = batch_hooks[0].hook().data.counts.unwrap();
    assert_eq!(counts.disseminated, 200);
    for (archive_id, id) in smalls.iter().zip(&owned) {
        app.assert_delivered_once(&hooks, archive_id, id).await;
    }
}

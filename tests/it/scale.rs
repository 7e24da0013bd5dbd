//! Scale-out as a deployment: two worker processes and two API replicas on
//! one Temporal and one S3, haproxy round-robin in front. Every replica
//! answers for what another created (the state is in Temporal, not in a
//! replica), work is shared by both workers, each dissemination is
//! delivered once, and the duplicate check holds across replicas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    start_replicas, start_workers, verify_with_standardwebhooks, worker_identity, Haproxy, Options,
    TestApp,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};
use worker::demo;

const FINAL: [&str; 4] = ["DISSEMINATED", "FAILED", "REJECTED", "CANCELLED"];

/// One base URL (a replica or the proxy) with the client's token.
struct Api<'a> {
    app: &'a TestApp,
    base: &'a str,
    token: &'a str,
}

impl Api<'_> {
    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.bearer_auth(self.token).send().await.unwrap();
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn post(&self, archive_id: &str) -> (u16, Value) {
        let req = self
            .app
            .http
            .post(format!("{}/v1/disseminations", self.base))
            .json(&json!({"archiveId": archive_id, "priority": 30}));
        self.send(req).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let req = self
            .app
            .http
            .get(format!("{}/v1/disseminations{path}", self.base));
        self.send(req).await
    }

    async fn delete(&self, id: &str) -> (u16, Value) {
        let req = self
            .app
            .http
            .delete(format!("{}/v1/disseminations/{id}", self.base));
        self.send(req).await
    }

    async fn links(&self, id: &str) -> (u16, Value) {
        let req = self
            .app
            .http
            .post(format!("{}/v1/disseminations/{id}/links", self.base));
        self.send(req).await
    }

    /// GET …/{id} until `done` holds (bounded); the last body.
    async fn poll(&self, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.get(&format!("/{id}")).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{} timed out on {id}: {status} {body}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Responses each replica gave through the proxy since `before`.
async fn answered_since(proxy: &Haproxy, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    proxy
        .responses_by_server()
        .await
        .into_iter()
        .map(|(server, n)| {
            let earlier = before.get(&server).copied().unwrap_or(0);
            (server, n - earlier)
        })
        .collect()
}

fn id_of(body: &Value) -> String {
    body["disseminationId"].as_str().unwrap().to_owned()
}

async fn sha256_of(url: &str) -> String {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    hex::encode(Sha256::digest(res.bytes().await.unwrap()))
}

fn catalog_sha256(app: &TestApp, archive_id: &str) -> String {
    let aip = app.catalog_doc(archive_id);
    aip.repository_files[0]
        .fixity(model::catalog::DigestAlgorithm::Sha256)
        .unwrap()
        .digest
        .clone()
}

/// Every worker identity that started an activity of workflow `id`.
fn activity_identities(app: &TestApp, id: &str) -> BTreeSet<String> {
    let out = app.temporal_cli(&["workflow", "show", "--workflow-id", id, "--output", "json"]);
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["activityTaskStartedEventAttributes"]["identity"].as_str())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_answers_for_what_another_created() {
    let app = TestApp::start_with(Options {
        with_worker: false,
        // The large AIP below is read slowly enough to be cancelled midway.
        max_read_bytes_per_sec: Some(8 * 1024 * 1024),
        ..Default::default()
    })
    .await;
    let _workers = start_workers(&app, 2);
    let (_replicas, urls) = start_replicas(&app, 2).await;
    let token = app.client_token();
    let a = Api {
        app: &app,
        base: &urls[0],
        token: &token,
    };
    let b = Api {
        app: &app,
        base: &urls[1],
        token: &token,
    };

    // Created on A, read on B straight away: the workflow is the record.
    let (status, created) = a.post(demo::DEMO_SINGLE).await;
    assert_eq!(status, 201, "{created}");
    let id = id_of(&created);
    let (status, seen) = b.get(&format!("/{id}")).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["disseminationId"], id.as_str());
    assert_eq!(seen["archiveId"], demo::DEMO_SINGLE);

    let done_a = a
        .poll(&id, Duration::from_secs(90), |v| {
            FINAL.contains(&v["status"].as_str().unwrap_or_default())
        })
        .await;
    assert_eq!(done_a["status"], "DISSEMINATED", "{done_a}");
    let (_, done_b) = b.get(&format!("/{id}")).await;
    assert_eq!(done_b, done_a, "B answers exactly what A answers");
    assert_eq!(
        sha256_of(done_b["files"][0]["downloadURL"].as_str().unwrap()).await,
        catalog_sha256(&app, demo::DEMO_SINGLE)
    );

    // Links regenerated on B are what A shows next.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new signing second
    let (status, renewed) = b.links(&id).await;
    assert_eq!(status, 200, "{renewed}");
    assert_ne!(renewed["files"], done_a["files"], "new links");
    let (_, after_a) = a.get(&format!("/{id}")).await;
    assert_eq!(after_a["files"], renewed["files"]);
    assert_eq!(
        sha256_of(after_a["files"][0]["downloadURL"].as_str().unwrap()).await,
        catalog_sha256(&app, demo::DEMO_SINGLE)
    );

    // The audit trail is the same on both, link regeneration included.
    let (sa, events_a) = a.get(&format!("/{id}/events")).await;
    let (sb, events_b) = b.get(&format!("/{id}/events")).await;
    assert_eq!((sa, sb), (200, 200));
    assert_eq!(events_a, events_b);
    let types: Vec<&str> = events_a["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"link regeneration"), "{types:?}");

    // B's list shows what A created (visibility is eventually consistent).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, list) = b.get("?status=DISSEMINATED").await;
        assert_eq!(status, 200, "{list}");
        let ids: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["disseminationId"].as_str().unwrap())
            .collect();
        if ids == [id.as_str()] {
            break;
        }
        assert!(Instant::now() < deadline, "B lists {ids:?}, not {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A large AIP created on A, cancelled on B while it downloads.
    let large = "019e404e-5ca1-7000-8000-0000000000ff";
    demo::seed_large(&app.cfg, large, 48).await.unwrap();
    let (status, created) = a.post(large).await;
    assert_eq!(status, 201, "{created}");
    let large_id = id_of(&created);
    b.poll(&large_id, Duration::from_secs(60), |v| {
        v["progress"]["bytesDone"].as_u64().unwrap_or(0) >= 8 * 1024 * 1024
    })
    .await;
    let (status, body) = b.delete(&large_id).await;
    assert_eq!(status, 202, "{body}");
    let cancelled_a = a
        .poll(&large_id, Duration::from_secs(60), |v| {
            FINAL.contains(&v["status"].as_str().unwrap_or_default())
        })
        .await;
    assert_eq!(cancelled_a["status"], "CANCELLED", "{cancelled_a}");
    assert_eq!(cancelled_a["reasons"][0]["code"], "CANCELLED");
    let (_, cancelled_b) = b.get(&format!("/{large_id}")).await;
    assert_eq!(cancelled_b, cancelled_a);
    // Final on both: a second cancel through A is refused like through B.
    let (sa, again_a) = a.delete(&large_id).await;
    assert_eq!(sa, 409, "{again_a}");
    assert_eq!(again_a["error"]["code"], "DISSEMINATION_ENDED");
    let (_, ev_a) = a.get(&format!("/{large_id}/events")).await;
    let (_, ev_b) = b.get(&format!("/{large_id}/events")).await;
    assert_eq!(ev_a, ev_b);
    assert!(app.delivered_keys(&large_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_aips_through_haproxy_are_delivered_once_each_by_both_workers() {
    let app = TestApp::start_with(Options {
        with_worker: false,
        // Two slots per band and worker, and transfers that take a moment:
        // one worker alone cannot take all twenty.
        band_slots: Some(2),
        max_read_bytes_per_sec: Some(1024 * 1024),
        ..Default::default()
    })
    .await;
    let _workers = start_workers(&app, 2);
    let (_replicas, urls) = start_replicas(&app, 2).await;
    let proxy = Haproxy::start(app.dir.path(), &urls).await;
    let token = app.client_token();
    let api = Api {
        app: &app,
        base: &proxy.url,
        token: &token,
    };
    let aips = crate::batches::small_aips(&app, "5ca2", 20).await;

    let before = proxy.responses_by_server().await;
    let started = Instant::now();
    let posts = futures::future::join_all(aips.iter().map(|aip| api.post(aip))).await;
    let mut ids: BTreeMap<String, String> = BTreeMap::new(); // disseminationId -> archiveId
    for ((status, body), aip) in posts.iter().zip(&aips) {
        assert_eq!(*status, 201, "{aip}: {body}");
        ids.insert(id_of(body), aip.clone());
    }
    assert_eq!(ids.len(), 20, "twenty distinct disseminations");
    let by_server = answered_since(&proxy, &before).await;
    assert_eq!(by_server.len(), 2, "{by_server:?}");
    assert_eq!(by_server.values().sum::<u64>(), 20, "{by_server:?}");
    assert!(
        by_server.values().all(|n| *n >= 5),
        "round-robin spread the POSTs over both replicas: {by_server:?}"
    );

    // All delivered, each file byte for byte what the catalog describes.
    for (id, aip) in &ids {
        let done = api
            .poll(id, Duration::from_secs(180), |v| {
                FINAL.contains(&v["status"].as_str().unwrap_or_default())
            })
            .await;
        assert_eq!(done["status"], "DISSEMINATED", "{done}");
        let file = &done["files"][0];
        let expected = catalog_sha256(&app, aip);
        assert_eq!(file["checksum"], expected.as_str());
        assert_eq!(
            sha256_of(file["downloadURL"].as_str().unwrap()).await,
            expected
        );
        assert_eq!(app.delivered_keys(id).await.len(), 1, "{id}: one object");
    }
    println!(
        "20 disseminations over 2 workers and 2 replicas: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // One verified webhook per dissemination, and no second one.
    app.wait_webhooks(20, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // a duplicate would be on its way
    let hooks = app.receiver.all();
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for r in &hooks {
        let msg: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(msg["type"], "dissemination.delivered", "{msg}");
        verify_with_standardwebhooks(&app.webhook_secret, r).expect("signature verifies");
        *per_id
            .entry(msg["data"]["disseminationId"].as_str().unwrap().to_owned())
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
async fn twenty_parallel_posts_over_two_replicas_create_exactly_one_dissemination() {
    // No worker: the first dissemination stays in progress for the whole test.
    let app = TestApp::start_with(Options {
        with_worker: false,
        ..Default::default()
    })
    .await;
    let (_replicas, urls) = start_replicas(&app, 2).await;
    let proxy = Haproxy::start(app.dir.path(), &urls).await;
    let token = app.client_token();
    let api = Api {
        app: &app,
        base: &proxy.url,
        token: &token,
    };
    let before = proxy.responses_by_server().await;
    let results = futures::future::join_all((0..20).map(|_| api.post(demo::DEMO_TWO_FILES))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    let created: Vec<&Value> = results
        .iter()
        .filter(|r| r.0 == 201)
        .map(|r| &r.1)
        .collect();
    assert_eq!(created.len(), 1, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    let id = id_of(created[0]);
    for (status, body) in results.iter().filter(|r| r.0 == 409) {
        assert_eq!(*status, 409);
        assert_eq!(body["error"]["code"], "DISSEMINATION_IN_PROGRESS", "{body}");
        assert_eq!(body["disseminationId"], id.as_str(), "{body}");
    }
    // Both replicas answered some of them.
    let by_server = answered_since(&proxy, &before).await;
    assert_eq!(by_server.len(), 2, "{by_server:?}");
    assert_eq!(by_server.values().sum::<u64>(), 20, "{by_server:?}");
    assert!(by_server.values().all(|n| *n >= 5), "{by_server:?}");

    // Exactly one dissemination workflow exists for the AIP.
    let client = app.stack_client().await;
    let query = format!(
        "WorkflowType = 'DisseminationWorkflow' AND ArchiveId = '{}'",
        demo::DEMO_TWO_FILES
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let count = loop {
        let count = client
            .count_workflows(query.clone(), Default::default())
            .await
            .unwrap()
            .count();
        if count >= 1 || Instant::now() > deadline {
            break count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(count, 1);
    // Either replica reads it.
    for base in &urls {
        let replica = Api {
            app: &app,
            base,
            token: &token,
        };
        let (status, body) = replica.get(&format!("/{id}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["archiveId"], demo::DEMO_TWO_FILES);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_item_batch_survives_a_killed_worker_and_a_restarted_replica() {
    let app = TestApp::start_with(Options {
        with_worker: false,
        configure: Some(std::sync::Arc::new(|cfg| cfg.api.batch_poll_ms = 500)),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let smalls = crate::batches::small_aips(&app, "5ca1", 200).await;
    let mut workers = start_workers(&app, 3);
    let (mut replicas, urls) = start_replicas(&app, 2).await;
    let proxy = Haproxy::start(app.dir.path(), &urls).await;

    let res =
        crate::batches::post_batch(&app, &proxy.url, &token, json!({"archiveIds": smalls})).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let batch_id = created["batchId"].as_str().unwrap().to_owned();
    let owned: Vec<String> = created["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["disseminationId"]
                .as_str()
                .unwrap_or_else(|| panic!("an item not started: {i}"))
                .to_owned()
        })
        .collect();
    assert_eq!(owned.len(), 200);
    assert_eq!(created["counts"]["inProgress"], 200);

    // Under way: then one of three workers killed hard, one of two
    // replicas stopped and started again on its port.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let res = crate::batches::get_batch(&app, &proxy.url, &token, &batch_id, None).await;
        let body: Value = res.json().await.unwrap();
        if body["counts"]["disseminated"].as_u64().unwrap_or(0) >= 40 {
            break;
        }
        assert!(Instant::now() < deadline, "the batch does not move: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    workers.remove(0).kill_hard();
    replicas.remove(1).kill_hard();
    let mut cfg = (*app.cfg).clone();
    cfg.api.listen = urls[1].trim_start_matches("http://").to_owned();
    cfg.api.metrics_listen = format!("127.0.0.1:{}", crate::support::free_ports(1)[0]);
    replicas.push(crate::support::spawn_api_process(&cfg, "api-replica-2-restarted").await);

    let (done, _) = crate::batches::until_completed(
        &app,
        &proxy.url,
        &token,
        &batch_id,
        Duration::from_secs(240),
    )
    .await;
    let c = &done["counts"];
    assert_eq!(
        (
            c["total"].as_u64(),
            c["disseminated"].as_u64(),
            c["failed"].as_u64()
        ),
        (Some(200), Some(200), Some(0)),
        "{done}"
    );

    // Each item delivered exactly once: one webhook id each, the bytes the
    // catalog's; the batch told once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let hooks = loop {
        let hooks = crate::batches::webhooks(&app);
        let items = hooks
            .iter()
            .filter(|(b, _)| b["type"] == "dissemination.delivered")
            .map(|(b, _)| b["data"]["disseminationId"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>();
        let batch = hooks
            .iter()
            .any(|(b, _)| b["type"] == "dissemination-batch.completed");
        if items.len() == 200 && batch {
            break hooks;
        }
        assert!(
            Instant::now() < deadline,
            "{} item webhooks, batch webhook: {batch}",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let batch_hooks: Vec<_> = hooks
        .iter()
        .filter(|(b, _)| b["type"] == "dissemination-batch.completed")
        .collect();
    let batch_ids: BTreeSet<_> = batch_hooks
        .iter()
        .map(|(_, r)| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(batch_ids.len(), 1, "the batch webhook arrives once");
    verify_with_standardwebhooks(&app.webhook_secret, &batch_hooks[0].1)
        .expect("signature verifies");
    assert_eq!(batch_hooks[0].0["data"]["counts"]["disseminated"], 200);
    for (archive_id, id) in smalls.iter().zip(&owned) {
        let mine: Vec<_> = hooks
            .iter()
            .filter(|(b, _)| b["data"]["disseminationId"] == id.as_str())
            .collect();
        let message_ids: BTreeSet<_> = mine
            .iter()
            .map(|(_, r)| r.headers["webhook-id"].to_str().unwrap().to_owned())
            .collect();
        assert_eq!(message_ids.len(), 1, "one webhook id for {id}");
        let url = mine[0].0["data"]["files"][0]["downloadURL"]
            .as_str()
            .unwrap();
        let stored = app.catalog_doc(archive_id).repository_files[0]
            .fixity(model::catalog::DigestAlgorithm::Sha256)
            .unwrap()
            .digest
            .clone();
        assert_eq!(sha256_of(url).await, stored, "{id}");
        assert_eq!(app.delivered_keys(id).await.len(), 1, "one object for {id}");
    }
}

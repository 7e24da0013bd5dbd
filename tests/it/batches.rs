//! Batches on the real stack: items checked one by one as single POSTs
//! are, started at once and sharing the workers fairly with other clients'
//! requests, counted as they end, one `dissemination-batch.completed`
//! webhook verified with `standardwebhooks`; cancel; isolation between
//! clients; read with no worker running.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{verify_with_standardwebhooks, Options, TestApp, OTHER_CLIENT};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};
use worker::demo;

/// `n` small AIPs (one TAR each) in the demo contract; their archiveIds.
pub(crate) async fn small_aips(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    demo::seed_small(&app.cfg, prefix, n, 16).await.unwrap()
}

pub(crate) async fn post_batch(
    app: &TestApp,
    base: &str,
    token: &str,
    body: Value,
) -> reqwest::Response {
    app.http
        .post(format!("{base}/v1/dissemination-batches"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn get_batch(
    app: &TestApp,
    base: &str,
    token: &str,
    id: &str,
    cursor: Option<&str>,
) -> reqwest::Response {
    let mut url = format!("{base}/v1/dissemination-batches/{id}?pageSize=100");
    if let Some(c) = cursor {
        url.push_str(&format!("&cursor={c}"));
    }
    app.http.get(url).bearer_auth(token).send().await.unwrap()
}

pub(crate) async fn delete_batch(
    app: &TestApp,
    base: &str,
    token: &str,
    id: &str,
) -> reqwest::Response {
    app.http
        .delete(format!("{base}/v1/dissemination-batches/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Polls the batch until COMPLETED (bounded); every count seen on the way.
pub(crate) async fn until_completed(
    app: &TestApp,
    base: &str,
    token: &str,
    id: &str,
    timeout: Duration,
) -> (Value, Vec<Value>) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let res = get_batch(app, base, token, id, None).await;
        if res.status() == 200 {
            let body: Value = res.json().await.unwrap();
            seen.push(body["counts"].clone());
            if body["status"] == "COMPLETED" {
                return (body, seen);
            }
        } else {
            // Temporal or (behind a proxy) a replica restarting.
            assert!(
                [502, 503].contains(&res.status().as_u16()),
                "GET batch: {}",
                res.status()
            );
        }
        assert!(
            Instant::now() < deadline,
            "batch {id} not completed: {:?}",
            seen.last()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every item of the batch, all pages.
pub(crate) async fn all_items(app: &TestApp, base: &str, token: &str, id: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let res = get_batch(app, base, token, id, cursor.as_deref()).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        items.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

/// Webhooks received, by type and by the id they are about.
pub(crate) fn webhooks(app: &TestApp) -> Vec<(Value, crate::support::Received)> {
    app.receiver
        .all()
        .into_iter()
        .map(|r| (serde_json::from_slice::<Value>(&r.body).unwrap(), r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_delivers_the_rest_gradually_counts_right_and_tells_once() {
    // Two small AIPs move at a time, each in about half a second: the
    // batch counts its items several times on the way.
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(40 * 1024),
        configure: Some(Arc::new(|cfg| {
            // Short histories: the batch continues as new several times.
            cfg.api.batch_continue_after_events = 6;
            cfg.api.batch_poll_ms = 200;
            cfg.worker.local_slots = 2;
        })),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let base = app.api_url.clone();
    let smalls = small_aips(&app, "ba7c", 12).await;
    // An AIP already in progress for this client (large, throttled).
    let busy = "019e404e-ba7c-7000-8000-00000000ffff";
    demo::seed_large(&app.cfg, busy, 32).await.unwrap();
    let busy_id = app.create(&token, busy, 50).await;
    let unknown = "019e404e-ba7c-7000-8000-00000000eeee";
    let mut ids: Vec<String> = smalls.clone();
    ids.extend([
        unknown.to_owned(),
        demo::DEMO_OTHER_CONTRACT.to_owned(),
        demo::DEMO_NOT_PRESERVED.to_owned(),
        busy.to_owned(),
    ]);
    let res = post_batch(
        &app,
        &base,
        &token,
        json!({"archiveIds": ids, "priority": 70}),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/v1/dissemination-batches/"));
    let created: Value = res.json().await.unwrap();
    let batch_id = created["batchId"].as_str().unwrap().to_owned();
    assert_eq!(batch_id.len(), 22);
    assert!(created["dateCreated"].is_string());
    let items = created["items"].as_array().unwrap();
    assert_eq!(items.len(), ids.len());
    let by_archive: BTreeMap<&str, &Value> = items
        .iter()
        .map(|i| (i["archiveId"].as_str().unwrap(), i))
        .collect();
    assert_eq!(by_archive[unknown]["error"]["code"], "ARCHIVE_NOT_FOUND");
    assert_eq!(
        by_archive[demo::DEMO_OTHER_CONTRACT]["error"]["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        by_archive[demo::DEMO_NOT_PRESERVED]["error"]["code"],
        "ARCHIVE_NOT_PRESERVED"
    );
    assert_eq!(by_archive[busy]["existing"], true);
    assert_eq!(by_archive[busy]["disseminationId"], busy_id.as_str());
    let owned: Vec<String> = smalls
        .iter()
        .map(|a| {
            by_archive[a.as_str()]["disseminationId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(created["counts"]["inProgress"], 12);
    assert_eq!(created["counts"]["waiting"], 0);
    assert_eq!(created["counts"]["refused"], 3);
    assert_eq!(created["counts"]["existing"], 1);

    // Each item is an ordinary dissemination, readable at once.
    let first = app.get(&token, &owned[0]).await;
    assert_eq!(first.status(), 200);

    let (done, seen) =
        until_completed(&app, &base, &token, &batch_id, Duration::from_secs(120)).await;
    assert!(
        seen.iter()
            .any(|c| c["disseminated"].as_u64().unwrap() < 12),
        "the counts moved as the items ended: {seen:?}"
    );
    let c = &done["counts"];
    assert_eq!(
        (
            c["total"].as_u64(),
            c["disseminated"].as_u64(),
            c["existing"].as_u64(),
            c["refused"].as_u64()
        ),
        (Some(16), Some(12), Some(1), Some(3)),
        "{done}"
    );
    let all = all_items(&app, &base, &token, &batch_id).await;
    assert_eq!(all.len(), 16);
    // It continued as new on the way, and its counts survived.
    let runs = app.temporal_cli(&[
        "workflow",
        "count",
        "--query",
        &format!("WorkflowId = '{batch_id}'"),
    ]);
    let runs = String::from_utf8_lossy(&runs.stdout).to_string();
    let runs: u32 = runs
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .next()
        .unwrap_or(0);
    assert!(runs > 1, "the batch continued as new ({runs} run(s))");
    for id in &owned {
        let item = all
            .iter()
            .find(|i| i["disseminationId"] == id.as_str())
            .unwrap();
        assert_eq!(item["status"], "DISSEMINATED", "{item}");
    }

    // One delivered webhook per item, the bytes as the catalog says, and
    // the batch's webhook once, with the counts.
    let deadline = Instant::now() + Duration::from_secs(30);
    let batch_hooks = loop {
        let hooks = webhooks(&app);
        let batch: Vec<_> = hooks
            .iter()
            .filter(|(b, _)| b["type"] == "dissemination-batch.completed")
            .cloned()
            .collect();
        if !batch.is_empty() {
            break batch;
        }
        assert!(Instant::now() < deadline, "no batch webhook");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(batch_hooks.len(), 1, "the batch webhook arrives once");
    let (body, raw) = &batch_hooks[0];
    verify_with_standardwebhooks(&app.webhook_secret, raw).expect("signature verifies");
    assert_eq!(body["data"]["batchId"], batch_id.as_str());
    assert_eq!(body["data"]["counts"]["disseminated"], 12);
    assert_eq!(body["data"]["counts"]["refused"], 3);
    let hooks = webhooks(&app);
    for (i, id) in owned.iter().enumerate() {
        let mine: Vec<_> = hooks
            .iter()
            .filter(|(b, _)| b["data"]["disseminationId"] == id.as_str())
            .collect();
        let ids: std::collections::BTreeSet<_> = mine
            .iter()
            .map(|(_, r)| r.headers["webhook-id"].to_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 1, "one webhook id for item {id}");
        assert_eq!(mine[0].0["type"], "dissemination.delivered");
        let file = &mine[0].0["data"]["files"][0];
        let bytes = reqwest::get(file["downloadURL"].as_str().unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let stored = app.catalog_doc(&smalls[i]).repository_files[0]
            .fixity(model::catalog::DigestAlgorithm::Sha256)
            .unwrap()
            .digest
            .clone();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), stored);
    }

    // Another client's batch does not exist for the caller.
    let other = app.token(OTHER_CLIENT, &["2d17_R"]);
    assert_eq!(
        get_batch(&app, &base, &other, &batch_id, None)
            .await
            .status(),
        404
    );
    let res = delete_batch(&app, &base, &other, &batch_id).await;
    assert_eq!(res.status(), 404);
    // A completed batch cannot be cancelled.
    let res = delete_batch(&app, &base, &token, &batch_id).await;
    assert_eq!(res.status(), 409);
    // The caller's batches are listed (the visibility store is eventually consistent).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = app
            .http
            .get(format!("{base}/v1/dissemination-batches"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let list: Value = res.json().await.unwrap();
        if list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["batchId"] == batch_id.as_str())
        {
            break;
        }
        assert!(Instant::now() < deadline, "batch not listed: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let res = app
        .http
        .get(format!("{base}/v1/dissemination-batches"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    let list: Value = res.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");

    // Bad batches are 400 with the error envelope; nothing starts.
    let many: Vec<String> = (0..1001)
        .map(|i| format!("019e404e-ba7c-7000-8000-{i:012x}"))
        .collect();
    for bad in [
        json!({"archiveIds": []}),
        json!({"archiveIds": [smalls[0], smalls[0]]}),
        json!({"archiveIds": ["nope"]}),
        json!({"archiveIds": smalls[0]}),
        json!({"archiveIds": many}),
        json!({}),
    ] {
        let res = post_batch(&app, &base, &token, bad.clone()).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "INVALID_ARCHIVE_ID", "{bad}: {body}");
    }
    let res = post_batch(
        &app,
        &base,
        &token,
        json!({"archiveIds": [smalls[0]], "format": "zip"}),
    )
    .await;
    assert_eq!(res.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_batch_cancels_every_item_not_final() {
    // One slot: one large item moves bytes, the others wait in its queue.
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(4 * 1024 * 1024),
        band_slots: Some(1),
        configure: Some(Arc::new(|cfg| cfg.api.batch_poll_ms = 200)),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let base = app.api_url.clone();
    let large: Vec<String> = (0..3)
        .map(|i| format!("019e404e-ca9c-7000-8000-{i:012x}"))
        .collect();
    for id in &large {
        demo::seed_large(&app.cfg, id, 24).await.unwrap();
    }
    let res = post_batch(&app, &base, &token, json!({"archiveIds": large})).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let batch_id = created["batchId"].as_str().unwrap().to_owned();
    // One item is moving bytes; the others wait for the slot.
    let ids: Vec<String> = created["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["disseminationId"].as_str().unwrap().to_owned())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut statuses = Vec::new();
        for id in &ids {
            let view: Value = app.get(&token, id).await.json().await.unwrap();
            statuses.push(view["status"].as_str().unwrap().to_owned());
        }
        let moving = statuses
            .iter()
            .filter(|s| *s == "DOWNLOADING_FROM_REPOSITORY")
            .count();
        let queued = statuses.iter().filter(|s| *s == "QUEUED").count();
        if moving == 1 && queued == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{statuses:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = delete_batch(&app, &base, &token, &batch_id).await;
    assert_eq!(res.status(), 202);
    let (done, _) = until_completed(&app, &base, &token, &batch_id, Duration::from_secs(60)).await;
    assert_eq!(done["counts"]["cancelled"], 3, "{done}");
    assert_eq!(done["cancelRequested"], true);
    for item in created["items"].as_array().unwrap() {
        let id = item["disseminationId"].as_str().unwrap();
        let view: Value = app.get(&token, id).await.json().await.unwrap();
        assert_eq!(view["status"], "CANCELLED", "{view}");
        assert!(app.delivered_keys(id).await.is_empty());
    }
    crate::faults::no_open_upload(&app).await;
    // The batch's webhook once; no item webhooks for cancelled items.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !webhooks(&app)
        .iter()
        .any(|(b, _)| b["type"] == "dissemination-batch.completed")
    {
        assert!(Instant::now() < deadline, "no batch webhook");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hooks = webhooks(&app);
    assert_eq!(
        hooks
            .iter()
            .filter(|(b, _)| b["type"] == "dissemination-batch.completed")
            .count(),
        1
    );
    assert_eq!(hooks[0].0["data"]["counts"]["cancelled"], 3);
    // The AIPs may be asked for again.
    assert_eq!(
        app.post(Some(&token), json!({"archiveId": large[0]}))
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_request_is_not_held_behind_a_large_batch() {
    // Two small AIPs move at a time, each slowed to about a second.
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(16 * 1024),
        configure: Some(Arc::new(|cfg| cfg.worker.local_slots = 2)),
        ..Default::default()
    })
    .await;
    let (a, base) = (app.client_token(), app.api_url.clone());
    let b = app.token(OTHER_CLIENT, &["2d17_R"]);
    let smalls = small_aips(&app, "fa12", 21).await;
    let res = post_batch(&app, &base, &a, json!({"archiveIds": smalls[..20]})).await;
    assert_eq!(res.status(), 201);
    let batch_id = res.json::<Value>().await.unwrap()["batchId"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (id, _) = app.create_until(&b, &smalls[20], "DISSEMINATED").await;
    let waited = started.elapsed();
    let body: Value = get_batch(&app, &base, &a, &batch_id, None)
        .await
        .json()
        .await
        .unwrap();
    let ahead = body["counts"]["disseminated"].as_u64().unwrap();
    println!("client B's request took {waited:?}; {ahead} of the batch's 20 items ended before it");
    // Ahead of the batch's queue (its items yield to single requests, and
    // clients share by fairness key): after the items already moving and a
    // few more on a busy machine, never after the whole batch.
    assert!(ahead <= 10, "{ahead} items of the batch went first: {body}");
    assert!(!id.is_empty());
    until_completed(&app, &base, &a, &batch_id, Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_read_with_no_worker_running() {
    let app = TestApp::start_with(Options {
        with_worker: false,
        configure: Some(Arc::new(|cfg| cfg.api.batch_poll_ms = 200)),
        ..Default::default()
    })
    .await;
    let (token, base) = (app.client_token(), app.api_url.clone());
    let smalls = small_aips(&app, "b0a7", 40).await;
    let worker = crate::support::spawn_worker_process(&app.cfg, "worker-batch-read");
    let res = post_batch(&app, &base, &token, json!({"archiveIds": smalls[..20]})).await;
    assert_eq!(res.status(), 201);
    let done_id = res.json::<Value>().await.unwrap()["batchId"]
        .as_str()
        .unwrap()
        .to_owned();
    until_completed(&app, &base, &token, &done_id, Duration::from_secs(120)).await;
    worker.kill_hard();

    // With no worker: the completed batch, and one whose items all wait.
    let res = post_batch(&app, &base, &token, json!({"archiveIds": smalls[20..]})).await;
    assert_eq!(res.status(), 201);
    let waiting_id = res.json::<Value>().await.unwrap()["batchId"]
        .as_str()
        .unwrap()
        .to_owned();
    for (id, status, counted, item_status) in [
        (&done_id, "COMPLETED", "disseminated", "DISSEMINATED"),
        (&waiting_id, "IN_PROGRESS", "inProgress", "QUEUED"),
    ] {
        let res = get_batch(&app, &base, &token, id, None).await;
        assert_eq!(res.status(), 200, "no worker is needed to read a batch");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], status, "{body}");
        assert_eq!(body["counts"][counted], 20, "{body}");
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 20);
        assert!(
            items.iter().all(|i| i["status"] == item_status),
            "{items:?}"
        );
    }
}

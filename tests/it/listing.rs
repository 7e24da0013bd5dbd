//! `GET /v1/disseminations`: the caller's own disseminations, newest first,
//! filtered and paged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{TestApp, OTHER_CLIENT};
use serde_json::Value;
use std::time::{Duration, Instant};
use worker::demo;

async fn list(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    let path = format!("/v1/disseminations{query}");
    app.call(reqwest::Method::GET, &path, token).await
}

/// Lists until `n` items are visible (visibility is eventually consistent).
async fn list_n(app: &TestApp, token: &str, query: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = list(app, token, query).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        if body["items"].as_array().unwrap().len() == n {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} items for {query}, got {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(app: &TestApp, token: &str, archive_id: &str) -> String {
    app.create_until(token, archive_id, "DISSEMINATED").await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_callers_disseminations_filtered_and_paged() {
    let app = TestApp::start().await;
    let a = app.client_token();
    let b = app.token(OTHER_CLIENT, &["2d17_R"]);
    let first = create(&app, &a, demo::DEMO_SINGLE).await;
    let second = create(&app, &a, demo::DEMO_TWO_FILES).await;
    let others = create(&app, &b, demo::DEMO_SINGLE).await;

    let all = list_n(&app, &a, "?status=DISSEMINATED", 2).await;
    let ids: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["disseminationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    assert!(all["items"][0]["files"].is_array());
    assert!(all.get("nextCursor").is_none());

    let by_archive = list_n(&app, &a, &format!("?archiveId={}", demo::DEMO_SINGLE), 1).await;
    assert_eq!(by_archive["items"][0]["disseminationId"], first.as_str());
    list_n(&app, &a, "?status=FAILED", 0).await;

    // Pages of one, linked by the cursor.
    let page1: Value = list(&app, &a, "?pageSize=1&status=DISSEMINATED")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page1["items"].as_array().unwrap().len(), 1);
    let cursor = page1["nextCursor"].as_str().expect("a next page");
    let page2: Value = list(
        &app,
        &a,
        &format!("?pageSize=1&status=DISSEMINATED&cursor={cursor}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_ne!(
        page1["items"][0]["disseminationId"],
        page2["items"][0]["disseminationId"]
    );

    // Each client sees only its own.
    let theirs = list_n(&app, &b, "", 1).await;
    assert_eq!(theirs["items"][0]["disseminationId"], others.as_str());

    for (query, code) in [
        ("?status=LOST", "INVALID_STATUS"),
        ("?archiveId=nope", "INVALID_ARCHIVE_ID"),
        ("?pageSize=0", "INVALID_PAGE_SIZE"),
        ("?pageSize=many", "INVALID_REQUEST"),
        ("?cursor=%%%", "INVALID_CURSOR"),
        ("?cursor=bm90LWEtY3Vyc29y", "INVALID_CURSOR"),
        ("?colour=blue", "INVALID_REQUEST"),
    ] {
        crate::support::refused(list(&app, &a, query).await, 400, code).await;
    }
}

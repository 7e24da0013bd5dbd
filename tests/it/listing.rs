//! `GET /v1/disseminations`: the caller's own disseminations, newest first,
//! filtered and paged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{TestApp, OTHER_CLIENT};
use std::time::Duration;
use worker::demo;

async fn create(app: &TestApp, token: &str, archive_id: &str) -> String {
    app.create_until(token, archive_id, "DISSEMINATED").await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_callers_disseminations_filtered_and_paged() {
    let app = TestApp::start().await;
    let (a, b) = (app.client_token(), app.token(OTHER_CLIENT, &["2d17_R"]));
    let first = create(&app, &a, demo::DEMO_SINGLE).await;
    let second = create(&app, &a, demo::DEMO_TWO_FILES).await;
    let others = create(&app, &b, demo::DEMO_SINGLE).await;
    let (api_a, api_b) = (app.api(&a), app.api(&b));
    // Lists wait for their items: visibility is eventually consistent.
    let within = Duration::from_secs(20);

    let all = api_a
        .list("?status=DISSEMINATED")
        .until(within, |p| p.items.len() == 2)
        .await;
    assert_eq!(all.ids(), [second.as_str(), first.as_str()], "newest first");
    assert!(!all.items[0].files.is_empty());
    assert!(all.next_cursor.is_none());

    let by_archive = api_a
        .list(&format!("?archiveId={}", demo::DEMO_SINGLE))
        .until(within, |p| p.items.len() == 1)
        .await;
    assert_eq!(by_archive.ids(), [first.as_str()]);
    api_a
        .list("?status=FAILED")
        .until(within, |p| p.items.is_empty())
        .await;

    // Pages of one, linked by the cursor.
    let page1 = api_a.list("?pageSize=1&status=DISSEMINATED").await;
    assert_eq!(page1.items.len(), 1);
    let cursor = page1.next_cursor.as_deref().expect("a next page");
    let page2 = api_a
        .list(&format!("?pageSize=1&status=DISSEMINATED&cursor={cursor}"))
        .await;
    assert_eq!(page2.items.len(), 1);
    assert_ne!(page1.ids(), page2.ids());

    // Each client sees only its own.
    let theirs = api_b.list("").until(within, |p| p.items.len() == 1).await;
    assert_eq!(theirs.ids(), [others.as_str()]);

    for (query, code) in [
        ("?status=LOST", "INVALID_STATUS"),
        ("?archiveId=nope", "INVALID_ARCHIVE_ID"),
        ("?pageSize=0", "INVALID_PAGE_SIZE"),
        ("?pageSize=many", "INVALID_REQUEST"),
        ("?cursor=%%%", "INVALID_CURSOR"),
        ("?cursor=bm90LWEtY3Vyc29y", "INVALID_CURSOR"),
        ("?colour=blue", "INVALID_REQUEST"),
    ] {
        api_a.list(query).refused(400, code).await;
    }
}

//! Closing the loop with the receiving archive (v1.2), on the real stack:
//! its acknowledgement with its own digests (`ack`), the event feed and
//! webhook recovery (`feed`), a queued request's place and estimate
//! (`queue`). The calls these tests make, typed, are here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ack;
mod feed;
mod queue;

use crate::support::TestApp;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// An event of `GET /v1/events`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedEvent {
    pub cursor: String,
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: String,
    pub payload: Value,
}

/// A page of `GET /v1/events`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedPage {
    pub items: Vec<FeedEvent>,
    pub next_cursor: String,
    pub more: bool,
}

/// `POST /v1/webhooks/recover`'s 202.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recovery {
    pub count: usize,
    #[serde(default)]
    pub recovery_id: Option<String>,
}

/// `POST /v1/disseminations/{id}/acknowledgement` with `body`.
pub async fn acknowledge(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.http
        .post(format!(
            "{}/v1/disseminations/{id}/acknowledgement",
            app.api_url
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `GET /v1/events?{query}` from `base` (the API, or a replica).
pub async fn events_at(app: &TestApp, base: &str, token: &str, query: &str) -> reqwest::Response {
    app.http
        .get(format!("{base}/v1/events?{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// `POST /v1/webhooks/recover` with `body`.
pub async fn recover(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/webhooks/recover", app.api_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The caller's whole feed from the start, in pages of `page_size`: the
/// events and the cursor to resume with.
pub async fn walk(app: &TestApp, token: &str, page_size: usize) -> (Vec<FeedEvent>, String) {
    walk_from(app, &app.api_url, token, None, page_size).await
}

/// The feed after `after` until it says it is up to date.
pub async fn walk_from(
    app: &TestApp,
    base: &str,
    token: &str,
    mut after: Option<String>,
    page_size: usize,
) -> (Vec<FeedEvent>, String) {
    let mut seen = Vec::new();
    loop {
        let mut query = format!("pageSize={page_size}");
        if let Some(a) = &after {
            query.push_str(&format!("&after={a}"));
        }
        let res = events_at(app, base, token, &query).await;
        let page: FeedPage = crate::support::expect(res, 200, "GET /v1/events").await;
        seen.extend(page.items);
        after = Some(page.next_cursor.clone());
        if !page.more {
            return (seen, page.next_cursor);
        }
    }
}

/// What the receiving archive computes: every delivered file downloaded
/// through its link and hashed, as the acknowledgement's `files`.
pub async fn downloaded_digests(view: &workflows::DisseminationView) -> Value {
    let mut files = Vec::new();
    for f in &view.files {
        let res = reqwest::get(&f.download_url).await.unwrap();
        assert_eq!(res.status(), 200, "{}", f.filename);
        let bytes = res.bytes().await.unwrap();
        files.push(json!({"path": f.filename, "sha256": hex::encode(Sha256::digest(&bytes))}));
    }
    Value::Array(files)
}

//! The event feed and webhook recovery: a client whose endpoint was down
//! longer than the webhook schedule catches up through `GET /v1/events`
//! and through `POST /v1/webhooks/recover` (the resent messages verified
//! with `standardwebhooks`, same `webhook-id` and body); a cursor walk
//! over two API replicas while two workers produce sees each event once,
//! in order; another client sees none of it.

use super::{events_at, recover, walk, walk_from, FeedPage, Recovery};
use crate::support::{
    expect, ok_when, refused, start_replicas, start_workers, verify_with_standardwebhooks, Options,
    TestApp, Wait, OTHER_CLIENT,
};
use chrono::{SecondsFormat, Utc};
use model::DisseminationStatus;
use serde_json::{json, Value};
use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, Instant},
};
use workflows::WebhookState;

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_endpoint_was_down_catches_up_through_the_feed_and_recovery() {
    let app = TestApp::start_with(Options {
        // The whole webhook schedule in a few seconds.
        configure: Some(Arc::new(|cfg| {
            cfg.timings.webhook_give_up_after_ms = 3_000;
        })),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let aips = worker::demo::seed_small(&app.cfg, "fee0", 3, 16)
        .await
        .unwrap();
    let since = rfc3339(Utc::now() - chrono::Duration::seconds(2));
    app.receiver.go_down().await;
    let api = app.api(&token);
    let mut ids = Vec::new();
    for a in &aips {
        ids.push(api.create(json!({"archiveId": a})).await.dissemination_id);
    }
    for id in &ids {
        let view = api
            .wait_for(id, Duration::from_secs(90), |v| {
                v.webhook
                    .as_ref()
                    .is_some_and(|w| w.state == WebhookState::GaveUp)
            })
            .await;
        assert_eq!(view.status, DisseminationStatus::Disseminated);
    }

    // Through the feed: every message, in the order they happened.
    let (events, cursor) = walk(&app, &token, 2).await;
    let fed: Vec<&str> = events
        .iter()
        .map(|e| e.payload["data"]["disseminationId"].as_str().unwrap())
        .collect();
    let mut sorted = fed.clone();
    sorted.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(sorted, expected, "{events:?}");
    assert!(events
        .iter()
        .all(|e| e.event_type == "dissemination.delivered"
            && e.payload["type"] == "dissemination.delivered"));
    for e in &events {
        chrono::DateTime::parse_from_rfc3339(&e.occurred_at).expect("occurredAt is RFC 3339");
    }
    // Filtered, and resumed where it stopped: nothing new.
    let res = events_at(&app, &app.api_url, &token, "types=dissemination.failed").await;
    let failed: FeedPage = expect(res, 200, "failed only").await;
    assert!(failed.items.is_empty() && !failed.more);
    let (after, _) = walk_from(&app, &app.api_url, &token, Some(cursor.clone()), 10).await;
    assert!(after.is_empty(), "{after:?}");
    // Each event's own cursor resumes right after it.
    let (rest, _) = walk_from(
        &app,
        &app.api_url,
        &token,
        Some(events[0].cursor.clone()),
        10,
    )
    .await;
    let rest: Vec<&str> = rest.iter().map(|e| e.webhook_id.as_str()).collect();
    let expected_rest: Vec<&str> = events[1..].iter().map(|e| e.webhook_id.as_str()).collect();
    assert_eq!(rest, expected_rest);

    // Another client sees none of it, and cannot use this client's cursor.
    let other = app.token(OTHER_CLIENT, &["2d17_R"]);
    let (theirs, _) = walk(&app, &other, 10).await;
    assert!(theirs.is_empty(), "{theirs:?}");
    let res = events_at(&app, &app.api_url, &other, &format!("after={cursor}")).await;
    refused(res, 400, "INVALID_CURSOR").await;
    let res = recover(&app, &other, json!({"since": since})).await;
    let none: Recovery = expect(res, 202, "another client's recovery").await;
    assert_eq!(none.count, 0);

    // Bad input to either.
    for (query, code) in [
        ("after=not-a-cursor", "INVALID_CURSOR"),
        ("types=dissemination.staged", "INVALID_EVENT_TYPE"),
        ("pageSize=0", "INVALID_PAGE_SIZE"),
        ("pageSize=501", "INVALID_PAGE_SIZE"),
        ("since=2020-01-01T00:00:00Z", "INVALID_REQUEST"),
    ] {
        let res = events_at(&app, &app.api_url, &token, query).await;
        refused(res, 400, code).await;
    }
    let month_ago = rfc3339(Utc::now() - chrono::Duration::days(31));
    let tomorrow = rfc3339(Utc::now() + chrono::Duration::days(1));
    for body in [
        json!({"since": tomorrow}),
        json!({"since": month_ago}),
        json!({"since": "yesterday"}),
        json!({}),
    ] {
        refused(recover(&app, &token, body).await, 400, "INVALID_SINCE").await;
    }

    // Through recovery: the endpoint is back; each message again, once.
    app.receiver.come_back().await;
    let before = app.receiver.all().len();
    let res = recover(&app, &token, json!({"since": since})).await;
    let started: Recovery = expect(res, 202, "the recovery").await;
    assert_eq!(started.count, 3);
    assert!(started.recovery_id.is_some());
    let resent = app.wait_webhooks(before + 3, Duration::from_secs(60)).await;
    let resent = &resent[before..];
    assert_eq!(resent.len(), 3);
    for (r, e) in resent.iter().zip(&events) {
        verify_with_standardwebhooks(&app.webhook_secret, r).expect("signature verifies");
        assert_eq!(r.headers["webhook-id"], e.webhook_id.as_str());
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, e.payload, "the same message");
    }
    // Taken now: a second recovery has nothing to send.
    let nothing_left = || async {
        let res = recover(&app, &token, json!({"since": since})).await;
        let again: Recovery = expect(res, 202, "the second recovery").await;
        ok_when(again.count == 0, again.count)
    };
    Wait::secs(20)
        .every_ms(300)
        .until("nothing left to resend", nothing_left)
        .await;
    assert_eq!(app.receiver.all().len(), before + 3, "nothing sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_two_replicas_feed_every_event_once_in_order() {
    let app = TestApp::start_with(Options::without_worker()).await;
    let _workers = start_workers(&app, 2);
    let (_replicas, urls) = start_replicas(&app, 2).await;
    let token = app.client_token();
    let n = 16;
    let aips = worker::demo::seed_small(&app.cfg, "fee1", n, 16)
        .await
        .unwrap();

    // Produced through both replicas while a client walks the feed, each
    // page from the other replica.
    let posting = {
        let (app_urls, token, aips) = (urls.clone(), token.clone(), aips.clone());
        let http = app.http.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for (i, a) in aips.iter().enumerate() {
                let res = http
                    .post(format!("{}/v1/disseminations", app_urls[i % 2]))
                    .bearer_auth(&token)
                    .json(&json!({"archiveId": a}))
                    .send()
                    .await
                    .unwrap();
                let body: Value = expect(res, 201, "POST").await;
                ids.push(body["disseminationId"].as_str().unwrap().to_owned());
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            ids
        })
    };
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut page_no = 0;
    while walked.len() < n {
        assert!(Instant::now() < deadline, "walked {} of {n}", walked.len());
        let mut query = "pageSize=3".to_owned();
        if let Some(a) = &after {
            query.push_str(&format!("&after={a}"));
        }
        let res = events_at(&app, &urls[page_no % 2], &token, &query).await;
        let page: FeedPage = expect(res, 200, "a page").await;
        page_no += 1;
        after = Some(page.next_cursor);
        let up_to_date = !page.more;
        walked.extend(page.items);
        if up_to_date {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let ids = posting.await.unwrap();

    // Each event once, one per dissemination.
    let webhook_ids: BTreeSet<&str> = walked.iter().map(|e| e.webhook_id.as_str()).collect();
    assert_eq!(webhook_ids.len(), walked.len(), "an event seen twice");
    let fed: BTreeSet<&str> = walked
        .iter()
        .map(|e| e.payload["data"]["disseminationId"].as_str().unwrap())
        .collect();
    let posted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(fed, posted);
    // In order: the walk made while they were produced is the feed as a
    // walk after the fact sees it (from either replica).
    for base in &urls {
        let (whole, _) = walk_from(&app, base, &token, None, 100).await;
        let order: Vec<&str> = whole.iter().map(|e| e.webhook_id.as_str()).collect();
        let seen: Vec<&str> = walked.iter().map(|e| e.webhook_id.as_str()).collect();
        assert_eq!(order, seen);
    }
    // Nothing more appears later (no event at two places).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rest, _) = walk_from(&app, &app.api_url, &token, after, 100).await;
    assert!(rest.is_empty(), "{rest:?}");
    // The same messages the endpoint got.
    let every_one = || async {
        let got: BTreeSet<String> = app
            .receiver
            .all()
            .iter()
            .filter_map(|r| r.headers.get("webhook-id"))
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let count = got.len();
        ok_when(count >= n, count).map(|()| got)
    };
    let got = Wait::secs(30)
        .every_ms(200)
        .until("every message", every_one)
        .await;
    let fed: BTreeSet<String> = webhook_ids.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(got, fed);
}

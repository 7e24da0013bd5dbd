//! The receiving archive's acknowledgement: its digests checked against
//! the delivered ones, the objects released early, the PREMIS receipt
//! naming the client as the validating agent; a mismatch keeps them;
//! every malformed or untimely acknowledgement refused with its code.

use super::{acknowledge, downloaded_digests};
use crate::formats::assert_valid_premis;
use crate::support::{expect, refused, Options, TestApp, OTHER_CLIENT};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use worker::demo;
use workflows::{DisseminationView, EventType, Outcome};

async fn delivered(app: &TestApp, token: &str, archive_id: &str) -> (String, DisseminationView) {
    let body = json!({"archiveId": archive_id});
    app.api(token).deliver(body, Duration::from_secs(90)).await
}

/// Waits (bounded) until S3 holds none of the dissemination's objects.
async fn objects_gone_within(app: &TestApp, id: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if app.try_delivered_keys(id).await.unwrap().is_empty() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "objects of {id} still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_that_matches_releases_the_objects_and_enters_the_receipt() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let (id, view) = delivered(&app, &token, demo::DEMO_TWO_FILES).await;
    assert!(view.acknowledged.is_none());
    assert_eq!(view.files.len(), 2);
    let files = downloaded_digests(&view).await;
    let note = "both files verified on arrival";

    let res = acknowledge(&app, &token, &id, json!({"files": files, "note": note})).await;
    let acked: DisseminationView = expect(res, 200, "the acknowledgement").await;
    let at = acked.acknowledged.clone().expect("acknowledged");
    assert_eq!(at.note.as_deref(), Some(note));

    // Released at once (retention is an hour here), not at its end.
    objects_gone_within(&app, &id, Duration::from_secs(60)).await;
    let api = app.api(&token);
    let view = api
        .wait_for(&id, Duration::from_secs(30), |v| v.objects_deleted)
        .await;
    assert!(view.objects_deleted);
    assert_eq!(view.acknowledged, Some(at));
    let events = api.events(&id).await;
    let ack = events
        .iter()
        .find(|e| e.event_type == EventType::Acknowledgement)
        .expect("an acknowledgement event");
    assert_eq!(ack.outcome, Outcome::Success, "{ack:?}");
    assert!(ack.detail.contains(note), "{ack:?}");
    assert!(
        events.iter().any(|e| e.event_type == EventType::Deletion
            && e.detail.contains("the client acknowledged every file")),
        "the deletion says why: {events:?}"
    );

    // The receipt: valid PREMIS, the client the agent that validated.
    let res = app
        .http
        .get(format!("{}/v1/disseminations/{id}/receipt", app.api_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let xml = res.text().await.unwrap();
    let path = app.dir.path().join("receipt.xml");
    std::fs::write(&path, &xml).unwrap();
    assert_valid_premis(&path);
    let event = xml
        .split("<event>")
        .find(|e| e.contains("<eventType>acknowledgement</eventType>"))
        .unwrap_or_else(|| panic!("no acknowledgement event in {xml}"));
    assert!(event.contains(crate::support::CLIENT), "{event}");
    assert!(event.contains("validator"), "{event}");
    assert!(
        event.contains("<eventOutcome>success</eventOutcome>"),
        "{event}"
    );

    // Once is enough.
    let again = acknowledge(&app, &token, &id, json!({"files": files})).await;
    refused(again, 409, "ALREADY_ACKNOWLEDGED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatch_names_the_file_and_keeps_the_objects() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let (id, view) = delivered(&app, &token, demo::DEMO_TWO_FILES).await;
    let mut files = downloaded_digests(&view).await;
    let good = files.clone();
    let damaged = files[1]["path"].as_str().unwrap().to_owned();
    files[1]["sha256"] = json!("0".repeat(64));

    let res = acknowledge(&app, &token, &id, json!({"files": files})).await;
    let body = refused(res, 409, "ACKNOWLEDGEMENT_MISMATCH").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&damaged), "{body}");
    let intact = files[0]["path"].as_str().unwrap();
    assert!(!message.contains(intact), "only the differing file: {body}");

    // Kept: the client can download again; nothing acknowledged.
    let keys = app.delivered_keys(&id).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let api = app.api(&token);
    let view = api.view(&id).await;
    assert!(view.acknowledged.is_none() && !view.objects_deleted);
    let events = api.events(&id).await;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == EventType::Acknowledgement)
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0].outcome, Outcome::Failure);
    assert!(failed[0].detail.contains(&damaged), "{:?}", failed[0]);

    // Downloaded again and right this time.
    let res = acknowledge(&app, &token, &id, json!({"files": good})).await;
    let acked: DisseminationView = expect(res, 200, "the second acknowledgement").await;
    assert!(acked.acknowledged.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_or_untimely_acknowledgement_is_refused_with_its_code() {
    // Without a worker nothing is delivered: NOT_DELIVERED first.
    let app = TestApp::start_with(Options::without_worker()).await;
    let token = app.client_token();
    let queued = app
        .api(&token)
        .create(json!({"archiveId": demo::DEMO_SINGLE}))
        .await
        .dissemination_id;
    let sha = "a".repeat(64);
    let one = json!({"files": [{"path": "primary_20250325.tar", "sha256": sha}]});
    let res = acknowledge(&app, &token, &queued, one.clone()).await;
    refused(res, 409, "NOT_DELIVERED").await;
    let other = app.token(OTHER_CLIENT, &["2d17_R"]);
    let res = acknowledge(&app, &other, &queued, one.clone()).await;
    refused(res, 404, "DISSEMINATION_NOT_FOUND").await;
    let res = acknowledge(&app, &token, "not-an-id", one.clone()).await;
    refused(res, 400, "INVALID_DISSEMINATION_ID").await;
    drop(app);

    let app = TestApp::start().await;
    let token = app.client_token();
    let (id, view) = delivered(&app, &token, demo::DEMO_TWO_FILES).await;
    let files = downloaded_digests(&view).await;
    let (a, b) = (files[0].clone(), files[1].clone());
    let table: Vec<(&str, Value, u16, &str)> = vec![
        (
            "no files",
            json!({"files": []}),
            400,
            "INVALID_ACKNOWLEDGEMENT",
        ),
        (
            "no files field",
            json!({"note": "x"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "a file missing",
            json!({"files": [a]}),
            400,
            "INVALID_ACKNOWLEDGEMENT",
        ),
        (
            "an unknown path",
            json!({"files": [a, b, {"path": "elsewhere.tar", "sha256": sha}]}),
            400,
            "INVALID_ACKNOWLEDGEMENT",
        ),
        (
            "a file twice",
            json!({"files": [a, b, a]}),
            400,
            "INVALID_ACKNOWLEDGEMENT",
        ),
        (
            "a short digest",
            json!({"files": [a, {"path": b["path"], "sha256": "abc"}]}),
            400,
            "INVALID_ACKNOWLEDGEMENT",
        ),
        (
            "a digest not hex",
            json!({"files": [a, {"path": b["path"], "sha256": "z".repeat(64)}]}),
            400,
            "INVALID_ACKNOWLEDGEMENT",
        ),
        (
            "a long note",
            json!({"files": [a, b], "note": "n".repeat(1001)}),
            400,
            "INVALID_ACKNOWLEDGEMENT",
        ),
        (
            "an unknown field",
            json!({"files": [a, b], "signedBy": "me"}),
            400,
            "INVALID_REQUEST",
        ),
    ];
    for (what, body, status, code) in table {
        let res = acknowledge(&app, &token, &id, body).await;
        let got = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(got.as_u16(), status, "{what}: {text}");
        assert!(text.contains(code), "{what}: {text}");
    }
    let res = app
        .http
        .post(format!(
            "{}/v1/disseminations/{id}/acknowledgement",
            app.api_url
        ))
        .bearer_auth(&token)
        .body("files=all")
        .send()
        .await
        .unwrap();
    refused(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    // None of them was recorded, and nothing was released.
    let api = app.api(&token);
    let events = api.events(&id).await;
    assert!(
        !events
            .iter()
            .any(|e| e.event_type == EventType::Acknowledgement),
        "{events:?}"
    );
    assert_eq!(app.delivered_keys(&id).await.len(), 2);
    let res = acknowledge(&app, &token, &id, json!({"files": files})).await;
    expect::<DisseminationView>(res, 200, "the right one").await;
}

/// The histories of acknowledged disseminations (the `acknowledge` update
/// behind its patch), for the replay test: only for a deliberate change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records new histories: only for deliberate, versioned workflow changes"]
async fn record_acknowledgement_histories() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let (id, view) = delivered(&app, &token, demo::DEMO_SINGLE).await;
    let files = downloaded_digests(&view).await;
    let res = acknowledge(&app, &token, &id, json!({"files": files, "note": "ok"})).await;
    expect::<DisseminationView>(res, 200, "acknowledged").await;
    crate::replay::record(&app, &id, "v11-acknowledged-released").await;

    let (id, view) = delivered(&app, &token, demo::DEMO_TWO_FILES).await;
    let good = downloaded_digests(&view).await;
    let mut bad = good.clone();
    bad[0]["sha256"] = json!("f".repeat(64));
    let res = acknowledge(&app, &token, &id, json!({"files": bad})).await;
    refused(res, 409, "ACKNOWLEDGEMENT_MISMATCH").await;
    let res = acknowledge(&app, &token, &id, json!({"files": good})).await;
    expect::<DisseminationView>(res, 200, "acknowledged").await;
    crate::replay::record(&app, &id, "v11-acknowledgement-mismatch-then-released").await;
}

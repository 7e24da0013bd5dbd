//! A dissemination end to end: POST → statuses → signed webhook → the
//! presigned link downloads the exact bytes → GET shows the files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{verify_with_standardwebhooks, TestApp, CLIENT};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use worker::demo;

const FLOW: [&str; 6] = [
    "RECEIVED",
    "QUEUED",
    "DOWNLOADING_FROM_REPOSITORY",
    "FIXITY_CHECK",
    "UPLOADING_TO_S3",
    "DISSEMINATED",
];

fn assert_in_flow_order(seen: &[String]) {
    let positions: Vec<usize> = seen
        .iter()
        .map(|s| {
            FLOW.iter()
                .position(|f| f == s)
                .unwrap_or_else(|| panic!("unexpected status {s}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "statuses out of order: {seen:?}"
    );
}

/// Every string of a JSON document, and what those that are base64 decode to.
fn readable(v: &Value) -> String {
    use base64::Engine;
    match v {
        Value::String(s) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            format!("{s}\n{decoded}\n")
        }
        Value::Array(a) => a.iter().map(readable).collect(),
        Value::Object(o) => o.values().map(readable).collect(),
        _ => String::new(),
    }
}

fn stored_sha256(app: &TestApp, archive_id: &str, file: &str) -> String {
    let aip = app.catalog_doc(archive_id);
    let f = aip
        .repository_files
        .iter()
        .find(|f| f.relative_path == file)
        .unwrap();
    f.fixity(model::catalog::DigestAlgorithm::Sha256)
        .unwrap()
        .digest
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_an_aip_end_to_end() {
    let app = TestApp::start().await;
    let token = app.client_token();

    let res = app
        .post(
            Some(&token),
            json!({"archiveId": demo::DEMO_SINGLE, "priority": 30}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    let id = created["disseminationId"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/disseminations/{id}"));
    assert_eq!(id.len(), 22);
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(created["archiveId"], demo::DEMO_SINGLE);
    assert_eq!(created["clientId"], CLIENT);
    assert_eq!(created["contractId"], "2d17");
    assert_eq!(
        created["objectId"],
        "digifoto_5584a028-ba43-4ecb-bb67-7663cc802010"
    );
    assert_eq!(created["status"], "RECEIVED");
    assert_eq!(created["priority"], 30);
    let aip = app.catalog_doc(demo::DEMO_SINGLE);
    assert_eq!(
        created["sumSizeInBytes"].as_u64(),
        Some(aip.intellectual_entity.sum_size_in_bytes)
    );
    let date = created["dateCreated"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(date).expect("RFC 3339");
    assert!(
        date.contains('.') && (date.ends_with(&parsed.offset().to_string())),
        "{date}"
    );

    let (seen, done) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["status"] == "DISSEMINATED"
        })
        .await;
    eprintln!("statuses seen: {seen:?}");
    assert_in_flow_order(&seen);
    assert_eq!(done["disseminationId"], id.as_str());

    // The webhook: signed per Standard Webhooks, verified by the reference library.
    let hooks = app.wait_webhooks(1, Duration::from_secs(30)).await;
    let hook = &hooks[0];
    verify_with_standardwebhooks(&app.webhook_secret, hook).expect("signature verifies");
    assert_eq!(hook.headers["content-type"], "application/json");
    let msg: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(msg["type"], "dissemination.delivered");
    chrono::DateTime::parse_from_rfc3339(msg["timestamp"].as_str().unwrap()).expect("timestamp");
    let data = &msg["data"];
    assert_eq!(data["disseminationId"], id.as_str());
    assert_eq!(data["archiveId"], demo::DEMO_SINGLE);
    assert_eq!(data["clientId"], CLIENT);
    assert_eq!(data["contractId"], "2d17");
    assert_eq!(data["sumSizeInBytes"], created["sumSizeInBytes"]);
    let files = data["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    let file = &files[0];
    assert_eq!(file["filename"], "primary_20250325.tar");
    assert_eq!(file["checksumAlgorithm"], "SHA-256");
    let expected = stored_sha256(&app, demo::DEMO_SINGLE, "primary_20250325.tar");
    assert_eq!(file["checksum"], expected.as_str());
    chrono::DateTime::parse_from_rfc3339(file["expirationDate"].as_str().unwrap())
        .expect("expirationDate");

    // The presigned link downloads over plain HTTP, without credentials.
    let url = file["downloadURL"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.contains(&format!(
        "dissemination/{id}/{}/primary_20250325.tar",
        demo::DEMO_SINGLE
    )));
    let bytes = reqwest::get(url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, file["filesize"].as_u64().unwrap());
    assert_eq!(hex::encode(Sha256::digest(&bytes)), expected);

    // A client that missed the webhook finds the files on GET.
    let view = app.api(&token).view(&id).await;
    assert_eq!(view.status, model::DisseminationStatus::Disseminated);
    assert_eq!(serde_json::to_value(&view.files).unwrap(), data["files"]);

    // Links are bearer secrets: none in the workflow's history or memo, as
    // the `temporal` CLI shows them to an operator.
    for args in [
        vec![
            "workflow",
            "show",
            "--workflow-id",
            id.as_str(),
            "--output",
            "json",
        ],
        vec![
            "workflow",
            "describe",
            "--workflow-id",
            id.as_str(),
            "--output",
            "json",
        ],
    ] {
        let out = app.temporal_cli(&args);
        // Payloads are base64 in the CLI's JSON: read them decoded too.
        let text = readable(&serde_json::from_slice(&out.stdout).unwrap());
        assert!(
            text.contains("primary_20250325.tar"),
            "{args:?} shows the delivery"
        );
        assert!(
            !text.contains("X-Amz-Signature") && !text.contains("X-Amz-Credential"),
            "a presigned link in `temporal {}`",
            args[..2].join(" ")
        );
    }

    // The audit trail, oldest first.
    let types: Vec<String> = app
        .events(&token, &id)
        .await
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["eventType"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            "dissemination requested success",
            "retrieval success",
            "fixity check success",
            "delivery success",
            "webhook success"
        ]
    );

    // Once it has ended, the same AIP may be requested again.
    let again = app
        .post(Some(&token), json!({"archiveId": demo::DEMO_SINGLE}))
        .await;
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.unwrap();
    assert_ne!(again["disseminationId"], id.as_str());
    assert_eq!(again["priority"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_repository_file_of_an_aip() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let res = app
        .post(
            Some(&token),
            json!({"archiveId": demo::DEMO_TWO_FILES, "priority": 1}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["disseminationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, done) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["status"] == "DISSEMINATED"
        })
        .await;
    assert_eq!(done["status"], "DISSEMINATED");
    // Every link, from GET and from the webhook, downloads the bytes its
    // SHA-256 describes, and those are the catalog's.
    let delivered = app.assert_every_link_delivers(&token, &id).await;
    assert_eq!(
        delivered.keys().collect::<Vec<_>>(),
        ["metadata.tar", "primary_20250326.tar"]
    );
    for (name, bytes) in &delivered {
        assert_eq!(
            hex::encode(Sha256::digest(bytes)),
            stored_sha256(&app, demo::DEMO_TWO_FILES, name)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_repository_file_fails_with_fixity_mismatch_and_uploads_nothing() {
    let app = TestApp::start().await;
    let token = app.client_token();
    // Change one byte in every copy (disk and S3).
    let aip = app.catalog_doc(demo::DEMO_SINGLE);
    let file = &aip.repository_files[0];
    let disk = app.disk_root().join(&file.locations[0].file_path);
    let mut bytes = std::fs::read(&disk).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&disk, &bytes).unwrap();
    app.s3()
        .put_small(
            &app.repository_bucket(),
            &file.locations[1].file_path,
            bytes.into(),
        )
        .await
        .unwrap();

    let res = app
        .post(Some(&token), json!({"archiveId": demo::DEMO_SINGLE}))
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["disseminationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (seen, done) = app
        .poll_until(&token, &id, Duration::from_secs(60), |b| {
            b["status"] == "FAILED"
        })
        .await;
    assert!(
        !seen
            .iter()
            .any(|s| s == "UPLOADING_TO_S3" || s == "DISSEMINATED"),
        "{seen:?}"
    );
    let reasons = done["reasons"].as_array().unwrap();
    assert_eq!(reasons[0]["code"], "FIXITY_MISMATCH");
    assert_eq!(reasons[0]["filePath"], "primary_20250325.tar");
    assert!(done.get("files").is_none());

    // Nothing reached the client's bucket.
    let bucket = app.cfg.client_bucket(CLIENT);
    assert!(app
        .list_keys(&bucket, &format!("dissemination/{id}/"))
        .await
        .is_empty());

    // The client is told.
    let hooks = app.wait_webhooks(1, Duration::from_secs(30)).await;
    verify_with_standardwebhooks(&app.webhook_secret, &hooks[0]).expect("signature verifies");
    let msg: Value = serde_json::from_slice(&hooks[0].body).unwrap();
    assert_eq!(msg["type"], "dissemination.failed");
    assert_eq!(msg["data"]["status"], "FAILED");
    assert_eq!(msg["data"]["reasons"][0]["code"], "FIXITY_MISMATCH");
}

//! A dissemination end to end: POST → statuses → signed webhook → the
//! presigned link downloads the exact bytes → GET shows the files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{verify_with_standardwebhooks, TestApp, CLIENT};
use model::{catalog::DigestAlgorithm, DisseminationStatus as Status};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use worker::demo;
use workflows::{EventType, Outcome, ReasonCode};

const FLOW: [Status; 6] = [
    Status::Received,
    Status::Queued,
    Status::DownloadingFromRepository,
    Status::FixityCheck,
    Status::UploadingToS3,
    Status::Disseminated,
];

fn assert_in_flow_order(seen: &[Status]) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_an_aip_end_to_end() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let api = app.api(&token);

    let created = api
        .create(json!({"archiveId": demo::DEMO_SINGLE, "priority": 30}))
        .await;
    let id = created.dissemination_id.clone();
    assert_eq!(created.location, format!("/v1/disseminations/{id}"));
    assert_eq!(id.len(), 22);
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    let record = &created.view.record;
    assert_eq!(record.archive_id.as_str(), demo::DEMO_SINGLE);
    assert_eq!(record.client_id.as_str(), CLIENT);
    assert_eq!(record.contract_id.as_str(), "2d17");
    assert_eq!(
        record.object_id,
        "digifoto_5584a028-ba43-4ecb-bb67-7663cc802010"
    );
    assert_eq!(created.status, Status::Received);
    assert_eq!(record.priority.get(), 30);
    let aip = app.catalog_doc(demo::DEMO_SINGLE);
    assert_eq!(
        record.sum_size_in_bytes,
        aip.intellectual_entity.sum_size_in_bytes
    );
    let date = record.date_created.as_str();
    let parsed = chrono::DateTime::parse_from_rfc3339(date).expect("RFC 3339");
    assert!(
        date.contains('.') && (date.ends_with(&parsed.offset().to_string())),
        "{date}"
    );

    let (seen, done) = api
        .track(&id, Duration::from_secs(60), |v| {
            v.status == Status::Disseminated
        })
        .await;
    eprintln!("statuses seen: {seen:?}");
    assert_in_flow_order(&seen);
    assert_eq!(done.record.dissemination_id.as_str(), id);

    // The webhook: signed per Standard Webhooks, verified by the reference library.
    let hooks = app.wait_webhooks(1, Duration::from_secs(30)).await;
    let received = &hooks[0];
    verify_with_standardwebhooks(&app.webhook_secret, received).expect("signature verifies");
    assert_eq!(received.headers["content-type"], "application/json");
    let hook = received.hook();
    assert_eq!(hook.kind, "dissemination.delivered");
    chrono::DateTime::parse_from_rfc3339(&hook.timestamp).expect("timestamp");
    let data = &hook.data;
    assert_eq!(data.dissemination_id.as_deref(), Some(id.as_str()));
    assert_eq!(data.archive_id.as_deref(), Some(demo::DEMO_SINGLE));
    assert_eq!(data.client_id.as_deref(), Some(CLIENT));
    assert_eq!(data.contract_id.as_deref(), Some("2d17"));
    assert_eq!(data.sum_size_in_bytes, Some(record.sum_size_in_bytes));
    assert_eq!(data.files.len(), 1);
    let file = &data.files[0];
    assert_eq!(file.filename, "primary_20250325.tar");
    assert_eq!(file.checksum_algorithm, DigestAlgorithm::Sha256);
    let expected = app.stored_sha256(demo::DEMO_SINGLE, Some("primary_20250325.tar"));
    assert_eq!(file.checksum, expected);
    chrono::DateTime::parse_from_rfc3339(file.expiration_date.as_str()).expect("expirationDate");

    // The presigned link downloads over plain HTTP, without credentials.
    let url = &file.download_url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.contains(&format!(
        "dissemination/{id}/{}/primary_20250325.tar",
        demo::DEMO_SINGLE
    )));
    let bytes = app.download(url).await;
    assert_eq!(bytes.len() as u64, file.filesize);
    assert_eq!(hex::encode(Sha256::digest(&bytes)), expected);

    // A client that missed the webhook finds the files on GET.
    let view = api.view(&id).await;
    assert_eq!(view.status, Status::Disseminated);
    assert_eq!(view.files, data.files);

    // Links are bearer secrets: none in the workflow's history or memo, as
    // the `temporal` CLI shows them to an operator.
    for command in ["show", "describe"] {
        let args = [
            "workflow",
            command,
            "--workflow-id",
            &id,
            "--output",
            "json",
        ];
        let out = app.temporal_cli(&args);
        // Payloads are base64 in the CLI's JSON: read them decoded too.
        let text = readable(&serde_json::from_slice(&out.stdout).unwrap());
        assert!(
            text.contains("primary_20250325.tar"),
            "{args:?} shows the delivery"
        );
        assert!(
            !text.contains("X-Amz-Signature") && !text.contains("X-Amz-Credential"),
            "a presigned link in `temporal workflow {command}`"
        );
    }

    // The audit trail, oldest first.
    let trail: Vec<(EventType, Outcome)> = api
        .events(&id)
        .await
        .iter()
        .map(|e| (e.event_type, e.outcome))
        .collect();
    assert_eq!(
        trail,
        [
            EventType::Requested,
            EventType::Retrieval,
            EventType::FixityCheck,
            EventType::Delivery,
            EventType::Webhook
        ]
        .map(|t| (t, Outcome::Success))
    );

    // Once it has ended, the same AIP may be requested again.
    let again = api.create(json!({"archiveId": demo::DEMO_SINGLE})).await;
    assert_ne!(again.dissemination_id, id);
    assert_eq!(again.view.record.priority.get(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_repository_file_of_an_aip() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let body = json!({"archiveId": demo::DEMO_TWO_FILES, "priority": 1});
    let (id, _) = app.api(&token).deliver(body, Duration::from_secs(60)).await;
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
            app.stored_sha256(demo::DEMO_TWO_FILES, Some(name.as_str()))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_repository_file_fails_with_fixity_mismatch_and_uploads_nothing() {
    let app = TestApp::start().await;
    let api = app.api(&app.client_token());
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

    let id = api
        .create(json!({"archiveId": demo::DEMO_SINGLE}))
        .await
        .dissemination_id;
    let (seen, done) = api
        .track(&id, Duration::from_secs(60), |v| v.status == Status::Failed)
        .await;
    assert!(
        !seen.contains(&Status::UploadingToS3) && !seen.contains(&Status::Disseminated),
        "{seen:?}"
    );
    assert_eq!(done.reasons[0].code, ReasonCode::FixityMismatch);
    assert_eq!(
        done.reasons[0].file_path.as_deref(),
        Some("primary_20250325.tar")
    );
    assert!(done.files.is_empty());

    // Nothing reached the client's bucket.
    assert!(app.delivered_keys(&id).await.is_empty());

    // The client is told.
    let hooks = app.wait_webhooks(1, Duration::from_secs(30)).await;
    verify_with_standardwebhooks(&app.webhook_secret, &hooks[0]).expect("signature verifies");
    let hook = hooks[0].hook();
    assert_eq!(hook.kind, "dissemination.failed");
    assert_eq!(hook.data.status.as_deref(), Some("FAILED"));
    assert_eq!(hook.data.reasons[0].code, ReasonCode::FixityMismatch);
}

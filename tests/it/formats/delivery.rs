//! One test AIP delivered every way: as one bag, as selected members, with
//! a selection matching nothing, with more members than files allow.

use super::{assert_valid_premis, pax_tar, validate_bag, write_test_aip, FINAL, LONG_GNU};
use crate::faults::no_open_upload;
use crate::support::{TestApp, OTHER_CLIENT};
use model::{catalog::DigestAlgorithm, DisseminationStatus as Status};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use worker::demo::{self, AipSpec, DemoFile};
use workflows::{DeliveredFile, EventType, Format, Outcome, ReasonCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bags_validate_selected_members_arrive_exactly_and_receipts_are_premis() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let api = app.api(&token);
    let aip = write_test_aip(
        &app,
        "019e404e-b0b0-7000-8000-000000000001",
        vec!["disk", "s3"],
    )
    .await;
    let dir = crate::support::tempdir().unwrap();
    let caller = &api;
    let deliver = |body: serde_json::Value| async move {
        let id = caller.create(body).await.dissemination_id;
        let done = caller.until_final(&id, FINAL).await;
        (id, done)
    };

    // 1. The whole AIP as one bag.
    let (id, done) = deliver(json!({"archiveId": aip.archive_id, "format": "bagit"})).await;
    assert_eq!(done.status, Status::Disseminated, "{done:?}");
    assert_eq!(done.record.format, Format::Bagit);
    assert_eq!(done.files.len(), 1, "one bag, one link: {done:?}");
    let file = &done.files[0];
    let bag_name = format!("{}.tar", aip.archive_id);
    assert_eq!(file.filename, bag_name);
    let bag = app.download(&file.download_url).await;
    assert_eq!(bag.len() as u64, file.filesize);
    assert_eq!(hex::encode(Sha256::digest(&bag)), file.checksum);
    let hook = app.delivered(&id).await;
    assert_eq!(hook.data.files[0].checksum, file.checksum);
    assert_eq!(
        app.delivered_keys(&id).await,
        [format!("dissemination/{id}/{}/{bag_name}", aip.archive_id)]
    );

    let tar_path = dir.path().join("bag.tar");
    std::fs::write(&tar_path, &bag).unwrap();
    let extracted = dir.path().join("bag");
    let info = validate_bag(&tar_path, &extracted, &aip.archive_id);
    let bag_dir = extracted.join(&aip.archive_id);
    assert_eq!(info["External-Identifier"], aip.archive_id.as_str());
    assert_eq!(
        info["Internal-Sender-Identifier"],
        format!("object-{}", aip.archive_id).as_str()
    );
    let octets: usize = aip.files.values().map(Vec::len).sum();
    assert_eq!(
        info["Payload-Oxum"],
        format!("{octets}.{}", aip.files.len()).as_str()
    );
    assert!(info["Bagging-Date"].is_string() && info["Source-Organization"].is_string());
    for (name, bytes) in &aip.files {
        assert_eq!(
            &std::fs::read(bag_dir.join("data").join(name)).unwrap(),
            bytes,
            "data/{name} is the repository file as stored"
        );
    }
    let premis = bag_dir.join("premis.xml");
    assert_valid_premis(&premis);
    let premis_text = std::fs::read_to_string(&premis).unwrap();
    assert!(premis_text.contains(&aip.archive_id) && premis_text.contains("fixity check"));

    // The receipt of the same dissemination, from the API.
    let receipt = api.receipt(&id).await;
    let receipt_path = dir.path().join("receipt.xml");
    std::fs::write(&receipt_path, &receipt).unwrap();
    assert_valid_premis(&receipt_path);
    assert!(receipt.contains(&bag_name) && receipt.contains("delivery"));
    assert!(receipt.contains(&file.checksum));
    // Another client's receipt does not exist for the caller.
    let other = app.api(&app.token(OTHER_CLIENT, &["2d17_R"]));
    other
        .receipt(&id)
        .refused(404, "DISSEMINATION_NOT_FOUND")
        .await;

    // 2. Selected members, each its own object, byte-identical.
    let select = json!([
        "METS.xml",
        "content/images/*.jp2",
        "content/**/empty.txt",
        "content/deep/**",
        "descriptive/**/dc.xml"
    ]);
    let (id, done) = deliver(json!({"archiveId": aip.archive_id, "select": select})).await;
    assert_eq!(done.status, Status::Disseminated, "{done:?}");
    let expected: BTreeMap<String, &Vec<u8>> = aip
        .members
        .iter()
        .filter(|((_, path), _)| {
            path == "METS.xml"
                || path.ends_with(".jp2")
                || path.ends_with("empty.txt")
                || path.starts_with("content/deep/")
                || path == LONG_GNU
        })
        .map(|((stem, path), bytes)| (format!("{stem}/{path}"), bytes))
        .collect();
    assert_eq!(expected.len(), 6);
    let got: BTreeMap<&str, &DeliveredFile> = done
        .files
        .iter()
        .map(|f| (f.filename.as_str(), f))
        .collect();
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        expected.keys().map(String::as_str).collect::<Vec<_>>(),
        "exactly the matching members"
    );
    // Every link (GET's and the webhook's) is the bytes its SHA-256 says,
    // one object per name: exactly the members.
    let delivered = app.assert_every_link_delivers(&token, &id).await;
    for (name, bytes) in &expected {
        assert_eq!(&&delivered[name], bytes, "{name} byte for byte");
        assert_eq!(
            got[name.as_str()].checksum_algorithm,
            DigestAlgorithm::Sha256
        );
    }
    // The audit trail: both TARs read once and verified whole.
    let events = api.events(&id).await;
    let fixity: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == EventType::FixityCheck)
        .collect();
    assert_eq!(fixity.len(), 2, "{fixity:?}");
    assert!(fixity.iter().all(|e| e.outcome == Outcome::Success));

    // 3. A pattern matching nothing: REJECTED, the client told, nothing left.
    let (id, done) =
        deliver(json!({"archiveId": aip.archive_id, "select": ["nothing/*.xyz"]})).await;
    assert_eq!(done.status, Status::Rejected, "{done:?}");
    assert_eq!(done.reasons[0].code, ReasonCode::NothingSelected);
    let hook = app.webhook_of(&id).await;
    assert_eq!(hook.kind, "dissemination.failed");
    assert_eq!(hook.data.status.as_deref(), Some("REJECTED"));
    assert_eq!(hook.data.reasons[0].code, ReasonCode::NothingSelected);
    assert!(app.delivered_keys(&id).await.is_empty());

    // 4. More than 100 members as files: REJECTED TOO_MANY_FILES (ask for a bag).
    let many: Vec<(String, Vec<u8>)> = (0..101)
        .map(|i| {
            (
                format!("pages/{i:03}.txt"),
                format!("page {i}\n").into_bytes(),
            )
        })
        .collect();
    let crowded = "019e404e-b0b0-7000-8000-000000000002";
    demo::write_aip(
        &app.cfg,
        &AipSpec {
            archive_id: crowded.into(),
            contract: demo::DEMO_CONTRACT.into(),
            object_id: "crowded".into(),
            status: "preserved".into(),
            files: vec![DemoFile {
                name: "primary.tar".into(),
                bytes: pax_tar(&many),
            }],
            locations: vec!["disk"],
        },
    )
    .await
    .unwrap();
    let (id, done) = deliver(json!({"archiveId": crowded, "select": ["pages/*"]})).await;
    assert_eq!(done.status, Status::Rejected, "{done:?}");
    assert_eq!(done.reasons[0].code, ReasonCode::TooManyFiles);
    assert!(app.delivered_keys(&id).await.is_empty());
    // The same selection as a bag is fine: 101 payload files.
    let bagged = json!({"archiveId": crowded, "select": ["pages/*"], "format": "bagit"});
    let (_, done) = deliver(bagged).await;
    assert_eq!(done.status, Status::Disseminated, "{done:?}");
    let bag = app.download(&done.files[0].download_url).await;
    let tar_path = dir.path().join("crowded.tar");
    std::fs::write(&tar_path, &bag).unwrap();
    let info = validate_bag(&tar_path, &dir.path().join("crowded"), crowded);
    let octets: usize = many.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(info["Payload-Oxum"], format!("{octets}.101").as_str());
    no_open_upload(&app).await;
}

//! Delivery formats, file selection and receipts on the real stack: AIPs of
//! real TARs (nested folders, a GNU long name, a PAX path, a zero-length
//! member, several TARs per AIP) delivered as a BagIt bag checked by the
//! Library of Congress's `bagit` library, as selected members byte for
//! byte, with PREMIS receipts validated by `xmllint` against the official
//! schema.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::faults::no_open_upload;
use crate::support::{verify_with_standardwebhooks, Options, TestApp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};
use worker::demo::{self, AipSpec, DemoFile};

/// A TAR written with PAX headers where ustar's fields do not suffice.
pub(crate) fn pax_tar(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, bytes) in members {
        out.extend(packaging::tar::header(
            path,
            bytes.len() as u64,
            1_742_860_800,
        ));
        out.extend(bytes);
        out.extend(vec![0u8; packaging::tar::padding(bytes.len() as u64)]);
    }
    out.extend(packaging::tar::END_OF_ARCHIVE);
    out
}

/// The test AIP: `metadata.tar` (GNU headers, a GNU long name) and
/// `primary_20250325.tar` (PAX headers: a long deep path, non-ASCII,
/// a zero-length member, a member over one part).
struct TestAip {
    archive_id: String,
    /// Repository file name → its bytes.
    files: BTreeMap<String, Vec<u8>>,
    /// (TAR stem, member path) → bytes.
    members: BTreeMap<(String, String), Vec<u8>>,
}

const LONG_GNU: &str = "descriptive/a-very-long-folder-name-that-does-not-fit/\
    another-long-folder-name-beyond-a-hundred-bytes/dc.xml";

fn long_pax() -> String {
    format!("content/{}notes-ünïcödé.txt", "deep/".repeat(30))
}

async fn write_test_aip(app: &TestApp, archive_id: &str, locations: Vec<&'static str>) -> TestAip {
    let metadata: Vec<(String, Vec<u8>)> = vec![
        ("METS.xml".into(), b"<mets OBJID=\"test\"/>\n".to_vec()),
        ("premis/aip.xml".into(), b"<premis/>\n".to_vec()),
        (LONG_GNU.into(), b"<dc/>\n".to_vec()),
    ];
    let primary: Vec<(String, Vec<u8>)> = vec![
        (
            "content/images/0001.jp2".into(),
            demo::pseudo_random(11, 300 * 1024),
        ),
        // Over the 5 MiB test part size: its object has several parts.
        (
            "content/images/0002.jp2".into(),
            demo::pseudo_random(12, 7 * 1024 * 1024 + 3),
        ),
        (
            "content/images/thumbs/0001.jpg".into(),
            demo::pseudo_random(13, 4096),
        ),
        ("content/text/empty.txt".into(), Vec::new()),
        (long_pax(), b"notes\n".to_vec()),
    ];
    let gnu: Vec<(&str, Vec<u8>)> = metadata
        .iter()
        .map(|(p, b)| (p.as_str(), b.clone()))
        .collect();
    let metadata_tar = demo::tar_of(&gnu).unwrap();
    let primary_tar = pax_tar(&primary);
    let mut members = BTreeMap::new();
    for (p, b) in &metadata {
        members.insert(("metadata".to_owned(), p.clone()), b.clone());
    }
    for (p, b) in &primary {
        members.insert(("primary_20250325".to_owned(), p.clone()), b.clone());
    }
    let files: BTreeMap<String, Vec<u8>> = [
        ("metadata.tar".to_owned(), metadata_tar),
        ("primary_20250325.tar".to_owned(), primary_tar),
    ]
    .into_iter()
    .collect();
    demo::write_aip(
        &app.cfg,
        &AipSpec {
            archive_id: archive_id.into(),
            contract: demo::DEMO_CONTRACT.into(),
            object_id: format!("object-{archive_id}"),
            status: "preserved".into(),
            files: files
                .iter()
                .map(|(name, bytes)| DemoFile {
                    name: name.clone(),
                    bytes: bytes.clone(),
                })
                .collect(),
            locations,
        },
    )
    .await
    .unwrap();
    TestAip {
        archive_id: archive_id.into(),
        files,
        members,
    }
}

async fn post_ok(app: &TestApp, token: &str, body: Value) -> String {
    let res = app.post(Some(token), body).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["disseminationId"].as_str().unwrap().to_owned()
}

async fn until_final(app: &TestApp, token: &str, id: &str) -> Value {
    let (seen, done) = app
        .poll_until(token, id, Duration::from_secs(90), |b| {
            ["DISSEMINATED", "FAILED", "REJECTED", "CANCELLED"]
                .contains(&b["status"].as_str().unwrap_or_default())
        })
        .await;
    assert!(!seen.is_empty());
    done
}

async fn download(url: &str) -> Vec<u8> {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    res.bytes().await.unwrap().to_vec()
}

/// The webhook of dissemination `id`, once it arrived, verified.
async fn webhook_of(app: &TestApp, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        for r in app.receiver.all() {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            if body["data"]["disseminationId"] == id {
                verify_with_standardwebhooks(&app.webhook_secret, &r).expect("signature verifies");
                return body;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no webhook for {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `xmllint --schema` with the vendored PREMIS 3.0 schema.
pub(crate) fn assert_valid_premis(path: &Path) {
    let schema = repo_root().join("packaging/schema/premis-v3-0.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(path)
        .output()
        .expect("xmllint runs (Debian libxml2-utils; scripts/install-tools.sh installs it)");
    assert!(
        out.status.success(),
        "{} is not valid PREMIS 3.0: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Extracts a serialized bag with Python's tarfile and validates it with
/// the Library of Congress's `bagit` (every check); its `bag-info.txt`.
pub(crate) fn validate_bag(tar_path: &Path, into: &Path, root: &str) -> Value {
    let py = repo_root().join(".tools/py");
    let script = "import sys, json, tarfile, bagit\n\
        tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='data')\n\
        bag = bagit.Bag(sys.argv[2] + '/' + sys.argv[3])\n\
        bag.validate(fast=False, completeness_only=False)\n\
        print(json.dumps({'info': bag.info, 'valid': bag.is_valid()}))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(tar_path)
        .arg(into)
        .arg(root)
        .env("PYTHONPATH", py)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bagit refuses the bag: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    report["info"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bags_validate_selected_members_arrive_exactly_and_receipts_are_premis() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let aip = write_test_aip(
        &app,
        "019e404e-b0b0-7000-8000-000000000001",
        vec!["disk", "s3"],
    )
    .await;
    let dir = crate::support::tempdir().unwrap();

    // 1. The whole AIP as one bag.
    let id = post_ok(
        &app,
        &token,
        json!({"archiveId": aip.archive_id, "format": "bagit"}),
    )
    .await;
    let done = until_final(&app, &token, &id).await;
    assert_eq!(done["status"], "DISSEMINATED", "{done}");
    assert_eq!(done["format"], "bagit");
    let files = done["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "one bag, one link: {done}");
    let bag_name = format!("{}.tar", aip.archive_id);
    assert_eq!(files[0]["filename"], bag_name.as_str());
    let bag = download(files[0]["downloadURL"].as_str().unwrap()).await;
    assert_eq!(bag.len() as u64, files[0]["filesize"].as_u64().unwrap());
    assert_eq!(hex::encode(Sha256::digest(&bag)), files[0]["checksum"]);
    let hook = webhook_of(&app, &id).await;
    assert_eq!(hook["type"], "dissemination.delivered");
    assert_eq!(hook["data"]["files"][0]["checksum"], files[0]["checksum"]);
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
    let res = app
        .http
        .get(format!("{}/v1/disseminations/{id}/receipt", app.api_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/xml"));
    let receipt = res.text().await.unwrap();
    let receipt_path = dir.path().join("receipt.xml");
    std::fs::write(&receipt_path, &receipt).unwrap();
    assert_valid_premis(&receipt_path);
    assert!(receipt.contains(&bag_name) && receipt.contains("delivery"));
    assert!(receipt.contains(files[0]["checksum"].as_str().unwrap()));
    // Another client's receipt does not exist for the caller.
    let other = app.token(crate::support::OTHER_CLIENT, &["2d17_R"]);
    let res = app
        .http
        .get(format!("{}/v1/disseminations/{id}/receipt", app.api_url))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // 2. Selected members, each its own object, byte-identical.
    let select = json!([
        "METS.xml",
        "content/images/*.jp2",
        "content/**/empty.txt",
        "content/deep/**",
        "descriptive/**/dc.xml"
    ]);
    let id = post_ok(
        &app,
        &token,
        json!({"archiveId": aip.archive_id, "select": select}),
    )
    .await;
    let done = until_final(&app, &token, &id).await;
    assert_eq!(done["status"], "DISSEMINATED", "{done}");
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
    let got: BTreeMap<String, &Value> = done["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["filename"].as_str().unwrap().to_owned(), f))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "exactly the matching members"
    );
    // Every link (GET's and the webhook's) is the bytes its SHA-256 says,
    // one object per name: exactly the members.
    let delivered = app.assert_every_link_delivers(&token, &id).await;
    for (name, bytes) in &expected {
        assert_eq!(&&delivered[name], bytes, "{name} byte for byte");
        assert_eq!(got[name]["checksumAlgorithm"], "SHA-256");
    }
    // The audit trail: both TARs read once and verified whole.
    let fixity: Vec<Value> = app
        .events(&token, &id)
        .await
        .into_iter()
        .filter(|e| e["eventType"] == "fixity check")
        .collect();
    assert_eq!(fixity.len(), 2, "{fixity:?}");
    assert!(fixity.iter().all(|e| e["outcome"] == "success"));

    // 3. A pattern matching nothing: REJECTED, the client told, nothing left.
    let id = post_ok(
        &app,
        &token,
        json!({"archiveId": aip.archive_id, "select": ["nothing/*.xyz"]}),
    )
    .await;
    let done = until_final(&app, &token, &id).await;
    assert_eq!(done["status"], "REJECTED", "{done}");
    assert_eq!(done["reasons"][0]["code"], "NOTHING_SELECTED");
    let hook = webhook_of(&app, &id).await;
    assert_eq!(hook["type"], "dissemination.failed");
    assert_eq!(hook["data"]["status"], "REJECTED");
    assert_eq!(hook["data"]["reasons"][0]["code"], "NOTHING_SELECTED");
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
    let id = post_ok(
        &app,
        &token,
        json!({"archiveId": crowded, "select": ["pages/*"]}),
    )
    .await;
    let done = until_final(&app, &token, &id).await;
    assert_eq!(done["status"], "REJECTED", "{done}");
    assert_eq!(done["reasons"][0]["code"], "TOO_MANY_FILES");
    assert!(app.delivered_keys(&id).await.is_empty());
    // The same selection as a bag is fine: 101 payload files.
    let id = post_ok(
        &app,
        &token,
        json!({"archiveId": crowded, "select": ["pages/*"], "format": "bagit"}),
    )
    .await;
    let done = until_final(&app, &token, &id).await;
    assert_eq!(done["status"], "DISSEMINATED", "{done}");
    let bag = download(done["files"][0]["downloadURL"].as_str().unwrap()).await;
    let tar_path = dir.path().join("crowded.tar");
    std::fs::write(&tar_path, &bag).unwrap();
    let info = validate_bag(&tar_path, &dir.path().join("crowded"), crowded);
    let octets: usize = many.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(info["Payload-Oxum"], format!("{octets}.101").as_str());
    no_open_upload(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bags_come_from_good_copies_fail_whole_on_corrupt_ones_and_cancel_cleanly() {
    let app = TestApp::start_with(Options {
        max_read_bytes_per_sec: Some(16 * 1024 * 1024),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let dir = crate::support::tempdir().unwrap();
    let corrupt = |aip: &TestAip, name: &str, location: usize| {
        let doc = app.catalog_doc(&aip.archive_id);
        let file = doc
            .repository_files
            .iter()
            .find(|f| f.relative_path == name)
            .unwrap();
        let loc = &file.locations[location];
        let path = app.disk_root().join(&loc.file_path);
        (loc.location_id.clone(), path)
    };

    // 1. select + bagit, the disk copy of the primary TAR corrupt: the bag
    //    comes from its good s3 copy.
    let aip = write_test_aip(
        &app,
        "019e404e-b0b0-7000-8000-000000000003",
        vec!["disk", "s3"],
    )
    .await;
    let (location, path) = corrupt(&aip, "primary_20250325.tar", 0);
    assert_eq!(location, "disk");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[2048] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let id = post_ok(
        &app,
        &token,
        json!({"archiveId": aip.archive_id, "format": "bagit", "select": ["content/images/**"]}),
    )
    .await;
    let done = until_final(&app, &token, &id).await;
    assert_eq!(done["status"], "DISSEMINATED", "{done}");
    let bag = download(done["files"][0]["downloadURL"].as_str().unwrap()).await;
    let tar_path = dir.path().join("good.tar");
    std::fs::write(&tar_path, &bag).unwrap();
    let extracted = dir.path().join("good");
    validate_bag(&tar_path, &extracted, &aip.archive_id);
    let data = extracted.join(&aip.archive_id).join("data");
    for ((stem, path), content) in &aip.members {
        let at = data.join(stem).join(path);
        if path.starts_with("content/images/") {
            assert_eq!(
                &std::fs::read(&at).unwrap(),
                content,
                "{path} from the good copy"
            );
        } else {
            assert!(!at.exists(), "{path} was not selected");
        }
    }
    assert_valid_premis(&extracted.join(&aip.archive_id).join("premis.xml"));
    let fixity: Vec<(String, String, String)> = app
        .events(&token, &id)
        .await
        .into_iter()
        .filter(|e| e["eventType"] == "fixity check")
        .map(|e| {
            (
                e["file"].as_str().unwrap().to_owned(),
                e["location"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        fixity.contains(&(
            "primary_20250325.tar".into(),
            "disk".into(),
            "failure".into()
        )) && fixity.contains(&("primary_20250325.tar".into(), "s3".into(), "success".into())),
        "{fixity:?}"
    );

    // 2. Every copy of a TAR corrupt: FAILED FIXITY_MISMATCH, nothing in the
    //    bucket, not even a bag, and no open upload.
    let aip = write_test_aip(&app, "019e404e-b0b0-7000-8000-000000000004", vec!["disk"]).await;
    let (_, path) = corrupt(&aip, "metadata.tar", 0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[700] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let id = post_ok(
        &app,
        &token,
        json!({"archiveId": aip.archive_id, "format": "bagit", "select": ["**/*.jp2", "METS.xml"]}),
    )
    .await;
    let done = until_final(&app, &token, &id).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["reasons"][0]["code"], "FIXITY_MISMATCH");
    assert!(app.delivered_keys(&id).await.is_empty());
    no_open_upload(&app).await;
    let hook = webhook_of(&app, &id).await;
    assert_eq!(hook["type"], "dissemination.failed");

    // 3. Cancel while bagging: CANCELLED, no object, no open multipart upload.
    let large = "019e404e-b0b0-7000-8000-000000000005";
    demo::seed_large(&app.cfg, large, 64).await.unwrap();
    let id = post_ok(&app, &token, json!({"archiveId": large, "format": "bagit"})).await;
    app.poll_until(&token, &id, Duration::from_secs(30), |b| {
        b["progress"]["bytesDone"].as_u64().unwrap_or(0) >= 16 * 1024 * 1024
    })
    .await;
    assert_eq!(
        crate::faults::open_uploads(&app).await.len(),
        1,
        "the bag's upload is under way"
    );
    let res = app.cancel(&token, &id).await;
    assert_eq!(res.status(), 202);
    let done = until_final(&app, &token, &id).await;
    assert_eq!(done["status"], "CANCELLED", "{done}");
    assert!(app.delivered_keys(&id).await.is_empty());
    no_open_upload(&app).await;
}

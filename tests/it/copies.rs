//! The repository as it is, on the real stack: files that share a name in
//! different folders are two objects (and two bag entries, checked by the
//! Library of Congress's `bagit`); a name listed twice is refused before
//! any byte moves; copies are tried by the configured preference of their
//! location, a copy nobody can read is skipped (never fatal by itself), a
//! copy the repository's audit found bad is tried last; faulty catalog
//! entries are refused by name; a location that cannot be read is
//! reported by the worker at start and by its `/readyz`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::faults::no_open_upload;
use crate::formats::{assert_valid_premis, pax_tar, validate_bag};
use crate::support::{free_ports, spawn_worker_process, tape_aip, AipFile, Options, TestApp, Wait};
use platform::config::{LocationConfig, TapeLocationConfig};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::{collections::BTreeMap, time::Duration};
use worker::demo;
use workflows::{DisseminationEvent, DisseminationView, EventType, Outcome};

/// One repository file of a test AIP: its relative path, bytes, and its
/// copies as (location id, fixityStatus). Copies at `disk` and `s3` are
/// written; any other location is only named in the catalog.
pub(crate) type File<'a> = AipFile<'a>;

/// Writes the AIP's `disk` and `s3` copies and its catalog document.
pub(crate) async fn put_aip(app: &TestApp, archive_id: &str, files: Vec<File<'_>>) {
    tape_aip(archive_id, &files, "V001", 1).put(app).await;
}

pub(crate) fn tar(seed: u64, members: &[&str]) -> Vec<u8> {
    demo::tar_of(
        &members
            .iter()
            .enumerate()
            .map(|(i, m)| (*m, demo::pseudo_random(seed + i as u64, 3000 + i)))
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

async fn final_view(app: &TestApp, token: &str, body: serde_json::Value) -> DisseminationView {
    let api = app.api(token);
    let id = api.create(body).await.dissemination_id;
    api.wait_for(&id, Duration::from_secs(90), |v| v.status.is_final())
        .await
}

/// Delivers `body`'s request (asserting DISSEMINATED) and checks every
/// link: the dissemination's id and the bytes, by delivered name.
async fn delivered(
    app: &TestApp,
    token: &str,
    body: serde_json::Value,
) -> (String, BTreeMap<String, Vec<u8>>) {
    let view = final_view(app, token, body).await;
    assert_eq!(view.status.as_str(), "DISSEMINATED", "{view:?}");
    let id = view.record.dissemination_id.to_string();
    let got = app.assert_every_link_delivers(token, &id).await;
    (id, got)
}

/// (type, outcome, location, detail) of every retrieval and fixity event.
async fn reads(app: &TestApp, token: &str, id: &str) -> Vec<DisseminationEvent> {
    app.api(token)
        .events(id)
        .await
        .into_iter()
        .filter(|e| matches!(e.event_type, EventType::Retrieval | EventType::FixityCheck))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_sharing_a_name_are_two_objects_as_files_bags_and_members() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let aip = "019e404e-c0c0-7000-8000-000000000001";
    let (v1, v2) = (
        tar(1, &["mets.xml", "img.tif"]),
        tar(9, &["mets.xml", "img.tif"]),
    );
    put_aip(
        &app,
        aip,
        vec![
            File {
                path: "v1/primary.tar",
                bytes: v1.clone(),
                copies: vec![("disk", Some("valid")), ("s3", Some("valid"))],
            },
            File {
                path: "v2/primary.tar",
                bytes: v2.clone(),
                copies: vec![("s3", None)],
            },
        ],
    )
    .await;

    // As files: two objects, each link the bytes its checksum describes.
    let (id, got) = delivered(&app, &token, json!({"archiveId": aip})).await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["v1/primary.tar", "v2/primary.tar"]
    );
    assert_eq!(got["v1/primary.tar"], v1);
    assert_eq!(got["v2/primary.tar"], v2);
    let receipt = app.api(&token).receipt(&id).await;
    assert!(receipt.contains("v1/primary.tar") && receipt.contains("v2/primary.tar"));

    // As one bag: two payload entries, the bag valid for LoC's bagit.
    let (_, got) = delivered(&app, &token, json!({"archiveId": aip, "format": "bagit"})).await;
    let dir = crate::support::tempdir().unwrap();
    let tar_path = dir.path().join("bag.tar");
    std::fs::write(&tar_path, &got[&format!("{aip}.tar")]).unwrap();
    validate_bag(&tar_path, &dir.path().join("bag"), aip);
    let data = dir.path().join("bag").join(aip).join("data");
    assert_eq!(std::fs::read(data.join("v1/primary.tar")).unwrap(), v1);
    assert_eq!(std::fs::read(data.join("v2/primary.tar")).unwrap(), v2);
    assert_valid_premis(&dir.path().join("bag").join(aip).join("premis.xml"));

    // Selected members keep their file's folder.
    let (_, got) = delivered(
        &app,
        &token,
        json!({"archiveId": aip, "select": ["mets.xml"]}),
    )
    .await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["v1/primary/mets.xml", "v2/primary/mets.xml"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_delivered_twice_is_rejected_before_any_byte_moves() {
    let app = TestApp::start().await;
    let token = app.client_token();

    // The catalog lists one path twice (once in another spelling).
    let twice = "019e404e-c0c0-7000-8000-000000000002";
    put_aip(
        &app,
        twice,
        vec![
            File {
                path: "a/primary.tar",
                bytes: tar(3, &["x"]),
                copies: vec![("disk", None)],
            },
            File {
                path: "a//./primary.tar",
                bytes: tar(4, &["x"]),
                copies: vec![("disk", None)],
            },
        ],
    )
    .await;
    for format in ["files", "bagit"] {
        let view = final_view(&app, &token, json!({"archiveId": twice, "format": format})).await;
        assert_eq!(view.status.as_str(), "REJECTED", "{view:?}");
        assert_eq!(view.reasons.len(), 1, "{view:?}");
        assert_eq!(view.reasons[0].code.as_str(), "DUPLICATE_PATH");
        let m = &view.reasons[0].message;
        assert!(
            m.contains("\"a/primary.tar\"") && m.contains("a//./primary.tar"),
            "{m}"
        );
        let id = view.record.dissemination_id.to_string();
        assert!(
            reads(&app, &token, &id).await.is_empty(),
            "nothing was read"
        );
        assert!(app.delivered_keys(&id).await.is_empty());
    }

    // Two members of one TAR that name one path.
    let members = "019e404e-c0c0-7000-8000-000000000003";
    let clashing = pax_tar(&[
        ("content/page.txt".into(), b"one".to_vec()),
        ("content/./page.txt".into(), b"two".to_vec()),
    ]);
    put_aip(
        &app,
        members,
        vec![File {
            path: "primary.tar",
            bytes: clashing,
            copies: vec![("disk", None)],
        }],
    )
    .await;
    for format in ["files", "bagit"] {
        let view = final_view(
            &app,
            &token,
            json!({"archiveId": members, "format": format, "select": ["content/**"]}),
        )
        .await;
        assert_eq!(view.status.as_str(), "REJECTED", "{view:?}");
        assert_eq!(view.reasons[0].code.as_str(), "DUPLICATE_PATH", "{view:?}");
        let id = view.record.dissemination_id.to_string();
        assert!(app.delivered_keys(&id).await.is_empty());
    }
    no_open_upload(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_read_by_preference_and_unreadable_ones_are_skipped() {
    let app = TestApp::start_with(Options {
        configure: Some(std::sync::Arc::new(|cfg| {
            // A tape system that never answers: its copies are given up
            // after `unreadable_retry_ms` (tape.rs has the ones that do).
            cfg.repository.locations.insert(
                "tape1".into(),
                LocationConfig::Tape(TapeLocationConfig {
                    api_url: Some("http://127.0.0.1:1/api/v1".into()),
                    ..Default::default()
                }),
            );
        })),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let bytes = tar(5, &["mets.xml"]);
    let one = |copies: Vec<(&'static str, Option<&'static str>)>| {
        vec![File {
            path: "primary.tar",
            bytes: bytes.clone(),
            copies,
        }]
    };
    let case = |n: u32| format!("019e404e-c0c0-7000-8000-0000000001{n:02}");
    let valid = Some("valid");
    let cases: Vec<(String, Vec<File>)> = vec![
        (case(1), one(vec![("hpss", None), ("disk", valid)])),
        (case(2), one(vec![("hpss", None)])),
        (case(3), one(vec![("s3", valid), ("disk", valid)])),
        (case(4), one(vec![("disk", Some("invalid")), ("s3", valid)])),
        (case(5), one(vec![("nearline", None), ("s3", None)])),
        (case(6), one(vec![("tape1", None)])),
    ];
    for (id, files) in cases {
        put_aip(&app, &id, files).await;
    }
    // The disk copy the repository's audit found bad is really bad: read,
    // it would show as a fixity failure at disk.
    let bad = app.catalog_doc(&case(4)).repository_files[0].locations[0]
        .file_path
        .clone();
    std::fs::write(app.disk_root().join(bad), b"corrupt").unwrap();

    let served_from = |events: &[DisseminationEvent]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.event_type == EventType::Retrieval && e.outcome == Outcome::Success)
            .map(|e| e.location.clone().unwrap_or_default())
            .collect()
    };
    for (n, expect_from, not_read) in [
        (1, "disk", "hpss: no reader (location not configured)"),
        (3, "disk", "s3: lower preference (20)"),
        (4, "s3", "disk: the repository's audit found it invalid"),
        (5, "s3", "nearline: no reader (location not configured)"),
    ] {
        let (id, _) = delivered(&app, &token, json!({"archiveId": case(n)})).await;
        let events = reads(&app, &token, &id).await;
        assert_eq!(served_from(&events), [expect_from], "case {n}: {events:?}");
        assert!(
            events
                .iter()
                .all(|e| e.location.as_deref() == Some(expect_from)),
            "case {n}: no other copy was read: {events:?}"
        );
        let retrieval = events
            .iter()
            .find(|e| e.event_type == EventType::Retrieval)
            .unwrap();
        assert!(
            retrieval.detail.contains(not_read),
            "case {n}: the audit says why {not_read:?}: {}",
            retrieval.detail
        );
    }

    // No copy anyone can read: REJECTED, naming each copy and why.
    for (n, copy, why) in [
        (
            2,
            "hpss",
            "no reader for location hpss: it is not configured",
        ),
        (6, "tape1", "the tape system did not answer"),
    ] {
        let view = final_view(&app, &token, json!({"archiveId": case(n)})).await;
        assert_eq!(view.status.as_str(), "REJECTED", "case {n}: {view:?}");
        assert_eq!(view.reasons[0].code.as_str(), "NO_READABLE_COPY");
        assert!(view.reasons[0].message.contains(why), "{:?}", view.reasons);
        let id = view.record.dissemination_id.to_string();
        let events = reads(&app, &token, &id).await;
        assert!(
            events.iter().any(|e| e.location.as_deref() == Some(copy)
                && e.outcome == Outcome::Failure
                && e.detail.contains(why)),
            "the skipped copy is on the record: {events:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_catalog_entries_are_rejected_by_name() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let good = tar(6, &["mets.xml"]);
    let digest = hex::encode(Sha256::digest(&good));
    demo::write_copy(&app.cfg, "disk", "faulty/good.tar", &good)
        .await
        .unwrap();
    let entry = |path: &str, locations: serde_json::Value| {
        json!({"relativePath": path, "size": good.len(), "locations": locations,
            "fixities": [{"algorithm": "SHA-256", "digest": digest, "originator": "t"}]})
    };
    let disk = json!([{"locationId": "disk", "filePath": "faulty/good.tar"}]);
    let cases = [
        (
            "no filePath",
            entry("a.tar", json!([{"locationId": "disk"}])),
            "a.tar",
        ),
        ("no location", entry("b.tar", json!([])), "b.tar"),
        (
            "locations left out",
            {
                let mut e = entry("c.tar", json!([]));
                e.as_object_mut().unwrap().remove("locations");
                e
            },
            "c.tar",
        ),
        ("climbs out", entry("../x.tar", disk.clone()), "../x.tar"),
        (
            "climbs further",
            entry("a/../../b.tar", disk.clone()),
            "a/../../b.tar",
        ),
    ];
    for (n, (what, file, named)) in cases.into_iter().enumerate() {
        let archive_id = format!("019e404e-c0c0-7000-8000-0000000002{n:02}");
        let doc = json!({
            "intellectualEntity": {"archiveId": archive_id, "accessGroupId": demo::DEMO_CONTRACT,
                "objectId": "faulty", "sumSizeInBytes": good.len(), "status": "preserved",
                "createdDate": "2025-03-25T10:00:00.000000+01:00"},
            "repositoryFiles": [entry("ok.tar", disk.clone()), file],
        });
        std::fs::write(
            app.cfg.catalog.root.join(format!("{archive_id}.json")),
            doc.to_string(),
        )
        .unwrap();
        let view = final_view(&app, &token, json!({"archiveId": archive_id})).await;
        assert_eq!(view.status.as_str(), "REJECTED", "{what}: {view:?}");
        assert_eq!(view.reasons.len(), 1, "{what}: {view:?}");
        assert_eq!(
            view.reasons[0].code.as_str(),
            "INVALID_CATALOG_ENTRY",
            "{what}"
        );
        assert_eq!(view.reasons[0].file_path.as_deref(), Some(named), "{what}");
        let id = view.record.dissemination_id.to_string();
        assert!(app.delivered_keys(&id).await.is_empty(), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_that_cannot_be_read_is_reported_at_start_and_by_readyz() {
    let app = TestApp::start_with(Options::without_worker()).await;
    let port = free_ports(1)[0];
    let mut cfg = (*app.cfg).clone();
    cfg.worker.health_addr = Some(format!("127.0.0.1:{port}").parse().unwrap());
    cfg.repository.locations.insert(
        "mounted".into(),
        LocationConfig::Disk {
            root: app.disk_root().join("not-mounted"),
            preference: None,
        },
    );
    let worker = spawn_worker_process(&cfg, "worker-misconfigured");
    let url = format!("http://127.0.0.1:{port}/readyz");
    let answer = Wait::secs(30).until("/readyz", || reqwest::get(&url)).await;
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    let problem = body["checks"]["repository"]["mounted"].as_str().unwrap();
    assert!(problem.contains("not-mounted"), "{body}");
    assert!(body["checks"]["repository"].get("disk").is_none(), "{body}");
    let log_path = cfg
        .catalog
        .root
        .parent()
        .unwrap()
        .join("worker-misconfigured.log");
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(
        log.contains("repository location cannot be read") && log.contains("mounted"),
        "{log}"
    );
    drop(worker);
}

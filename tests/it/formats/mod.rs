//! Delivery formats, file selection and receipts on the real stack: AIPs of
//! real TARs (nested folders, a GNU long name, a PAX path, a zero-length
//! member, several TARs per AIP) delivered as a BagIt bag checked by the
//! Library of Congress's `bagit` library, as selected members byte for
//! byte, with PREMIS receipts validated by `xmllint` against the official
//! schema (`delivery`); bags from good copies only, failing whole, and
//! cancelled cleanly (`bad_copies`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_copies;
mod delivery;

use crate::support::TestApp;
use serde_json::Value;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};
use worker::demo::{self, AipSpec, DemoFile};

/// How long a test waits for a dissemination to end.
const FINAL: Duration = Duration::from_secs(90);

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

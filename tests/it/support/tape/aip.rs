//! Test AIPs with tape copies: their catalog document, their `disk` and
//! `s3` copies and their files on tape, built before anything runs.

use super::{TapeEntry, TAPE_PREFIX};
use crate::support::TestApp;
use model::catalog::{
    Aip, DigestAlgorithm, FileLocation, Fixity, FsCatalog, IntellectualEntity, RepositoryFile,
};
use sha2::{Digest, Sha256};

/// One repository file of a test AIP: its relative path, bytes, and its
/// copies as (location id, fixityStatus). Copies at `disk` and `s3` are
/// written there; a copy at any other location is a tape copy.
#[derive(Clone, Debug)]
pub struct AipFile<'a> {
    pub path: &'a str,
    pub bytes: Vec<u8>,
    pub copies: Vec<(&'a str, Option<&'a str>)>,
}

/// A test AIP with tape copies, built before anything runs: its catalog
/// document, its disk/s3 copies to write and its files on tape.
#[derive(Clone, Debug)]
pub struct TapeAip {
    pub aip: Aip,
    /// (location id, filePath, bytes) of every copy at `disk` or `s3`.
    pub copies: Vec<(String, String, Vec<u8>)>,
    /// (location id, file on tape) of every other copy.
    pub tape: Vec<(String, TapeEntry)>,
}

/// An AIP (contract `demo::DEMO_CONTRACT`, preserved) whose `n`th file is
/// stored as `{archive_id}/{n}-{path with / as _}`; its tape copies are
/// `/aips/{that}` on `volume` from `position` on (one position per file).
pub fn tape_aip(archive_id: &str, files: &[AipFile<'_>], volume: &str, position: u64) -> TapeAip {
    let mut out = TapeAip {
        aip: Aip {
            intellectual_entity: IntellectualEntity {
                archive_id: model::ArchiveId::parse(archive_id).unwrap(),
                access_group_id: model::ContractId::parse(worker::demo::DEMO_CONTRACT).unwrap(),
                object_id: format!("object-{archive_id}"),
                sum_size_in_bytes: files.iter().map(|f| f.bytes.len() as u64).sum(),
                status: "preserved".into(),
                created_date: "2025-03-25T10:00:00.000000+01:00".into(),
            },
            repository_files: Vec::new(),
        },
        copies: Vec::new(),
        tape: Vec::new(),
    };
    for (n, f) in files.iter().enumerate() {
        let stored = format!("{archive_id}/{n}-{}", f.path.replace('/', "_"));
        let mut locations = Vec::new();
        for (id, status) in &f.copies {
            if ["disk", "s3"].contains(id) {
                out.copies
                    .push(((*id).to_owned(), stored.clone(), f.bytes.clone()));
            } else {
                out.tape.push((
                    (*id).to_owned(),
                    TapeEntry::new(
                        &format!("{TAPE_PREFIX}/{stored}"),
                        f.bytes.clone(),
                        volume,
                        position + n as u64,
                    ),
                ));
            }
            locations.push(FileLocation {
                location_id: (*id).into(),
                file_path: stored.clone(),
                fixity_status: status.map(Into::into),
            });
        }
        out.aip.repository_files.push(RepositoryFile {
            relative_path: f.path.into(),
            size: f.bytes.len() as u64,
            fixities: vec![Fixity {
                algorithm: DigestAlgorithm::Sha256,
                digest: hex::encode(Sha256::digest(&f.bytes)),
                originator: "test".into(),
            }],
            locations,
        });
    }
    out
}

impl TapeAip {
    /// Its files on tape, at every tape location.
    pub fn entries(&self) -> Vec<TapeEntry> {
        self.tape.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Its files on tape at location `id`.
    pub fn entries_at(&self, id: &str) -> Vec<TapeEntry> {
        self.tape
            .iter()
            .filter(|(l, _)| l == id)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Writes its disk/s3 copies and its catalog document into `app`.
    pub async fn put(&self, app: &TestApp) {
        for (id, path, bytes) in &self.copies {
            worker::demo::write_copy(&app.cfg, id, path, bytes)
                .await
                .unwrap();
        }
        FsCatalog::new(&app.cfg.catalog.root)
            .put(&self.aip)
            .unwrap();
    }
}

/// [`tape_aip`] put into `app` at once, its tape files appended to
/// `lib_files` (for [`TapeLibrary::start`], or
/// [`TapeLibrary::add_files`] on a running library).
pub async fn put_tape_aip(
    app: &TestApp,
    lib_files: &mut Vec<TapeEntry>,
    archive_id: &str,
    files: &[AipFile<'_>],
    volume: &str,
    position: u64,
) -> Aip {
    let aip = tape_aip(archive_id, files, volume, position);
    aip.put(app).await;
    lib_files.extend(aip.entries());
    aip.aip
}

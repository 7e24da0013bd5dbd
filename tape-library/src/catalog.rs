//! What is on tape: the files under `--tape-dir` and, from `--manifest`,
//! the volume each one is written on, its place on that volume and its
//! health.
//!
//! The manifest (JSON, read once at start) is
//!
//! ```json
//! {"files": {
//!    "/aips/a/primary.tar": {"volume": "V001", "position": 1},
//!    "/aips/b/primary.tar": {"volume": "V001", "position": 2},
//!    "/aips/c/primary.tar": {"volume": "V002", "state": "lost"},
//!    "/aips/d/primary.tar": {"volume": "V003", "state": "unavailable"}
//! }}
//! ```
//!
//! `state` is `ok` (the default), `lost` (the tape copy is unrecoverable)
//! or `unavailable` (temporarily unreadable). `position` orders the files of
//! a volume as a drive passes them (default 0; ties by path). A file under
//! the tape folder that the manifest does not name is on volume `default`.
//! A manifest entry need not exist under the tape folder when it is lost or
//! unavailable: its metadata outlives its data.

use crate::nspath::NsPath;
use anyhow::Context;
use serde::Deserialize;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

/// The volume of a file that the manifest does not name.
pub const DEFAULT_VOLUME: &str = "default";

/// The health of a file's tape copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Ok,
    Lost,
    Unavailable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    files: HashMap<String, ManifestEntry>,
}

/// One file's entry in the manifest.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub volume: String,
    #[serde(default)]
    pub position: u64,
    #[serde(default)]
    pub state: Health,
}

/// A file on tape, as the scheduler needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapeFile {
    pub volume: String,
    pub position: u64,
    pub size: u64,
    pub health: Health,
}

/// What the namespace says about a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    File(TapeFile),
    /// A directory: nothing a tape system would store as a file.
    NotAFile,
    Missing,
}

/// The tape folder and the manifest.
#[derive(Debug)]
pub struct Catalog {
    tape_dir: PathBuf,
    entries: HashMap<NsPath, ManifestEntry>,
}

impl Catalog {
    /// Reads the manifest, if any; its paths are sanitised like the API's.
    pub fn load(tape_dir: PathBuf, manifest: Option<&Path>) -> anyhow::Result<Self> {
        let mut entries = HashMap::new();
        if let Some(path) = manifest {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the manifest {}", path.display()))?;
            let parsed: ManifestFile = serde_json::from_str(&text)
                .with_context(|| format!("parsing the manifest {}", path.display()))?;
            for (raw, entry) in parsed.files {
                let ns = NsPath::parse(&raw)
                    .with_context(|| format!("manifest path {raw:?} in {}", path.display()))?;
                entries.insert(ns, entry);
            }
        }
        Ok(Self { tape_dir, entries })
    }

    /// An empty manifest over `tape_dir` (tests).
    pub fn without_manifest(tape_dir: PathBuf) -> Self {
        Self {
            tape_dir,
            entries: HashMap::new(),
        }
    }

    pub fn tape_path(&self, path: &NsPath) -> PathBuf {
        path.under(&self.tape_dir)
    }

    /// Looks a path up on the tape folder (blocking: a `stat`).
    pub fn lookup(&self, path: &NsPath) -> Lookup {
        let entry = self.entries.get(path);
        let meta = std::fs::metadata(self.tape_path(path));
        match (meta, entry) {
            (Ok(m), _) if !m.is_file() => Lookup::NotAFile,
            (Ok(m), e) => Lookup::File(tape_file(e, m.len())),
            (Err(_), Some(e)) if e.state != Health::Ok => Lookup::File(tape_file(Some(e), 0)),
            (Err(_), _) => Lookup::Missing,
        }
    }
}

fn tape_file(entry: Option<&ManifestEntry>, size: u64) -> TapeFile {
    match entry {
        Some(e) => TapeFile {
            volume: e.volume.clone(),
            position: e.position,
            size,
            health: e.state,
        },
        None => TapeFile {
            volume: DEFAULT_VOLUME.to_owned(),
            position: 0,
            size,
            health: Health::Ok,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tape-library-catalog-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tape/a")).expect("scratch dir");
        dir
    }

    #[test]
    fn manifest_gives_volume_position_and_health() {
        let dir = scratch("manifest");
        std::fs::write(dir.join("tape/a/x.tar"), b"xx").expect("write");
        std::fs::write(dir.join("tape/a/y.tar"), b"yyy").expect("write");
        let manifest = dir.join("manifest.json");
        std::fs::write(
            &manifest,
            r#"{"files": {"//a/x.tar": {"volume": "V1", "position": 7},
                          "/a/gone.tar": {"volume": "V2", "state": "lost"}}}"#,
        )
        .expect("write");
        let cat = Catalog::load(dir.join("tape"), Some(&manifest)).expect("loads");
        let p = |s| NsPath::parse(s).expect("valid");
        assert_eq!(
            cat.lookup(&p("/a/x.tar")),
            Lookup::File(TapeFile {
                volume: "V1".into(),
                position: 7,
                size: 2,
                health: Health::Ok
            })
        );
        let Lookup::File(y) = cat.lookup(&p("/a/y.tar")) else {
            panic!("y is on tape");
        };
        assert_eq!((y.volume.as_str(), y.size), (DEFAULT_VOLUME, 3));
        let Lookup::File(gone) = cat.lookup(&p("/a/gone.tar")) else {
            panic!("a lost file keeps its entry");
        };
        assert_eq!(gone.health, Health::Lost);
        assert_eq!(cat.lookup(&p("/a")), Lookup::NotAFile);
        assert_eq!(cat.lookup(&p("/a/none.tar")), Lookup::Missing);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_manifest_with_unknown_fields_is_refused() {
        let dir = scratch("strict");
        let manifest = dir.join("manifest.json");
        std::fs::write(
            &manifest,
            r#"{"files": {"/a": {"volume": "V", "colour": 1}}}"#,
        )
        .expect("write");
        assert!(Catalog::load(dir.join("tape"), Some(&manifest)).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}

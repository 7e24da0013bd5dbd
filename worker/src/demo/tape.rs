//! The demo AIPs with copies on tape: the copies are written into the
//! `tape-library`'s tape folder and listed in its manifest (volume and
//! position), at the namespace path the tape location's `path_prefix`
//! gives them.

use super::content::primary_tar;
use super::{
    tar_of, write_aip_with_tape, write_file, AipSpec, DemoFile, DEMO_CONTRACT, DEMO_TAPE_AND_DISK,
    DEMO_TAPE_LOCATION, DEMO_TAPE_ONLY,
};
use anyhow::Context;
use model::catalog::Aip;
use platform::config::{Config, LocationConfig};
use std::path::{Path, PathBuf};

/// Where the tape copies of the demo AIPs go: the tape location
/// [`DEMO_TAPE_LOCATION`] (`[repository.locations.hpss] kind = "tape"`,
/// whose `path_prefix` places them in the namespace) is a `tape-library`
/// with this `--tape-dir` and `--manifest`.
#[derive(Clone, Debug)]
pub struct TapeSeed {
    pub tape_dir: PathBuf,
    pub manifest: PathBuf,
}

impl TapeSeed {
    /// The namespace path of the copy whose `filePath` is `rel`:
    /// `path_prefix` joined with it.
    fn namespace_path(cfg: &Config, rel: &str) -> anyhow::Result<String> {
        match cfg.repository.locations.get(DEMO_TAPE_LOCATION) {
            Some(LocationConfig::Tape(t)) => Ok(format!(
                "{}/{}",
                t.path_prefix.trim_end_matches('/'),
                rel.trim_start_matches('/')
            )),
            _ => anyhow::bail!("location {DEMO_TAPE_LOCATION} is not a tape location"),
        }
    }

    /// Puts `bytes` on tape as the copy `rel`; its namespace path.
    pub(super) async fn write(
        &self,
        cfg: &Config,
        rel: &str,
        bytes: &[u8],
    ) -> anyhow::Result<String> {
        let ns = Self::namespace_path(cfg, rel)?;
        write_file(&self.tape_dir.join(ns.trim_start_matches('/')), bytes).await?;
        Ok(ns)
    }

    /// Adds (or replaces) the (namespace path, volume, position) entries
    /// of the manifest, keeping the others; written whole, then renamed.
    pub(super) fn add_to_manifest(&self, entries: &[(String, String, u64)]) -> anyhow::Result<()> {
        let mut doc: serde_json::Value = match std::fs::read_to_string(&self.manifest) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", self.manifest.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", self.manifest.display()))
            }
        };
        let root = doc
            .as_object_mut()
            .context("the manifest is a JSON object")?;
        let files = root
            .entry("files")
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .context("the manifest's files are a JSON object")?;
        for (path, volume, position) in entries {
            files.insert(
                path.clone(),
                serde_json::json!({"volume": volume, "position": position}),
            );
        }
        write_atomically(
            &self.manifest,
            serde_json::to_string_pretty(&doc)?.as_bytes(),
        )
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing {}", path.display()))
}

/// The demo AIPs with tape copies, at [`DEMO_TAPE_LOCATION`] (which must
/// be configured as a tape location): one on tape only
/// ([`DEMO_TAPE_ONLY`], volume `DEMO01`) and one on tape and on `disk`
/// ([`DEMO_TAPE_AND_DISK`], volume `DEMO02`). The library reads its
/// manifest at start: seed before starting it (or restart it). Idempotent.
pub async fn seed_tape(cfg: &Config, tape: &TapeSeed) -> anyhow::Result<Vec<Aip>> {
    let location = DEMO_TAPE_LOCATION;
    match cfg.repository.locations.get(location) {
        Some(LocationConfig::Tape(_)) => {}
        Some(other) => anyhow::bail!(
            "location {location} is of kind {}, not tape",
            other.kind().as_str()
        ),
        None => anyhow::bail!("location {location} is not configured"),
    }
    let specs = [
        (
            AipSpec {
                archive_id: DEMO_TAPE_ONLY.into(),
                contract: DEMO_CONTRACT.into(),
                object_id: "digifoto_3e8a0c71-5d2f-4b9a-8e6c-1f7d2a9b4c05".into(),
                status: "preserved".into(),
                files: vec![DemoFile {
                    name: "primary_20250328.tar".into(),
                    bytes: primary_tar(17, 128)?,
                }],
                locations: vec![location],
            },
            "DEMO01",
        ),
        (
            AipSpec {
                archive_id: DEMO_TAPE_AND_DISK.into(),
                contract: DEMO_CONTRACT.into(),
                object_id: "digifoto_9b4f2e60-7a1c-4d8e-b3f5-0c6a8d2e1f97".into(),
                status: "preserved".into(),
                files: vec![
                    DemoFile {
                        name: "metadata.tar".into(),
                        bytes: tar_of(&[(
                            "premis.xml",
                            b"<premis><object/><event/></premis>\n".to_vec(),
                        )])?,
                    },
                    DemoFile {
                        name: "primary_20250329.tar".into(),
                        bytes: primary_tar(19, 64)?,
                    },
                ],
                locations: vec![location, "disk"],
            },
            "DEMO02",
        ),
    ];
    let mut out = Vec::new();
    for (spec, volume) in &specs {
        out.push(write_aip_with_tape(cfg, spec, Some((tape, volume))).await?);
    }
    Ok(out)
}

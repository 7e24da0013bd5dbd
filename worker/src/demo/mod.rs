//! Demo AIPs for the embedded default: real TAR files with real content and
//! real digests, described in the catalog the way DPS describes them, with a
//! copy in the `disk` location and one in the `s3` location; and, with
//! [`seed_tape`], two AIPs with copies on tape (the embedded default's
//! `tape-library`: its tape folder and manifest are written here).
//!
//! The parts: `content` makes the bytes (deterministic, incompressible,
//! TARs with fixed headers), `tape` puts copies on the stand-in tape
//! system, `large` streams an AIP too large to hold in memory.

mod content;
mod large;
mod tape;

pub use content::{pseudo_random, tar_of};
pub use large::seed_large;
pub use tape::{seed_tape, TapeSeed};

use activities::{digest::digests_of, s3::S3};
use anyhow::Context;
use content::primary_tar;
use model::{
    catalog::{
        Aip, DigestAlgorithm, FileLocation, Fixity, FsCatalog, IntellectualEntity, RepositoryFile,
    },
    ArchiveId, ContractId,
};
use platform::config::{Config, LocationConfig};
use std::{collections::BTreeMap, path::Path};

pub const DEMO_CONTRACT: &str = "2d17";
pub const OTHER_CONTRACT: &str = "8a3c";
/// One TAR, preserved, in contract 2d17 (the id of the spec's example).
pub const DEMO_SINGLE: &str = "019e404e-60ab-7457-b7c9-94c453242c69";
/// Two TARs (metadata + primary), preserved, contract 2d17.
pub const DEMO_TWO_FILES: &str = "019e404e-7c1d-7a2b-8f3e-2b5d9c1e4a10";
/// Still being ingested: not `preserved`.
pub const DEMO_NOT_PRESERVED: &str = "019e404e-9a4f-7c3d-a1b2-3c4d5e6f7a8b";
/// A legacy 24-hex id, in another contract.
pub const DEMO_OTHER_CONTRACT: &str = "5f1b2c3d4e5f6a7b8c9d0e1f";
/// One TAR whose only copy is on tape (contract 2d17; [`seed_tape`]).
pub const DEMO_TAPE_ONLY: &str = "019e404e-b7a3-7d1e-9c2f-6a5b4c3d2e1f";
/// Two TARs with a copy on tape and one on disk (contract 2d17;
/// [`seed_tape`]).
pub const DEMO_TAPE_AND_DISK: &str = "019e404e-d4e5-7f60-8a1b-2c3d4e5f6a7b";
/// The tape location of the demo's tape copies, as the embedded default
/// configures it (scripts/stack.sh).
pub const DEMO_TAPE_LOCATION: &str = "hpss";

/// When every demo AIP was created, as the catalog has it.
const CREATED_DATE: &str = "2025-03-25T10:00:00.000000+01:00";

/// One repository file of an AIP to create.
pub struct DemoFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

pub struct AipSpec {
    pub archive_id: String,
    pub contract: String,
    pub object_id: String,
    pub status: String,
    pub files: Vec<DemoFile>,
    /// Configured locations (`[repository.locations.<id>]`) holding a copy,
    /// in the catalog's order.
    pub locations: Vec<&'static str>,
}

fn fixities(bytes: &[u8]) -> Vec<Fixity> {
    let algs = [
        DigestAlgorithm::Md5,
        DigestAlgorithm::Sha1,
        DigestAlgorithm::Sha256,
    ];
    ingest_fixities(digests_of(bytes, &algs))
}

/// Digests as the fixities ingest recorded.
fn ingest_fixities(digests: BTreeMap<DigestAlgorithm, String>) -> Vec<Fixity> {
    digests
        .into_iter()
        .map(|(algorithm, digest)| Fixity {
            algorithm,
            digest,
            originator: "dps-ingest".into(),
        })
        .collect()
}

/// A copy at `location_id` whose fixity the repository last found valid.
fn valid_copy(location_id: &str, file_path: String) -> FileLocation {
    FileLocation {
        location_id: location_id.into(),
        file_path,
        fixity_status: Some("valid".into()),
    }
}

/// Writes an AIP's files to its locations and its document to the catalog.
pub async fn write_aip(cfg: &Config, spec: &AipSpec) -> anyhow::Result<Aip> {
    write_aip_with_tape(cfg, spec, None).await
}

/// [`write_aip`], with the copies at [`DEMO_TAPE_LOCATION`] put on `tape`
/// (its tape folder and manifest), on the volume given from position 1 on
/// (one file a position).
async fn write_aip_with_tape(
    cfg: &Config,
    spec: &AipSpec,
    tape: Option<(&TapeSeed, &str)>,
) -> anyhow::Result<Aip> {
    let archive_id = ArchiveId::parse(&spec.archive_id)?;
    let mut files = Vec::new();
    let mut on_tape = Vec::new();
    for (n, f) in spec.files.iter().enumerate() {
        let rel = format!("{}/{}", archive_id, f.name);
        let mut locations = Vec::new();
        for id in &spec.locations {
            match tape {
                Some((t, volume)) if *id == DEMO_TAPE_LOCATION => {
                    let path = t.write(cfg, &rel, &f.bytes).await?;
                    on_tape.push((path, volume.to_owned(), n as u64 + 1));
                }
                _ => write_copy(cfg, id, &rel, &f.bytes).await?,
            }
            locations.push(valid_copy(id, rel.clone()));
        }
        files.push(RepositoryFile {
            relative_path: f.name.clone(),
            size: f.bytes.len() as u64,
            fixities: fixities(&f.bytes),
            locations,
        });
    }
    let aip = Aip {
        intellectual_entity: IntellectualEntity {
            archive_id,
            access_group_id: ContractId::parse(&spec.contract)?,
            object_id: spec.object_id.clone(),
            sum_size_in_bytes: files.iter().map(|f| f.size).sum(),
            status: spec.status.clone(),
            created_date: CREATED_DATE.into(),
        },
        repository_files: files,
    };
    if let Some((t, _)) = tape {
        t.add_to_manifest(&on_tape)?;
    }
    FsCatalog::new(&cfg.catalog.root)
        .put(&aip)
        .context("writing the catalog document")?;
    Ok(aip)
}
/// A copy of `bytes` at `path` in configured location `id`.
pub async fn write_copy(cfg: &Config, id: &str, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
    match cfg.repository.locations.get(id) {
        Some(LocationConfig::Disk { root, .. }) => write_file(&root.join(path), bytes).await,
        Some(LocationConfig::S3(l)) => {
            let s3 = S3::new(&l.client_config(&cfg.s3));
            s3.ensure_bucket(&l.bucket).await?;
            s3.put_small(&l.bucket, path, bytes.to_vec().into()).await
        }
        Some(other) => anyhow::bail!(
            "location {id} is of kind {}: demo copies go to disk or s3",
            other.kind().as_str()
        ),
        None => anyhow::bail!("location {id} is not configured"),
    }
}

/// The standard demo set. Idempotent: rewrites the same bytes.
pub async fn seed(cfg: &Config) -> anyhow::Result<Vec<Aip>> {
    let both = vec!["disk", "s3"];
    let specs = vec![
        AipSpec {
            archive_id: DEMO_SINGLE.into(),
            contract: DEMO_CONTRACT.into(),
            object_id: "digifoto_5584a028-ba43-4ecb-bb67-7663cc802010".into(),
            status: "preserved".into(),
            files: vec![DemoFile {
                name: "primary_20250325.tar".into(),
                bytes: primary_tar(1, 256)?,
            }],
            locations: both.clone(),
        },
        AipSpec {
            archive_id: DEMO_TWO_FILES.into(),
            contract: DEMO_CONTRACT.into(),
            object_id: "digifoto_7d2c1e55-0b6a-4f0e-9a51-3f1c2b7e8d90".into(),
            status: "preserved".into(),
            files: vec![
                DemoFile {
                    name: "metadata.tar".into(),
                    bytes: tar_of(&[("premis.xml", b"<premis><object/></premis>\n".to_vec())])?,
                },
                DemoFile {
                    name: "primary_20250326.tar".into(),
                    bytes: primary_tar(7, 128)?,
                },
            ],
            locations: both.clone(),
        },
        AipSpec {
            archive_id: DEMO_NOT_PRESERVED.into(),
            contract: DEMO_CONTRACT.into(),
            object_id: "digifoto_in_ingest".into(),
            status: "processing".into(),
            files: vec![DemoFile {
                name: "primary_20250327.tar".into(),
                bytes: primary_tar(11, 16)?,
            }],
            locations: vec!["disk"],
        },
        AipSpec {
            archive_id: DEMO_OTHER_CONTRACT.into(),
            contract: OTHER_CONTRACT.into(),
            object_id: "legacy_object_0001".into(),
            status: "preserved".into(),
            files: vec![DemoFile {
                name: "primary_2019.tar".into(),
                bytes: primary_tar(13, 16)?,
            }],
            locations: both,
        },
    ];
    let mut out = Vec::new();
    for spec in &specs {
        out.push(write_aip(cfg, spec).await?);
    }
    Ok(out)
}

/// `n` small single-TAR AIPs on disk (batches, benchmarks), each with
/// `kib` KiB of content; their archiveIds.
pub async fn seed_small(
    cfg: &Config,
    prefix: &str,
    n: usize,
    kib: usize,
) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        prefix.len() == 4 && prefix.chars().all(|c| c.is_ascii_hexdigit()),
        "the prefix is four hex digits"
    );
    anyhow::ensure!(n > 0, "at least one AIP");
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let archive_id = format!("019e404e-{prefix}-7000-8000-{i:012x}");
        let tar = tar_of(&[
            ("METS.xml", format!("<mets n=\"{i}\"/>\n").into_bytes()),
            ("content/page.txt", pseudo_random(i as u64 + 1, kib * 1024)),
        ])?;
        write_aip(
            cfg,
            &AipSpec {
                archive_id: archive_id.clone(),
                contract: DEMO_CONTRACT.into(),
                object_id: format!("small-{prefix}-{i}"),
                status: "preserved".into(),
                files: vec![DemoFile {
                    name: "primary.tar".into(),
                    bytes: tar,
                }],
                locations: vec!["disk"],
            },
        )
        .await?;
        ids.push(archive_id);
    }
    Ok(ids)
}

/// Writes `bytes` to `path`, creating its folder.
async fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::write(path, bytes)
        .await
        .with_context(|| format!("writing {}", path.display()))
}

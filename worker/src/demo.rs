//! Demo AIPs for the embedded default: real TAR files with real content and
//! real digests, described in the catalog the way DPS describes them, with a
//! copy in the `disk` location and one in the `s3` location; and, with
//! [`seed_tape`], two AIPs with copies on tape (the embedded default's
//! `tape-library`: its tape folder and manifest are written here).

use activities::{digest::digests_of, s3::S3};
use anyhow::Context;
use model::{
    catalog::{
        Aip, DigestAlgorithm, FileLocation, Fixity, FsCatalog, IntellectualEntity, RepositoryFile,
    },
    ArchiveId, ContractId,
};
use platform::config::{Config, LocationConfig};
use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

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

/// Deterministic bytes that do not compress (xorshift).
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut rng = PseudoRandom(seed | 1);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

struct PseudoRandom(u64);

impl PseudoRandom {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A `Read` of `len` pseudo-random bytes, for large files without holding them.
struct PseudoRandomReader {
    rng: PseudoRandom,
    left: u64,
}

impl Read for PseudoRandomReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            let v = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A TAR holding the given (name, content) entries.
pub fn tar_of(entries: &[(&str, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_742_860_800); // 2025-03-25, fixed so digests are stable
        header.set_cksum();
        builder.append_data(&mut header, name, content.as_slice())?;
    }
    Ok(builder.into_inner()?)
}

fn fixities(bytes: &[u8]) -> Vec<Fixity> {
    let algs = [
        DigestAlgorithm::Md5,
        DigestAlgorithm::Sha1,
        DigestAlgorithm::Sha256,
    ];
    digests_of(bytes, &algs)
        .into_iter()
        .map(|(algorithm, digest)| Fixity {
            algorithm,
            digest,
            originator: "dps-ingest".into(),
        })
        .collect()
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
            locations.push(FileLocation {
                location_id: (*id).into(),
                file_path: rel.clone(),
                fixity_status: Some("valid".into()),
            });
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
            created_date: "2025-03-25T10:00:00.000000+01:00".into(),
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
    async fn write(&self, cfg: &Config, rel: &str, bytes: &[u8]) -> anyhow::Result<String> {
        let ns = Self::namespace_path(cfg, rel)?;
        let path = self.tape_dir.join(ns.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&path, bytes)
            .await
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(ns)
    }

    /// Adds (or replaces) the (namespace path, volume, position) entries
    /// of the manifest, keeping the others; written whole, then renamed.
    fn add_to_manifest(&self, entries: &[(String, String, u64)]) -> anyhow::Result<()> {
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

/// A copy of `bytes` at `path` in configured location `id`.
pub async fn write_copy(cfg: &Config, id: &str, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
    match cfg.repository.locations.get(id) {
        Some(LocationConfig::Disk { root, .. }) => {
            let path = root.join(path);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::write(&path, bytes)
                .await
                .with_context(|| format!("writing {}", path.display()))
        }
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

fn primary_tar(seed: u64, image_kib: usize) -> anyhow::Result<Vec<u8>> {
    tar_of(&[
        (
            "mets.xml",
            format!("<mets OBJID=\"demo-{seed}\"><dmdSec ID=\"dmd1\"/></mets>\n").into_bytes(),
        ),
        ("image_0001.tif", pseudo_random(seed, image_kib * 1024)),
        ("image_0002.tif", pseudo_random(seed + 1, image_kib * 512)),
        (
            "README.txt",
            b"Demo AIP of the Dissemination Service.\n".to_vec(),
        ),
    ])
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

/// A large single-TAR AIP on the `disk` location, streamed to disk so its
/// size is not bounded by memory (benchmarks, progress).
pub async fn seed_large(cfg: &Config, archive_id: &str, mib: u64) -> anyhow::Result<Aip> {
    let archive_id = ArchiveId::parse(archive_id)?;
    let name = "primary_large.tar".to_owned();
    let rel = format!("{archive_id}/{name}");
    let path = cfg
        .repository
        .disk_root("disk")
        .context("seed_large writes to the disk location \"disk\"")?
        .join(&rel);
    let cfg2 = cfg.clone();
    let (size, fixities) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, Vec<Fixity>)> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let file = std::fs::File::create(&path)?;
            let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
            let mut header = tar::Header::new_gnu();
            header.set_size(mib * 1024 * 1024);
            header.set_mode(0o644);
            header.set_mtime(1_742_860_800);
            header.set_cksum();
            let reader = PseudoRandomReader {
                rng: PseudoRandom(mib | 1),
                left: mib * 1024 * 1024,
            };
            builder.append_data(&mut header, "payload.bin", reader)?;
            builder.into_inner()?.flush()?;
            drop(cfg2);
            let mut hasher = activities::digest::MultiHasher::new(&[
                DigestAlgorithm::Md5,
                DigestAlgorithm::Sha256,
            ]);
            let mut f = std::fs::File::open(&path)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut size = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            let fixities = hasher
                .finish()
                .into_iter()
                .map(|(algorithm, digest)| Fixity {
                    algorithm,
                    digest,
                    originator: "dps-ingest".into(),
                })
                .collect();
            Ok((size, fixities))
        })
        .await??;
    let aip = Aip {
        intellectual_entity: IntellectualEntity {
            archive_id: archive_id.clone(),
            access_group_id: ContractId::parse(DEMO_CONTRACT)?,
            object_id: format!("large_{mib}_mib"),
            sum_size_in_bytes: size,
            status: "preserved".into(),
            created_date: "2025-03-25T10:00:00.000000+01:00".into(),
        },
        repository_files: vec![RepositoryFile {
            relative_path: name,
            size,
            fixities,
            locations: vec![FileLocation {
                location_id: "disk".into(),
                file_path: rel,
                fixity_status: Some("valid".into()),
            }],
        }],
    };
    FsCatalog::new(&cfg.catalog.root).put(&aip)?;
    Ok(aip)
}

//! A large demo AIP, streamed to disk and hashed from there, so its size
//! is bounded by the disk, not by memory (benchmarks, progress reports).

use super::content::{file_header, PseudoRandom, PseudoRandomReader};
use super::{ingest_fixities, valid_copy, CREATED_DATE, DEMO_CONTRACT};
use anyhow::Context;
use model::{
    catalog::{Aip, DigestAlgorithm, Fixity, FsCatalog, IntellectualEntity, RepositoryFile},
    ArchiveId, ContractId,
};
use platform::config::Config;
use std::io::{Read, Write};

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
            let mut header = file_header(mib * 1024 * 1024);
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
            Ok((size, ingest_fixities(hasher.finish())))
        })
        .await??;
    let aip = Aip {
        intellectual_entity: IntellectualEntity {
            archive_id: archive_id.clone(),
            access_group_id: ContractId::parse(DEMO_CONTRACT)?,
            object_id: format!("large_{mib}_mib"),
            sum_size_in_bytes: size,
            status: "preserved".into(),
            created_date: CREATED_DATE.into(),
        },
        repository_files: vec![RepositoryFile {
            relative_path: name,
            size,
            fixities,
            locations: vec![valid_copy("disk", rel)],
        }],
    };
    FsCatalog::new(&cfg.catalog.root).put(&aip)?;
    Ok(aip)
}

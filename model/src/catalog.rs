//! The catalog model as DPS describes an AIP: an intellectual entity plus its
//! repository files, each with stored fixities and the locations holding a
//! copy. The catalog is a trait so a DPS metadata-service adapter can replace
//! the embedded folder-of-documents default.

use crate::ids::{ArchiveId, ContractId};
use serde::{Deserialize, Serialize};
use std::{future::Future, path::PathBuf, pin::Pin};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aip {
    pub intellectual_entity: IntellectualEntity,
    pub repository_files: Vec<RepositoryFile>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntellectualEntity {
    pub archive_id: ArchiveId,
    /// The contract the AIP belongs to.
    pub access_group_id: ContractId,
    /// The client's own id for the object, unique within the contract.
    pub object_id: String,
    pub sum_size_in_bytes: u64,
    pub status: String,
    pub created_date: String,
}

impl IntellectualEntity {
    /// `preserved` is the only status that may be disseminated.
    pub fn is_preserved(&self) -> bool {
        self.status == "preserved"
    }
}

/// A repository file as the catalog lists it. Fields a faulty catalog may
/// leave out default to empty: the workflow refuses such an entry by name
/// (`INVALID_CATALOG_ENTRY`) instead of the whole document failing to parse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryFile {
    /// The file's path within the AIP, e.g. `primary_20250325.tar` or
    /// `v2/primary.tar`.
    #[serde(default)]
    pub relative_path: String,
    pub size: u64,
    #[serde(default)]
    pub fixities: Vec<Fixity>,
    /// Copies in the bit repository, in the catalog's order.
    #[serde(default)]
    pub locations: Vec<FileLocation>,
}

impl RepositoryFile {
    /// The strongest stored digest (SHA-512 > SHA-256 > SHA-1 > MD5).
    pub fn strongest_fixity(&self) -> Option<&Fixity> {
        self.fixities.iter().max_by_key(|f| f.algorithm.strength())
    }

    pub fn fixity(&self, algorithm: DigestAlgorithm) -> Option<&Fixity> {
        self.fixities.iter().find(|f| f.algorithm == algorithm)
    }

    /// The last path segment: the name a client saw before paths were
    /// kept (v1.1 executions still deliver under it).
    pub fn filename(&self) -> &str {
        self.relative_path
            .rsplit('/')
            .next()
            .unwrap_or(&self.relative_path)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DigestAlgorithm {
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "SHA-1")]
    Sha1,
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "SHA-512")]
    Sha512,
}

impl DigestAlgorithm {
    pub fn strength(self) -> u8 {
        match self {
            Self::Md5 => 1,
            Self::Sha1 => 2,
            Self::Sha256 => 3,
            Self::Sha512 => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha512 => "SHA-512",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fixity {
    pub algorithm: DigestAlgorithm,
    /// Lowercase hex.
    pub digest: String,
    pub originator: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileLocation {
    /// The bit repository's location, e.g. `disk`, `s3` or `hpss`: the
    /// operator configures each one the catalog uses, with its kind.
    pub location_id: String,
    /// Where the copy is within its location (empty: a faulty entry).
    #[serde(default)]
    pub file_path: String,
    /// The repository's last fixity audit of this copy: `valid`, or
    /// anything else when it found a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixity_status: Option<String>,
}

impl FileLocation {
    /// The repository's own audit found this copy bad: tried last.
    pub fn known_bad(&self) -> bool {
        self.fixity_status
            .as_deref()
            .is_some_and(|s| !s.trim().eq_ignore_ascii_case("valid"))
    }
}

/// How a location of the bit repository is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationKind {
    /// A folder (local or mounted).
    Disk,
    /// A bucket on an S3 endpoint.
    S3,
    /// A tape system behind the WLCG Tape REST API: staged, then read.
    Tape,
}

impl LocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disk => "disk",
            Self::S3 => "s3",
            Self::Tape => "tape",
        }
    }

    /// Tried before higher values; the catalog's order breaks ties.
    pub fn default_preference(self) -> u32 {
        match self {
            Self::Disk => 10,
            Self::S3 => 20,
            Self::Tape => 90,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
    #[error("catalog document for {archive_id} is invalid: {reason}")]
    Invalid { archive_id: String, reason: String },
}

pub type CatalogFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Aip>, CatalogError>> + Send + 'a>>;

pub type ReadyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CatalogError>> + Send + 'a>>;

/// Where AIP metadata is read from.
pub trait Catalog: Send + Sync {
    fn get<'a>(&'a self, archive_id: &'a ArchiveId) -> CatalogFuture<'a>;
    /// Whether the catalog can answer now.
    fn ready(&self) -> ReadyFuture<'_>;
}

/// The embedded default: one JSON document per AIP, `{root}/{archiveId}.json`.
#[derive(Clone, Debug)]
pub struct FsCatalog {
    root: PathBuf,
}

impl FsCatalog {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn document_path(&self, archive_id: &ArchiveId) -> PathBuf {
        // ArchiveId is hex and hyphens only, so this cannot leave the root.
        self.root.join(format!("{}.json", archive_id.as_str()))
    }

    /// Writes (or replaces) an AIP's document.
    pub fn put(&self, aip: &Aip) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        let path = self.document_path(&aip.intellectual_entity.archive_id);
        let json = serde_json::to_vec_pretty(aip).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, path)
    }
}

impl Catalog for FsCatalog {
    fn ready(&self) -> ReadyFuture<'_> {
        Box::pin(async move {
            match tokio::fs::metadata(&self.root).await {
                Ok(m) if m.is_dir() => Ok(()),
                _ => Err(CatalogError::Unavailable(format!(
                    "catalog folder {} is missing",
                    self.root.display()
                ))),
            }
        })
    }

    fn get<'a>(&'a self, archive_id: &'a ArchiveId) -> CatalogFuture<'a> {
        Box::pin(async move {
            let path = self.document_path(archive_id);
            let bytes = match tokio::fs::read(&path).await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if tokio::fs::metadata(&self.root).await.is_err() {
                        return Err(CatalogError::Unavailable(format!(
                            "catalog folder {} is missing",
                            self.root.display()
                        )));
                    }
                    return Ok(None);
                }
                Err(e) => return Err(CatalogError::Unavailable(e.to_string())),
            };
            let aip: Aip = serde_json::from_slice(&bytes).map_err(|e| CatalogError::Invalid {
                archive_id: archive_id.to_string(),
                reason: e.to_string(),
            })?;
            Ok(Some(aip))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> RepositoryFile {
        RepositoryFile {
            relative_path: "aip/primary_20250325.tar".into(),
            size: 10,
            fixities: vec![
                Fixity {
                    algorithm: DigestAlgorithm::Md5,
                    digest: "a".into(),
                    originator: "dps".into(),
                },
                Fixity {
                    algorithm: DigestAlgorithm::Sha256,
                    digest: "c".into(),
                    originator: "dps".into(),
                },
                Fixity {
                    algorithm: DigestAlgorithm::Sha1,
                    digest: "b".into(),
                    originator: "dps".into(),
                },
            ],
            locations: vec![],
        }
    }

    #[test]
    fn strongest_fixity_wins() {
        let f = file();
        assert_eq!(
            f.strongest_fixity().map(|x| x.algorithm),
            Some(DigestAlgorithm::Sha256)
        );
        assert_eq!(f.filename(), "primary_20250325.tar");
    }

    #[test]
    fn algorithm_names_are_dps_names() {
        let json = serde_json::to_string(&file().fixities).expect("serialises");
        assert!(
            json.contains("\"MD5\"") && json.contains("\"SHA-256\"") && json.contains("\"SHA-1\"")
        );
    }
}

//! `[catalog]` and `[repository]`: where AIPs are described (the catalog's
//! folder) and where their copies are read (the bit repository's locations
//! by id: disk, S3 or tape, each with its preference).

use super::{expose_opt, S3Config, TapeLocationConfig};
use model::catalog::LocationKind;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, path::PathBuf};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct CatalogConfig {
    /// Folder of AIP documents (the embedded catalog).
    pub root: PathBuf,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            root: ".data/catalog".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RepositoryConfig {
    /// Every location the catalog names, by its `locationId`: how it is
    /// read and how much it is preferred. A copy at a location not listed
    /// here is unreadable (skipped, never fatal by itself).
    pub locations: BTreeMap<String, LocationConfig>,
    /// Cap on the read rate from a location per download, to spare the bit
    /// repository (tape recalls, shared disks); none when absent.
    pub max_read_bytes_per_sec: Option<u64>,
    /// Replaced by `[repository.locations.disk]`: refused when set, so an
    /// old configuration is not silently ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_root: Option<PathBuf>,
    /// Replaced by `[repository.locations.s3]` (see `disk_root`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        let locations = [
            (
                "disk".to_owned(),
                LocationConfig::Disk {
                    root: ".data/repository".into(),
                    preference: None,
                },
            ),
            (
                "s3".to_owned(),
                LocationConfig::S3(S3LocationConfig {
                    bucket: "repository".into(),
                    ..Default::default()
                }),
            ),
        ];
        Self {
            locations: locations.into_iter().collect(),
            max_read_bytes_per_sec: None,
            disk_root: None,
            s3_bucket: None,
        }
    }
}

impl RepositoryConfig {
    /// The root of disk location `id`, if it is one.
    pub fn disk_root(&self, id: &str) -> Option<&std::path::Path> {
        match self.locations.get(id) {
            Some(LocationConfig::Disk { root, .. }) => Some(root),
            _ => None,
        }
    }

    /// The bucket of S3 location `id`, if it is one.
    pub fn s3_bucket(&self, id: &str) -> Option<&str> {
        match self.locations.get(id) {
            Some(LocationConfig::S3(s3)) => Some(&s3.bucket),
            _ => None,
        }
    }

    pub(super) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.disk_root.is_none() && self.s3_bucket.is_none(),
            "repository.disk_root and repository.s3_bucket are replaced by \
             [repository.locations.<locationId>] entries (kind = \"disk\" with root, \
             kind = \"s3\" with bucket)"
        );
        for (id, location) in &self.locations {
            anyhow::ensure!(
                !id.is_empty() && !id.chars().any(char::is_control),
                "repository.locations: {id:?} is no location id"
            );
            match location {
                LocationConfig::Disk { root, .. } => anyhow::ensure!(
                    !root.as_os_str().is_empty(),
                    "repository.locations.{id}: a disk location needs its root"
                ),
                LocationConfig::S3(s3) => anyhow::ensure!(
                    !s3.bucket.is_empty(),
                    "repository.locations.{id}: an s3 location needs its bucket"
                ),
                LocationConfig::Tape(t) => t.validate(id)?,
            }
        }
        Ok(())
    }
}

/// One location of the bit repository, by kind.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LocationConfig {
    /// A folder: the copy's `filePath` is relative to `root`.
    Disk {
        root: PathBuf,
        /// Lower is tried first (default 10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preference: Option<u32>,
    },
    /// A bucket: the copy's `filePath` is its key.
    S3(S3LocationConfig),
    /// A tape system (WLCG Tape REST API).
    Tape(TapeLocationConfig),
}

impl LocationConfig {
    pub fn kind(&self) -> LocationKind {
        match self {
            Self::Disk { .. } => LocationKind::Disk,
            Self::S3(_) => LocationKind::S3,
            Self::Tape(_) => LocationKind::Tape,
        }
    }

    /// Lower is tried first; the kind's default unless configured.
    pub fn preference(&self) -> u32 {
        let configured = match self {
            Self::Disk { preference, .. } => *preference,
            Self::S3(s3) => s3.preference,
            Self::Tape(t) => t.preference,
        };
        configured.unwrap_or_else(|| self.kind().default_preference())
    }
}

/// An S3 location: its own endpoint and credentials, which default to the
/// delivery S3's (`[s3]`) when left out.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct S3LocationConfig {
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(
        default,
        serialize_with = "expose_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_key: Option<SecretString>,
    /// Lower is tried first (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<u32>,
}

impl S3LocationConfig {
    /// The S3 client settings of this location: the delivery S3's, with
    /// this location's endpoint and credentials where given.
    pub fn client_config(&self, delivery: &S3Config) -> S3Config {
        let mut c = delivery.clone();
        if let Some(e) = &self.endpoint {
            c.endpoint.clone_from(e);
            c.public_endpoint = None;
        }
        if let Some(r) = &self.region {
            c.region.clone_from(r);
        }
        if let Some(a) = &self.access_key {
            c.access_key.clone_from(a);
        }
        if let Some(s) = &self.secret_key {
            c.secret_key = s.clone();
        }
        // Buckets of the repository are never created or owned by us.
        c.expected_bucket_owner = None;
        c
    }
}

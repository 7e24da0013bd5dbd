//! Reading repository files from the bit repository's locations, as the
//! operator configured them (`[repository.locations.<locationId>]`): `disk`
//! (a folder), `s3` (a bucket on its own endpoint) and `tape` (the staged
//! copies of a tape system, once the `stage` step brought them online;
//! see `crate::tape`). A copy at a location nobody configured has no
//! reader: the workflow moves to the next copy at once. A copy that does
//! not exist or cannot be opened is "unreadable" (tried again for a while,
//! then the next copy); any other I/O error is worth retrying.

use crate::s3::S3;
use crate::tape::{client::TapeClient, read::StagedReader};
use model::catalog::FileLocation;
use platform::config::{Config, LocationConfig};
use std::{
    collections::BTreeMap,
    path::{Component, Path, PathBuf},
    time::Duration,
};
use tokio::io::{AsyncRead, AsyncSeekExt};

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The copy is missing or refused: try another location.
    #[error("{0}")]
    Unreadable(String),
    /// Nothing here reads that location: the next copy, at once.
    #[error("{0}")]
    NoReader(String),
    /// A transient failure: retry the same location.
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Misconfigured(String),
}

/// Keeps a read under `limit` bytes per second (`repository.max_read_bytes_per_sec`,
/// sparing the bit repository): sleeps until `bytes` read since `started` are due.
pub async fn pace(limit: Option<u64>, bytes: u64, started: std::time::Instant) {
    if let Some(limit) = limit {
        let due = std::time::Duration::from_secs_f64(bytes as f64 / limit.max(1) as f64);
        let elapsed = started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// How one configured location is read.
#[derive(Clone)]
enum Location {
    Disk {
        root: PathBuf,
    },
    S3 {
        s3: S3,
        bucket: String,
    },
    Tape {
        client: TapeClient,
        reader: StagedReader,
    },
}

#[derive(Clone)]
pub struct Repository {
    locations: BTreeMap<String, Location>,
}

impl Repository {
    /// Every configured location's reader (a tape location whose client
    /// cannot be built, e.g. an unreadable CA file, is refused here).
    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        let mut locations = BTreeMap::new();
        for (id, l) in &cfg.repository.locations {
            let location = match l {
                LocationConfig::Disk { root, .. } => Location::Disk { root: root.clone() },
                LocationConfig::S3(s3) => Location::S3 {
                    s3: S3::new(&s3.client_config(&cfg.s3)),
                    bucket: s3.bucket.clone(),
                },
                LocationConfig::Tape(t) => {
                    let client = TapeClient::new(id, t, &cfg.tape)?;
                    let reader = StagedReader::new(id, t, &client, &cfg.tape)?;
                    Location::Tape { client, reader }
                }
            };
            locations.insert(id.clone(), location);
        }
        Ok(Self { locations })
    }

    /// The client of tape location `id`, if it is one.
    pub fn tape(&self, id: &str) -> Option<&TapeClient> {
        match self.locations.get(id) {
            Some(Location::Tape { client, .. }) => Some(client),
            _ => None,
        }
    }

    /// Opens a copy for reading from `offset` on; `size` is the size the
    /// catalog gives it (a staged tape copy of another size is refused).
    pub async fn open(
        &self,
        location: &FileLocation,
        offset: u64,
        size: u64,
    ) -> Result<Reader, OpenError> {
        let id = &location.location_id;
        match self.locations.get(id) {
            Some(Location::Disk { root }) => open_disk(root, &location.file_path, offset).await,
            Some(Location::S3 { s3, bucket }) => {
                s3.open_object(bucket, &location.file_path, offset).await
            }
            Some(Location::Tape { reader, .. }) => {
                reader.open(&location.file_path, offset, size).await
            }
            None => Err(OpenError::NoReader(format!(
                "no reader for location {id}: it is not configured"
            ))),
        }
    }

    /// Every configured location checked at once: a folder that is not
    /// there, a bucket that does not answer. (location id, what is wrong).
    pub async fn check(&self, timeout: Duration) -> Vec<(String, String)> {
        let checks = self.locations.iter().map(|(id, l)| async move {
            let problem = match l {
                Location::Disk { root } => match tokio::fs::metadata(root).await {
                    Ok(m) if m.is_dir() => None,
                    Ok(_) => Some(format!("{} is not a folder", root.display())),
                    Err(e) => Some(format!("{}: {e}", root.display())),
                },
                Location::S3 { s3, bucket } => {
                    match tokio::time::timeout(timeout, s3.check_bucket(bucket)).await {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(format!("bucket {bucket}: {e:#}")),
                        Err(_) => Some(format!("bucket {bucket}: no answer within {timeout:?}")),
                    }
                }
                // The API answers (the namespace root's locality, which
                // any tape system answers with an entry of its own).
                Location::Tape { client, .. } => {
                    let root = ["/".to_owned()];
                    match tokio::time::timeout(timeout, client.archive_info(&root)).await {
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(_) => Some(format!("the tape system: no answer within {timeout:?}")),
                    }
                }
            };
            problem.map(|p| (id.clone(), p))
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

async fn open_disk(root: &Path, file_path: &str, offset: u64) -> Result<Reader, OpenError> {
    let path = confined(root, file_path)?;
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            return Err(OpenError::Unreadable(format!("{file_path}: {e}")))
        }
        Err(e) => return Err(OpenError::Transient(format!("{file_path}: {e}"))),
    };
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| OpenError::Transient(format!("{file_path}: seek: {e}")))?;
    }
    Ok(Box::new(file))
}

/// A relative path under `root`; absolute paths and `..` are refused.
fn confined(root: &Path, file_path: &str) -> Result<PathBuf, OpenError> {
    let rel = Path::new(file_path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) || file_path.is_empty() {
        return Err(OpenError::NoReader(format!(
            "no reader for {file_path:?}: a path must be relative to its location's root"
        )));
    }
    Ok(root.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/repo");
        assert_eq!(
            confined(root, "a/b.tar").ok(),
            Some(PathBuf::from("/repo/a/b.tar"))
        );
        assert!(confined(root, "../etc/passwd").is_err());
        assert!(confined(root, "/etc/passwd").is_err());
        assert!(confined(root, "").is_err());
    }

    #[tokio::test]
    async fn copies_nobody_reads_have_no_reader() {
        let repo = Repository::new(&Config::default()).unwrap_or_else(|e| panic!("{e}"));
        let copy = FileLocation {
            location_id: "nearline".into(),
            file_path: "x.tar".into(),
            fixity_status: None,
        };
        match repo.open(&copy, 0, 1).await {
            Err(OpenError::NoReader(m)) => assert!(m.contains("it is not configured"), "{m}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened"),
        }
        assert!(repo.tape("disk").is_none());
    }
}

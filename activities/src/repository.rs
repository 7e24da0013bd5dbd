//! Reading repository files from the bit repository's locations: `disk` (a
//! folder) and `s3` (a bucket). A copy that does not exist or cannot be
//! opened is "unreadable" (try the next location); any other I/O error is
//! worth retrying.

use crate::s3::S3;
use model::catalog::FileLocation;
use std::path::{Component, Path, PathBuf};
use tokio::io::{AsyncRead, AsyncSeekExt};

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The copy is missing or refused: try another location.
    #[error("{0}")]
    Unreadable(String),
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

#[derive(Clone)]
pub struct Repository {
    disk_root: PathBuf,
    s3: S3,
    bucket: String,
}

impl Repository {
    pub fn new(disk_root: PathBuf, s3: S3, bucket: String) -> Self {
        Self {
            disk_root,
            s3,
            bucket,
        }
    }

    /// Opens a copy for reading from `offset` on.
    pub async fn open(&self, location: &FileLocation, offset: u64) -> Result<Reader, OpenError> {
        match location.location_id.as_str() {
            "disk" => self.open_disk(&location.file_path, offset).await,
            "s3" => self.open_s3(&location.file_path, offset).await,
            other => Err(OpenError::Misconfigured(format!(
                "unknown location kind {other:?}"
            ))),
        }
    }

    async fn open_disk(&self, file_path: &str, offset: u64) -> Result<Reader, OpenError> {
        let path = confined(&self.disk_root, file_path)?;
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

    async fn open_s3(&self, key: &str, offset: u64) -> Result<Reader, OpenError> {
        self.s3.open_object(&self.bucket, key, offset).await
    }
}

/// A relative path under `root`; absolute paths and `..` are refused.
fn confined(root: &Path, file_path: &str) -> Result<PathBuf, OpenError> {
    let rel = Path::new(file_path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) || file_path.is_empty() {
        return Err(OpenError::Misconfigured(format!(
            "location path {file_path:?} must be relative to the location's root"
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
}

//! The worker-local staging folder: `{staging_dir}/{disseminationId}/{filename}`.

use model::{catalog::RepositoryFile, DisseminationId};
use std::path::{Path, PathBuf};

pub fn dissemination_dir(root: &Path, id: &DisseminationId) -> PathBuf {
    // DisseminationId is base62 only, so it cannot leave the root.
    root.join(id.as_str())
}

/// Where a repository file is staged. The file name comes from the catalog;
/// anything that could escape the folder is replaced.
pub fn staged_path(root: &Path, id: &DisseminationId, file: &RepositoryFile) -> PathBuf {
    let name: String = file
        .filename()
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let name = if name.is_empty() || name == "." || name == ".." {
        "file".to_owned()
    } else {
        name
    };
    dissemination_dir(root, id).join(name)
}

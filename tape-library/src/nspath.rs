//! Namespace paths: the one name of a file in the API calls, in the URL of
//! its bytes, under `--tape-dir` and under `--buffer-dir`.
//!
//! The spec asks the server to sanitise paths ("removal of duplicate
//! slashes"); gfal2 collapses slashes too before it compares the paths of a
//! response with its own. A path is parsed once at the edge: duplicate and
//! trailing slashes collapse, and a path that could leave the folders it is
//! mapped into (`..`), names a hidden entry (a component starting with
//! `.`, which also keeps the buffer's staging folder out of reach) or holds
//! a NUL or backslash is refused.

use std::{
    fmt,
    path::{Path, PathBuf},
};

/// A sanitised absolute namespace path, e.g. `/aips/x/primary.tar`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct NsPath(String);

/// Why a path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("the path must be absolute (start with '/')")]
    NotAbsolute,
    #[error("the path names no file")]
    Empty,
    #[error("the path must not contain '.', '..' or components starting with '.'")]
    DotComponent,
    #[error("the path must not contain NUL or backslash characters")]
    BadCharacter,
}

impl NsPath {
    /// Parses and sanitises a client's path.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        if raw.contains(['\0', '\\']) {
            return Err(PathError::BadCharacter);
        }
        let mut out = String::with_capacity(raw.len());
        for part in raw.split('/').filter(|p| !p.is_empty()) {
            if part.starts_with('.') {
                return Err(PathError::DotComponent);
            }
            out.push('/');
            out.push_str(part);
        }
        if out.is_empty() {
            return Err(PathError::Empty);
        }
        Ok(Self(out))
    }

    /// Builds the path of a file found under a folder (the buffer at start).
    pub fn from_relative(rel: &Path) -> Option<Self> {
        let mut s = String::new();
        for c in rel.components() {
            match c {
                std::path::Component::Normal(p) => {
                    s.push('/');
                    s.push_str(p.to_str()?);
                }
                _ => return None,
            }
        }
        Self::parse(&s).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where this file lives under `root` (`/a/b.tar` → `root/a/b.tar`).
    pub fn under(&self, root: &Path) -> PathBuf {
        root.join(&self.0[1..])
    }
}

impl fmt::Display for NsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_duplicate_and_trailing_slashes() {
        let p = NsPath::parse("//tape///aips/x//primary.tar/").expect("valid");
        assert_eq!(p.as_str(), "/tape/aips/x/primary.tar");
        assert_eq!(
            p.under(Path::new("/srv/tape")),
            PathBuf::from("/srv/tape/tape/aips/x/primary.tar")
        );
    }

    #[test]
    fn refuses_paths_that_could_escape_or_hide() {
        assert_eq!(NsPath::parse("a/b"), Err(PathError::NotAbsolute));
        assert_eq!(NsPath::parse("/"), Err(PathError::Empty));
        assert_eq!(NsPath::parse("/a/../b"), Err(PathError::DotComponent));
        assert_eq!(NsPath::parse("/a/./b"), Err(PathError::DotComponent));
        assert_eq!(NsPath::parse("/.staging/x"), Err(PathError::DotComponent));
        assert_eq!(NsPath::parse("/a\\b"), Err(PathError::BadCharacter));
    }

    #[test]
    fn relative_paths_found_on_disk_round_trip() {
        let p = NsPath::from_relative(Path::new("a/b.tar")).expect("valid");
        assert_eq!(p.as_str(), "/a/b.tar");
        assert!(NsPath::from_relative(Path::new("../b")).is_none());
    }
}

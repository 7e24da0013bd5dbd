//! What the tape system's answers say, read leniently: where a file is
//! (an ARCHIVEINFO entry's locality) and how a STAGE request is getting on
//! (its files' states, in either dialect: `state` or `onDisk`).

use super::paths::path_key;
use serde_json::Value;

/// Where a file is, from ARCHIVEINFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locality {
    /// On disk (`DISK`, `DISK_AND_TAPE`): readable now.
    Online,
    /// On tape only (`TAPE`): stage it first.
    Nearline,
    /// The tape copy is unrecoverable (`LOST`).
    Lost,
    /// Temporarily unreadable (`UNAVAILABLE`).
    Unavailable,
    /// An empty file (`NONE`).
    Empty,
    /// The entry's `error`.
    Error(String),
    /// Anything else (a locality this client does not know, or no entry).
    Unknown(String),
}

impl Locality {
    /// For audit text.
    pub fn describe(&self) -> String {
        match self {
            Self::Online => "on disk (online)".into(),
            Self::Nearline => "on tape only (nearline)".into(),
            Self::Lost => "LOST: its tape copy is unrecoverable".into(),
            Self::Unavailable => "UNAVAILABLE: its tape copy cannot be read now".into(),
            Self::Empty => "NONE: an empty file".into(),
            Self::Error(e) => format!("error: {e}"),
            Self::Unknown(what) => format!("unknown locality: {what}"),
        }
    }

    pub(super) fn of(entry: &Value) -> Self {
        if let Some(e) = entry.get("error").and_then(Value::as_str) {
            return Self::Error(e.to_owned());
        }
        match entry.get("locality").and_then(Value::as_str) {
            Some("DISK" | "DISK_AND_TAPE") => Self::Online,
            Some("TAPE") => Self::Nearline,
            Some("LOST") => Self::Lost,
            Some("UNAVAILABLE") => Self::Unavailable,
            Some("NONE") => Self::Empty,
            Some(other) => Self::Unknown(other.to_owned()),
            None => Self::Unknown("neither locality nor error in its entry".into()),
        }
    }
}

/// A STAGE request's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageProgress {
    pub created_at: Option<u64>,
    pub started_at: Option<u64>,
    pub files: Vec<FileProgress>,
}

/// One file of a STAGE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProgress {
    pub path: String,
    pub state: FileState,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
}

/// Where a staged file stands, in either dialect (`state` or `onDisk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// On disk: readable now.
    Online,
    /// Failed or cancelled, with the tape system's reason.
    Failed(String),
    /// Still coming; `started` once a drive reads it.
    Pending { started: bool },
}

impl StageProgress {
    /// The file with this path (slashes collapsed before comparing).
    pub fn file(&self, path: &str) -> Option<&FileProgress> {
        let key = path_key(path);
        self.files.iter().find(|f| path_key(&f.path) == key)
    }

    pub(super) fn parse(v: &Value) -> Option<Self> {
        let files = v
            .get("files")?
            .as_array()?
            .iter()
            .map(FileProgress::parse)
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            created_at: seconds(v.get("createdAt")),
            started_at: seconds(v.get("startedAt")),
            files,
        })
    }
}

impl FileProgress {
    fn parse(v: &Value) -> Option<Self> {
        let path = v.get("path")?.as_str()?.to_owned();
        let state = v.get("state").and_then(Value::as_str);
        let error = v
            .get("error")
            .and_then(Value::as_str)
            .filter(|e| !e.trim().is_empty());
        let on_disk = v.get("onDisk").and_then(Value::as_bool) == Some(true);
        // gfal2's order: error, then onDisk, then state.
        let state = if let Some(e) = error {
            FileState::Failed(e.to_owned())
        } else if on_disk {
            FileState::Online
        } else {
            match state {
                Some("COMPLETED") => FileState::Online,
                Some(s @ ("FAILED" | "CANCELLED" | "CANCELED")) => {
                    FileState::Failed(format!("the tape system reports it {s}"))
                }
                Some("STARTED") => FileState::Pending { started: true },
                _ => FileState::Pending { started: false },
            }
        };
        Some(Self {
            path,
            state,
            started_at: seconds(v.get("startedAt")),
            finished_at: seconds(v.get("finishedAt")),
        })
    }
}

/// Seconds since the epoch, as an integer (or, leniently, a float).
fn seconds(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn both_progress_dialects() {
        let answer = json!({"id": "r", "createdAt": 10, "startedAt": 11, "files": [
            {"path": "/a", "state": "COMPLETED", "startedAt": 11, "finishedAt": 12},
            {"path": "/b", "onDisk": true},
            {"path": "/c", "state": "STARTED"},
            {"path": "/d", "state": "SUBMITTED"},
            {"path": "/e", "onDisk": false},
            {"path": "/f", "state": "FAILED", "error": "the file is LOST"},
            {"path": "/g", "state": "CANCELED"},
            {"path": "/h", "error": "no such file", "onDisk": false},
        ]});
        let p = StageProgress::parse(&answer).unwrap();
        assert_eq!((p.created_at, p.started_at), (Some(10), Some(11)));
        let state = |path: &str| p.file(path).unwrap().state.clone();
        assert_eq!(state("//a"), FileState::Online);
        assert_eq!(p.file("/a").unwrap().finished_at, Some(12));
        assert_eq!(state("/b"), FileState::Online);
        assert_eq!(state("/c"), FileState::Pending { started: true });
        assert_eq!(state("/d"), FileState::Pending { started: false });
        assert_eq!(state("/e"), FileState::Pending { started: false });
        assert_eq!(state("/f"), FileState::Failed("the file is LOST".into()));
        assert!(matches!(state("/g"), FileState::Failed(m) if m.contains("CANCELED")));
        assert_eq!(state("/h"), FileState::Failed("no such file".into()));
        assert!(p.file("/z").is_none());
        assert!(StageProgress::parse(&json!({"files": "nope"})).is_none());
        assert!(StageProgress::parse(&json!({"files": [{"state": "COMPLETED"}]})).is_none());
    }
}

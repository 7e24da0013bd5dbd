//! STAGE requests and the state of each of their files, as the spec's
//! progress tracking reports them.
//!
//! A file is `SUBMITTED` until a drive starts reading it, `STARTED` while it
//! is read, then `COMPLETED` (on disk), `FAILED` (with `error`) or
//! `CANCELLED`. A file already on disk completes at submission; a file that
//! can never be staged (missing, a directory, empty, lost, unavailable, an
//! invalid path) fails at submission, its `startedAt` and `finishedAt` both
//! the submission time, as in the spec's second example. Each file reports
//! `state` and never `onDisk`: the spec allows one of the two per file, and
//! the state says more (gfal2 reads either).

use super::Millis;
use crate::nspath::NsPath;
use serde::Serialize;
use std::{collections::HashMap, fmt, time::Duration};

/// A stage request's id (a UUID v7 here; any string a client sends is
/// looked up as it is and is simply unknown if it is not one of ours).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The spec's per-file states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileState {
    Submitted,
    Started,
    Completed,
    Failed,
    Cancelled,
}

impl FileState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// One file of a request.
#[derive(Clone, Debug)]
pub struct RequestFile {
    /// The path as reported back: sanitised, or as sent when it is invalid.
    pub key: String,
    pub path: Option<NsPath>,
    pub state: FileState,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    pub error: Option<String>,
    pub lifetime: Duration,
    /// Released before its copy was on disk: no pin when it lands.
    pub released: bool,
}

impl RequestFile {
    pub fn new(key: String, path: Option<NsPath>, lifetime: Duration) -> Self {
        Self {
            key,
            path,
            state: FileState::Submitted,
            started_at: None,
            finished_at: None,
            error: None,
            lifetime,
            released: false,
        }
    }

    pub fn start(&mut self, now: Millis) {
        if self.state == FileState::Submitted {
            self.state = FileState::Started;
            self.started_at = Some(now);
        }
    }

    /// Moves to a terminal state (a no-op on a file already in one).
    pub fn finish(&mut self, state: FileState, error: Option<String>, now: Millis) {
        if self.state.is_terminal() {
            return;
        }
        self.started_at.get_or_insert(now);
        self.state = state;
        self.finished_at = Some(now);
        self.error = error;
    }
}

/// A STAGE request.
#[derive(Clone, Debug)]
pub struct StageRequest {
    pub id: RequestId,
    pub created_at: Millis,
    pub files: Vec<RequestFile>,
    index: HashMap<String, usize>,
}

impl StageRequest {
    pub fn new(id: RequestId, created_at: Millis) -> Self {
        Self {
            id,
            created_at,
            files: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Adds a file unless its path is already in the request (the spec wants
    /// each path once in the response; the first occurrence wins).
    pub fn push(&mut self, file: RequestFile) -> Option<&mut RequestFile> {
        if self.index.contains_key(&file.key) {
            return None;
        }
        self.index.insert(file.key.clone(), self.files.len());
        self.files.push(file);
        self.files.last_mut()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    pub fn file_mut(&mut self, key: &str) -> Option<&mut RequestFile> {
        let i = *self.index.get(key)?;
        self.files.get_mut(i)
    }

    /// The spec's progress-tracking body.
    pub fn view(&self) -> RequestView {
        let started = self.files.iter().filter_map(|f| f.started_at).min();
        let all_done = self.files.iter().all(|f| f.state.is_terminal());
        let completed = self.files.iter().filter_map(|f| f.finished_at).max();
        RequestView {
            id: self.id.0.clone(),
            created_at: secs(self.created_at),
            // The first file's start; before any has started, the creation
            // time, as the spec has servers without the concept report it
            // (the field is not optional).
            started_at: secs(started.unwrap_or(self.created_at)),
            completed_at: if all_done {
                Some(secs(completed.unwrap_or(self.created_at)))
            } else {
                None
            },
            files: self.files.iter().map(FileView::of).collect(),
        }
    }
}

/// Seconds since the epoch, the spec's timestamps.
pub fn secs(ms: Millis) -> u64 {
    ms / 1000
}

/// `GET {base}/stage/{id}`'s body.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub id: String,
    pub created_at: u64,
    pub started_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<u64>,
    pub files: Vec<FileView>,
}

/// One file of `RequestView`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub path: String,
    pub state: FileState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FileView {
    fn of(f: &RequestFile) -> Self {
        Self {
            path: f.key.clone(),
            state: f.state,
            started_at: f.started_at.map(secs),
            finished_at: f.finished_at.map(secs),
            error: f.error.clone(),
        }
    }
}

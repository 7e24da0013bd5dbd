//! The library's state machine: stage requests, the recall scheduler and
//! the buffer index, behind one lock, without I/O or clocks of its own.
//!
//! Every operation takes `now` (milliseconds since the epoch) and the
//! results of any file-system look-up from its caller, so the unit tests
//! drive time and the namespace by hand. The HTTP handlers and the drive
//! tasks (`crate::drives`) are the only callers; what a request of the
//! spec does to the state is decided here.

pub mod buffer;
pub mod requests;
pub mod scheduler;
#[cfg(test)]
mod tests;

use crate::{
    catalog::{Health, Lookup},
    nspath::NsPath,
};
use buffer::{Buffer, BufferView};
use requests::{FileState, RequestFile, RequestId, RequestView, StageRequest};
use scheduler::{Job, Scheduler, SchedulerView, Wanted};
use serde::Serialize;
use std::{collections::BTreeMap, time::Duration};

/// EOS-CTA's words for a path it does not have (the spec's example).
pub const NO_SUCH_FILE: &str = "USER ERROR: file does not exist or is not accessible to you";

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// The spec's file localities (`POST {base}/archiveinfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Locality {
    Disk,
    Tape,
    DiskAndTape,
    Lost,
    #[serde(rename = "NONE")]
    Empty,
    Unavailable,
}

/// A file of a stage submission, looked up by the caller.
#[derive(Clone, Debug)]
pub struct StageFile {
    /// The path as sent.
    pub raw: String,
    /// The sanitised path and what the namespace holds there, or why the
    /// path is invalid.
    pub resolved: Result<(NsPath, Lookup), String>,
    pub lifetime: Option<Duration>,
}

/// Why a request on a stage request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    #[error("no stage request with id {0}")]
    UnknownRequest(RequestId),
    #[error("The file {path} does not belong to the STAGE request {id}. No modification has been made to this request.")]
    NotInRequest { path: String, id: RequestId },
}

/// Sizes and defaults the state machine needs.
#[derive(Clone, Debug)]
pub struct LibraryConfig {
    pub drives: usize,
    pub buffer_bytes: u64,
    pub default_lifetime: Duration,
}

#[derive(Debug)]
pub struct Library {
    cfg: LibraryConfig,
    requests: BTreeMap<RequestId, StageRequest>,
    sched: Scheduler,
    buffer: Buffer,
}

impl Library {
    pub fn new(cfg: LibraryConfig) -> Self {
        Self {
            sched: Scheduler::new(cfg.drives),
            buffer: Buffer::new(cfg.buffer_bytes),
            requests: BTreeMap::new(),
            cfg,
        }
    }

    /// A copy found in the buffer folder at start: online, unpinned.
    pub fn adopt(&mut self, path: NsPath, size: u64, now: Millis) {
        self.buffer.insert(path, size, now);
    }

    pub fn locality(&self, path: &NsPath, lookup: &Lookup) -> Option<Locality> {
        let on_disk = self.buffer.contains(path);
        let Lookup::File(f) = lookup else {
            return on_disk.then_some(Locality::Disk);
        };
        Some(match (on_disk, f.health) {
            (true, Health::Ok) => Locality::DiskAndTape,
            (true, _) => Locality::Disk,
            (false, Health::Lost) => Locality::Lost,
            (false, Health::Unavailable) => Locality::Unavailable,
            (false, Health::Ok) if f.size == 0 => Locality::Empty,
            (false, Health::Ok) => Locality::Tape,
        })
    }

    /// Creates a stage request; files are queued, completed (already on
    /// disk) or failed (never stageable) at once.
    pub fn submit(&mut self, id: RequestId, files: Vec<StageFile>, now: Millis) -> RequestId {
        let mut req = StageRequest::new(id.clone(), now);
        for f in files {
            let lifetime = f.lifetime.unwrap_or(self.cfg.default_lifetime);
            let (key, path) = match &f.resolved {
                Ok((p, _)) => (p.as_str().to_owned(), Some(p.clone())),
                Err(_) => (f.raw.clone(), None),
            };
            let Some(file) = req.push(RequestFile::new(key, path, lifetime)) else {
                continue;
            };
            let outcome = match f.resolved {
                Err(e) => Err(e),
                Ok((path, lookup)) => self.stage_one(&id, &path, &lookup, lifetime, now),
            };
            match outcome {
                Ok(FileState::Completed) => file.finish(FileState::Completed, None, now),
                Ok(FileState::Started) => file.start(now),
                Ok(_) => {}
                Err(e) => file.finish(FileState::Failed, Some(e), now),
            }
        }
        self.requests.insert(id.clone(), req);
        id
    }

    fn stage_one(
        &mut self,
        id: &RequestId,
        path: &NsPath,
        lookup: &Lookup,
        lifetime: Duration,
        now: Millis,
    ) -> Result<FileState, String> {
        if self.buffer.contains(path) {
            self.buffer.pin(path, id, expiry(now, lifetime));
            return Ok(FileState::Completed);
        }
        let file = match lookup {
            Lookup::Missing => return Err(NO_SUCH_FILE.into()),
            Lookup::NotAFile => return Err("not a file: only files are stored on tape".into()),
            Lookup::File(f) => f,
        };
        match file.health {
            Health::Lost => Err("the file is LOST: its tape copy is unrecoverable".into()),
            Health::Unavailable => {
                Err("the file is UNAVAILABLE: its volume cannot be read at present".into())
            }
            Health::Ok if file.size == 0 => {
                Err("not a tape-stored file: an empty file is never written to tape".into())
            }
            Health::Ok => Ok(match self.sched.want(path, file, id) {
                Wanted::Queued => FileState::Submitted,
                Wanted::Reading => FileState::Started,
            }),
        }
    }

    pub fn request_view(&self, id: &RequestId) -> Option<RequestView> {
        self.requests.get(id).map(StageRequest::view)
    }

    /// Cancels files of a request: all must belong to it, else nothing is
    /// done. A file not yet on disk is CANCELLED; a completed one keeps its
    /// state and loses its pin.
    pub fn cancel(
        &mut self,
        id: &RequestId,
        keys: &[String],
        now: Millis,
    ) -> Result<(), CoreError> {
        let req = self
            .requests
            .get_mut(id)
            .ok_or_else(|| CoreError::UnknownRequest(id.clone()))?;
        if let Some(k) = keys.iter().find(|k| !req.contains(k)) {
            return Err(CoreError::NotInRequest {
                path: k.clone(),
                id: id.clone(),
            });
        }
        for key in keys {
            let Some(file) = req.file_mut(key) else {
                continue;
            };
            let Some(path) = file.path.clone() else {
                continue;
            };
            match file.state {
                FileState::Submitted | FileState::Started => {
                    file.finish(FileState::Cancelled, None, now);
                    self.sched.unwant(&path, id);
                }
                FileState::Completed => self.buffer.unpin(&path, Some(id)),
                FileState::Failed | FileState::Cancelled => {}
            }
        }
        Ok(())
    }

    /// Cancels every file of a request, drops its pins and forgets it.
    pub fn delete(&mut self, id: &RequestId, now: Millis) -> Result<(), CoreError> {
        let keys: Vec<String> = self
            .requests
            .get(id)
            .ok_or_else(|| CoreError::UnknownRequest(id.clone()))?
            .files
            .iter()
            .map(|f| f.key.clone())
            .collect();
        self.cancel(id, &keys, now)?;
        self.requests.remove(id);
        Ok(())
    }

    /// Releases files: a known request's pins on them (every path must be
    /// in it), or, for an id we do not know (gfal2 sends
    /// `gfal2-placeholder-id` when it has none), every pin on them, as
    /// EOS-CTA does whatever the id.
    pub fn release(&mut self, id: &RequestId, keys: &[String]) -> Result<(), CoreError> {
        let Some(req) = self.requests.get_mut(id) else {
            for path in keys.iter().filter_map(|k| NsPath::parse(k).ok()) {
                self.buffer.unpin(&path, None);
            }
            return Ok(());
        };
        if let Some(k) = keys.iter().find(|k| !req.contains(k)) {
            return Err(CoreError::NotInRequest {
                path: k.clone(),
                id: id.clone(),
            });
        }
        for key in keys {
            if let Some(file) = req.file_mut(key) {
                file.released = true;
                if let Some(path) = &file.path {
                    self.buffer.unpin(path, Some(id));
                }
            }
        }
        Ok(())
    }

    /// Drops every request and pin, as a restart would; the buffer's copies
    /// stay, unpinned.
    pub fn forget(&mut self) {
        self.requests.clear();
        self.sched.forget_waiters();
        self.buffer.unpin_all();
    }

    pub fn next_job(&mut self, drive: usize, now: Millis) -> Option<Job> {
        let job = self.sched.next_job(drive)?;
        if let Job::Read { path, .. } = &job {
            let waiting = self
                .sched
                .reading(path)
                .map(|r| r.waiting.clone())
                .unwrap_or_default();
            for id in waiting {
                if let Some(f) = self
                    .requests
                    .get_mut(&id)
                    .and_then(|r| r.file_mut(path.as_str()))
                {
                    f.start(now);
                }
            }
        }
        Some(job)
    }

    pub fn mount_done(&mut self, drive: usize) {
        self.sched.mount_done(drive);
    }

    /// A read ended: on success the copy is in the buffer and each waiting
    /// request's file completes and pins it. Returns the copies evicted to
    /// make room (to delete from disk).
    pub fn read_done(
        &mut self,
        drive: usize,
        path: &NsPath,
        result: Result<u64, String>,
        now: Millis,
    ) -> Vec<NsPath> {
        let Some(recall) = self.sched.read_done(drive, path) else {
            return Vec::new();
        };
        if let Ok(size) = result {
            self.buffer.insert(path.clone(), size, now);
        }
        for id in &recall.waiting {
            let Some(file) = self
                .requests
                .get_mut(id)
                .and_then(|r| r.file_mut(path.as_str()))
            else {
                continue;
            };
            match &result {
                Ok(_) => {
                    file.finish(FileState::Completed, None, now);
                    if !file.released {
                        self.buffer.pin(path, id, expiry(now, file.lifetime));
                    }
                }
                Err(e) => file.finish(FileState::Failed, Some(format!("read error: {e}")), now),
            }
        }
        self.buffer.evict_over_limit(now)
    }

    /// Expires pins and evicts what the buffer has no room for.
    pub fn sweep(&mut self, now: Millis) -> Vec<NsPath> {
        self.buffer.evict_over_limit(now)
    }

    /// Whether the buffer holds `path`; marks it used.
    pub fn use_copy(&mut self, path: &NsPath, now: Millis) -> bool {
        self.buffer.touch(path, now);
        self.buffer.contains(path)
    }

    /// Removes copies whatever their pins (a fault hook), or, without paths,
    /// every unpinned copy. Returns what went.
    pub fn evict(&mut self, paths: Option<&[NsPath]>, now: Millis) -> Vec<NsPath> {
        let chosen = match paths {
            Some(p) => p.to_vec(),
            None => self.buffer.unpinned(now),
        };
        chosen
            .into_iter()
            .filter(|p| self.buffer.remove(p))
            .collect()
    }

    pub fn admin_state(&self, now: Millis) -> AdminState {
        AdminState {
            scheduler: self.sched.snapshot(),
            buffer: self.buffer.snapshot(now),
            requests: self.requests.values().map(StageRequest::view).collect(),
        }
    }
}

/// How a client's path names a file of a request: sanitised when valid,
/// as sent otherwise (so an invalid path can still be cancelled).
pub fn key_of(raw: &str) -> String {
    NsPath::parse(raw).map_or_else(|_| raw.to_owned(), |p| p.as_str().to_owned())
}

fn expiry(now: Millis, lifetime: Duration) -> Millis {
    now.saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX))
}

/// `GET /admin/state`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminState {
    #[serde(flatten)]
    pub scheduler: SchedulerView,
    pub buffer: BufferView,
    pub requests: Vec<RequestView>,
}

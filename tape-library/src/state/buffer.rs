//! The disk buffer's index: which staged copies it holds, their pins, and
//! which copies go when it is over its size.
//!
//! Policy: a copy is pinned while any request's pin on it is unexpired. A
//! pin is made when a request's file completes (or at submission when the
//! copy is already there) and lasts the request's `diskLifetime`; it ends at
//! release, cancel, delete or expiry. An unpinned copy stays, cached, until
//! the buffer needs room: when its bytes exceed the limit, unpinned copies
//! go, least recently used first (staged or read). Pinned copies are never
//! evicted, so pins may hold the buffer over its limit; the admin state
//! then shows `bytes > limit`.

use super::{requests::RequestId, Millis};
use crate::nspath::NsPath;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Clone, Debug)]
struct Entry {
    size: u64,
    last_used: Millis,
}

/// One request's hold on a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pin {
    request_id: RequestId,
    expires_at: Millis,
}

#[derive(Debug)]
pub struct Buffer {
    limit: u64,
    bytes: u64,
    entries: HashMap<NsPath, Entry>,
    pins: HashMap<NsPath, Vec<Pin>>,
}

impl Buffer {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            bytes: 0,
            entries: HashMap::new(),
            pins: HashMap::new(),
        }
    }

    pub fn contains(&self, path: &NsPath) -> bool {
        self.entries.contains_key(path)
    }

    /// A copy landed (or was found at start).
    pub fn insert(&mut self, path: NsPath, size: u64, now: Millis) {
        let old = self.entries.insert(
            path,
            Entry {
                size,
                last_used: now,
            },
        );
        self.bytes = self.bytes - old.map_or(0, |e| e.size) + size;
    }

    /// The copy was read: it is the last to go.
    pub fn touch(&mut self, path: &NsPath, now: Millis) {
        if let Some(e) = self.entries.get_mut(path) {
            e.last_used = now;
        }
    }

    /// Pins `path` for `request` until `expires_at` (a request's later pin
    /// on the same copy replaces its earlier one).
    pub fn pin(&mut self, path: &NsPath, request: &RequestId, expires_at: Millis) {
        if !self.contains(path) {
            return;
        }
        let pins = self.pins.entry(path.clone()).or_default();
        pins.retain(|p| &p.request_id != request);
        pins.push(Pin {
            request_id: request.clone(),
            expires_at,
        });
    }

    /// Ends `request`'s pin on `path`, or every pin on it when `None`.
    pub fn unpin(&mut self, path: &NsPath, request: Option<&RequestId>) {
        if let Some(pins) = self.pins.get_mut(path) {
            pins.retain(|p| request.is_some_and(|r| &p.request_id != r));
            if pins.is_empty() {
                self.pins.remove(path);
            }
        }
    }

    pub fn unpin_all(&mut self) {
        self.pins.clear();
    }

    /// Drops the pins expired at `now`.
    pub fn expire(&mut self, now: Millis) {
        self.pins.retain(|_, pins| {
            pins.retain(|p| p.expires_at > now);
            !pins.is_empty()
        });
    }

    pub fn is_pinned(&self, path: &NsPath, now: Millis) -> bool {
        self.pins
            .get(path)
            .is_some_and(|pins| pins.iter().any(|p| p.expires_at > now))
    }

    /// Removes unpinned copies, least recently used first, until the
    /// buffer is within its limit; returns them (to delete from disk).
    pub fn evict_over_limit(&mut self, now: Millis) -> Vec<NsPath> {
        self.expire(now);
        if self.bytes <= self.limit {
            return Vec::new();
        }
        let mut unpinned: Vec<(Millis, NsPath)> = self
            .entries
            .iter()
            .filter(|(p, _)| !self.pins.contains_key(*p))
            .map(|(p, e)| (e.last_used, p.clone()))
            .collect();
        unpinned.sort();
        let mut evicted = Vec::new();
        for (_, path) in unpinned {
            if self.bytes <= self.limit {
                break;
            }
            self.remove(&path);
            evicted.push(path);
        }
        evicted
    }

    /// Removes a copy and its pins.
    pub fn remove(&mut self, path: &NsPath) -> bool {
        self.pins.remove(path);
        match self.entries.remove(path) {
            Some(e) => {
                self.bytes -= e.size;
                true
            }
            None => false,
        }
    }

    /// Every copy no pin holds.
    pub fn unpinned(&self, now: Millis) -> Vec<NsPath> {
        self.entries
            .keys()
            .filter(|p| !self.is_pinned(p, now))
            .cloned()
            .collect()
    }

    pub fn snapshot(&self, now: Millis) -> BufferView {
        let mut files: Vec<BufferFileView> = self
            .entries
            .iter()
            .map(|(p, e)| BufferFileView {
                path: p.clone(),
                size: e.size,
                pins: self
                    .pins
                    .get(p)
                    .map(|pins| {
                        pins.iter()
                            .filter(|pin| pin.expires_at > now)
                            .map(|pin| PinView {
                                request_id: pin.request_id.clone(),
                                expires_at: pin.expires_at / 1000,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        BufferView {
            bytes: self.bytes,
            limit: self.limit,
            files,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BufferView {
    pub bytes: u64,
    pub limit: u64,
    pub files: Vec<BufferFileView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BufferFileView {
    pub path: NsPath,
    pub size: u64,
    pub pins: Vec<PinView>,
}

#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PinView {
    pub request_id: RequestId,
    /// Seconds since the epoch.
    pub expires_at: u64,
}

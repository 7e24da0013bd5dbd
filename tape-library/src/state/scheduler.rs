//! Recalls grouped by volume, and the drives that serve them.
//!
//! Policy:
//! - a recall is one file to read, shared by every request waiting for it;
//! - an idle drive first serves its own mounted volume if that volume has
//!   queued recalls (no mount); otherwise it takes the volume whose oldest
//!   queued recall is oldest, among the volumes mounted on no drive, and
//!   mounts it (one mount counted). A drive that still holds a volume
//!   leaves a new mount to an empty idle drive, so volumes stay mounted
//!   (and cheap to serve again) as long as there is room;
//! - a round reads every queued recall of its volume in tape order
//!   (`position`, then path). A recall queued during the round joins it if
//!   the drive has not passed its place yet, else it waits for the next
//!   round, which the same drive serves without a mount;
//! - a volume is on one drive at most.
//!
//! Pure bookkeeping: the runtime (`crate::drives`) does the sleeping and the
//! copying, and reports back.

use super::requests::RequestId;
use crate::{catalog::TapeFile, nspath::NsPath};
use serde::Serialize;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    ops::Bound,
};

/// Where a file sits on its volume: the order a drive passes files in.
type Place = (u64, NsPath);

/// One file to read from tape, and who waits for it.
#[derive(Clone, Debug)]
pub struct Recall {
    pub path: NsPath,
    pub volume: String,
    pub position: u64,
    pub size: u64,
    /// Arrival order: the oldest recall decides which volume goes first.
    seq: u64,
    pub waiting: BTreeSet<RequestId>,
}

/// What a drive is to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// Unmount `unmount` (if any), then mount `volume`.
    Mount {
        volume: String,
        unmount: Option<String>,
    },
    /// Read `path` (`size` bytes) from the mounted `volume` into the buffer.
    Read {
        path: NsPath,
        size: u64,
        volume: String,
    },
}

/// Whether a wanted file is queued or already being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    Queued,
    Reading,
}

#[derive(Clone, Debug, Default)]
struct Drive {
    mounted: Option<String>,
    /// The volume this drive is serving, and the place it has read up to.
    round: Option<Option<Place>>,
    mounting: bool,
    reading: Option<NsPath>,
}

#[derive(Debug)]
pub struct Scheduler {
    queues: BTreeMap<String, BTreeMap<Place, Recall>>,
    queued: HashMap<NsPath, (String, Place)>,
    in_flight: HashMap<NsPath, (usize, Recall)>,
    drives: Vec<Drive>,
    seq: u64,
    mounts: u64,
    mounts_per_volume: BTreeMap<String, u64>,
}

impl Scheduler {
    pub fn new(drives: usize) -> Self {
        Self {
            queues: BTreeMap::new(),
            queued: HashMap::new(),
            in_flight: HashMap::new(),
            drives: vec![Drive::default(); drives.max(1)],
            seq: 0,
            mounts: 0,
            mounts_per_volume: BTreeMap::new(),
        }
    }

    /// `request` waits for `path`: joins its recall, or queues a new one.
    pub fn want(&mut self, path: &NsPath, file: &TapeFile, request: &RequestId) -> Wanted {
        if let Some((_, recall)) = self.in_flight.get_mut(path) {
            recall.waiting.insert(request.clone());
            return Wanted::Reading;
        }
        if let Some((volume, place)) = self.queued.get(path) {
            if let Some(r) = self.queues.get_mut(volume).and_then(|q| q.get_mut(place)) {
                r.waiting.insert(request.clone());
                return Wanted::Queued;
            }
        }
        self.seq += 1;
        let place = (file.position, path.clone());
        let recall = Recall {
            path: path.clone(),
            volume: file.volume.clone(),
            position: file.position,
            size: file.size,
            seq: self.seq,
            waiting: BTreeSet::from([request.clone()]),
        };
        self.queued
            .insert(path.clone(), (file.volume.clone(), place.clone()));
        self.queues
            .entry(file.volume.clone())
            .or_default()
            .insert(place, recall);
        Wanted::Queued
    }

    /// `request` no longer waits for `path`; a queued recall nobody waits
    /// for is dropped (a read under way finishes: the drive is positioned).
    pub fn unwant(&mut self, path: &NsPath, request: &RequestId) {
        if let Some((_, recall)) = self.in_flight.get_mut(path) {
            recall.waiting.remove(request);
            return;
        }
        let Some((volume, place)) = self.queued.get(path).cloned() else {
            return;
        };
        let Some(queue) = self.queues.get_mut(&volume) else {
            return;
        };
        if let Some(recall) = queue.get_mut(&place) {
            recall.waiting.remove(request);
            if recall.waiting.is_empty() {
                queue.remove(&place);
                self.queued.remove(path);
            }
        }
        if queue.is_empty() {
            self.queues.remove(&volume);
        }
    }

    /// Drops every queued recall and every waiter (a restart's amnesia);
    /// reads under way finish into the buffer, unpinned.
    pub fn forget_waiters(&mut self) {
        self.queues.clear();
        self.queued.clear();
        for (_, recall) in self.in_flight.values_mut() {
            recall.waiting.clear();
        }
    }

    /// The next job for an idle `drive`, if any; the caller reports its end
    /// with `mount_done` or `read_done`.
    pub fn next_job(&mut self, drive: usize) -> Option<Job> {
        let d = self.drives.get(drive)?;
        if d.mounting || d.reading.is_some() {
            return None;
        }
        if let Some(job) = self.continue_round(drive) {
            return Some(job);
        }
        // The round (if any) is over: the drive is idle, its volume mounted.
        let d = self.drives.get_mut(drive)?;
        d.round = None;
        if let Some(volume) = d.mounted.clone() {
            if self.queues.contains_key(&volume) {
                if let Some(d) = self.drives.get_mut(drive) {
                    d.round = Some(None);
                }
                return self.continue_round(drive);
            }
            let empty_idle_drive = self.drives.iter().enumerate().any(|(i, o)| {
                i != drive && o.mounted.is_none() && o.round.is_none() && !o.mounting
            });
            if empty_idle_drive {
                return None;
            }
        }
        let volume = self.oldest_unmounted_volume()?;
        let d = self.drives.get_mut(drive)?;
        let unmount = d.mounted.replace(volume.clone());
        d.round = Some(None);
        d.mounting = true;
        self.mounts += 1;
        *self.mounts_per_volume.entry(volume.clone()).or_default() += 1;
        Some(Job::Mount { volume, unmount })
    }

    pub fn mount_done(&mut self, drive: usize) {
        if let Some(d) = self.drives.get_mut(drive) {
            d.mounting = false;
        }
    }

    /// The read of `path` by `drive` ended; returns its recall (who waited).
    pub fn read_done(&mut self, drive: usize, path: &NsPath) -> Option<Recall> {
        if let Some(d) = self.drives.get_mut(drive) {
            if d.reading.as_ref() == Some(path) {
                d.reading = None;
            }
        }
        self.in_flight.remove(path).map(|(_, r)| r)
    }

    /// The recall being read for `path`, if any.
    pub fn reading(&self, path: &NsPath) -> Option<&Recall> {
        self.in_flight.get(path).map(|(_, r)| r)
    }

    /// The next recall of the drive's round past its head, now in flight.
    fn continue_round(&mut self, drive: usize) -> Option<Job> {
        let d = self.drives.get(drive)?;
        let head = d.round.clone()?;
        let volume = d.mounted.clone()?;
        let queue = self.queues.get_mut(&volume)?;
        let lower = match &head {
            Some(place) => Bound::Excluded(place),
            None => Bound::Unbounded,
        };
        let place = queue
            .range((lower, Bound::Unbounded))
            .next()
            .map(|(p, _)| p.clone())?;
        let recall = queue.remove(&place)?;
        if queue.is_empty() {
            self.queues.remove(&volume);
        }
        self.queued.remove(&recall.path);
        let job = Job::Read {
            path: recall.path.clone(),
            size: recall.size,
            volume,
        };
        self.in_flight
            .insert(recall.path.clone(), (drive, recall.clone()));
        let d = self.drives.get_mut(drive)?;
        d.round = Some(Some(place));
        d.reading = Some(recall.path);
        Some(job)
    }

    fn oldest_unmounted_volume(&self) -> Option<String> {
        self.queues
            .iter()
            .filter(|(v, _)| {
                !self
                    .drives
                    .iter()
                    .any(|d| d.mounted.as_deref() == Some(v.as_str()))
            })
            .filter_map(|(v, q)| q.values().map(|r| r.seq).min().map(|s| (s, v)))
            .min()
            .map(|(_, v)| v.clone())
    }

    /// What the admin state shows.
    pub fn snapshot(&self) -> SchedulerView {
        let drives = self
            .drives
            .iter()
            .enumerate()
            .map(|(id, d)| DriveView {
                id,
                mounted: d.mounted.clone(),
                state: if d.mounting {
                    "mounting"
                } else if d.reading.is_some() {
                    "reading"
                } else {
                    "idle"
                },
                reading: d.reading.clone(),
            })
            .collect::<Vec<_>>();
        let queued = self
            .queues
            .values()
            .flat_map(|q| q.values())
            .map(|r| RecallView::of(r, None))
            .collect();
        let reading = self
            .in_flight
            .values()
            .map(|(drive, r)| RecallView::of(r, Some(*drive)))
            .collect();
        SchedulerView {
            mounts: self.mounts,
            mounts_per_volume: self.mounts_per_volume.clone(),
            drives_busy: drives.iter().filter(|d| d.state != "idle").count(),
            drives,
            queued_files: self.queued.len(),
            queued,
            reading,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerView {
    pub mounts: u64,
    pub mounts_per_volume: BTreeMap<String, u64>,
    pub drives_busy: usize,
    pub drives: Vec<DriveView>,
    pub queued_files: usize,
    pub queued: Vec<RecallView>,
    pub reading: Vec<RecallView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriveView {
    pub id: usize,
    pub mounted: Option<String>,
    pub state: &'static str,
    pub reading: Option<NsPath>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecallView {
    pub path: NsPath,
    pub volume: String,
    pub position: u64,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drive: Option<usize>,
    pub request_ids: Vec<RequestId>,
}

impl RecallView {
    fn of(r: &Recall, drive: Option<usize>) -> Self {
        Self {
            path: r.path.clone(),
            volume: r.volume.clone(),
            position: r.position,
            size: r.size,
            drive,
            request_ids: r.waiting.iter().cloned().collect(),
        }
    }
}

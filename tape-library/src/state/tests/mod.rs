//! The state machine driven by hand: time, look-ups and drive progress are
//! the test's, so nothing sleeps. `scheduling`: volumes, drives, mounts;
//! `lifecycle`: request states, pins, eviction, cancel, delete, release.

mod lifecycle;
mod scheduling;

use super::{
    requests::{FileState, RequestId},
    scheduler::Job,
    Library, LibraryConfig, Locality, StageFile,
};
use crate::{
    catalog::{Health, Lookup, TapeFile},
    nspath::NsPath,
};
use std::time::Duration;

const HOUR: u64 = 3_600_000;

fn lib(drives: usize, buffer_bytes: u64) -> Library {
    Library::new(LibraryConfig {
        drives,
        buffer_bytes,
        default_lifetime: Duration::from_secs(3600),
    })
}

fn p(s: &str) -> NsPath {
    NsPath::parse(s).expect("valid path")
}

fn on(volume: &str, position: u64, size: u64) -> Lookup {
    Lookup::File(TapeFile {
        volume: volume.into(),
        position,
        size,
        health: Health::Ok,
    })
}

fn file(path: &str, lookup: Lookup) -> StageFile {
    StageFile {
        raw: path.into(),
        resolved: Ok((p(path), lookup)),
        lifetime: None,
    }
}

fn submit(lib: &mut Library, id: &str, files: Vec<StageFile>, now: u64) -> RequestId {
    lib.submit(RequestId(id.into()), files, now)
}

fn states(lib: &Library, id: &RequestId) -> Vec<(String, FileState)> {
    lib.request_view(id)
        .expect("known request")
        .files
        .into_iter()
        .map(|f| (f.path, f.state))
        .collect()
}

fn mount_of(job: Option<Job>) -> String {
    match job {
        Some(Job::Mount { volume, .. }) => volume,
        other => panic!("expected a mount, got {other:?}"),
    }
}

fn read_of(job: Option<Job>) -> NsPath {
    match job {
        Some(Job::Read { path, .. }) => path,
        other => panic!("expected a read, got {other:?}"),
    }
}

/// Runs `drive` until it has nothing to do; the paths it read, in order.
fn run_drive(lib: &mut Library, drive: usize, now: u64) -> Vec<String> {
    let mut read = Vec::new();
    while let Some(job) = lib.next_job(drive, now) {
        match job {
            Job::Mount { .. } => lib.mount_done(drive),
            Job::Read { path, size, .. } => {
                lib.read_done(drive, &path, Ok(size), now);
                read.push(path.to_string());
            }
        }
    }
    read
}

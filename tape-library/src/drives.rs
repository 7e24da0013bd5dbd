//! The drives and the buffer's housekeeping, as tasks.
//!
//! Each drive is a task that asks the state machine for its next job,
//! sleeps the mount (and unmount) time, and copies a file from the tape
//! folder into the buffer at the configured rate: the copy goes to a
//! staging folder inside the buffer and is renamed into place when
//! complete, so a copy is either whole or absent, also after a crash. A
//! task that finds no job waits for the next change of state (a
//! submission, a cancellation, another drive's progress).
//!
//! The sweeper expires pins and evicts once a second.

use crate::{
    now_ms,
    state::{scheduler::Job, Millis},
    Shared,
};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    task::JoinHandle,
    time::Instant,
};

/// The buffer's staging folder (hidden: no namespace path can name it).
pub const STAGING_DIR: &str = ".staging";

/// How long mechanical things take.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub mount: Duration,
    pub unmount: Duration,
    /// 0: as fast as the disks go.
    pub bytes_per_sec: u64,
}

/// Starts `drives` drive tasks and the sweeper.
pub fn spawn(shared: Arc<Shared>, drives: usize, timing: Timing) -> Vec<JoinHandle<()>> {
    let mut tasks: Vec<JoinHandle<()>> = (0..drives.max(1))
        .map(|id| tokio::spawn(drive(shared.clone(), id, timing)))
        .collect();
    tasks.push(tokio::spawn(sweeper(shared)));
    tasks
}

async fn drive(shared: Arc<Shared>, id: usize, timing: Timing) {
    let mut changes = shared.subscribe();
    loop {
        // Seen before looking, so a change made while we look wakes us.
        changes.borrow_and_update();
        let job = shared.lock().next_job(id, now_ms());
        match job {
            None => {
                if changes.changed().await.is_err() {
                    return;
                }
            }
            Some(Job::Mount { volume, unmount }) => {
                // A drive that left this mount to us (it holds a volume)
                // may now take the next one.
                shared.notify();
                if let Some(old) = unmount {
                    tracing::info!(drive = id, volume = %old, "unmounting");
                    tokio::time::sleep(timing.unmount).await;
                }
                tracing::info!(drive = id, %volume, "mounting");
                tokio::time::sleep(timing.mount).await;
                shared.lock().mount_done(id);
            }
            Some(Job::Read { path, size, volume }) => {
                tracing::info!(drive = id, %volume, %path, size, "reading");
                let src = shared.catalog.tape_path(&path);
                let dst = path.under(&shared.buffer_dir);
                let result = copy_paced(&src, &dst, &shared.buffer_dir, timing.bytes_per_sec)
                    .await
                    .map_err(|e| {
                        tracing::warn!(drive = id, %path, error = %e, "read failed");
                        e.to_string()
                    });
                let evicted = shared.lock().read_done(id, &path, result, now_ms());
                shared.delete_copies(evicted).await;
                shared.notify();
            }
        }
    }
}

async fn sweeper(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let evicted = shared.lock().sweep(now_ms());
        shared.delete_copies(evicted).await;
    }
}

/// Copies `src` to `dst` through the staging folder, at most
/// `bytes_per_sec`; returns the bytes copied.
async fn copy_paced(
    src: &Path,
    dst: &Path,
    buffer_dir: &Path,
    bytes_per_sec: u64,
) -> std::io::Result<u64> {
    let staging = buffer_dir.join(STAGING_DIR);
    tokio::fs::create_dir_all(&staging).await?;
    let tmp = staging.join(uuid::Uuid::now_v7().to_string());
    let result = copy_into(src, &tmp, bytes_per_sec).await;
    let result = match result {
        Ok(n) => place(&tmp, dst).await.map(|()| n),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

async fn copy_into(src: &Path, tmp: &Path, bytes_per_sec: u64) -> std::io::Result<u64> {
    let mut from = tokio::fs::File::open(src).await?;
    let mut to = tokio::fs::File::create(tmp).await?;
    // Small enough chunks that the pace is smooth at low rates.
    let chunk = match bytes_per_sec {
        0 => 1 << 20,
        r => usize::try_from(r / 20)
            .unwrap_or(1 << 20)
            .clamp(4 << 10, 1 << 20),
    };
    let mut buf = vec![0u8; chunk];
    let started = Instant::now();
    let mut copied: u64 = 0;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        to.write_all(buf.get(..n).unwrap_or_default()).await?;
        copied += n as u64;
        if bytes_per_sec > 0 {
            let due = Duration::from_secs_f64(copied as f64 / bytes_per_sec as f64);
            tokio::time::sleep_until(started + due).await;
        }
    }
    to.flush().await?;
    Ok(copied)
}

async fn place(tmp: &Path, dst: &Path) -> std::io::Result<()> {
    if let Some(parent) = dst.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::rename(tmp, dst).await
}

/// The copies in the buffer folder at start (size, modification time); the
/// staging folder, with whatever a crash left there, is emptied.
pub fn scan_buffer(buffer_dir: &Path) -> std::io::Result<Vec<(PathBuf, u64, Millis)>> {
    let _ = std::fs::remove_dir_all(buffer_dir.join(STAGING_DIR));
    let mut found = Vec::new();
    let mut dirs = vec![buffer_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            let path = entry.path();
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() {
                let rel = path.strip_prefix(buffer_dir).unwrap_or(&path).to_path_buf();
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
                found.push((rel, meta.len(), mtime));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_lands_whole_and_a_crash_leaves_nothing_adopted() {
        let dir = std::env::temp_dir().join(format!("tape-library-drives-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tape")).expect("dir");
        std::fs::write(dir.join("tape/f"), vec![7u8; 10_000]).expect("write");
        let buffer = dir.join("buffer");
        let n = copy_paced(&dir.join("tape/f"), &buffer.join("a/f"), &buffer, 0)
            .await
            .expect("copied");
        assert_eq!(n, 10_000);
        assert_eq!(
            std::fs::read(buffer.join("a/f")).expect("copy").len(),
            10_000
        );
        // What a crash mid-copy leaves in the staging folder is not a copy.
        std::fs::write(buffer.join(STAGING_DIR).join("partial"), b"x").expect("write");
        let found = scan_buffer(&buffer).expect("scan");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].0.as_path(), found[0].1),
            (Path::new("a/f"), 10_000)
        );
        assert!(!buffer.join(STAGING_DIR).exists());
        let missing = copy_paced(&dir.join("tape/none"), &buffer.join("n"), &buffer, 0).await;
        assert!(missing.is_err());
        assert!(!buffer.join("n").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

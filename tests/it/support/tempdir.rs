//! A folder that removes itself when dropped, under the system's temporary
//! folder. The tests' own, so that the test build resolves the same
//! dependency features as the service's binaries (the `tempfile` crate
//! turns on features of `rustix` that the binaries do not use) and reuses
//! their build.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct TempDir {
    path: PathBuf,
}

/// A new empty folder, named by process, counter and a random tag.
pub fn tempdir() -> io::Result<TempDir> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let name = format!(
            "dissemination-it-{}-{}-{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let path = base.join(name);
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(TempDir { path }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    /// Removed, unless the test is failing: then the folder (its servers'
    /// logs and data) is kept, and the tail of every log in it is printed,
    /// so that a failure in CI says what the servers were doing.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} (the test failed)", self.path.display());
            print_log_tails(&self.path);
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The last lines of every `*.log` directly in `dir`, to stderr.
fn print_log_tails(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    for log in logs {
        eprintln!("--- {} (last lines)\n{}", log.display(), log_tail(&log, 20));
    }
}

/// The last `lines` lines of the log at `path` (empty if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

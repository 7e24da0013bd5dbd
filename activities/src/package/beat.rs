//! The package step's heartbeat: live progress (bytes of the repository
//! files read, members taken) and the time bytes last moved, sent at most
//! every `HEARTBEAT_EVERY`; where a cancel request is noticed.

use crate::{
    attempt::{progress, Headway, HEARTBEAT_EVERY},
    failure::Failure,
};
use std::time::Instant;
use temporalio_sdk::activities::ActivityContext;
use workflows::{Phase, TransferHeartbeat};

pub(crate) struct Beat<'a> {
    pub(super) ctx: &'a ActivityContext,
    last: Instant,
    started: Instant,
    /// How far the step has got over its attempts, and when.
    pub(super) headway: Headway,
    pub(super) file: String,
    pub(super) location_id: String,
    pub(super) read: u64,
    total: u64,
    pub(super) members: u32,
}

impl<'a> Beat<'a> {
    /// A heartbeat for `total` bytes of repository files, the step's
    /// headway so far given.
    pub(super) fn new(ctx: &'a ActivityContext, total: u64, headway: Headway) -> Self {
        Self {
            ctx,
            last: Instant::now(),
            started: Instant::now(),
            headway,
            file: String::new(),
            location_id: String::new(),
            read: 0,
            total,
            members: 0,
        }
    }

    pub(crate) async fn due(&mut self) -> Result<(), Failure> {
        if self.last.elapsed() >= HEARTBEAT_EVERY {
            self.now().await
        } else {
            Ok(())
        }
    }

    pub(crate) async fn now(&mut self) -> Result<(), Failure> {
        self.last = Instant::now();
        self.ctx
            .record_heartbeat(self.heartbeat())
            .await
            .map_err(|e| Failure::Transient(format!("recording a heartbeat: {e}")))?;
        if self.ctx.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        Ok(())
    }

    /// What the heartbeat says: live progress, how far the step got.
    pub(super) fn heartbeat(&self) -> TransferHeartbeat {
        let what = format!("{} ({} member(s) taken so far)", self.file, self.members);
        let mut heartbeat = TransferHeartbeat {
            file: self.file.clone(),
            location_id: self.location_id.clone(),
            bytes_read: self.read,
            bytes_total: self.total,
            progress: Some(progress(
                Phase::Download,
                &what,
                (self.read, self.total),
                (0, self.started),
            )),
            ..TransferHeartbeat::default()
        };
        self.headway.stamp(&mut heartbeat);
        heartbeat
    }

    /// Every attempt reads from the start: only bytes beyond what an
    /// earlier attempt read are progress.
    pub(super) fn moved(&mut self, bytes: u64) {
        self.read += bytes;
        self.headway.read(self.read);
    }
}

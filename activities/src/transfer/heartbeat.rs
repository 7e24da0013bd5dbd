//! What a transfer's heartbeat says: where a retry resumes (the upload,
//! the checkpoint), the live progress the API shows, and when bytes last
//! went further than any attempt before (retries without progress end
//! after `retry_for_ms` from there).
//! Heartbeats are also where a cancel request is noticed.

use super::Attempt;
use crate::parts::Parts;
use crate::{
    attempt::{location_of, progress},
    digest::MultiHasher,
    failure::Failure,
};
use workflows::{HashCheckpoint, MultipartState, Phase, Progress, TransferHeartbeat};

/// What a heartbeat says about the sink.
#[derive(Clone, Default)]
pub(super) struct SinkView {
    multipart: Option<MultipartState>,
    checkpoint: Option<HashCheckpoint>,
    uploaded: u64,
}

impl SinkView {
    pub(super) fn of(p: &Parts) -> Self {
        Self {
            multipart: Some(p.state()),
            checkpoint: p.checkpoint().cloned(),
            uploaded: p.bytes_uploaded(u64::MAX),
        }
    }

    pub(super) fn complete(upload: &Option<MultipartState>, hasher: &MultiHasher) -> Self {
        Self {
            multipart: upload.clone(),
            // Nothing left to upload: any point of the reading is a checkpoint.
            checkpoint: Some(hasher.checkpoint()),
            uploaded: 0,
        }
    }
}

impl Attempt<'_> {
    /// A heartbeat while bytes are read (or wait for an upload slot).
    pub(super) async fn beat(
        &mut self,
        view: &SinkView,
        hasher: &MultiHasher,
        phase: Phase,
        part_size: u64,
    ) -> Result<(), Failure> {
        let file = &self.input.file;
        let read = hasher.bytes();
        let progress = progress(
            phase,
            &file.relative_path,
            (read, file.size),
            (self.base, self.started),
        );
        self.record(view.clone(), read, part_size, progress).await
    }

    /// A heartbeat while the last parts land.
    pub(super) async fn beat_upload(
        &mut self,
        p: &Parts,
        read: u64,
        part_size: u64,
    ) -> Result<(), Failure> {
        let view = SinkView::of(p);
        let file = &self.input.file;
        let progress = progress(
            Phase::Upload,
            &file.relative_path,
            (view.uploaded, file.size),
            (0, self.started),
        );
        self.record(view, read, part_size, progress).await
    }

    async fn record(
        &mut self,
        view: SinkView,
        read: u64,
        part_size: u64,
        progress: Progress,
    ) -> Result<(), Failure> {
        // Parts finishing count as progress while reading waits for them.
        self.headway.uploaded(view.uploaded);
        let file = &self.input.file;
        let location = location_of(file, self.input.location_index)?;
        let mut beat = TransferHeartbeat {
            file: file.relative_path.clone(),
            location_id: location.location_id.clone(),
            bytes_read: read,
            bytes_total: file.size,
            part_size,
            multipart: view.multipart,
            checkpoint: view.checkpoint,
            progress: Some(progress),
            ..TransferHeartbeat::default()
        };
        self.headway.stamp(&mut beat);
        self.last_beat = Some(beat.clone());
        self.ctx
            .record_heartbeat(beat)
            .await
            .map_err(|e| Failure::Transient(format!("recording a heartbeat: {e}")))?;
        if self.ctx.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        Ok(())
    }
}

impl Attempt<'_> {
    /// The heartbeat a failing attempt leaves: the last one recorded (so a
    /// retry still resumes from its upload and checkpoint), saying how far
    /// the step got and when.
    pub(super) fn parting_beat(&self) -> TransferHeartbeat {
        let file = &self.input.file;
        let mut beat = self.last_beat.clone().unwrap_or_else(|| TransferHeartbeat {
            file: file.relative_path.clone(),
            location_id: location_of(file, self.input.location_index)
                .map(|l| l.location_id.clone())
                .unwrap_or_default(),
            bytes_read: self.headway.reached.read,
            bytes_total: file.size,
            ..TransferHeartbeat::default()
        });
        self.headway.stamp(&mut beat);
        beat
    }
}

//! The read loop: each chunk goes straight into the current part's spare
//! capacity, updates the digests, and a full part leaves for S3 on its own
//! task (waiting, heartbeating, while every upload slot is busy); a
//! heartbeat goes out every `HEARTBEAT_EVERY` with the live progress and
//! the checkpoint a retry resumes from.

use super::{
    heartbeat::SinkView,
    resume::{Sink, Written},
    Attempt, Target,
};
use crate::{
    attempt::{end_span, file_attributes, step_span, HEARTBEAT_EVERY, READ_CHUNK},
    failure::Failure,
    repository::{pace, Reader},
};
use bytes::BufMut;
use std::time::Instant;
use tokio::io::AsyncReadExt;
use workflows::Phase;

impl Attempt<'_> {
    /// Reads the copy to its end (or past the catalog's size, which fixity
    /// then refuses), every full part sent on its way.
    pub(super) async fn read_all(
        &mut self,
        target: &Target<'_>,
        w: &mut Written,
        mut reader: Reader,
    ) -> Result<(), Failure> {
        let span = step_span("download", file_attributes(target.file, target.location));
        let offset = w.hasher.bytes();
        let mut counted = offset;
        let result = self.read_loop(target, w, &mut reader, &mut counted).await;
        self.acts.metrics.downloaded(w.hasher.bytes() - counted);
        end_span(span, result.as_ref().err().map(ToString::to_string));
        if result.is_err() {
            if let Sink::Parts(p) = &mut w.sink {
                // The upload stays: a retry lists its parts and goes on. A
                // real cancel is cleaned up by the workflow (discard).
                p.stop();
            }
        }
        result
    }

    async fn read_loop(
        &mut self,
        target: &Target<'_>,
        w: &mut Written,
        reader: &mut Reader,
        counted: &mut u64,
    ) -> Result<(), Failure> {
        let (file, location) = (target.file, target.location);
        let capacity = w.part.capacity();
        let offset = w.hasher.bytes();
        let mut part_no = (offset / target.part_size) as i32;
        let mut last_beat = Instant::now();
        let max_rate = self.acts.cfg.repository.max_read_bytes_per_sec;
        loop {
            // Straight into the part's spare capacity (no zero-filling).
            let want = READ_CHUNK.min(capacity.saturating_sub(w.part.len())).max(1);
            let from = w.part.len();
            let n = reader
                .read_buf(&mut (&mut w.part).limit(want))
                .await
                .map_err(|e| {
                    Failure::Transient(format!(
                        "reading {} from {}: {e}",
                        file.relative_path, location.location_id
                    ))
                })?;
            if n > 0 {
                w.hasher.update(&w.part[from..]);
                self.headway.read(w.hasher.bytes());
            }
            let read = w.hasher.bytes();
            if read > file.size {
                return Ok(()); // longer than the catalog says: fixity refuses it
            }
            let full = w.part.len() >= capacity;
            let last = n == 0 && !w.part.is_empty();
            match &mut w.sink {
                Sink::Parts(p) => {
                    if full || last {
                        while p.is_full() {
                            p.wait_one(HEARTBEAT_EVERY).await?;
                            let view = SinkView::of(p);
                            self.beat(&view, &w.hasher, Phase::Download, target.part_size)
                                .await?;
                        }
                        part_no += 1;
                        let body = std::mem::replace(
                            &mut w.part,
                            bytes::BytesMut::with_capacity(capacity),
                        );
                        p.push(part_no, body.freeze(), w.hasher.checkpoint());
                    }
                    p.collect_finished()?;
                }
                Sink::Complete(_) => {
                    if full {
                        w.part.clear();
                    }
                }
                Sink::Whole => {
                    if full && read < file.size {
                        return Ok(()); // bigger than one part after all: fixity refuses it
                    }
                }
            }
            if n == 0 {
                return Ok(());
            }
            pace(max_rate, read - offset, self.started).await;
            if last_beat.elapsed() >= HEARTBEAT_EVERY {
                last_beat = Instant::now();
                self.acts.metrics.downloaded(read - *counted);
                *counted = read;
                let view = match &w.sink {
                    Sink::Parts(p) => SinkView::of(p),
                    Sink::Complete(upload) => SinkView::complete(upload, &w.hasher),
                    Sink::Whole => SinkView::default(),
                };
                self.beat(&view, &w.hasher, Phase::Download, target.part_size)
                    .await?;
            }
        }
    }
}

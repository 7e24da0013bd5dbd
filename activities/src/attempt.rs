//! What every byte-moving attempt (`transfer`, `package`) shares: the
//! earlier attempt's heartbeat and when bytes last moved, how a failed
//! attempt ends (retried, or given up after `retry_for_ms` without
//! progress), the copy and digest the workflow chose, live progress with an
//! estimate, and the spans of its steps.

use crate::{failure::Failure, observe::mark_error};
use model::catalog::{FileLocation, Fixity, RepositoryFile};
use opentelemetry::{
    global,
    trace::{Span as _, SpanBuilder, Status, Tracer as _},
    Context, KeyValue,
};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use temporalio_client::{ActivityIdentifier, RpcOptions};
use temporalio_common::{data_converters::TemporalSerializable, protos::TaskToken, ActivityError};
use temporalio_sdk::activities::ActivityContext;
use workflows::{Phase, Progress, Reached, TransferHeartbeat};

/// Bytes read from a copy at once.
pub(crate) const READ_CHUNK: usize = 1 << 20;
/// Heartbeats (live progress, checkpoints) go out at most this often.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// The earlier attempt's heartbeat, and the step's headway so far: as it
/// says, or nothing yet since the step was scheduled.
pub(crate) fn previous_beat(ctx: &ActivityContext) -> (Option<TransferHeartbeat>, Headway) {
    let previous: Option<TransferHeartbeat> = ctx.heartbeat_details().deserialize().ok().flatten();
    let since = previous
        .as_ref()
        .and_then(|p| p.last_progress_unix_ms)
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .or(ctx.info().scheduled_time)
        .unwrap_or_else(SystemTime::now);
    let headway = Headway::new(previous.as_ref(), since);
    (previous, headway)
}

/// Progress across a step's attempts: how far any attempt has got, and
/// when one last went further. Re-reading what an earlier attempt read is
/// not progress (a step failing after its reading would otherwise be
/// retried for ever); bytes read or parts uploaded beyond that point are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Headway {
    pub(crate) reached: Reached,
    /// When an attempt last went further.
    pub(crate) last: SystemTime,
}

impl Headway {
    pub(crate) fn new(previous: Option<&TransferHeartbeat>, since: SystemTime) -> Self {
        let reached = previous
            .map(|p| {
                // A heartbeat from before `reached`: its reading point.
                p.reached.unwrap_or(Reached {
                    read: p.bytes_read,
                    uploaded: 0,
                })
            })
            .unwrap_or_default();
        Self {
            reached,
            last: since,
        }
    }

    /// `bytes` of the copy read by this attempt (from its start).
    pub(crate) fn read(&mut self, bytes: u64) {
        if bytes > self.reached.read {
            self.reached.read = bytes;
            self.last = SystemTime::now();
        }
    }

    /// `bytes` in uploaded parts, as this attempt sees them.
    pub(crate) fn uploaded(&mut self, bytes: u64) {
        if bytes > self.reached.uploaded {
            self.reached.uploaded = bytes;
            self.last = SystemTime::now();
        }
    }

    /// The heartbeat says how far the step got and when.
    pub(crate) fn stamp(&self, beat: &mut TransferHeartbeat) {
        beat.reached = Some(self.reached);
        beat.last_progress_unix_ms = Some(unix_ms(self.last));
    }
}

/// A failing attempt's last heartbeat: its details reach the server with
/// the failure, so the next attempt knows how far this one got (a step
/// that fails before its first periodic heartbeat would otherwise leave
/// nothing). A cancel has nothing to pass on.
pub(crate) async fn last_word(ctx: &ActivityContext, beat: TransferHeartbeat, failure: &Failure) {
    if matches!(failure, Failure::Cancelled) {
        return;
    }
    if let Err(e) = ctx.record_heartbeat(beat).await {
        tracing::warn!(error = %e, "recording the failing attempt's heartbeat");
    }
}

/// A failed attempt as the SDK's error: a retryable failure with no bytes
/// moved for longer than `retry_for_ms` ends the step for good.
pub(crate) fn ended(
    failure: Failure,
    last_progress: SystemTime,
    retry_for_ms: Option<u64>,
) -> ActivityError {
    let stuck = SystemTime::now()
        .duration_since(last_progress)
        .unwrap_or_default();
    let give_up =
        failure.is_retryable() && retry_for_ms.is_some_and(|ms| stuck > Duration::from_millis(ms));
    let failure = if give_up {
        failure.give_up(stuck)
    } else {
        failure
    };
    if !matches!(failure, Failure::Cancelled) {
        mark_error(failure.to_string());
    }
    failure.into()
}

/// A heartbeat the server holds before this returns: for a step that has
/// just made something outside Temporal (a multipart upload, a stage
/// request) the next attempt must find again even if this worker dies at
/// once. The SDK's own heartbeats are held back up to most of the
/// heartbeat timeout. If Temporal does not take it now, the SDK's
/// heartbeat, recorded first, still brings it once Temporal is back.
pub(crate) async fn heartbeat_now<T>(ctx: &ActivityContext, details: T) -> Result<(), Failure>
where
    T: TemporalSerializable + Clone + Send + 'static,
{
    ctx.record_heartbeat(details.clone())
        .await
        .map_err(|e| Failure::Transient(format!("recording a heartbeat: {e}")))?;
    if ctx.info().is_local {
        return Ok(()); // a local activity has no heartbeat of its own
    }
    let token = TaskToken::from(ctx.info().task_token.clone());
    let handle = ctx
        .client()
        .get_async_activity_handle(ActivityIdentifier::TaskToken(token));
    if let Err(e) = handle.heartbeat(Some(details), RpcOptions::default()).await {
        tracing::warn!(error = %e, "sending a heartbeat to Temporal at once");
    }
    Ok(())
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// The file's location number `index` (the workflow's choice).
pub(crate) fn location_of(file: &RepositoryFile, index: usize) -> Result<&FileLocation, Failure> {
    file.locations.get(index).ok_or_else(|| {
        Failure::Misconfigured(format!("{} has no location {index}", file.relative_path))
    })
}

/// The digest fixity is checked against: the strongest one stored.
pub(crate) fn stored_digest(file: &RepositoryFile) -> Result<&Fixity, Failure> {
    file.strongest_fixity().ok_or_else(|| {
        Failure::Misconfigured(format!("{} has no stored digest", file.relative_path))
    })
}

/// `x-amz-meta-fixity` of an object: the stored digest it was verified
/// against (`SHA-256:<hex>`), so a retry knows a complete delivery.
pub(crate) fn fixity_tag(stored: &Fixity) -> String {
    format!(
        "{}:{}",
        stored.algorithm.as_str(),
        stored.digest.trim().to_ascii_lowercase()
    )
}

/// A progress report with an estimate of the time left: the rate since
/// `since` (when `base` bytes were done) applied to what remains.
pub(crate) fn progress(
    phase: Phase,
    file: &str,
    (done, total): (u64, u64),
    (base, since): (u64, Instant),
) -> Progress {
    let elapsed = since.elapsed().as_secs_f64();
    let rate = done.saturating_sub(base) as f64 / elapsed.max(1e-3);
    let seconds_left = (rate > 0.0 && elapsed >= 0.5)
        .then(|| (total.saturating_sub(done) as f64 / rate).ceil() as u64);
    Progress {
        phase,
        file: file.into(),
        bytes_done: done,
        bytes_total: total,
        seconds_left,
        ..Progress::default()
    }
}

/// A step (download, fixity, upload) as a span under the activity's:
/// reading and uploading overlap.
pub(crate) fn step_span(name: &'static str, attributes: Vec<KeyValue>) -> global::BoxedSpan {
    global::tracer("dissemination-worker").build_with_context(
        SpanBuilder::from_name(name).with_attributes(attributes),
        &Context::current(),
    )
}

pub(crate) fn end_span(mut span: global::BoxedSpan, error: Option<String>) {
    if let Some(e) = error {
        span.set_status(Status::error(e));
    }
    span.end();
}

/// The attributes of a file's step spans.
pub(crate) fn file_attributes(file: &RepositoryFile, location: &FileLocation) -> Vec<KeyValue> {
    vec![
        KeyValue::new("file", file.relative_path.clone()),
        KeyValue::new("bytes", file.size as i64),
        KeyValue::new("location", location.location_id.clone()),
    ]
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn beat(bytes_read: u64, reached: Option<Reached>) -> TransferHeartbeat {
        TransferHeartbeat {
            bytes_read,
            reached,
            ..TransferHeartbeat::default()
        }
    }

    #[test]
    fn re_reading_what_an_earlier_attempt_read_is_not_progress() {
        let since = UNIX_EPOCH + Duration::from_secs(1_000);
        let previous = beat(
            10,
            Some(Reached {
                read: 100,
                uploaded: 64,
            }),
        );
        let mut h = Headway::new(Some(&previous), since);
        h.read(100);
        h.uploaded(64);
        assert_eq!(h.last, since, "the same bytes again");
        h.read(101);
        assert!(h.last > since, "one byte further");
        let after_read = h.last;
        h.uploaded(128);
        assert!(h.last >= after_read);
        assert_eq!(
            h.reached,
            Reached {
                read: 101,
                uploaded: 128
            }
        );
    }

    #[test]
    fn a_heartbeat_from_before_reached_counts_its_reading_point() {
        let since = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut h = Headway::new(Some(&beat(50, None)), since);
        h.read(50);
        assert_eq!(h.last, since);
        let mut first = Headway::new(None, since);
        first.read(1);
        assert!(first.last > since, "a first attempt's first byte");
    }

    #[test]
    fn a_stamped_heartbeat_carries_the_headway_to_the_next_attempt() {
        let since = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut h = Headway::new(None, since);
        h.read(7);
        let mut out = TransferHeartbeat::default();
        h.stamp(&mut out);
        let json = serde_json::to_string(&out).expect("serialise");
        let back: TransferHeartbeat = serde_json::from_str(&json).expect("deserialise");
        let next = Headway::new(Some(&back), since);
        assert_eq!(next.reached.read, 7);
        assert_eq!(back.last_progress_unix_ms, Some(unix_ms(h.last)));
    }
}

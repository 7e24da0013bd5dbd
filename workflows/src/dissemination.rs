//! `DisseminationWorkflow`: one execution per dissemination, id =
//! disseminationId. It owns the dissemination's status, exposes it by query
//! and mirrors it into memo and search attributes so the API and operators
//! can read it without a worker. Every timeout and retry policy is declared
//! here, from the settings fixed in the input.
//!
//! Flow (streaming, the default): per file, one `transfer` reads, hashes and
//! uploads parts at once and completes the upload only when the digest
//! matches, trying the next location on a mismatch (see `streaming`).
//! Flow (staged): fetch every file (download to the worker's staging folder,
//! hashing while reading) → verify each against its strongest stored digest,
//! trying the next location on a mismatch → upload the verified copies.
//! Then notify. Nothing unverified is ever visible in the client's bucket.

use crate::activities::DisseminationActivities as Acts;
use crate::contract::*;
use crate::lock::DisseminationLock;
use model::{catalog::RepositoryFile, DisseminationStatus};
use std::time::Duration;
use temporalio_common::{error::IncomingError, search_attributes::SearchAttributeKey, RetryPolicy};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityCancellationType, ActivityExecutionError, ActivityOptions, MemoValue,
    SignalWorkflowOptions, SyncWorkflowContext, TimeoutType, WorkflowCancellationToken,
    WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination,
};

pub const SA_ARCHIVE_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ArchiveId");
pub const SA_CLIENT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ClientId");
pub const SA_CONTRACT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ContractId");
pub const SA_STATUS: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("DisseminationStatus");

/// Executions started before retention existed end after the webhook.
const RETENTION_PATCH: &str = "retention-and-link-regeneration";

/// Executions started before one-pass transfers existed stage every file.
/// New work never does: the staged branch (`staged.rs`) stays only to
/// replay and finish those executions. Remove it with `deprecate_patch`
/// once no execution started before v4 can be open (retention + webhook
/// schedule after the v4 release: 12 days with the defaults).
const STREAMING_PATCH: &str = "single-pass-transfer";

/// How a refused link regeneration over the cap begins (the API maps it).
pub const LINK_CAP_PREFIX: &str = "over the limit of";

#[workflow]
pub struct DisseminationWorkflow {
    input: DisseminationInput,
    pub(crate) view: DisseminationView,
    /// Task queues of the hosts that staged files, to clean them all.
    pub(crate) hosts: Vec<String>,
    /// The audit trail (state only: recorded events are replayed, not stored).
    events: Vec<DisseminationEvent>,
    links_regenerated: u32,
}

#[workflow_methods]
impl DisseminationWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: DisseminationInput) -> Self {
        let view = DisseminationView::received(input.record.clone());
        Self {
            input,
            view,
            hosts: Vec::new(),
            events: Vec::new(),
            links_regenerated: 0,
        }
    }

    #[run(name = "DisseminationWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<DisseminationView> {
        let input = ctx.state(|s| s.input.clone());
        let requested = format!(
            "requested by {} with priority {}",
            input.record.client_id,
            input.record.priority.get()
        );
        record(
            ctx,
            Event::new("dissemination requested", "success", requested),
        );
        set_status(
            ctx,
            DisseminationStatus::Queued,
            "waiting for a worker to start the download",
        );

        let outcome = if input.settings.streaming && ctx.patched(STREAMING_PATCH) {
            crate::streaming::transfer_all(ctx, &input).await
        } else {
            match crate::staged::fetch_and_verify(ctx, &input).await {
                Ok(staged) => crate::staged::deliver(ctx, &input, staged).await,
                Err(end) => Err(end),
            }
        };
        // A cancel request interrupts whatever step was running; what it
        // left behind is removed below, whatever that step reported.
        let cancelled = ctx.cancellation_token().is_cancelled();
        let outcome = if cancelled {
            Err(Ending::cancelled())
        } else {
            outcome
        };
        cleanup(ctx, &input).await;

        match outcome {
            Ok(files) => {
                let names: Vec<&str> = files.iter().map(|f| f.filename.as_str()).collect();
                let detail = format!("{} file(s) available: {}", files.len(), names.join(", "));
                record(ctx, Event::new("delivery", "success", detail));
                ctx.state_mut(|s| s.view.files = files);
                set_status(ctx, DisseminationStatus::Disseminated, "delivered");
            }
            Err(end) => {
                if end.discard {
                    let _ = discard(ctx, &input).await;
                }
                let kind = if end.status == DisseminationStatus::Cancelled {
                    "cancellation"
                } else {
                    "failure"
                };
                let detail = end
                    .reasons
                    .iter()
                    .map(|r| format!("{}: {}", r.code, r.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                record(ctx, Event::new(kind, "failure", detail));
                ctx.state_mut(|s| s.view.reasons = end.reasons.clone());
                set_status(ctx, end.status, &end.summary());
            }
        }
        release_lock(ctx, &input).await;
        if !cancelled {
            crate::webhook::notify(ctx, &input).await;
        }
        let delivered = ctx.state(|s| s.view.status == DisseminationStatus::Disseminated);
        if delivered && ctx.patched(RETENTION_PATCH) {
            retain(ctx, &input).await;
        }
        if ctx.cancellation_token().is_cancelled() {
            return Err(WorkflowTermination::cancelled());
        }
        Ok(ctx.state(|s| s.view.clone()))
    }

    /// New download links for a delivered dissemination, while its objects
    /// are retained: nothing is downloaded or uploaded again.
    #[update(name = "regenerate_links")]
    pub async fn regenerate_links(
        ctx: &mut WorkflowContext<Self>,
        _input: (),
    ) -> Result<DisseminationView, Box<dyn std::error::Error + Send + Sync>> {
        let (input, files) = ctx.state(|s| (s.input.clone(), s.view.files.clone()));
        let fresh = ctx
            .execute_activity(
                Acts::presign_links,
                PresignInput {
                    record: input.record.clone(),
                    files,
                    link_lifetime_secs: input.settings.link_lifetime_secs,
                },
                summarised(
                    short_options(&input.settings, &[failure_types::OBJECTS_GONE]),
                    "regenerate download links".into(),
                ),
            )
            .await
            .map_err(|e| failure_message(&e))?;
        record(
            ctx,
            Event::new(
                "link regeneration",
                "success",
                format!("{} new link(s)", fresh.len()),
            ),
        );
        ctx.state_mut(|s| {
            s.view.files = fresh;
            s.links_regenerated += 1;
        });
        set_status(
            ctx,
            DisseminationStatus::Disseminated,
            "download links regenerated",
        );
        Ok(ctx.state(|s| s.view.clone()))
    }

    #[update_validator(regenerate_links)]
    fn validate_regenerate_links(
        &self,
        _ctx: &WorkflowContextView,
        _input: &(),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.view.status != DisseminationStatus::Disseminated {
            return Err(format!("the dissemination is {}, not delivered", self.view.status).into());
        }
        if self.view.objects_deleted {
            return Err("the delivered objects are no longer retained".into());
        }
        if let Some(cap) = self.input.settings.max_link_regenerations {
            if self.links_regenerated >= cap {
                return Err(format!(
                    "{LINK_CAP_PREFIX} {cap} link regenerations per dissemination"
                )
                .into());
            }
        }
        Ok(())
    }

    /// Sent by `download` when a worker actually starts it: QUEUED ends there.
    #[signal(name = "download_started")]
    pub fn download_started(&mut self, ctx: &mut SyncWorkflowContext<Self>) {
        if self.view.status == DisseminationStatus::Queued {
            self.view.status = DisseminationStatus::DownloadingFromRepository;
            mirror(ctx, &self.view, "downloading from the bit repository");
        }
    }

    /// Sent by a one-pass `transfer` when it moves to its next step: all
    /// bytes read (FIXITY_CHECK), digest matched (UPLOADING_TO_S3).
    #[signal(name = "transfer_step")]
    pub fn transfer_step(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        status: DisseminationStatus,
    ) {
        let step = matches!(
            status,
            DisseminationStatus::FixityCheck | DisseminationStatus::UploadingToS3
        );
        if step && !self.view.status.is_final() && self.view.status != status {
            self.view.status = status;
            self.view.progress = None;
            let details = if status == DisseminationStatus::FixityCheck {
                "comparing the digest with the stored one"
            } else {
                "completing the upload to the client's bucket"
            };
            mirror(ctx, &self.view, details);
        }
    }

    /// Sent by transfers every few seconds: shown on GET and in the Web UI.
    #[signal(name = "progress")]
    pub fn progress(&mut self, ctx: &mut SyncWorkflowContext<Self>, progress: Progress) {
        let expected = match progress.phase.as_str() {
            "download" => DisseminationStatus::DownloadingFromRepository,
            _ => DisseminationStatus::UploadingToS3,
        };
        if self.view.status == expected {
            ctx.set_current_details(format!(
                "{expected}: {} {}: {} of {}",
                progress.phase,
                progress.file,
                human_bytes(progress.bytes_done),
                human_bytes(progress.bytes_total)
            ));
            self.view.progress = Some(progress);
        }
    }

    #[query(name = "events")]
    pub fn events(&self, _ctx: &WorkflowContextView) -> Vec<DisseminationEvent> {
        self.events.clone()
    }

    #[query(name = "state")]
    pub fn state(&self, _ctx: &WorkflowContextView) -> DisseminationView {
        self.view.clone()
    }
}

/// A final status other than DISSEMINATED, with its reasons.
pub(crate) struct Ending {
    pub(crate) status: DisseminationStatus,
    pub(crate) reasons: Vec<Reason>,
    /// Objects may have reached the client's bucket and must be removed.
    pub(crate) discard: bool,
}

impl Ending {
    pub(crate) fn failed(code: &str, message: String, file: Option<&str>) -> Self {
        Self {
            status: DisseminationStatus::Failed,
            reasons: vec![Reason {
                code: code.into(),
                message,
                file_path: file.map(Into::into),
            }],
            discard: false,
        }
    }

    fn cancelled() -> Self {
        Self {
            status: DisseminationStatus::Cancelled,
            reasons: vec![Reason {
                code: reason_codes::CANCELLED.into(),
                message: "cancelled at the client's request".into(),
                file_path: None,
            }],
            discard: true,
        }
    }

    fn summary(&self) -> String {
        let codes: Vec<&str> = self.reasons.iter().map(|r| r.code.as_str()).collect();
        format!("{}: {}", self.status, codes.join(", "))
    }
}

/// Per file: which location is being tried and what went wrong so far.
pub(crate) struct FileTry {
    pub(crate) file: RepositoryFile,
    pub(crate) location_index: usize,
    pub(crate) mismatches: Vec<String>,
    pub(crate) unreadable: Vec<String>,
}

pub(crate) fn no_copy_left(t: &FileTry) -> Ending {
    let path = Some(t.file.relative_path.as_str());
    if !t.mismatches.is_empty() {
        let mut all = t.mismatches.clone();
        all.extend(t.unreadable.iter().cloned());
        Ending::failed(
            reason_codes::FIXITY_MISMATCH,
            format!(
                "no copy of {} matches its stored digest ({})",
                t.file.relative_path,
                all.join("; ")
            ),
            path,
        )
    } else {
        Ending {
            status: DisseminationStatus::Rejected,
            reasons: vec![Reason {
                code: reason_codes::NO_READABLE_COPY.into(),
                message: format!(
                    "no readable copy of {} in the bit repository ({})",
                    t.file.relative_path,
                    t.unreadable.join("; ")
                ),
                file_path: path.map(Into::into),
            }],
            discard: false,
        }
    }
}

/// Keeps the delivered objects (links can be regenerated) until retention
/// ends, then deletes them.
async fn retain(ctx: &mut WorkflowContext<DisseminationWorkflow>, input: &DisseminationInput) {
    let secs = input.settings.retention_secs.unwrap_or(7 * 24 * 3600);
    let ends_at = ctx
        .workflow_time()
        .map(|t| format_time(t + Duration::from_secs(secs)));
    ctx.state_mut(|s| s.view.retention_ends_at = ends_at.clone());
    let until = ends_at.unwrap_or_default();
    set_status(
        ctx,
        DisseminationStatus::Disseminated,
        &format!("delivered; objects kept until {until}"),
    );
    // A cancel request (operator) ends retention early.
    let _ = ctx.timer(Duration::from_secs(secs)).await;
    match discard(ctx, input).await {
        Ok(count) => {
            record(
                ctx,
                Event::new(
                    "deletion",
                    "success",
                    format!("retention ended; {count} delivered object(s) deleted"),
                ),
            );
            ctx.state_mut(|s| s.view.objects_deleted = true);
            set_status(
                ctx,
                DisseminationStatus::Disseminated,
                "retention ended; objects deleted",
            );
        }
        Err(message) => {
            // Retried for the configured duration and still refused: the
            // record says so, and an operator can reset the run.
            record(
                ctx,
                Event::new(
                    "deletion",
                    "failure",
                    format!("retention ended; deleting the delivered objects failed: {message}"),
                ),
            );
            set_status(
                ctx,
                DisseminationStatus::Disseminated,
                "retention ended; deleting the objects failed",
            );
        }
    }
}

/// Clean-up steps run even when the workflow is being cancelled.
fn detached(mut opts: ActivityOptions) -> ActivityOptions {
    opts.cancellation_token = Some(WorkflowCancellationToken::new());
    opts
}

fn detached_signal() -> SignalWorkflowOptions {
    let mut opts = SignalWorkflowOptions::default();
    opts.cancellation_token = Some(WorkflowCancellationToken::new());
    opts
}

/// Best effort: staging folders on every host that staged a file.
async fn cleanup(ctx: &mut WorkflowContext<DisseminationWorkflow>, input: &DisseminationInput) {
    for host in ctx.state(|s| s.hosts.clone()) {
        let _ = ctx
            .execute_activity(
                Acts::cleanup_staging,
                CleanupInput {
                    dissemination_id: input.record.dissemination_id.clone(),
                },
                detached(summarised(
                    on_host(short_options(&input.settings, &[]), &input.settings, &host),
                    "clean staging".into(),
                )),
            )
            .await;
    }
}

/// Removes what reached the client's bucket: the objects deleted, or why not.
async fn discard(
    ctx: &mut WorkflowContext<DisseminationWorkflow>,
    input: &DisseminationInput,
) -> Result<u32, String> {
    ctx.execute_activity(
        Acts::discard_delivery,
        DiscardInput {
            record: input.record.clone(),
        },
        detached(summarised(
            short_options(&input.settings, &[]),
            "remove a partial delivery".into(),
        )),
    )
    .await
    .map_err(|e| failure_message(&e))
}

async fn release_lock(
    ctx: &mut WorkflowContext<DisseminationWorkflow>,
    input: &DisseminationInput,
) {
    if let Some(lock) = &input.lock {
        // A lock already gone (terminated by an operator) is fine.
        let _ = ctx
            .external_workflow(lock.workflow_id.clone(), Some(lock.run_id.clone()))
            .signal(DisseminationLock::release, (), detached_signal())
            .await;
    }
}

pub(crate) fn format_time(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string()
}

/// Workflow time (deterministic), RFC 3339.
pub(crate) fn now(ctx: &WorkflowContext<DisseminationWorkflow>) -> String {
    ctx.workflow_time().map(format_time).unwrap_or_default()
}

/// Builds an audit event.
pub(crate) struct Event(DisseminationEvent);

impl Event {
    pub(crate) fn new(event_type: &str, outcome: &str, detail: String) -> Self {
        Self(DisseminationEvent {
            event_type: event_type.into(),
            date_time: String::new(),
            outcome: outcome.into(),
            detail,
            file: None,
            location: None,
            algorithm: None,
        })
    }
    pub(crate) fn file(mut self, f: &str) -> Self {
        self.0.file = Some(f.into());
        self
    }
    pub(crate) fn location(mut self, l: &str) -> Self {
        self.0.location = Some(l.into());
        self
    }
    pub(crate) fn algorithm(mut self, a: &str) -> Self {
        self.0.algorithm = Some(a.into());
        self
    }
}

/// Appends to the audit trail, stamped with workflow time (deterministic).
pub(crate) fn record(ctx: &mut WorkflowContext<DisseminationWorkflow>, event: Event) {
    let mut e = event.0;
    e.date_time = now(ctx);
    ctx.state_mut(|s| s.events.push(e));
}

/// The Web UI's "current details": the status and what is happening, in words.
pub(crate) fn describe(ctx: &mut WorkflowContext<DisseminationWorkflow>, what: String) {
    let status = ctx.state(|s| s.view.status);
    ctx.set_current_details(format!("{status}: {what}"));
}

/// 3.4 GiB, 12.0 MiB, 512 B.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Sets the status and mirrors it for readers without a worker.
pub(crate) fn set_status(
    ctx: &mut WorkflowContext<DisseminationWorkflow>,
    status: DisseminationStatus,
    details: &str,
) {
    let view = ctx.state_mut(|s| {
        s.view.status = status;
        s.view.progress = None;
        s.view.clone()
    });
    let _ = ctx.upsert_memo([(MEMO_VIEW, Some(MemoValue::new(view.clone())))]);
    ctx.upsert_search_attributes([SA_STATUS.value_set(status.as_str().to_owned())]);
    ctx.set_current_details(format!("{status}: {details}"));
}

fn mirror(
    ctx: &mut SyncWorkflowContext<DisseminationWorkflow>,
    view: &DisseminationView,
    details: &str,
) {
    let _ = ctx.upsert_memo([(MEMO_VIEW, Some(MemoValue::new(view.clone())))]);
    ctx.upsert_search_attributes([SA_STATUS.value_set(view.status.as_str().to_owned())]);
    ctx.set_current_details(format!("{}: {details}", view.status));
}

pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Infrastructure errors are retried for `retry_for_ms` (attempts
/// unlimited: the duration decides); executions started before that
/// counted `retry_max_attempts`.
fn retry(s: &WorkflowSettings, non_retryable: &[&str]) -> RetryPolicy {
    let attempts = if s.retry_for_ms.is_some() {
        0
    } else {
        s.retry_max_attempts
    };
    RetryPolicy::builder()
        .initial_interval(ms(s.retry_initial_ms))
        .backoff_coefficient(2.0)
        .maximum_interval(ms(s.retry_max_interval_ms))
        .maximum_attempts(attempts)
        .non_retryable_error_types(non_retryable.iter().copied())
        .build()
}

/// Long byte-moving steps: heartbeated, retried on I/O errors.
pub(crate) fn transfer_options(s: &WorkflowSettings, host_queue: Option<&str>) -> ActivityOptions {
    let opts = ActivityOptions::with_start_to_close_timeout(ms(s.transfer_timeout_ms))
        .heartbeat_timeout(ms(s.heartbeat_timeout_ms))
        // On cancel, wait until the activity has stopped writing before cleaning up.
        .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
        .retry_policy(retry(
            s,
            &[
                failure_types::LOCATION_UNREADABLE,
                failure_types::MISCONFIGURED,
            ],
        ))
        .build();
    match host_queue {
        Some(q) => on_host(opts, s, q),
        None => opts,
    }
}

/// Short steps: each attempt bounded; all of them within `retry_for_ms`.
pub(crate) fn short_options(s: &WorkflowSettings, non_retryable: &[&str]) -> ActivityOptions {
    let mut opts = ActivityOptions::with_start_to_close_timeout(ms(s.short_activity_timeout_ms))
        .retry_policy(retry(s, non_retryable))
        .build();
    if let Some(total) = s.retry_for_ms {
        opts.close_timeouts = temporalio_common::ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: ms(total.max(s.short_activity_timeout_ms)),
            start_to_close: ms(s.short_activity_timeout_ms),
        };
    }
    opts
}

/// Steps reading the staging folder run on the host that filled it.
pub(crate) fn on_host(
    mut opts: ActivityOptions,
    s: &WorkflowSettings,
    host_queue: &str,
) -> ActivityOptions {
    opts.task_queue = Some(host_queue.to_owned());
    opts.schedule_to_start_timeout = Some(ms(s.host_schedule_to_start_ms));
    opts
}

/// The line operators read in the Web UI's event list.
pub(crate) fn summarised(mut opts: ActivityOptions, summary: String) -> ActivityOptions {
    opts.summary = Some(summary);
    opts
}

pub(crate) fn failure_type(e: &ActivityExecutionError) -> Option<&str> {
    match e.cause() {
        Some(IncomingError::Application(a)) => a.type_name(),
        _ => None,
    }
}

pub(crate) fn failure_message(e: &ActivityExecutionError) -> String {
    match e.cause() {
        Some(c) => c.failure().message.clone(),
        None => e.to_string(),
    }
}

/// A staged step never started: its host stopped polling.
pub(crate) fn is_host_lost(e: &ActivityExecutionError) -> bool {
    e.as_timeout()
        .is_some_and(|t| t.timeout_type() == TimeoutType::ScheduleToStart)
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes_reads_like_the_web_ui_should() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(super::human_bytes(3_650_722_201), "3.4 GiB");
    }
}

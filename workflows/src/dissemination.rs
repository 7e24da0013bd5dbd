//! `DisseminationWorkflow`: one execution per dissemination, id =
//! disseminationId. It owns the dissemination's status, exposes it by query
//! and mirrors it into memo and search attributes so the API and operators
//! can read it without a worker. Every timeout and retry policy is declared
//! here, from the settings fixed in the input.
//!
//! Flow (streaming, the default): per file, one `transfer` reads, hashes and
//! uploads parts at once and completes the upload only when the digest
//! matches, trying the next location on a mismatch (see `streaming`).
//! Flow (packaged: `format: "bagit"` or `select`): one `package` step
//! reads every file once, streams the selected members (or the files
//! whole) into their objects or one bag, and completes nothing unless
//! each file's digest matched (see `packaged`).
//! Then notify. Nothing unverified is ever visible in the client's bucket.
//!
//! (Executions started before one-pass transfers staged every file on a
//! worker's disk first; that flow is retired: no such execution can still
//! be open, see `STREAMING_PATCH`.)

use crate::activities::DisseminationActivities as Acts;
use crate::audit::{record, Event};
use crate::contract::*;
use crate::mirror::{human_bytes, mirror, set_status};
use crate::options::{short_options, summarised};
use crate::outcome::{failure_message, Ending};
use crate::plan::plan;
use crate::retention::{discard, release_lock, retain};
use crate::state::DisseminationState;
use crate::streaming::Mode;
use model::DisseminationStatus;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination,
};

pub use crate::mirror::{
    SA_ARCHIVE_ID, SA_BATCH_ID, SA_CLIENT_ID, SA_CONTRACT_ID, SA_PRIORITY, SA_STATUS,
};

/// Executions started before retention existed end after the webhook.
const RETENTION_PATCH: &str = "retention-and-link-regeneration";

/// Executions started before one-pass transfers existed staged every file.
/// That flow is retired (`deprecate_patch`): an execution started before
/// v4 ended long ago (retention + webhook schedule: 12 days with the
/// defaults), and its histories (v1–v3) no longer replay.
const STREAMING_PATCH: &str = "single-pass-transfer";

/// Executions started before delivery formats existed have neither
/// `format` nor `select` in their record and never take this branch.
const PACKAGE_PATCH: &str = "delivery-formats";

/// Executions started before batches existed have no `batch` in their input.
const BATCH_PATCH: &str = "batch-items";

/// Executions started before v1.2 tried copies in the catalog's order and
/// delivered each file under the last segment of its path (two files
/// sharing a name shared an object). New ones follow `plan`.
const COPIES_PATCH: &str = "copies-by-preference-paths-kept";

#[workflow]
pub struct DisseminationWorkflow {
    pub(crate) input: DisseminationInput,
    pub(crate) view: DisseminationView,
    /// The audit trail (state only: recorded events are replayed, not stored).
    events: Vec<DisseminationEvent>,
    links_regenerated: u32,
    /// A batch item's turn was given (`batch_turn`).
    turn: bool,
    /// Its batch staged its tape files (`tape_ready`, flow 11 on).
    tape_ready: Option<TapeReady>,
    /// Acknowledgements made so far (`acknowledge`).
    pub(crate) acknowledgements: u32,
}

#[workflow_methods]
impl DisseminationWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: DisseminationInput) -> Self {
        let view = DisseminationView::received(input.record.clone());
        Self {
            input,
            view,
            events: Vec::new(),
            links_regenerated: 0,
            turn: false,
            tape_ready: None,
            acknowledgements: 0,
        }
    }

    #[run(name = "DisseminationWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<DisseminationView> {
        if ctx.state(|s| s.input.flow) >= 10 {
            return crate::flow::run(ctx).await;
        }
        let input = ctx.state(|s| s.input.clone());
        record(ctx, Event::requested(&input.record));
        set_status(
            ctx,
            DisseminationStatus::Queued,
            "waiting for a worker to start the download",
        );

        // The files' names and the order of their copies, fixed now.
        let keep_paths = ctx.patched(COPIES_PATCH);
        let (input, refused) =
            match keep_paths.then(|| plan(&input.files, &input.settings.locations)) {
                Some(Ok(files)) => (DisseminationInput { files, ..input }, None),
                Some(Err(end)) => (input, Some(end)),
                None => (input, None),
            };

        // A batch's item waits for its turn (a cancel request ends the wait).
        let mut waited_out = false;
        if let (Some(batch), None) = (input.batch.as_deref(), &refused) {
            if ctx.patched(BATCH_PATCH) {
                crate::mirror::describe(ctx, format!("waiting for its turn in batch {batch}"));
                waited_out = ctx.wait_condition(|s| s.turn).await.is_err();
            }
        }
        let outcome = if let Some(end) = refused {
            Err(end)
        } else if waited_out {
            Err(Ending::cancelled())
        } else if input.record.is_packaged() && ctx.patched(PACKAGE_PATCH) {
            let mut tape = crate::staging::Tape::default();
            crate::packaged::package_all(ctx, &input, Mode::before_flows(keep_paths), &mut tape)
                .await
        } else {
            ctx.deprecate_patch(STREAMING_PATCH);
            let mut tape = crate::staging::Tape::default();
            crate::streaming::transfer_all(ctx, &input, Mode::before_flows(keep_paths), &mut tape)
                .await
        };
        // A cancel request interrupts whatever step was running; what it
        // left behind is removed below, whatever that step reported.
        let cancelled = ctx.cancellation_token().is_cancelled();
        let outcome = if cancelled {
            Err(Ending::cancelled())
        } else {
            outcome
        };

        match outcome {
            Ok(files) => {
                record(ctx, Event::delivered(&files));
                ctx.state_mut(|s| s.view.files = files);
                set_status(ctx, DisseminationStatus::Disseminated, "delivered");
            }
            Err(end) => {
                if end.discard {
                    let _ = discard(ctx, &input).await;
                }
                record(ctx, end.event());
                ctx.state_mut(|s| s.view.reasons = end.reasons.clone());
                set_status(ctx, end.status, &end.summary());
            }
        }
        release_lock(ctx, &input).await;
        if let Some(batch) = input.batch.clone() {
            let ended = ItemEnded {
                dissemination_id: input.record.dissemination_id.to_string(),
                status: ctx.state(|s| s.view.status),
            };
            let _ = ctx
                .external_workflow(batch, None)
                .signal(
                    crate::batch::DisseminationBatch::item_ended,
                    ended,
                    crate::options::detached_signal(),
                )
                .await;
        }
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
                    short_options(&input.settings, &[FailureType::ObjectsGone]),
                    "regenerate download links".into(),
                ),
            )
            .await
            .map_err(|e| failure_message(&e))?;
        record(
            ctx,
            Event::new(
                EventType::LinkRegeneration,
                Outcome::Success,
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
        let refusal = if self.view.status != DisseminationStatus::Disseminated {
            UpdateRefusal::NotDelivered {
                status: self.view.status,
            }
        } else if self.view.objects_deleted {
            UpdateRefusal::ObjectsGone
        } else {
            match self.input.settings.max_link_regenerations {
                Some(cap) if self.links_regenerated >= cap => UpdateRefusal::LinkCapReached { cap },
                _ => return Ok(()),
            }
        };
        Err(refusal.into())
    }

    /// The receiving archive's digests of what it downloaded (v1.2; see
    /// `acknowledge`).
    #[update(name = "acknowledge")]
    pub async fn acknowledge(
        ctx: &mut WorkflowContext<Self>,
        input: Acknowledgement,
    ) -> Result<AcknowledgementOutcome, Box<dyn std::error::Error + Send + Sync>> {
        Ok(crate::acknowledge::acknowledge(ctx, &input))
    }

    #[update_validator(acknowledge)]
    fn validate_acknowledge(
        &self,
        _ctx: &WorkflowContextView,
        input: &Acknowledgement,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        crate::acknowledge::check(&self.view, self.acknowledgements, input).map_err(Into::into)
    }

    /// From its batch: this item may start now.
    #[signal(name = "batch_turn")]
    pub fn batch_turn(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.turn = true;
    }

    /// From its batch's `stage` step: its tape files are settled (flow 11
    /// on). The first word counts (a retried step may say it again).
    #[signal(name = "tape_ready")]
    pub fn tape_ready(&mut self, _ctx: &mut SyncWorkflowContext<Self>, ready: TapeReady) {
        if self.tape_ready.is_none() {
            self.tape_ready = Some(ready);
        }
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
        let expected = match progress.phase {
            Phase::Download => DisseminationStatus::DownloadingFromRepository,
            Phase::Upload => DisseminationStatus::UploadingToS3,
            Phase::Staging => DisseminationStatus::Staging,
        };
        if self.view.status == expected {
            ctx.set_current_details(format!(
                "{expected}: {} {}: {} of {}",
                progress.phase.as_str(),
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

impl DisseminationState for DisseminationWorkflow {
    fn view(&self) -> &DisseminationView {
        &self.view
    }
    fn view_mut(&mut self) -> &mut DisseminationView {
        &mut self.view
    }
    fn events(&self) -> &Vec<DisseminationEvent> {
        &self.events
    }
    fn events_mut(&mut self) -> &mut Vec<DisseminationEvent> {
        &mut self.events
    }
    fn tape_ready(&self) -> Option<&TapeReady> {
        self.tape_ready.as_ref()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes_reads_like_the_web_ui_should() {
        assert_eq!(crate::mirror::human_bytes(512), "512 B");
        assert_eq!(crate::mirror::human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(crate::mirror::human_bytes(3_650_722_201), "3.4 GiB");
    }
}

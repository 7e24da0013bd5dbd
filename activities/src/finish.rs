//! `finish` (flow 10 on): after the final status is recorded (the workflow
//! wrote it before scheduling this step), the dissemination's in-progress
//! lock is released, then the webhook's first attempt is made. One step,
//! so a small dissemination's history has one activity here, not two.
//!
//! The lock is a workflow no worker runs (it only holds its id):
//! releasing it is terminating it. A lock already gone is fine; a release
//! that fails fails the step, which Temporal retries before any webhook is
//! sent. Whatever the endpoint answers, the step succeeds and says so: the
//! workflow schedules the next attempts itself.

use crate::{failure::Failure, notify::notify, Activities};
use temporalio_client::{
    errors::WorkflowInteractionError, NamespacedClient, WorkflowExecutionInfo, WorkflowHandle,
    WorkflowTerminateOptions,
};
use temporalio_sdk::activities::ActivityContext;
use tracing::info;
use workflows::{
    DisseminationLock, FinishInput, FinishOutcome, LockRef, TapeRelease, WebhookAttempt,
    WebhookState,
};

pub(crate) async fn finish(
    acts: &Activities,
    ctx: &ActivityContext,
    input: FinishInput,
) -> Result<FinishOutcome, Failure> {
    if let Some(lock) = &input.lock {
        release(ctx, lock).await?;
    }
    let (released, not_released) = release_tape(acts, &input.releases).await;
    let Some(message) = input.notify else {
        return Ok(FinishOutcome {
            webhook: None,
            released,
            not_released,
        });
    };
    let webhook = match notify(acts, ctx, message).await {
        Ok(o) => WebhookAttempt {
            state: o.outcome,
            status_code: o.status_code,
            error: None,
            retry_after_ms: None,
        },
        Err(f) => {
            let (state, retry_after_ms) = match &f {
                Failure::WebhookGone => (WebhookState::Gone, None),
                Failure::Misconfigured(_) => (WebhookState::NotConfigured, None),
                Failure::RetryAfter { after, .. } => {
                    (WebhookState::Pending, Some(after.as_millis() as u64))
                }
                _ => (WebhookState::Pending, None),
            };
            WebhookAttempt {
                state,
                status_code: None,
                error: Some(f.to_string()),
                retry_after_ms,
            }
        }
    };
    Ok(FinishOutcome {
        webhook: Some(webhook),
        released,
        not_released,
    })
}

/// Ends our pins on the tape copies read (and deletes our own requests):
/// once each, whatever the tape system answers (a pin it keeps expires
/// after its `diskLifetime`; the webhook is not held back for it).
async fn release_tape(acts: &Activities, releases: &[TapeRelease]) -> (Vec<String>, Vec<String>) {
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for r in releases {
        let Some(client) = acts.repo.tape(&r.location_id) else {
            failed.push(format!(
                "{}: location {} is not configured",
                r.request_id, r.location_id
            ));
            continue;
        };
        let paths: Result<Vec<String>, _> = r
            .file_paths
            .iter()
            .map(|p| client.namespace_path(p))
            .collect();
        let result = match paths {
            Ok(paths) => match client.release(&r.request_id, &paths).await {
                Ok(()) if r.delete => client.delete(&r.request_id).await,
                other => other,
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                info!(request = %r.request_id, files = r.file_paths.len(), "tape copies released");
                done.push(r.request_id.clone());
            }
            Err(e) => {
                tracing::warn!(request = %r.request_id, error = %e, "releasing tape copies");
                failed.push(format!("{}: {e}", r.request_id));
            }
        }
    }
    (done, failed)
}

/// Terminates the lock's run (the one this dissemination took).
async fn release(ctx: &ActivityContext, lock: &LockRef) -> Result<(), Failure> {
    let client = ctx.client();
    let info = WorkflowExecutionInfo::builder()
        .namespace(client.namespace())
        .workflow_id(lock.workflow_id.clone())
        .run_id(lock.run_id.clone())
        .build();
    let handle: WorkflowHandle<_, DisseminationLock> = WorkflowHandle::new(client, info);
    let opts = WorkflowTerminateOptions::builder()
        .reason("its dissemination reached its final status")
        .build();
    match handle.terminate(opts).await {
        Ok(()) => {
            info!(lock = %lock.workflow_id, "in-progress lock released");
            Ok(())
        }
        // Released before (a retry), or handed over as stale meanwhile.
        Err(WorkflowInteractionError::NotFound(_)) => Ok(()),
        Err(e) if e.to_string().contains("already completed") => Ok(()),
        Err(e) => Err(Failure::Transient(format!("releasing the lock: {e}"))),
    }
}

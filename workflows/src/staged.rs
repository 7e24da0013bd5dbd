//! The staged flow (`transfer.mode = "staged"`, and every execution
//! started before one-pass transfers): download every file to the worker's
//! staging folder (hashing while reading) → verify each against its
//! strongest stored digest on the host that holds it, trying the next
//! location on a mismatch → upload the verified copies.

use crate::activities::DisseminationActivities as Acts;
use crate::audit::{record, Event};
use crate::contract::*;
use crate::mirror::{describe, human_bytes, set_status};
use crate::options::{on_host, short_options, summarised, transfer_options};
use crate::outcome::{failure_message, failure_type, is_host_lost, no_copy_left, Ending, FileTry};
use crate::state::DisseminationState;
use model::DisseminationStatus;
use temporalio_sdk::WorkflowContext;

/// How often a staged step may find its host gone before giving up.
const MAX_HOST_LOSSES: u32 = 3;

pub(crate) async fn fetch_and_verify<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
) -> Result<Vec<StagedFile>, Ending> {
    let mut pending: Vec<FileTry> = input.files.iter().map(FileTry::first).collect();
    let mut verified = Vec::new();
    let mut host_losses = 0;
    let mut first_round = true;

    while !pending.is_empty() {
        if !first_round {
            set_status(
                ctx,
                DisseminationStatus::DownloadingFromRepository,
                "downloading from the next location",
            );
        }
        first_round = false;

        let mut staged_round = Vec::new();
        for mut t in std::mem::take(&mut pending) {
            loop {
                let Some(location) = t.file.locations.get(t.location_index) else {
                    return Err(no_copy_left(&t));
                };
                let location_id = location.location_id.clone();
                describe(
                    ctx,
                    format!(
                        "downloading {} ({}) from {location_id}",
                        t.file.filename(),
                        human_bytes(t.file.size)
                    ),
                );
                let download = ctx
                    .execute_activity(
                        Acts::download,
                        DownloadInput {
                            dissemination_id: input.record.dissemination_id.clone(),
                            file: t.file.clone(),
                            location_index: t.location_index,
                            announce_start: ctx
                                .state(|s| s.view().status == DisseminationStatus::Queued),
                        },
                        summarised(
                            transfer_options(&input.settings, None),
                            format!("download {} from {location_id}", t.file.filename()),
                        ),
                    )
                    .await;
                match download {
                    Ok(staged) => {
                        record(
                            ctx,
                            Event::new(
                                EventType::Retrieval,
                                Outcome::Success,
                                format!("{} bytes staged", staged.size),
                            )
                            .file(&t.file.relative_path)
                            .location(&location_id),
                        );
                        ctx.state_mut(|s| {
                            if !s.hosts_mut().contains(&staged.host_queue) {
                                s.hosts_mut().push(staged.host_queue.clone());
                            }
                        });
                        staged_round.push((t, staged));
                        break;
                    }
                    Err(e) if failure_type(&e) == Some(failure_types::LOCATION_UNREADABLE) => {
                        t.unreadable
                            .push(format!("{location_id}: {}", failure_message(&e)));
                        t.location_index += 1;
                    }
                    Err(e) => {
                        return Err(Ending::failed(
                            reason_codes::DOWNLOAD_FAILED,
                            format!(
                                "downloading {} failed: {}",
                                t.file.relative_path,
                                failure_message(&e)
                            ),
                            Some(&t.file.relative_path),
                        ))
                    }
                }
            }
        }

        set_status(ctx, DisseminationStatus::FixityCheck, "verifying fixity");
        for (mut t, staged) in staged_round {
            describe(
                ctx,
                format!(
                    "verifying {} ({}) against its stored digest",
                    t.file.filename(),
                    staged.location_id
                ),
            );
            let check = ctx
                .execute_activity(
                    Acts::verify_fixity,
                    staged.clone(),
                    summarised(
                        on_host(
                            short_options(
                                &input.settings,
                                &[failure_types::FIXITY_MISMATCH, failure_types::STAGING_LOST],
                            ),
                            &input.settings,
                            &staged.host_queue,
                        ),
                        format!("fixity of {} ({})", t.file.filename(), staged.location_id),
                    ),
                )
                .await;
            match check {
                Ok(outcome) => {
                    record(
                        ctx,
                        Event::new(
                            EventType::FixityCheck,
                            Outcome::Success,
                            format!("digest {}", outcome.digest),
                        )
                        .file(&t.file.relative_path)
                        .location(&outcome.location_id)
                        .algorithm(outcome.algorithm.as_str()),
                    );
                    verified.push(staged)
                }
                Err(e) if failure_type(&e) == Some(failure_types::FIXITY_MISMATCH) => {
                    let algorithm = t.file.strongest_fixity().map(|f| f.algorithm.as_str());
                    let mut event = Event::new(
                        EventType::FixityCheck,
                        Outcome::Failure,
                        failure_message(&e),
                    )
                    .file(&t.file.relative_path)
                    .location(&staged.location_id);
                    if let Some(a) = algorithm {
                        event = event.algorithm(a);
                    }
                    record(ctx, event);
                    t.mismatches
                        .push(format!("{}: {}", staged.location_id, failure_message(&e)));
                    t.location_index += 1;
                    pending.push(t);
                }
                Err(e)
                    if (is_host_lost(&e)
                        || failure_type(&e) == Some(failure_types::STAGING_LOST))
                        && host_losses < MAX_HOST_LOSSES =>
                {
                    // The host holding the staged copy is gone: fetch it again.
                    host_losses += 1;
                    pending.push(t);
                }
                Err(e) => {
                    return Err(Ending::failed(
                        reason_codes::DOWNLOAD_FAILED,
                        format!(
                            "verifying {} failed: {}",
                            t.file.relative_path,
                            failure_message(&e)
                        ),
                        Some(&t.file.relative_path),
                    ))
                }
            }
        }
    }
    Ok(verified)
}

pub(crate) async fn deliver<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
    staged: Vec<StagedFile>,
) -> Result<Vec<DeliveredFile>, Ending> {
    set_status(
        ctx,
        DisseminationStatus::UploadingToS3,
        "uploading to the client's bucket",
    );
    let mut delivered = Vec::new();
    for s in staged {
        let name = s.file.filename().to_owned();
        describe(ctx, format!("uploading {name} ({})", human_bytes(s.size)));
        let upload = ctx
            .execute_activity(
                Acts::upload,
                UploadInput {
                    record: input.record.clone(),
                    staged: s.clone(),
                    link_lifetime_secs: input.settings.link_lifetime_secs,
                },
                summarised(
                    transfer_options(&input.settings, Some(&s.host_queue)),
                    format!("upload {name}"),
                ),
            )
            .await;
        match upload {
            Ok(file) => delivered.push(file),
            Err(e) => {
                let mut end = Ending::failed(
                    reason_codes::UPLOAD_FAILED,
                    format!("uploading {name} failed: {}", failure_message(&e)),
                    Some(&s.file.relative_path),
                );
                end.discard = true;
                return Err(end);
            }
        }
    }
    Ok(delivered)
}

//! Packaged delivery (`format: "bagit"` or `select`): one `package` step
//! reads every repository file once, in order, from the location chosen
//! for it. It streams the selected members (or the files whole) into their
//! own objects or into one bag, and completes nothing whose repository
//! file's digest did not match. A copy that does not match, or cannot be
//! opened, comes back as `CopyRefused` naming the file: the next location
//! of that file is tried, as in the per-file flow (`streaming`), with the
//! same window for a copy that is briefly unreadable.

use crate::activities::DisseminationActivities as Acts;
use crate::contract::*;
use crate::mirror::{describe, human_bytes};
use crate::options::{summarised, transfer_options};
use crate::outcome::{no_copy_left, Ending, FileTry};
use crate::staging::{settle, Tape};
use crate::state::DisseminationState;
use crate::streaming::{
    blip_wait, downloading_again, local_options, not_read, record_mismatch, record_skipped,
    record_verified, retry_copy_after, step_failed, Blips, Mode,
};
use model::DisseminationStatus;
use temporalio_sdk::WorkflowContext;

pub(crate) async fn package_all<W: DisseminationState>(
    ctx: &mut WorkflowContext<W>,
    input: &DisseminationInput,
    mode: Mode,
    tape: &mut Tape,
) -> Result<Vec<DeliveredFile>, Ending> {
    let mut local = mode.local;
    let record_ = &input.record;
    let mut tries: Vec<FileTry> = input.files.iter().map(FileTry::first).collect();
    let mut done: Vec<PackagedFile> = Vec::new();
    let mut blips = Blips::default();
    let total: u64 = input.files.iter().map(|f| f.size).sum();
    let what = match (record_.format, record_.select.is_empty()) {
        (Format::Bagit, true) => "bagging the repository files".to_owned(),
        (Format::Bagit, false) => "bagging the selected members".to_owned(),
        (Format::Files, _) => "extracting the selected members".to_owned(),
    };
    loop {
        if mode.tape {
            // The copies about to be read that are on tape, online first
            // (all of them in one recall the first time).
            if let Err(mut end) = settle(ctx, input, tape, &mut tries).await {
                end.discard = end.discard || !done.is_empty();
                return Err(end);
            }
        }
        let queued = !mode.flow10 && downloading_again(ctx);
        describe(
            ctx,
            format!(
                "{what}: {} repository file(s), {}",
                input.files.len(),
                human_bytes(total)
            ),
        );
        let events = ctx.state(|s| s.events().clone());
        let step = PackageInput {
            record: record_.clone(),
            files: input.files.clone(),
            locations: tries.iter().map(|t| t.location_index).collect(),
            done: done.clone(),
            announce_start: queued,
            link_lifetime_secs: input.settings.link_lifetime_secs,
            retry_for_ms: input.settings.retry_for_ms,
            events,
            keep_paths: mode.keep_paths,
            silent: mode.flow10,
        };
        let result = if local {
            let result = ctx
                .execute_local_activity(Acts::package, step, local_options(&input.settings))
                .await;
            if result.is_err() {
                // Not a copy's fault (those come back as outcomes): from
                // here on with retries and heartbeats.
                local = false;
                continue;
            }
            result
        } else {
            ctx.execute_activity(
                Acts::package,
                step,
                summarised(transfer_options(&input.settings), what.clone()),
            )
            .await
        };
        match result {
            Ok(PackageOutcome::Delivered { files, delivered }) => {
                for (packaged, t) in files.iter().zip(&tries) {
                    let detail = format!(
                        "{} bytes read, {} member(s) taken{}",
                        packaged.bytes_read,
                        packaged.members,
                        not_read(input, &t.file.locations[t.location_index + 1..])
                    );
                    record_verified(ctx, &t.file.relative_path, detail, &packaged.fixity);
                }
                return Ok(delivered);
            }
            Ok(PackageOutcome::CopyRefused {
                file,
                unreadable,
                message,
                done: verified,
                no_reader,
            }) => {
                if record_.format == Format::Files {
                    done = verified; // complete in the bucket: not read again
                }
                let Some(t) = tries.get_mut(file) else {
                    return Err(Ending::failed(
                        ReasonCode::DownloadFailed,
                        format!("the package step named file {file}, which the AIP does not have"),
                        None,
                    ));
                };
                let location_id = t
                    .file
                    .locations
                    .get(t.location_index)
                    .map(|l| l.location_id.clone())
                    .unwrap_or_default();
                let path = t.file.relative_path.clone();
                if unreadable {
                    let at = (path.as_str(), t.location_index);
                    let wait = (!no_reader)
                        .then(|| blip_wait(ctx, (input, mode), &mut blips, at))
                        .flatten();
                    if let Some(wait) = wait {
                        retry_copy_after(ctx, (&path, &location_id), wait, &message).await;
                        continue;
                    }
                    if mode.keep_paths {
                        record_skipped(ctx, &path, &location_id, &message);
                    }
                    t.unreadable.push(format!("{location_id}: {message}"));
                } else {
                    record_mismatch(ctx, &t.file, &location_id, &message);
                    t.mismatches.push(format!("{location_id}: {message}"));
                }
                t.location_index += 1;
                if t.location_index >= t.file.locations.len() {
                    let mut end = no_copy_left(t);
                    end.discard = true;
                    return Err(end);
                }
            }
            Ok(PackageOutcome::Rejected { code, message }) => {
                return Err(Ending {
                    status: DisseminationStatus::Rejected,
                    reasons: vec![Reason {
                        code,
                        message,
                        file_path: None,
                    }],
                    discard: true,
                });
            }
            Err(e) => return Err(step_failed(&e, &what, None)),
        }
    }
}

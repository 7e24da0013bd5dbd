//! The `package` activity: `select` and `format: "bagit"`.
//!
//! Every repository file is read once, in order, from the location the
//! workflow chose, and hashed whole while it streams (`file`). A TAR is
//! parsed as it passes (`packaging::tar`); each member `select` takes goes,
//! with its own SHA-256, either into its own object (`format: "files"`) or
//! into the bag's payload (`output`). Without `select` a bag's payload is
//! the repository files as stored. Nothing becomes visible before the
//! digests that vouch for it matched: a member's object is completed only
//! after its TAR's digest matched the stored one; the bag only after every
//! file's did, with its manifests, `bag-info.txt` and `premis.xml` appended
//! at the end (`bag_end`).
//!
//! A copy that does not match, or cannot be opened, is not an error here:
//! the outcome names the file and the workflow picks its next location.
//! A retry starts the step again (the bag from its first byte; in
//! `files` mode the files already delivered are skipped) after aborting
//! whatever uploads an earlier attempt left open.

mod bag_end;
mod beat;
mod file;
mod output;
mod writer;

use crate::{
    attempt::{ended, last_word, previous_beat},
    failure::Failure,
    notify::signal_workflow,
    observe::{begin, record_attributes},
    s3::S3,
    Activities,
};
use bag_end::finish_bag;
pub(crate) use beat::Beat;
use file::FileRead;
use model::{path::PathSet, DisseminationStatus};
use opentelemetry::KeyValue;
use output::{BagOut, Output};
use packaging::select::Selection;
use std::time::{SystemTime, UNIX_EPOCH};
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;
use tracing::info;
use workflows::{
    DisseminationWorkflow, Format, PackageInput, PackageOutcome, PackagedFile, ReasonCode,
};
use writer::{ObjectWriter, Target};

/// With `format: "files"`, at most this many selected members.
pub const MAX_SELECTED_FILES: u32 = 100;

pub(crate) async fn package(
    acts: &Activities,
    ctx: &ActivityContext,
    input: PackageInput,
) -> Result<PackageOutcome, ActivityError> {
    acts.metrics.queue_wait(ctx);
    let total: u64 = input.files.iter().map(|f| f.size).sum();
    begin(
        ctx,
        record_attributes(&input.record).into_iter().chain([
            KeyValue::new("format", input.record.format.as_str()),
            KeyValue::new("files", input.files.len() as i64),
            KeyValue::new("bytes", total as i64),
        ]),
    );
    if input.announce_start {
        signal_workflow(
            ctx,
            DisseminationWorkflow::download_started,
            (),
            "announce the package start",
        )
        .await;
    }
    let (_, headway) = previous_beat(ctx);
    let mut beat = Beat::new(ctx, total, headway);
    match run(acts, &input, &mut beat).await {
        Ok(outcome) => Ok(outcome),
        Err(failure) => {
            last_word(ctx, beat.heartbeat(), &failure).await;
            Err(ended(failure, beat.headway.last, input.retry_for_ms))
        }
    }
}

/// How one file's reading ended.
pub(crate) enum FileResult {
    Verified(PackagedFile),
    Refused {
        unreadable: bool,
        /// Nothing on this worker reads that location: next copy at once.
        no_reader: bool,
        message: String,
    },
    Rejected {
        code: ReasonCode,
        message: String,
    },
}

/// Where the step's objects go and how their parts are cut.
pub(crate) struct Targets {
    s3: S3,
    bucket: String,
    part_size_mib: u64,
    upload_concurrency: usize,
    content_md5: bool,
}

impl Targets {
    /// An object of about `size` bytes at `key`.
    pub(crate) fn target(
        &self,
        key: model::ObjectKey,
        content_type: &'static str,
        fixity_tag: String,
        size: u64,
    ) -> Target {
        let (part_size, max_in_flight) =
            crate::s3::part_plan(size.max(1), self.part_size_mib, self.upload_concurrency);
        Target {
            s3: self.s3.clone(),
            bucket: self.bucket.clone(),
            key,
            content_type,
            fixity_tag,
            part_size,
            size_hint: size,
            max_in_flight,
            content_md5: self.content_md5,
        }
    }
}

async fn run(
    acts: &Activities,
    input: &PackageInput,
    beat: &mut Beat<'_>,
) -> Result<PackageOutcome, Failure> {
    let record = &input.record;
    let selection = (!record.select.is_empty())
        .then(|| Selection::new(&record.select))
        .transpose()
        .map_err(|e| Failure::Misconfigured(format!("select: {e}")))?;
    if input.locations.len() != input.files.len() {
        return Err(Failure::Misconfigured(format!(
            "{} locations for {} files",
            input.locations.len(),
            input.files.len()
        )));
    }
    let bucket = acts.cfg.client_bucket(record.client_id.as_str());
    acts.s3
        .ensure_bucket(&bucket)
        .await
        .map_err(|e| Failure::Upload(e.to_string()))?;
    // An earlier attempt's open uploads (objects of files already
    // delivered are complete, never open).
    let prefix = format!("dissemination/{}/", record.dissemination_id);
    acts.s3.abort_uploads(&bucket, &prefix).await;

    let s3cfg = &acts.cfg.s3;
    let targets = Targets {
        s3: acts.s3.clone(),
        bucket,
        part_size_mib: s3cfg.part_size_mib,
        upload_concurrency: s3cfg.upload_concurrency,
        content_md5: s3cfg.content_md5,
    };
    let mut out = output(input, &targets);
    let mut done: Vec<PackagedFile> = match record.format {
        Format::Files => input.done.clone(),
        Format::Bagit => Vec::new(),
    };
    let mtime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();

    for (index, file) in input.files.iter().enumerate() {
        if index < done.len() {
            beat.read += file.size;
            continue;
        }
        let read = FileRead::new(acts, input, index, selection.as_ref(), (&targets, mtime));
        let result = match read {
            Ok(read) => read.run(&mut out, beat).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(FileResult::Verified(packaged)) => done.push(packaged),
            Ok(FileResult::Refused {
                unreadable,
                no_reader,
                message,
            }) => {
                out.abort_all().await;
                info!(file = %file.relative_path, unreadable, %message, "copy refused");
                return Ok(PackageOutcome::CopyRefused {
                    file: index,
                    unreadable,
                    message,
                    done: match record.format {
                        Format::Files => done,
                        Format::Bagit => Vec::new(),
                    },
                    no_reader,
                });
            }
            Ok(FileResult::Rejected { code, message }) => {
                out.abort_all().await;
                return Ok(PackageOutcome::Rejected { code, message });
            }
            Err(e) => {
                // The uploads stay for nobody: the next attempt, or the
                // workflow's discard, aborts them.
                out.stop_all();
                if matches!(e, Failure::Cancelled) {
                    out.abort_all().await;
                }
                return Err(e);
            }
        }
    }

    let members: u32 = done.iter().map(|d| d.members).sum();
    if selection.is_some() && members == 0 {
        out.abort_all().await;
        return Ok(PackageOutcome::Rejected {
            code: ReasonCode::NothingSelected,
            message: format!(
                "select {:?} matched no member of the AIP's {} repository file(s)",
                record.select,
                input.files.len()
            ),
        });
    }
    if !input.silent {
        signal_workflow(
            beat.ctx,
            DisseminationWorkflow::transfer_step,
            DisseminationStatus::UploadingToS3,
            "report the upload",
        )
        .await;
    }
    let delivered = match out {
        Output::Files { .. } => done.iter().flat_map(|d| d.delivered.clone()).collect(),
        Output::Bag(bag_out) => {
            let file = finish_bag(acts, input, bag_out, &done, (mtime, beat)).await?;
            vec![file]
        }
    };
    info!(dissemination_id = %record.dissemination_id, format = record.format.as_str(),
        members, objects = delivered.len(), "packaged and delivered");
    Ok(PackageOutcome::Delivered {
        files: done,
        delivered,
    })
}

/// Where the step writes: one bag, or one object per member.
fn output(input: &PackageInput, targets: &Targets) -> Output {
    let record = &input.record;
    match record.format {
        Format::Bagit => {
            let total: u64 = input.files.iter().map(|f| f.size).sum();
            let bag_name = format!("{}.tar", record.archive_id);
            Output::Bag(BagOut {
                writer: ObjectWriter::new(targets.target(
                    record.object_key(&bag_name),
                    "application/x-tar",
                    "bagit: see its manifest-sha256.txt".into(),
                    // Parts sized for the payload plus headroom for headers.
                    total + total / 64 + (1 << 20),
                )),
                root: record.archive_id.to_string(),
                payload: Vec::new(),
                current: None,
                names: PathSet::new(),
            })
        }
        Format::Files => {
            let mut names = PathSet::new();
            for d in input.done.iter().flat_map(|d| &d.delivered) {
                // Delivered by an earlier call: distinct when they were taken.
                let _ = names.take(&d.filename, &d.filename);
            }
            Output::Files {
                pending: Vec::new(),
                current: None,
                selected: input.done.iter().map(|d| d.members).sum(),
                names,
            }
        }
    }
}

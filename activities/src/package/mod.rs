//! The `package` activity: `select` and `format: "bagit"`.
//!
//! Every repository file is read once, in order, from the location the
//! workflow chose, and hashed whole while it streams. A TAR is parsed as it
//! passes (`packaging::tar`); each member `select` takes goes, with its own
//! SHA-256, either into its own object (`format: "files"`) or into the
//! bag's payload. Without `select` a bag's payload is the repository files
//! as stored. Nothing becomes visible before the digests that vouch for it
//! matched: a member's object is completed only after its TAR's digest
//! matched the stored one; the bag only after every file's did, with its
//! manifests, `bag-info.txt` and `premis.xml` appended at the end.
//!
//! A copy that does not match, or cannot be opened, is not an error here:
//! the outcome names the file and the workflow picks its next location.
//! A retry starts the step again (the bag from its first byte; in
//! `files` mode the files already delivered are skipped) after aborting
//! whatever uploads an earlier attempt left open.

mod bag_end;
mod output;
mod writer;

use crate::{
    delivery::delivered_object,
    digest::{self, MultiHasher},
    failure::Failure,
    notify::signal_workflow,
    observe::{begin, record_attributes},
    repository::pace,
    transfer::{
        end_span, ended, location_of, previous_beat, progress, step_span, stored_digest, unix_ms,
        HEARTBEAT_EVERY, READ_CHUNK,
    },
    Activities,
};
use bag_end::finish_bag;
use model::{catalog::RepositoryFile, path::PathSet, DisseminationStatus};
use opentelemetry::{trace::Span as _, KeyValue};
use output::{BagOut, MemberTarget, Output};
use packaging::{
    select::Selection,
    tar::{Event, MemberKind, TarReader},
};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;
use tokio::io::AsyncReadExt;
use tracing::info;
use workflows::{
    DeliveredFile, DisseminationWorkflow, FixityOutcome, Format, PackageInput, PackageOutcome,
    PackagedFile, Phase, ReasonCode, TransferHeartbeat,
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
    let (_, since) = previous_beat(ctx);
    let mut beat = Beat {
        ctx,
        last: Instant::now(),
        started: Instant::now(),
        last_progress: since,
        file: String::new(),
        location_id: String::new(),
        read: 0,
        total,
        members: 0,
    };
    match run(acts, &input, &mut beat).await {
        Ok(outcome) => Ok(outcome),
        Err(failure) => Err(ended(failure, beat.last_progress, input.retry_for_ms)),
    }
}

/// The heartbeat: live progress (bytes of the repository files read) and
/// the time bytes last moved, sent at most every `HEARTBEAT_EVERY`.
pub(crate) struct Beat<'a> {
    ctx: &'a ActivityContext,
    last: Instant,
    started: Instant,
    last_progress: SystemTime,
    file: String,
    location_id: String,
    read: u64,
    total: u64,
    members: u32,
}

impl Beat<'_> {
    pub(crate) async fn due(&mut self) -> Result<(), Failure> {
        if self.last.elapsed() >= HEARTBEAT_EVERY {
            self.now().await
        } else {
            Ok(())
        }
    }

    pub(crate) async fn now(&mut self) -> Result<(), Failure> {
        self.last = Instant::now();
        let what = format!("{} ({} member(s) taken so far)", self.file, self.members);
        let heartbeat = TransferHeartbeat {
            file: self.file.clone(),
            location_id: self.location_id.clone(),
            bytes_read: self.read,
            bytes_total: self.total,
            part_size: 0,
            multipart: None,
            checkpoint: None,
            progress: Some(progress(
                Phase::Download,
                &what,
                (self.read, self.total),
                (0, self.started),
            )),
            last_progress_unix_ms: Some(unix_ms(self.last_progress)),
        };
        self.ctx
            .record_heartbeat(heartbeat)
            .await
            .map_err(|e| Failure::Transient(format!("recording a heartbeat: {e}")))?;
        if self.ctx.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        Ok(())
    }

    fn moved(&mut self, bytes: u64) {
        self.read += bytes;
        self.last_progress = SystemTime::now();
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
    let total: u64 = input.files.iter().map(|f| f.size).sum();
    let target =
        |key: model::ObjectKey, content_type: &'static str, fixity_tag: String, size: u64| {
            let (part_size, max_in_flight) =
                crate::s3::part_plan(size.max(1), s3cfg.part_size_mib, s3cfg.upload_concurrency);
            Target {
                s3: acts.s3.clone(),
                bucket: bucket.clone(),
                key,
                content_type,
                fixity_tag,
                part_size,
                size_hint: size,
                max_in_flight,
                content_md5: s3cfg.content_md5,
            }
        };
    let bag_name = format!("{}.tar", record.archive_id);
    let mut out = match record.format {
        Format::Bagit => Output::Bag(BagOut {
            writer: ObjectWriter::new(target(
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
        }),
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
    };
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
        let result = read_file(
            acts,
            input,
            (index, file),
            selection.as_ref(),
            &mut out,
            beat,
            (&target, mtime),
        )
        .await;
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
    signal_workflow(
        beat.ctx,
        DisseminationWorkflow::transfer_step,
        DisseminationStatus::UploadingToS3,
        "report the upload",
    )
    .await;
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

pub(crate) type TargetFn<'t> =
    dyn Fn(model::ObjectKey, &'static str, String, u64) -> Target + Send + Sync + 't;

/// Reads one repository file once: hashes it whole, takes what `select`
/// (or the bag) wants of it, and on a match completes its members' objects.
async fn read_file(
    acts: &Activities,
    input: &PackageInput,
    (index, file): (usize, &RepositoryFile),
    selection: Option<&Selection>,
    out: &mut Output,
    beat: &mut Beat<'_>,
    (target, mtime): (&TargetFn<'_>, u64),
) -> Result<FileResult, Failure> {
    let record = &input.record;
    let location = location_of(file, input.locations[index])?;
    let stored = stored_digest(file)?;
    let member_target = MemberTarget {
        record,
        target,
        fixity_tag: format!(
            "{}:{}",
            stored.algorithm.as_str(),
            stored.digest.trim().to_ascii_lowercase()
        ),
        mtime,
    };
    beat.file = file.relative_path.clone();
    beat.location_id = location.location_id.clone();
    let mut reader = match acts.repo.open(location, 0).await {
        Ok(r) => r,
        Err(e) => {
            return match Failure::from(e) {
                Failure::LocationUnreadable(message) => {
                    acts.metrics.unreadable(&location.location_id);
                    Ok(FileResult::Refused {
                        unreadable: true,
                        no_reader: false,
                        message,
                    })
                }
                Failure::NoReader(message) => {
                    acts.metrics.unreadable(&location.location_id);
                    Ok(FileResult::Refused {
                        unreadable: true,
                        no_reader: true,
                        message,
                    })
                }
                other => Err(other),
            }
        }
    };
    // The file's delivered name (the workflow's normal relative path, or
    // the last segment in executions before paths were kept); a member is
    // delivered below it without `.tar`.
    let name = if input.keep_paths {
        file.relative_path.as_str()
    } else {
        file.filename()
    };
    let stem = name.strip_suffix(".tar").unwrap_or(name).to_owned();
    let mut tar_reader = match selection {
        None => None,
        Some(_) if is_tar(file) => Some(TarReader::new()),
        Some(_) => None,
    };
    let whole = match selection {
        None => true,
        Some(s) => tar_reader.is_none() && s.matches(&file.relative_path),
    };
    let mut members = 0u32;
    if whole {
        members += 1;
        let opened = out
            .open(
                &member_target,
                (&file.relative_path, name.to_owned(), file.size, false),
                beat,
            )
            .await?;
        if let Some(r) = opened {
            return Ok(r);
        }
    }

    let attributes = || {
        vec![
            KeyValue::new("file", file.relative_path.clone()),
            KeyValue::new("bytes", file.size as i64),
            KeyValue::new("location", location.location_id.clone()),
        ]
    };
    let download_span = step_span("download", attributes());
    let mut hasher = MultiHasher::new(&MultiHasher::algorithms_for(file));
    let mut chunk = vec![0u8; READ_CHUNK];
    let max_rate = acts.cfg.repository.max_read_bytes_per_sec;
    let started = Instant::now();
    let mut unreadable_tar: Option<String> = None;
    loop {
        let n = reader.read(&mut chunk).await.map_err(|e| {
            Failure::Transient(format!(
                "reading {} from {}: {e}",
                file.relative_path, location.location_id
            ))
        })?;
        let data = &chunk[..n];
        hasher.update(data);
        beat.moved(n as u64);
        let read = hasher.bytes();
        if read > file.size {
            break; // longer than the catalog says: fixity refuses it below
        }
        if whole {
            out.data(data, beat).await?;
        } else if let (Some(tr), None) = (tar_reader.as_mut(), &unreadable_tar) {
            let mut buf = data;
            loop {
                let (used, event) = match tr.next(buf) {
                    Ok(step) => step,
                    Err(e) => {
                        unreadable_tar = Some(e.to_string());
                        break;
                    }
                };
                buf = &buf[used..];
                let Some(event) = event else { break };
                match event {
                    Event::Member(m) => {
                        if !selection.is_some_and(|s| s.matches(&m.path)) {
                            continue;
                        }
                        match &m.kind {
                            MemberKind::File => {
                                members += 1;
                                let Ok(member) = model::path::normalise(&m.path) else {
                                    return Ok(FileResult::Rejected {
                                        code: ReasonCode::UnsupportedMember,
                                        message: format!(
                                            "{:?} in {} has no usable path",
                                            m.path, file.relative_path
                                        ),
                                    });
                                };
                                let source = format!("{}:{}", file.relative_path, m.path);
                                let path = format!("{stem}/{member}");
                                let opened = out
                                    .open(&member_target, (&source, path, m.size, true), beat)
                                    .await?;
                                if let Some(r) = opened {
                                    return Ok(r);
                                }
                            }
                            MemberKind::Directory => {}
                            MemberKind::Other(what) => {
                                return Ok(FileResult::Rejected {
                                    code: ReasonCode::UnsupportedMember,
                                    message: format!(
                                        "{} in {} is a {what}: only regular files can be selected",
                                        m.path, file.relative_path
                                    ),
                                });
                            }
                        }
                    }
                    Event::Data(bytes) if out.is_open() => out.data(bytes, beat).await?,
                    Event::MemberEnd if out.is_open() => out.end(None, beat).await?,
                    Event::Data(_) | Event::MemberEnd | Event::End => {}
                }
            }
        }
        beat.members = members;
        if n == 0 {
            break;
        }
        pace(max_rate, read, started).await;
        beat.due().await?;
    }
    acts.metrics.downloaded(hasher.bytes());
    end_span(download_span, None);
    let read = hasher.bytes();
    let digests = hasher.finish();
    let mut fixity_span = step_span("fixity", attributes());
    fixity_span.set_attribute(KeyValue::new("digestAlgorithm", stored.algorithm.as_str()));
    let verdict = digest::verify(file, stored, &location.location_id, read, &digests);
    acts.metrics
        .fixity(stored.algorithm.as_str(), verdict.is_ok());
    end_span(fixity_span, verdict.clone().err());
    let computed = match verdict {
        Ok(c) => c,
        Err(message) => {
            return Ok(FileResult::Refused {
                unreadable: false,
                no_reader: false,
                message,
            })
        }
    };
    if let Some(tr) = &tar_reader {
        let why = unreadable_tar.or_else(|| tr.finish().err().map(|e| e.to_string()));
        if let Some(why) = why {
            return Ok(FileResult::Rejected {
                code: ReasonCode::UnreadableArchive,
                message: format!(
                    "{} matches its stored digest but is no readable TAR: {why}",
                    file.relative_path
                ),
            });
        }
    }
    if whole {
        // The member was the whole file: its SHA-256 is the file's.
        let sha256 = digests.get(&model::catalog::DigestAlgorithm::Sha256);
        out.end(sha256.map(String::as_str), beat).await?;
    }
    info!(file = %file.relative_path, location = %location.location_id,
        algorithm = stored.algorithm.as_str(), members, "fixity verified");
    // Verified: the members read from this file may become visible.
    let mut delivered: Vec<DeliveredFile> = Vec::new();
    if let Output::Files { pending, .. } = out {
        let prefix = record.object_prefix();
        for w in std::mem::take(pending) {
            let filename = w.key().strip_prefix(&prefix).unwrap_or(w.key()).to_owned();
            let (size, sha256) = w.complete(beat).await?;
            acts.metrics.uploaded(size);
            delivered.push(delivered_object(
                filename,
                size,
                sha256,
                None,
                input.link_lifetime_secs,
            ));
        }
    }
    Ok(FileResult::Verified(PackagedFile {
        fixity: FixityOutcome {
            algorithm: stored.algorithm,
            location_id: location.location_id.clone(),
            digest: computed,
        },
        bytes_read: read,
        members,
        delivered,
    }))
}

fn is_tar(file: &RepositoryFile) -> bool {
    file.relative_path.to_ascii_lowercase().ends_with(".tar")
}

//! One repository file read once, in steps: its copy opened (a copy that
//! cannot be read is refused, for the workflow to try the next), its bytes
//! hashed whole while they stream into the output (the file itself, or the
//! members `select` takes as its TAR is parsed), the fixity verdict, and
//! on a match its members' objects completed.

use super::{output::MemberTarget, Beat, FileResult, Output, Targets};
use crate::{
    attempt::{end_span, file_attributes, fixity_tag, location_of, step_span, READ_CHUNK},
    delivery::delivered_object,
    digest::{self, MultiHasher},
    failure::Failure,
    repository::{pace, Reader},
    Activities,
};
use model::catalog::{DigestAlgorithm, FileLocation, Fixity, RepositoryFile};
use opentelemetry::{trace::Span as _, KeyValue};
use packaging::{
    select::Selection,
    tar::{Event, MemberKind, TarReader},
};
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tracing::info;
use workflows::{DeliveredFile, FixityOutcome, PackageInput, PackagedFile, ReasonCode};

/// What reading one repository file needs.
pub(super) struct FileRead<'a> {
    pub(super) acts: &'a Activities,
    pub(super) input: &'a PackageInput,
    pub(super) file: &'a RepositoryFile,
    /// Its copy, as the workflow chose.
    pub(super) location: &'a FileLocation,
    pub(super) stored: &'a Fixity,
    pub(super) selection: Option<&'a Selection>,
    pub(super) targets: &'a Targets,
    /// The modification time of the bag's entries.
    pub(super) mtime: u64,
}

/// How a file's bytes go into the output.
struct Reading {
    /// The file is one member, delivered whole (no `select`, or it matches
    /// a non-TAR file).
    whole: bool,
    /// Its TAR, parsed as it passes (`select`).
    tar: Option<TarReader>,
    /// Why its TAR could not be parsed (known only once the digest matched).
    unreadable_tar: Option<String>,
    members: u32,
}

impl<'a> FileRead<'a> {
    pub(super) fn new(
        acts: &'a Activities,
        input: &'a PackageInput,
        index: usize,
        selection: Option<&'a Selection>,
        (targets, mtime): (&'a Targets, u64),
    ) -> Result<Self, Failure> {
        let file = &input.files[index];
        Ok(Self {
            acts,
            input,
            file,
            location: location_of(file, input.locations[index])?,
            stored: crate::attempt::stored_digest(file)?,
            selection,
            targets,
            mtime,
        })
    }

    /// The file's delivered name (the workflow's normal relative path, or
    /// the last segment in executions before paths were kept).
    fn name(&self) -> &'a str {
        if self.input.keep_paths {
            &self.file.relative_path
        } else {
            self.file.filename()
        }
    }

    pub(super) async fn run(
        &self,
        out: &mut Output,
        beat: &mut Beat<'_>,
    ) -> Result<FileResult, Failure> {
        beat.file = self.file.relative_path.clone();
        beat.location_id = self.location.location_id.clone();
        let mut reader = match self.open().await? {
            Ok(r) => r,
            Err(refused) => return Ok(refused),
        };
        let member_target = MemberTarget {
            record: &self.input.record,
            targets: self.targets,
            fixity_tag: fixity_tag(self.stored),
            mtime: self.mtime,
        };
        let is_tar = self
            .file
            .relative_path
            .to_ascii_lowercase()
            .ends_with(".tar");
        let tar = match self.selection {
            Some(_) if is_tar => Some(TarReader::new()),
            _ => None,
        };
        let whole = match self.selection {
            None => true,
            Some(s) => tar.is_none() && s.matches(&self.file.relative_path),
        };
        let mut reading = Reading {
            whole,
            tar,
            unreadable_tar: None,
            members: 0,
        };
        if whole {
            reading.members += 1;
            let size = self.file.size;
            let member = (
                self.file.relative_path.as_str(),
                self.name().to_owned(),
                size,
                false,
            );
            if let Some(r) = out.open(&member_target, member, beat).await? {
                return Ok(r);
            }
        }
        let span = step_span("download", file_attributes(self.file, self.location));
        let hashed = self
            .read(&mut reader, &mut reading, (out, &member_target), beat)
            .await;
        end_span(span, None);
        let hasher = match hashed? {
            Ok(hasher) => hasher,
            Err(rejected) => return Ok(rejected),
        };
        self.acts.metrics.downloaded(hasher.bytes());
        self.verified(hasher, reading, out, beat).await
    }

    /// The copy, or why it is refused (the workflow tries the next).
    async fn open(&self) -> Result<Result<Reader, FileResult>, Failure> {
        let location_id = &self.location.location_id;
        match self.acts.repo.open(self.location, 0, self.file.size).await {
            Ok(r) => Ok(Ok(r)),
            Err(e) => match Failure::from(e) {
                Failure::LocationUnreadable(message) => {
                    self.acts.metrics.unreadable(location_id);
                    Ok(Err(FileResult::Refused {
                        unreadable: true,
                        no_reader: false,
                        message,
                    }))
                }
                Failure::NoReader(message) => {
                    self.acts.metrics.unreadable(location_id);
                    Ok(Err(FileResult::Refused {
                        unreadable: true,
                        no_reader: true,
                        message,
                    }))
                }
                other => Err(other),
            },
        }
    }

    /// Reads the copy to its end, hashing it whole and streaming what the
    /// output takes of it; a member the output refuses ends the file.
    async fn read(
        &self,
        reader: &mut Reader,
        reading: &mut Reading,
        (out, member_target): (&mut Output, &MemberTarget<'_>),
        beat: &mut Beat<'_>,
    ) -> Result<Result<MultiHasher, FileResult>, Failure> {
        let mut hasher = MultiHasher::new(&MultiHasher::algorithms_for(self.file));
        let mut chunk = vec![0u8; READ_CHUNK];
        let max_rate = self.acts.cfg.repository.max_read_bytes_per_sec;
        let started = Instant::now();
        loop {
            let n = reader.read(&mut chunk).await.map_err(|e| {
                Failure::Transient(format!(
                    "reading {} from {}: {e}",
                    self.file.relative_path, self.location.location_id
                ))
            })?;
            let data = &chunk[..n];
            hasher.update(data);
            beat.moved(n as u64);
            let read = hasher.bytes();
            if read > self.file.size {
                break; // longer than the catalog says: fixity refuses it
            }
            if reading.whole {
                out.data(data, beat).await?;
            } else if let Some(refused) = self
                .members(data, reading, out, member_target, beat)
                .await?
            {
                return Ok(Err(refused));
            }
            beat.members = reading.members;
            if n == 0 {
                break;
            }
            pace(max_rate, read, started).await;
            beat.due().await?;
        }
        Ok(Ok(hasher))
    }

    /// Feeds `data` to the TAR parser: each selected member is opened in
    /// the output, its data streamed, its end closed.
    async fn members(
        &self,
        mut data: &[u8],
        reading: &mut Reading,
        out: &mut Output,
        member_target: &MemberTarget<'_>,
        beat: &mut Beat<'_>,
    ) -> Result<Option<FileResult>, Failure> {
        let (Some(tar), None) = (reading.tar.as_mut(), &reading.unreadable_tar) else {
            return Ok(None);
        };
        let stem = self.name().strip_suffix(".tar").unwrap_or(self.name());
        loop {
            let (used, event) = match tar.next(data) {
                Ok(step) => step,
                Err(e) => {
                    reading.unreadable_tar = Some(e.to_string());
                    return Ok(None);
                }
            };
            data = &data[used..];
            let Some(event) = event else {
                return Ok(None);
            };
            match event {
                Event::Member(m) => {
                    if !self.selection.is_some_and(|s| s.matches(&m.path)) {
                        continue;
                    }
                    match &m.kind {
                        MemberKind::File => {
                            reading.members += 1;
                            let Ok(path) = model::path::normalise(&m.path) else {
                                return Ok(Some(self.unsupported(&m.path, "has no usable path")));
                            };
                            let source = format!("{}:{}", self.file.relative_path, m.path);
                            let member = (source.as_str(), format!("{stem}/{path}"), m.size, true);
                            if let Some(r) = out.open(member_target, member, beat).await? {
                                return Ok(Some(r));
                            }
                        }
                        MemberKind::Directory => {}
                        MemberKind::Other(what) => {
                            let why = format!("is a {what}: only regular files can be selected");
                            return Ok(Some(self.unsupported(&m.path, &why)));
                        }
                    }
                }
                Event::Data(bytes) if out.is_open() => out.data(bytes, beat).await?,
                Event::MemberEnd if out.is_open() => out.end(None, beat).await?,
                Event::Data(_) | Event::MemberEnd | Event::End => {}
            }
        }
    }

    fn unsupported(&self, member: &str, why: &str) -> FileResult {
        FileResult::Rejected {
            code: ReasonCode::UnsupportedMember,
            message: format!("{member:?} in {} {why}", self.file.relative_path),
        }
    }

    /// The fixity verdict; on a match the members read from this file
    /// become visible (their objects completed).
    async fn verified(
        &self,
        hasher: MultiHasher,
        reading: Reading,
        out: &mut Output,
        beat: &mut Beat<'_>,
    ) -> Result<FileResult, Failure> {
        let (file, location_id) = (self.file, &self.location.location_id);
        let read = hasher.bytes();
        let digests = hasher.finish();
        let algorithm = self.stored.algorithm;
        let mut span = step_span("fixity", file_attributes(file, self.location));
        span.set_attribute(KeyValue::new("digestAlgorithm", algorithm.as_str()));
        let verdict = digest::verify(file, self.stored, location_id, read, &digests);
        self.acts
            .metrics
            .fixity(algorithm.as_str(), verdict.is_ok());
        end_span(span, verdict.clone().err());
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
        if let Some(tar) = &reading.tar {
            let why = reading
                .unreadable_tar
                .or_else(|| tar.finish().err().map(|e| e.to_string()));
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
        if reading.whole {
            // The member was the whole file: its SHA-256 is the file's.
            let sha256 = digests.get(&DigestAlgorithm::Sha256);
            out.end(sha256.map(String::as_str), beat).await?;
        }
        info!(file = %file.relative_path, location = %location_id,
            algorithm = algorithm.as_str(), members = reading.members, "fixity verified");
        Ok(FileResult::Verified(PackagedFile {
            fixity: FixityOutcome {
                algorithm,
                location_id: location_id.clone(),
                digest: computed,
            },
            bytes_read: read,
            members: reading.members,
            delivered: self.complete_members(out, beat).await?,
        }))
    }

    /// `format: "files"`: the members read from this verified file, each
    /// completed in the bucket.
    async fn complete_members(
        &self,
        out: &mut Output,
        beat: &mut Beat<'_>,
    ) -> Result<Vec<DeliveredFile>, Failure> {
        let mut delivered = Vec::new();
        if let Output::Files { pending, .. } = out {
            let prefix = self.input.record.object_prefix();
            for w in std::mem::take(pending) {
                let filename = w.key().strip_prefix(&prefix).unwrap_or(w.key()).to_owned();
                let (size, sha256) = w.complete(beat).await?;
                self.acts.metrics.uploaded(size);
                let lifetime = self.input.link_lifetime_secs;
                delivered.push(delivered_object(filename, size, sha256, None, lifetime));
            }
        }
        Ok(delivered)
    }
}

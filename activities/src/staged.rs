//! The staged flow's activities (`transfer.mode = "staged"`): `download`
//! to this worker's staging folder (hashing while reading, resumable from
//! heartbeats), `verify_fixity` of the staged copy, and `upload` of a
//! verified copy as a parallel, resumable multipart upload.

use crate::{
    digest::{self, MultiHasher},
    final_failure,
    impls::{
        io, location_of, object_key, open_failure, record_attributes, report_progress,
        signal_workflow, stored_digest, UploadProgress, HEARTBEAT_EVERY, READ_CHUNK,
    },
    observe::{annotate, begin, mark_error},
    repository::pace,
    s3::MultipartState,
    staging, Activities,
};
use model::catalog::DigestAlgorithm;
use opentelemetry::KeyValue;
use std::time::{Duration, Instant};
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tracing::info;
use workflows::{
    failure_types, DeliveredFile, DisseminationWorkflow, DownloadInput, DownloadProgress,
    FixityOutcome, StagedFile, UploadInput,
};

pub(crate) async fn download(
    acts: &Activities,
    ctx: &ActivityContext,
    input: DownloadInput,
) -> Result<StagedFile, ActivityError> {
    acts.metrics.queue_wait(ctx);
    begin(
        ctx,
        [
            KeyValue::new("disseminationId", input.dissemination_id.to_string()),
            KeyValue::new("file", input.file.relative_path.clone()),
            KeyValue::new("bytes", input.file.size as i64),
        ],
    );
    if input.announce_start {
        signal_workflow(
            ctx,
            DisseminationWorkflow::download_started,
            (),
            "announce the download start",
        )
        .await;
    }
    let file = &input.file;
    let location = location_of(file, input.location_index)?;
    let path = staging::staged_path(&acts.cfg.worker.staging_dir, &input.dissemination_id, file);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io(format!("creating {}", parent.display())))?;
    }

    // Resume from the last heartbeat when this host still holds those bytes.
    let previous: Option<DownloadProgress> = ctx.heartbeat_details().deserialize().ok().flatten();
    let staged_len = tokio::fs::metadata(&path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let offset = previous
        .filter(|p| p.location_id == location.location_id && p.bytes_done <= staged_len)
        .map_or(0, |p| p.bytes_done);

    let algorithms = MultiHasher::algorithms_for(file);
    let mut hasher = MultiHasher::new(&algorithms);
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .await
        .map_err(io(format!("opening {}", path.display())))?;
    out.set_len(offset)
        .await
        .map_err(io("truncating staged copy".into()))?;
    let mut buf = vec![0u8; READ_CHUNK];
    // Rebuild the hash state from the bytes already staged.
    let mut reread = 0u64;
    while reread < offset {
        let want = READ_CHUNK.min((offset - reread) as usize);
        let n = out
            .read(&mut buf[..want])
            .await
            .map_err(io("re-reading staged copy".into()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        reread += n as u64;
    }
    out.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(io("seeking staged copy".into()))?;
    info!(
        dissemination_id = %input.dissemination_id, file = %file.relative_path,
        location = %location.location_id, resume_from = offset, attempt = ctx.info().attempt,
        "download started"
    );
    annotate([
        KeyValue::new("location", location.location_id.clone()),
        KeyValue::new("resumeFrom", offset as i64),
        KeyValue::new(
            "digestAlgorithms",
            algorithms
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]);

    let mut reader = acts
        .repo
        .open(location, offset)
        .await
        .map_err(open_failure)?;
    let mut done = offset;
    let mut counted = offset;
    let mut progress = DownloadProgress {
        file: file.relative_path.clone(),
        location_id: location.location_id.clone(),
        bytes_done: done,
        bytes_total: file.size,
    };
    let mut last_beat = Instant::now();
    let started = Instant::now();
    let report_every = Duration::from_millis(acts.cfg.worker.progress_every_ms);
    let mut last_report = Instant::now();
    loop {
        let n = reader.read(&mut buf).await.map_err(|e| {
            ActivityError::from(anyhow::anyhow!(
                "reading {} from {}: {e}",
                file.relative_path,
                location.location_id
            ))
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .await
            .map_err(io("writing staged copy".into()))?;
        done += n as u64;
        pace(
            acts.cfg.repository.max_read_bytes_per_sec,
            done - offset,
            started,
        )
        .await;
        if done > file.size {
            // Longer than the catalog says: no need to read further, fixity will refuse it.
            break;
        }
        if last_beat.elapsed() >= HEARTBEAT_EVERY {
            out.flush()
                .await
                .map_err(io("flushing staged copy".into()))?;
            progress.bytes_done = done;
            ctx.record_heartbeat(progress.clone()).await?;
            last_beat = Instant::now();
            acts.metrics.downloaded(done - counted);
            counted = done;
            if last_report.elapsed() >= report_every {
                last_report = Instant::now();
                report_progress(
                    ctx,
                    crate::impls::progress(
                        "download",
                        &file.relative_path,
                        (done, file.size),
                        (offset, started),
                    ),
                )
                .await;
            }
            if ctx.is_cancelled() {
                // Nothing of a cancelled dissemination stays on this host;
                // on a worker shutdown the bytes stay for the retry.
                if !acts.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(out);
                    let _ = tokio::fs::remove_file(&path).await;
                    if let Some(dir) = path.parent() {
                        let _ = tokio::fs::remove_dir(dir).await;
                    }
                }
                return Err(ActivityError::cancelled());
            }
        }
    }
    out.flush()
        .await
        .map_err(io("flushing staged copy".into()))?;
    progress.bytes_done = done;
    ctx.record_heartbeat(progress).await?;
    acts.metrics.downloaded(done - counted);
    Ok(StagedFile {
        file: file.clone(),
        location_id: location.location_id.clone(),
        staged_path: path.to_string_lossy().into_owned(),
        host_queue: acts.host_queue().to_owned(),
        size: done,
        digests: hasher.finish(),
        bytes_reread: reread,
        resumed_from: offset,
    })
}

pub(crate) async fn verify_fixity(
    acts: &Activities,
    ctx: &ActivityContext,
    input: StagedFile,
) -> Result<FixityOutcome, ActivityError> {
    acts.metrics.queue_wait(ctx);
    let file = &input.file;
    let stored = stored_digest(file)?;
    match tokio::fs::metadata(&input.staged_path).await {
        Ok(m) if m.len() == input.size => {}
        Ok(m) => {
            return Err(final_failure(
                failure_types::STAGING_LOST,
                format!(
                    "staged copy of {} changed size ({} != {})",
                    file.relative_path,
                    m.len(),
                    input.size
                ),
            ))
        }
        Err(e) => {
            return Err(final_failure(
                failure_types::STAGING_LOST,
                format!("staged copy of {} is gone: {e}", file.relative_path),
            ))
        }
    }
    begin(
        ctx,
        [
            KeyValue::new("file", file.relative_path.clone()),
            KeyValue::new("location", input.location_id.clone()),
            KeyValue::new("bytes", input.size as i64),
            KeyValue::new("digestAlgorithm", stored.algorithm.as_str()),
        ],
    );
    let verdict = digest::verify(file, stored, &input.location_id, input.size, &input.digests);
    acts.metrics
        .fixity(stored.algorithm.as_str(), verdict.is_ok());
    let computed = verdict.map_err(|why| {
        mark_error("fixity mismatch");
        final_failure(failure_types::FIXITY_MISMATCH, why)
    })?;
    info!(file = %file.relative_path, location = %input.location_id, algorithm = stored.algorithm.as_str(), "fixity verified");
    Ok(FixityOutcome {
        algorithm: stored.algorithm,
        location_id: input.location_id.clone(),
        digest: computed,
    })
}

pub(crate) async fn upload(
    acts: &Activities,
    ctx: &ActivityContext,
    input: UploadInput,
) -> Result<DeliveredFile, ActivityError> {
    acts.metrics.queue_wait(ctx);
    let record = &input.record;
    let staged = &input.staged;
    begin(
        ctx,
        record_attributes(record).into_iter().chain([
            KeyValue::new("file", staged.file.relative_path.clone()),
            KeyValue::new("bytes", staged.size as i64),
            KeyValue::new("digestAlgorithm", DigestAlgorithm::Sha256.as_str()),
        ]),
    );
    let filename = staged.file.filename().to_owned();
    let bucket = acts.cfg.client_bucket(&record.client_id.0);
    let key = object_key(record, &filename);
    let sha256 = staged
        .digests
        .get(&DigestAlgorithm::Sha256)
        .cloned()
        .ok_or_else(|| final_failure(failure_types::MISCONFIGURED, "no SHA-256 was computed"))?;
    if tokio::fs::metadata(&staged.staged_path)
        .await
        .map(|m| m.len())
        .ok()
        != Some(staged.size)
    {
        return Err(final_failure(
            failure_types::STAGING_LOST,
            format!("staged copy of {filename} is gone"),
        ));
    }
    acts.s3.ensure_bucket(&bucket).await?;

    let (part_size, in_flight) = crate::s3::part_plan(
        staged.size,
        acts.cfg.s3.part_size_mib,
        acts.cfg.s3.upload_concurrency,
    );
    if staged.size <= part_size {
        let body = tokio::fs::read(&staged.staged_path)
            .await
            .map_err(io(format!("reading {}", staged.staged_path)))?;
        acts.s3.put_small(&bucket, &key, body.into()).await?;
    } else {
        upload_multipart(acts, ctx, staged, &bucket, &key, (part_size, in_flight)).await?;
    }
    match acts.s3.object_size(&bucket, &key).await? {
        Some(n) if n == staged.size => {}
        other => {
            return Err(anyhow::anyhow!(
                "uploaded {key} but S3 reports size {other:?}, expected {}",
                staged.size
            )
            .into())
        }
    }
    let lifetime = Duration::from_secs(input.link_lifetime_secs);
    let url = acts.s3.presign_get(&bucket, &key, lifetime).await?;
    let expires = chrono::Local::now() + chrono::Duration::seconds(input.link_lifetime_secs as i64);
    acts.metrics.uploaded(staged.size);
    info!(dissemination_id = %record.dissemination_id, %bucket, %key, bytes = staged.size, "uploaded");
    Ok(DeliveredFile {
        download_url: url,
        filename,
        filesize: staged.size,
        expiration_date: model::time::rfc3339(&expires),
        checksum: sha256,
        checksum_algorithm: DigestAlgorithm::Sha256.as_str().into(),
        md5: staged
            .file
            .fixity(DigestAlgorithm::Md5)
            .map(|f| f.digest.to_ascii_lowercase()),
    })
}

async fn upload_multipart(
    acts: &Activities,
    ctx: &ActivityContext,
    staged: &StagedFile,
    bucket: &str,
    key: &str,
    (part_size, in_flight): (u64, usize),
) -> Result<(), ActivityError> {
    use futures::StreamExt;
    let previous: Option<UploadProgress> = ctx.heartbeat_details().deserialize().ok().flatten();
    let mut state = match previous.and_then(|p| p.multipart) {
        Some(s) => s,
        None => MultipartState {
            upload_id: acts.s3.start_multipart(bucket, key).await?,
            parts: vec![],
        },
    };
    let parts = staged.size.div_ceil(part_size) as i32;
    let path = std::path::PathBuf::from(&staged.staged_path);
    let report_every = Duration::from_millis(acts.cfg.worker.progress_every_ms);
    let mut last_report = Instant::now();
    let upload_started = Instant::now();
    let upload_id = state.upload_id.clone();
    let todo: Vec<i32> = (1..=parts)
        .filter(|n| !state.parts.iter().any(|(d, _)| d == n))
        .collect();
    let mut stream = futures::stream::iter(todo)
        .map(|n| {
            let path = path.clone();
            let upload_id = upload_id.clone();
            let offset = (n as u64 - 1) * part_size;
            let len = part_size.min(staged.size - offset) as usize;
            async move {
                let body = tokio::task::spawn_blocking(move || read_at(&path, offset, len))
                    .await
                    .map_err(anyhow::Error::from)??;
                let etag = acts
                    .s3
                    .upload_part(bucket, key, &upload_id, n, body)
                    .await?;
                Ok::<_, anyhow::Error>((n, etag))
            }
        })
        .buffer_unordered(in_flight);
    while let Some(result) = stream.next().await {
        let (n, etag) = match result {
            Ok(done) => done,
            Err(e) if e.to_string().contains("NoSuchUpload") => {
                // The server forgot the upload: start over on the next attempt.
                ctx.record_heartbeat(UploadProgress::default()).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        state.parts.push((n, etag));
        let bytes_done = (state.parts.len() as u64 * part_size).min(staged.size);
        if last_report.elapsed() >= report_every {
            last_report = Instant::now();
            report_progress(
                ctx,
                crate::impls::progress(
                    "upload",
                    &staged.file.relative_path,
                    (bytes_done, staged.size),
                    (0, upload_started),
                ),
            )
            .await;
        }
        ctx.record_heartbeat(UploadProgress {
            file: staged.file.relative_path.clone(),
            bytes_done,
            bytes_total: staged.size,
            multipart: Some(state.clone()),
        })
        .await?;
        if ctx.is_cancelled() {
            drop(stream);
            acts.s3.abort_multipart(bucket, key, &upload_id).await;
            return Err(ActivityError::cancelled());
        }
    }
    drop(stream);
    acts.s3
        .complete_multipart(bucket, key, &upload_id, &state.parts)
        .await?;
    Ok(())
}

fn read_at(path: &std::path::Path, offset: u64, len: usize) -> anyhow::Result<bytes::Bytes> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf.into())
}

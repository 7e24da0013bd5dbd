//! What a delivery is in the client's bucket: its object keys, the
//! delivered-file record with a presigned link, fresh links later, and
//! removal of a partial or cancelled delivery.

use crate::{failure::Failure, Activities};
use model::catalog::{DigestAlgorithm, RepositoryFile};
use std::time::Duration;
use tracing::info;
use workflows::{DeliveredFile, DiscardInput, DisseminationRecord, PresignInput};

/// Where a delivered file lives in the client's bucket.
pub fn object_key(record: &DisseminationRecord, filename: &str) -> String {
    format!(
        "dissemination/{}/{}/{filename}",
        record.dissemination_id, record.archive_id
    )
}

/// The record of a verified, uploaded repository file, with a fresh link.
pub(crate) async fn delivered_file(
    acts: &Activities,
    record: &DisseminationRecord,
    file: &RepositoryFile,
    sha256: String,
    link_lifetime_secs: u64,
) -> Result<DeliveredFile, Failure> {
    let filename = file.filename().to_owned();
    let (download_url, expiration_date) = link(acts, record, &filename, link_lifetime_secs).await?;
    Ok(DeliveredFile {
        download_url,
        filename,
        filesize: file.size,
        expiration_date,
        checksum: sha256,
        checksum_algorithm: DigestAlgorithm::Sha256.as_str().into(),
        md5: file
            .fixity(DigestAlgorithm::Md5)
            .map(|f| f.digest.to_ascii_lowercase()),
    })
}

/// A presigned GET link and its expiry (RFC 3339).
async fn link(
    acts: &Activities,
    record: &DisseminationRecord,
    filename: &str,
    lifetime_secs: u64,
) -> Result<(String, String), Failure> {
    let bucket = acts.cfg.client_bucket(record.client_id.as_str());
    let key = object_key(record, filename);
    let url = acts
        .s3
        .presign_get(&bucket, &key, Duration::from_secs(lifetime_secs))
        .await
        .map_err(|e| Failure::Upload(e.to_string()))?;
    let expires = chrono::Local::now() + chrono::Duration::seconds(lifetime_secs as i64);
    Ok((url, model::time::rfc3339(&expires)))
}

/// New links (new expiry) for objects already in the bucket.
pub(crate) async fn presign_links(
    acts: &Activities,
    input: PresignInput,
) -> Result<Vec<DeliveredFile>, Failure> {
    let record = &input.record;
    let bucket = acts.cfg.client_bucket(record.client_id.as_str());
    let mut out = Vec::new();
    for file in &input.files {
        let key = object_key(record, &file.filename);
        let size = acts
            .s3
            .object_size(&bucket, &key)
            .await
            .map_err(|e| Failure::Upload(e.to_string()))?;
        if size != Some(file.filesize) {
            return Err(Failure::ObjectsGone(format!(
                "{} is no longer in the bucket",
                file.filename
            )));
        }
        let (download_url, expiration_date) =
            link(acts, record, &file.filename, input.link_lifetime_secs).await?;
        out.push(DeliveredFile {
            download_url,
            expiration_date,
            ..file.clone()
        });
    }
    info!(dissemination_id = %record.dissemination_id, files = out.len(), "links regenerated");
    Ok(out)
}

/// Deletes every object and open upload of the dissemination; the count of
/// objects deleted.
pub(crate) async fn discard(acts: &Activities, input: DiscardInput) -> Result<u32, Failure> {
    let bucket = acts.cfg.client_bucket(input.record.client_id.as_str());
    let prefix = format!("dissemination/{}/", input.record.dissemination_id);
    acts.s3
        .delete_prefix(&bucket, &prefix)
        .await
        .map_err(|e| Failure::Upload(e.to_string()))
}

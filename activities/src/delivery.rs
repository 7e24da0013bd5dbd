//! What a delivery is in the client's bucket: its object keys, the
//! delivered-file record with a presigned link, fresh links later, and
//! removal of a partial or cancelled delivery.

use crate::{failure::Failure, Activities};
use model::catalog::{DigestAlgorithm, RepositoryFile};
use tracing::info;
use workflows::{DeliveredFile, DiscardInput, PresignInput};

/// The record of a verified, uploaded repository file, with a fresh link
/// (its signing and expiry times: the link itself is signed on the way out).
pub(crate) fn delivered_file(
    file: &RepositoryFile,
    name: &str,
    sha256: String,
    link_lifetime_secs: u64,
) -> DeliveredFile {
    delivered_object(
        name.to_owned(),
        file.size,
        sha256,
        file.fixity(DigestAlgorithm::Md5)
            .map(|f| f.digest.to_ascii_lowercase()),
        link_lifetime_secs,
    )
}

/// The record of any verified, uploaded object (a repository file, a
/// selected member, a bag) under the dissemination's prefix.
pub(crate) fn delivered_object(
    filename: String,
    size: u64,
    sha256: String,
    md5: Option<String>,
    link_lifetime_secs: u64,
) -> DeliveredFile {
    let (link_signed_at, expiration_date) = link_times(link_lifetime_secs);
    DeliveredFile {
        download_url: String::new(),
        link_signed_at: Some(link_signed_at),
        filename,
        filesize: size,
        expiration_date,
        checksum: sha256,
        checksum_algorithm: DigestAlgorithm::Sha256,
        md5,
    }
}

/// When a link is signed (now) and when it expires, RFC 3339: the record
/// keeps these, never the link itself (see `DisseminationView::with_links`).
fn link_times(lifetime_secs: u64) -> (model::time::Timestamp, model::time::Timestamp) {
    let now = chrono::Local::now();
    let expires = now + chrono::Duration::seconds(lifetime_secs as i64);
    (
        model::time::Timestamp::at(&now),
        model::time::Timestamp::at(&expires),
    )
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
        let key = record.object_key(&file.filename);
        let size = acts
            .s3
            .object_size(&bucket, key.as_str())
            .await
            .map_err(|e| Failure::Upload(e.to_string()))?;
        if size != Some(file.filesize) {
            return Err(Failure::ObjectsGone(format!(
                "{} is no longer in the bucket",
                file.filename
            )));
        }
        let (link_signed_at, expiration_date) = link_times(input.link_lifetime_secs);
        out.push(DeliveredFile {
            download_url: String::new(),
            link_signed_at: Some(link_signed_at),
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

//! Multipart uploads: how a file is cut into parts, each part sent with
//! its MD5 and its ETag checked, and the completed object's ETag checked
//! against the parts sent (so S3 holds exactly the bytes that were hashed).

use super::{base64_md5, error_text, S3Error, FIXITY_METADATA, S3};
use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use md5::Digest as _;
use std::collections::BTreeMap;

/// S3's limit on parts per upload.
const MAX_PARTS: u64 = 10_000;

/// Part size and parts in flight for a file of `size` bytes: the configured
/// part size unless the file needs bigger parts to fit in 10,000, and then
/// fewer in flight, so the bytes held stay about the configured budget.
pub fn part_plan(size: u64, part_size_mib: u64, concurrency: usize) -> (u64, usize) {
    const MIB: u64 = 1024 * 1024;
    let configured = part_size_mib.max(5) * MIB;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    let part = configured.max(needed);
    let budget = configured * concurrency.max(1) as u64;
    let in_flight = (budget / part).max(1) as usize;
    (part, in_flight.min(concurrency.max(1)))
}

impl S3 {
    /// Starts a multipart upload of an object to be verified against `fixity`.
    pub async fn start_multipart(
        &self,
        bucket: &str,
        key: &str,
        fixity: &str,
    ) -> anyhow::Result<String> {
        self.start_multipart_of(bucket, key, fixity, "application/x-tar")
            .await
    }

    /// The same, for an object of another content type.
    pub async fn start_multipart_of(
        &self,
        bucket: &str,
        key: &str,
        fixity: &str,
        content_type: &str,
    ) -> anyhow::Result<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .metadata(FIXITY_METADATA, fixity)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("starting upload of {key}: {}", error_text(&e)))?;
        out.upload_id
            .ok_or_else(|| anyhow::anyhow!("S3 returned no upload id for {key}"))
    }

    /// Uploads one part with its MD5 (`Content-MD5`: S3 refuses bytes that
    /// arrive otherwise) and checks the ETag S3 answers names that MD5;
    /// without an MD5 (`s3.content_md5 = false`, to measure its cost) S3's
    /// own ETags still make up the completed object's.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: bytes::Bytes,
        md5: Option<[u8; 16]>,
    ) -> Result<String, S3Error> {
        let out = self
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(body.len() as i64)
            .set_content_md5(md5.as_ref().map(base64_md5))
            .set_expected_bucket_owner(self.owner.clone())
            .body(ByteStream::from(body))
            // UNSIGNED-PAYLOAD: the part's SHA-256 is not computed a second
            // time for the signature (the S3 write path is the bottleneck and
            // shares the CPU); TLS to the endpoint protects the bytes in transit.
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(format!("uploading part {part_number} of {key}"), &e))?;
        let etag = out.e_tag.ok_or_else(|| {
            S3Error::Other(format!(
                "S3 returned no ETag for part {part_number} of {key}"
            ))
        })?;
        if md5.is_some_and(|m| !etag_is(&etag, &hex::encode(m))) {
            return Err(S3Error::Other(format!(
                "part {part_number} of {key}: S3 stored other bytes (ETag {etag})"
            )));
        }
        Ok(etag)
    }

    /// The parts S3 holds for an upload, (part number → ETag), all pages.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<BTreeMap<i32, String>, S3Error> {
        let mut parts = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_parts()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .set_expected_bucket_owner(self.owner.clone())
                .send()
                .await
                .map_err(|e| S3Error::from_sdk(format!("listing the parts of {key}"), &e))?;
            for p in out.parts() {
                if let (Some(n), Some(etag)) = (p.part_number(), p.e_tag()) {
                    parts.insert(n, etag.to_owned());
                }
            }
            match out.next_part_number_marker() {
                Some(next)
                    if out.is_truncated() == Some(true) && marker.as_deref() != Some(next) =>
                {
                    marker = Some(next.to_owned());
                }
                _ => break,
            }
        }
        Ok(parts)
    }

    /// Completes the upload from `parts` and checks the object's ETag is the
    /// multipart ETag of exactly those parts (MD5 of their MD5s, `-N`).
    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<(), S3Error> {
        let expected = multipart_etag(parts);
        let mut sorted = parts.to_vec();
        sorted.sort_by_key(|p| p.0);
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                sorted
                    .into_iter()
                    .map(|(n, etag)| CompletedPart::builder().part_number(n).e_tag(etag).build())
                    .collect(),
            ))
            .build();
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(format!("completing the upload of {key}"), &e))?;
        match (out.e_tag(), expected) {
            (Some(got), Some(want)) if !etag_is(got, &want) => Err(S3Error::Other(format!(
                "completed {key} with ETag {got}, not {want} of the parts sent"
            ))),
            _ => Ok(()),
        }
    }

    pub async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
    }
}

/// An ETag as S3 sends it (quoted or not) names this hex digest.
fn etag_is(etag: &str, hex: &str) -> bool {
    etag.trim_matches('"').eq_ignore_ascii_case(hex)
}

/// The ETag S3 gives a multipart object: MD5 of the parts' MD5s, `-N`;
/// `None` when a part's ETag is not a plain MD5 (then it is not checked).
pub fn multipart_etag(parts: &[(i32, String)]) -> Option<String> {
    let mut sorted = parts.to_vec();
    sorted.sort_by_key(|p| p.0);
    let mut all = Vec::with_capacity(16 * sorted.len());
    for (_, etag) in &sorted {
        all.extend(
            hex::decode(etag.trim_matches('"'))
                .ok()
                .filter(|b| b.len() == 16)?,
        );
    }
    Some(format!(
        "{}-{}",
        hex::encode(md5::Md5::digest(&all)),
        sorted.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::{multipart_etag, part_plan};

    #[test]
    fn the_multipart_etag_is_the_md5_of_the_part_md5s() {
        use md5::Digest;
        let (a, b) = (md5::Md5::digest(b"part one"), md5::Md5::digest(b"part two"));
        let parts = vec![(2, format!("\"{}\"", hex::encode(b))), (1, hex::encode(a))];
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        let want = format!("{}-2", hex::encode(md5::Md5::digest(&both)));
        assert_eq!(multipart_etag(&parts), Some(want));
        assert_eq!(multipart_etag(&[(1, "not-an-md5".into())]), None);
    }
    const MIB: u64 = 1024 * 1024;

    #[test]
    fn parts_grow_for_huge_files_and_fewer_fly_at_once() {
        assert_eq!(part_plan(2048 * MIB, 8, 4), (8 * MIB, 4));
        assert_eq!(part_plan(MIB, 8, 4), (8 * MIB, 4));
        // 1 TiB needs parts of at least 105 MiB to fit in 10,000.
        let (part, in_flight) = part_plan(1024 * 1024 * MIB, 8, 4);
        assert_eq!(part, 105 * MIB);
        assert!(1024 * 1024 * MIB <= part * 10_000);
        assert_eq!(in_flight, 1, "memory stays near 4 × 8 MiB");
        assert_eq!(part_plan(100 * 1024 * MIB, 8, 4), (11 * MIB, 2));
    }
}

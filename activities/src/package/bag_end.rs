//! The end of a bag: its tag files and `premis.xml`, then completion.

use super::{output::BagOut, Beat};
use crate::{delivery::delivered_object, failure::Failure, Activities};
use packaging::{bag, tar};
use sha2::{Digest, Sha256};
use workflows::{DeliveredFile, PackageInput, PackagedFile};

/// Appends the tag files (manifests, `bag-info.txt`, `premis.xml`) and
/// the end of the archive, and completes the bag: every file's digest
/// has matched by now.
pub(crate) async fn finish_bag(
    acts: &Activities,
    input: &PackageInput,
    mut b: BagOut,
    done: &[PackagedFile],
    (mtime, beat): (u64, &mut Beat<'_>),
) -> Result<DeliveredFile, Failure> {
    let record = &input.record;
    let octets: u64 = b.payload.iter().map(|p| p.2).sum();
    let info = bag::BagInfo {
        source_organization: acts.cfg.bagit.source_organization.clone(),
        external_identifier: record.archive_id.to_string(),
        internal_sender_identifier: record.object_id.clone(),
        bagging_date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        payload_octets: octets,
        payload_files: b.payload.len() as u64,
    };
    let manifest = bag::manifest(b.payload.iter().map(|(d, p, _)| (d.as_str(), p.as_str())));
    let premis = premis_xml(input, &b.payload, done);
    let tag_files = [
        ("bagit.txt", bag::BAGIT_TXT.to_owned()),
        ("bag-info.txt", bag::bag_info_txt(&info)),
        ("manifest-sha256.txt", manifest),
        ("premis.xml", premis),
    ];
    let digests: Vec<(String, &str)> = tag_files
        .iter()
        .map(|(name, text)| (hex::encode(Sha256::digest(text.as_bytes())), *name))
        .collect();
    let tagmanifest = bag::manifest(digests.iter().map(|(d, n)| (d.as_str(), *n)));
    for (name, text) in tag_files
        .iter()
        .map(|(n, t)| (*n, t.as_str()))
        .chain([("tagmanifest-sha256.txt", tagmanifest.as_str())])
    {
        let bytes = text.as_bytes();
        let path = format!("{}/{name}", b.root);
        b.writer
            .write(&tar::header(&path, bytes.len() as u64, mtime), beat)
            .await?;
        b.writer.write(bytes, beat).await?;
        let pad = [0u8; 512];
        b.writer
            .write(&pad[..tar::padding(bytes.len() as u64)], beat)
            .await?;
    }
    b.writer.write(&tar::END_OF_ARCHIVE, beat).await?;
    let (size, sha256) = b.writer.complete(beat).await?;
    acts.metrics.uploaded(size);
    Ok(delivered_object(
        format!("{}.tar", record.archive_id),
        size,
        sha256,
        None,
        input.link_lifetime_secs,
    ))
}

/// The bag's `premis.xml`: the audit trail so far, this step's retrievals
/// and fixity checks, and the payload files as the delivered objects.
fn premis_xml(
    input: &PackageInput,
    payload: &[(String, String, u64)],
    done: &[PackagedFile],
) -> String {
    use workflows::{DisseminationEvent, EventType, Outcome};
    let now = model::time::Timestamp::now();
    let mut events = input.events.clone();
    for (packaged, file) in done.iter().zip(&input.files) {
        let at = |event_type, detail: String, algorithm: Option<String>| DisseminationEvent {
            event_type,
            date_time: now.clone(),
            outcome: Outcome::Success,
            detail,
            file: Some(file.relative_path.clone()),
            location: Some(packaged.fixity.location_id.clone()),
            algorithm,
        };
        events.push(at(
            EventType::Retrieval,
            format!(
                "{} bytes read, {} member(s) taken",
                packaged.bytes_read, packaged.members
            ),
            None,
        ));
        events.push(at(
            EventType::FixityCheck,
            format!("digest {}", packaged.fixity.digest),
            Some(packaged.fixity.algorithm.as_str().to_owned()),
        ));
    }
    let delivered: Vec<DeliveredFile> = payload
        .iter()
        .map(|(sha256, path, size)| delivered_object(path.clone(), *size, sha256.clone(), None, 0))
        .collect();
    packaging::premis::premis_xml(&workflows::receipt::receipt(
        &input.record,
        &input.files,
        &delivered,
        &events,
    ))
}

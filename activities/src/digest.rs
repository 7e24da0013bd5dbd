//! Digests computed while bytes stream past. Only the algorithms asked for
//! are computed: SHA-256 runs on SHA-NI where the CPU has it; MD5 and
//! SHA-512 are several times slower and only run when a stored digest
//! needs them.

use md5::Md5;
use model::catalog::{DigestAlgorithm, Fixity, RepositoryFile};
use sha1::Sha1;
use sha2::{
    digest::common::hazmat::{SerializableState, SerializedState},
    Digest, Sha256, Sha512,
};
use std::collections::BTreeMap;
use workflows::HashCheckpoint;

pub struct MultiHasher {
    md5: Option<Md5>,
    sha1: Option<Sha1>,
    sha256: Option<Sha256>,
    sha512: Option<Sha512>,
    /// Bytes hashed so far (a checkpoint names the offset it belongs to).
    bytes: u64,
}

impl MultiHasher {
    pub fn new(algorithms: &[DigestAlgorithm]) -> Self {
        let has = |a| algorithms.contains(&a);
        Self {
            md5: has(DigestAlgorithm::Md5).then(Md5::new),
            sha1: has(DigestAlgorithm::Sha1).then(Sha1::new),
            sha256: has(DigestAlgorithm::Sha256).then(Sha256::new),
            sha512: has(DigestAlgorithm::Sha512).then(Sha512::new),
            bytes: 0,
        }
    }

    /// The strongest stored digest (for fixity) plus SHA-256 (for the client).
    pub fn algorithms_for(file: &RepositoryFile) -> Vec<DigestAlgorithm> {
        let mut algs = vec![DigestAlgorithm::Sha256];
        if let Some(f) = file.strongest_fixity() {
            if f.algorithm != DigestAlgorithm::Sha256 {
                algs.push(f.algorithm);
            }
        }
        algs
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(data);
        }
        self.bytes += data.len() as u64;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hash states after `bytes()` bytes, to carry in a heartbeat: a
    /// retry continues from there instead of re-reading from byte 0.
    pub fn checkpoint(&self) -> HashCheckpoint {
        let mut states = BTreeMap::new();
        let mut put = |alg: DigestAlgorithm, state: &[u8]| {
            states.insert(alg, hex::encode(state));
        };
        if let Some(h) = &self.md5 {
            put(DigestAlgorithm::Md5, &h.serialize());
        }
        if let Some(h) = &self.sha1 {
            put(DigestAlgorithm::Sha1, &h.serialize());
        }
        if let Some(h) = &self.sha256 {
            put(DigestAlgorithm::Sha256, &h.serialize());
        }
        if let Some(h) = &self.sha512 {
            put(DigestAlgorithm::Sha512, &h.serialize());
        }
        HashCheckpoint {
            offset: self.bytes,
            states,
        }
    }

    /// Hashers continuing from `checkpoint`, when it holds a valid state for
    /// exactly `algorithms`; `None` otherwise (start again from byte 0).
    pub fn resume(algorithms: &[DigestAlgorithm], checkpoint: &HashCheckpoint) -> Option<Self> {
        let mut wanted: Vec<DigestAlgorithm> = algorithms.to_vec();
        wanted.sort();
        wanted.dedup();
        let held: Vec<DigestAlgorithm> = checkpoint.states.keys().copied().collect();
        if wanted != held {
            return None;
        }
        fn restore<H: SerializableState>(hex_state: Option<&String>) -> Option<Option<H>> {
            let Some(text) = hex_state else {
                return Some(None);
            };
            let bytes = hex::decode(text).ok()?;
            let state = SerializedState::<H>::try_from(bytes.as_slice()).ok()?;
            H::deserialize(&state).ok().map(Some)
        }
        let s = &checkpoint.states;
        Some(Self {
            md5: restore(s.get(&DigestAlgorithm::Md5))?,
            sha1: restore(s.get(&DigestAlgorithm::Sha1))?,
            sha256: restore(s.get(&DigestAlgorithm::Sha256))?,
            sha512: restore(s.get(&DigestAlgorithm::Sha512))?,
            bytes: checkpoint.offset,
        })
    }

    /// Lowercase hex digests keyed by algorithm.
    pub fn finish(self) -> BTreeMap<DigestAlgorithm, String> {
        let mut out = BTreeMap::new();
        if let Some(h) = self.md5 {
            out.insert(DigestAlgorithm::Md5, hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha1 {
            out.insert(DigestAlgorithm::Sha1, hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha256 {
            out.insert(DigestAlgorithm::Sha256, hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha512 {
            out.insert(DigestAlgorithm::Sha512, hex::encode(h.finalize()));
        }
        out
    }
}

/// Digests of a whole byte slice (demo data, tests).
/// The fixity verdict on the bytes read from `location_id`: their size, then
/// the digest computed for `stored`'s algorithm, against the catalog.
/// `Ok(computed digest)` or `Err(why not)`.
pub fn verify(
    file: &RepositoryFile,
    stored: &Fixity,
    location_id: &str,
    size: u64,
    digests: &BTreeMap<DigestAlgorithm, String>,
) -> Result<String, String> {
    let computed = digests.get(&stored.algorithm).cloned().unwrap_or_default();
    if size != file.size {
        // Reading stops one chunk past the catalog's size.
        let over = if size > file.size { "over " } else { "" };
        return Err(format!(
            "{} at {location_id} is {over}{size} bytes, the catalog says {}",
            file.relative_path, file.size
        ));
    }
    if !computed.eq_ignore_ascii_case(stored.digest.trim()) {
        return Err(format!(
            "{} at {location_id}: {} {computed} does not match the stored {}",
            file.relative_path,
            stored.algorithm.as_str(),
            stored.digest
        ));
    }
    Ok(computed)
}

pub fn digests_of(
    data: &[u8],
    algorithms: &[DigestAlgorithm],
) -> BTreeMap<DigestAlgorithm, String> {
    let mut h = MultiHasher::new(algorithms);
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_checks_size_then_the_stored_digest() {
        let bytes = b"ab";
        let digests = digests_of(bytes, &[DigestAlgorithm::Sha256]);
        let stored = Fixity {
            algorithm: DigestAlgorithm::Sha256,
            digest: digests[&DigestAlgorithm::Sha256].to_uppercase(),
            originator: "test".into(),
        };
        let file = RepositoryFile {
            relative_path: "a.tar".into(),
            size: 2,
            fixities: vec![stored.clone()],
            locations: vec![],
        };
        let ok = verify(&file, &stored, "disk", 2, &digests);
        assert_eq!(
            ok.as_deref(),
            Ok(digests[&DigestAlgorithm::Sha256].as_str())
        );
        let long = verify(&file, &stored, "disk", 3, &digests).expect_err("too long");
        assert!(
            long.contains("is over 3 bytes, the catalog says 2"),
            "{long}"
        );
        let other = digests_of(b"ba", &[DigestAlgorithm::Sha256]);
        let bad = verify(&file, &stored, "s3", 2, &other).expect_err("other bytes");
        assert!(bad.contains("a.tar at s3: SHA-256"), "{bad}");
    }

    #[test]
    fn known_vectors() {
        let all = [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Sha1,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha512,
        ];
        let mut h = MultiHasher::new(&all);
        h.update(b"ab");
        h.update(b"c");
        let d = h.finish();
        assert_eq!(d[&DigestAlgorithm::Md5], "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            d[&DigestAlgorithm::Sha1],
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            d[&DigestAlgorithm::Sha256],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(d[&DigestAlgorithm::Sha512].starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn a_checkpoint_resumes_to_the_same_digests() {
        let all = [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Sha1,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha512,
        ];
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut first = MultiHasher::new(&all);
        first.update(&data[..33_333]);
        // Through JSON, as in a heartbeat.
        let saved = serde_json::to_string(&first.checkpoint()).expect("serializes");
        let checkpoint: HashCheckpoint = serde_json::from_str(&saved).expect("parses");
        assert_eq!(checkpoint.offset, 33_333);
        let mut resumed = MultiHasher::resume(&all, &checkpoint).expect("resumes");
        resumed.update(&data[33_333..]);
        assert_eq!(resumed.bytes(), data.len() as u64);
        assert_eq!(resumed.finish(), digests_of(&data, &all));
        // Another set of algorithms, or a damaged state, starts again.
        assert!(MultiHasher::resume(&[DigestAlgorithm::Sha256], &checkpoint).is_none());
        let mut damaged = checkpoint.clone();
        damaged.states.insert(DigestAlgorithm::Sha256, "00".into());
        assert!(MultiHasher::resume(&all, &damaged).is_none());
    }

    #[test]
    fn only_requested_algorithms_run() {
        let d = digests_of(b"abc", &[DigestAlgorithm::Sha256]);
        assert_eq!(d.len(), 1);
    }
}

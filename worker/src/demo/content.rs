//! The bytes of the demo AIPs: deterministic pseudo-random content that
//! does not compress (held in memory, or read as a stream), and TARs with
//! fixed headers, so the same seed always gives the same digests.

use std::io::Read;

/// Deterministic bytes that do not compress (xorshift).
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut rng = PseudoRandom(seed | 1);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

pub(super) struct PseudoRandom(pub(super) u64);

impl PseudoRandom {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A `Read` of `len` pseudo-random bytes, for large files without holding them.
pub(super) struct PseudoRandomReader {
    pub(super) rng: PseudoRandom,
    pub(super) left: u64,
}

impl Read for PseudoRandomReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            let v = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A TAR holding the given (name, content) entries.
pub fn tar_of(entries: &[(&str, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut header = file_header(content.len() as u64);
        builder.append_data(&mut header, name, content.as_slice())?;
    }
    Ok(builder.into_inner()?)
}

/// The header of a demo TAR's member of `size` bytes.
pub(super) fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(1_742_860_800); // 2025-03-25, fixed so digests are stable
    header.set_cksum();
    header
}

/// A demo AIP's primary TAR: METS, two images (`image_kib` KiB and half
/// that) and a README.
pub(super) fn primary_tar(seed: u64, image_kib: usize) -> anyhow::Result<Vec<u8>> {
    tar_of(&[
        (
            "mets.xml",
            format!("<mets OBJID=\"demo-{seed}\"><dmdSec ID=\"dmd1\"/></mets>\n").into_bytes(),
        ),
        ("image_0001.tif", pseudo_random(seed, image_kib * 1024)),
        ("image_0002.tif", pseudo_random(seed + 1, image_kib * 512)),
        (
            "README.txt",
            b"Demo AIP of the Dissemination Service.\n".to_vec(),
        ),
    ])
}

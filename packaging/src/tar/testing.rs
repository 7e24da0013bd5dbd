//! The harness of this module's tests: feeds an archive to the reader in
//! pieces of every size, checks the events are well-formed (data borrowed
//! from the input, no event without progress), and collects what it read.

#![allow(clippy::unwrap_used)]

use super::{Event, Member, MemberKind, TarError, TarReader};

/// A member as the reader reported it, with its data joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Read {
    Member(Member, Vec<u8>),
    End,
}

/// Reads `archive` fed in pieces of `chunk` bytes, as a caller would.
pub(super) fn read_chunked(archive: &[u8], chunk: usize) -> Result<Vec<Read>, TarError> {
    let mut reader = TarReader::new();
    let mut out = Vec::new();
    let mut open: Option<(Member, Vec<u8>)> = None;
    let mut handle = |event: Event<'_>, out: &mut Vec<Read>| match event {
        Event::Member(m) => {
            assert!(open.is_none(), "Member {m:?} before MemberEnd");
            open = Some((m, Vec::new()));
        }
        Event::Data(d) => {
            assert!(!d.is_empty(), "empty Data event");
            let (m, data) = open.as_mut().expect("Data outside a member");
            data.extend_from_slice(d);
            assert!(data.len() as u64 <= m.size, "more data than the size");
        }
        Event::MemberEnd => {
            let (m, data) = open.take().expect("MemberEnd outside a member");
            assert_eq!(data.len() as u64, m.size, "data of {}", m.path);
            out.push(Read::Member(m, data));
        }
        Event::End => {
            assert!(open.is_none(), "End inside a member");
            out.push(Read::End);
        }
    };
    for piece in archive.chunks(chunk.max(1)) {
        let mut buf = piece;
        while !buf.is_empty() {
            let (n, event) = reader.next(buf)?;
            assert!(n <= buf.len());
            assert!(n > 0 || event.is_some(), "no progress and no event");
            if let Some(Event::Data(d)) = &event {
                assert!(
                    buf.as_ptr_range().contains(&d.as_ptr()),
                    "Data must borrow the input"
                );
            }
            if event.is_none() {
                assert_eq!(n, buf.len(), "(n, None) must consume everything");
            }
            buf = &buf[n..];
            if let Some(event) = event {
                handle(event, &mut out);
            }
        }
    }
    loop {
        let (n, event) = reader.next(&[])?;
        assert_eq!(n, 0);
        match event {
            Some(event) => handle(event, &mut out),
            None => break,
        }
    }
    reader.finish()?;
    assert!(open.is_none(), "input ended inside a member");
    Ok(out)
}

pub(super) const CHUNKINGS: [usize; 7] = [1, 7, 511, 512, 513, 4096, usize::MAX];

/// Reads `archive` with every chunking; all must agree.
pub(super) fn read_all(archive: &[u8]) -> Vec<Read> {
    let whole = read_chunked(archive, archive.len()).unwrap();
    for chunk in CHUNKINGS {
        let chunked = read_chunked(archive, chunk.min(archive.len()))
            .unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        assert_eq!(chunked, whole, "chunk {chunk}");
    }
    whole
}

/// The error reading `archive`, the same with every chunking.
pub(super) fn read_err(archive: &[u8]) -> TarError {
    let whole = read_chunked(archive, archive.len()).unwrap_err();
    for chunk in CHUNKINGS {
        let e = read_chunked(archive, chunk.min(archive.len())).unwrap_err();
        assert_eq!(e, whole, "chunk {chunk}");
    }
    whole
}

pub(super) fn file(path: &str, data: &[u8]) -> Read {
    Read::Member(
        Member {
            path: path.into(),
            size: data.len() as u64,
            kind: MemberKind::File,
        },
        data.to_vec(),
    )
}

pub(super) fn other(path: &str, kind: MemberKind) -> Read {
    Read::Member(
        Member {
            path: path.into(),
            size: 0,
            kind,
        },
        Vec::new(),
    )
}

pub(super) fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

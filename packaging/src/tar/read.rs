//! The streaming reader: a state machine over header blocks, extended
//! headers, member data and padding, fed whatever bytes the caller has.
//! It holds at most one header block and one extended header; member data
//! is handed back borrowed from the input. A malformed archive fails at
//! the first bad byte, with its offset, and keeps failing.

use super::extended::{Extension, Pending};
use super::fields::{check_checksum, field_str, numeric};
use super::{padding, Event, Member, MemberKind, TarError, BLOCK};

/// The most extended-header data (PAX records, a GNU long name or link)
/// buffered for one member.
const EXTENSION_LIMIT: u64 = 1 << 20;

/// A TAR archive read while it streams.
#[derive(Debug, Default)]
pub struct TarReader {
    state: State,
    /// The header block gathered so far.
    block: Vec<u8>,
    /// The extended-header data gathered so far.
    extension: Vec<u8>,
    /// Bytes consumed before the current call.
    offset: u64,
    /// Where the header block in progress (or the last one) starts.
    header_at: u64,
    /// The last header block was a zero block.
    zero_block: bool,
    /// What extended headers said about the next member.
    pending: Pending,
    /// The path of the member whose data is in progress.
    current: String,
    /// The error returned, returned again.
    failed: Option<TarError>,
}

#[derive(Debug, Default)]
enum State {
    /// Reading a header block.
    #[default]
    Header,
    /// Reading an extended header's data.
    Extension {
        kind: Extension,
        remaining: u64,
        pad: u64,
    },
    /// Reading a member's data.
    Data { remaining: u64, pad: u64 },
    /// A member's data is complete; `MemberEnd` is due.
    MemberEnd { pad: u64 },
    /// Skipping bytes that are not emitted.
    Skip { remaining: u64, what: &'static str },
    /// After the end-of-archive marker.
    Done,
}

impl TarReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the front of `input`: returns how many bytes it consumed and
    /// at most one event. `(n, None)` means it consumed `n` bytes (all of
    /// them, or up to the end of the archive) and needs more input.
    ///
    /// An event that needs no bytes (`MemberEnd` after the last data of a
    /// member) is returned with `n == 0`; when the input has ended, calling
    /// `next(&[])` until it returns `(0, None)` yields any such event still
    /// due.
    pub fn next<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Event<'a>>), TarError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut pos = 0;
        match self.step(input, &mut pos) {
            Ok(event) => {
                self.offset += pos as u64;
                Ok((pos, event))
            }
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The input has ended: an error unless the archive ended cleanly (at
    /// its end-of-archive marker, or at least between members).
    pub fn finish(&self) -> Result<(), TarError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let truncated = |what: String| Err(TarError(format!("archive truncated: {what}")));
        match &self.state {
            State::Done => Ok(()),
            State::Header if !self.block.is_empty() => truncated(format!(
                "{} of the {BLOCK} bytes of the header at byte offset {}",
                self.block.len(),
                self.header_at
            )),
            State::Header if self.pending.any => truncated(format!(
                "the extended header ending at byte offset {} is not followed by its member",
                self.offset
            )),
            State::Header | State::MemberEnd { pad: 0 } => Ok(()),
            State::Extension { remaining, .. } => truncated(format!(
                "{remaining} bytes missing from the extended header at byte offset {}",
                self.header_at
            )),
            State::Data { remaining, .. } => truncated(format!(
                "{remaining} bytes missing from the data of member \"{}\"",
                self.current
            )),
            State::MemberEnd { pad } => truncated(format!(
                "{pad} bytes of padding missing after member \"{}\"",
                self.current
            )),
            State::Skip { remaining, what } => truncated(format!(
                "{remaining} bytes of {what} missing at byte offset {}",
                self.offset
            )),
        }
    }

    fn at(&self, pos: usize) -> u64 {
        self.offset + pos as u64
    }

    fn step<'a>(
        &mut self,
        input: &'a [u8],
        pos: &mut usize,
    ) -> Result<Option<Event<'a>>, TarError> {
        loop {
            let rest = &input[*pos..];
            match &mut self.state {
                State::Done => {
                    *pos = input.len();
                    return Ok(None);
                }
                State::MemberEnd { pad } => {
                    self.state = after_padding(*pad);
                    return Ok(Some(Event::MemberEnd));
                }
                _ if rest.is_empty() => return Ok(None),
                State::Data { remaining, pad } => {
                    let n = take(*remaining, rest.len());
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::MemberEnd { pad: *pad };
                    }
                    *pos += n;
                    return Ok(Some(Event::Data(&rest[..n])));
                }
                State::Skip { remaining, .. } => {
                    let n = take(*remaining, rest.len());
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Header;
                    }
                    *pos += n;
                }
                State::Extension {
                    kind,
                    remaining,
                    pad,
                } => {
                    let n = take(*remaining, rest.len());
                    *remaining -= n as u64;
                    self.extension.extend_from_slice(&rest[..n]);
                    *pos += n;
                    if *remaining == 0 {
                        let (kind, pad) = (*kind, *pad);
                        self.state = after_padding(pad);
                        self.apply_extension(kind)?;
                    }
                }
                State::Header => {
                    if self.block.is_empty() {
                        self.header_at = self.at(*pos);
                    }
                    let n = (BLOCK - self.block.len()).min(rest.len());
                    self.block.extend_from_slice(&rest[..n]);
                    *pos += n;
                    if self.block.len() == BLOCK {
                        let block = std::mem::take(&mut self.block);
                        let event = self.header(&block);
                        self.block = block;
                        self.block.clear();
                        if let Some(event) = event? {
                            return Ok(Some(event));
                        }
                    }
                }
            }
        }
    }

    /// Reads one complete header block.
    fn header(&mut self, b: &[u8]) -> Result<Option<Event<'static>>, TarError> {
        let at = self.header_at;
        if b.iter().all(|&x| x == 0) {
            if self.pending.any {
                return Err(TarError(format!(
                    "zero block at byte offset {at} where the member of an extended header should be"
                )));
            }
            if self.zero_block {
                self.state = State::Done;
                return Ok(Some(Event::End));
            }
            self.zero_block = true;
            return Ok(None);
        }
        if self.zero_block {
            return Err(TarError(format!(
                "header at byte offset {at} follows a lone zero block"
            )));
        }
        check_checksum(b, at)?;
        let typeflag = b[156];
        let header_size = numeric(&b[124..136])
            .ok_or_else(|| TarError(format!("bad size field in the header at byte offset {at}")))?;
        let extension = match typeflag {
            b'x' => Some(Extension::Pax),
            b'L' => Some(Extension::LongName),
            b'K' => Some(Extension::LongLink),
            b'g' => {
                self.state = skipping_data(header_size, "a global extended header");
                return Ok(None);
            }
            _ => None,
        };
        if let Some(kind) = extension {
            if header_size > EXTENSION_LIMIT {
                return Err(TarError(format!(
                    "extended header at byte offset {at} has {header_size} bytes, more than {EXTENSION_LIMIT}"
                )));
            }
            self.pending.any = true;
            self.extension.clear();
            let pad = padding(header_size) as u64;
            if header_size == 0 {
                self.state = after_padding(pad);
                self.apply_extension(kind)?;
            } else {
                self.state = State::Extension {
                    kind,
                    remaining: header_size,
                    pad,
                };
            }
            return Ok(None);
        }
        self.member(b, typeflag, header_size, at)
    }

    /// Reads the header of a member proper, with what extended headers said.
    fn member(
        &mut self,
        b: &[u8],
        typeflag: u8,
        header_size: u64,
        at: u64,
    ) -> Result<Option<Event<'static>>, TarError> {
        let pending = std::mem::take(&mut self.pending);
        let utf8 = |bytes: Vec<u8>, what: &str| {
            String::from_utf8(bytes).map_err(|_| {
                TarError(format!(
                    "the {what} in the header at byte offset {at} is not UTF-8"
                ))
            })
        };
        let path = match pending
            .sparse_name
            .or(pending.pax_path)
            .or(pending.long_name)
        {
            Some(path) => path,
            None => {
                let name = field_str(&b[0..100]);
                let prefix = if &b[257..263] == b"ustar\0" {
                    field_str(&b[345..500])
                } else {
                    &[]
                };
                let mut full = Vec::with_capacity(prefix.len() + 1 + name.len());
                if !prefix.is_empty() {
                    full.extend_from_slice(prefix);
                    full.push(b'/');
                }
                full.extend_from_slice(name);
                utf8(full, "name")?
            }
        };
        let size = pending.pax_size.unwrap_or(header_size);
        let link = || -> Result<String, TarError> {
            match pending
                .pax_link
                .clone()
                .or_else(|| pending.long_link.clone())
            {
                Some(link) => Ok(link),
                None => utf8(field_str(&b[157..257]).to_vec(), "link name"),
            }
        };
        let kind = match typeflag {
            _ if pending.sparse || typeflag == b'S' => MemberKind::Other("sparse file".into()),
            b'0' | b'\0' | b'7' if path.ends_with('/') => MemberKind::Directory,
            b'0' | b'\0' | b'7' => MemberKind::File,
            b'5' => MemberKind::Directory,
            b'1' => MemberKind::Other(format!("hard link to {}", link()?)),
            b'2' => MemberKind::Other(format!("symbolic link to {}", link()?)),
            b'3' => MemberKind::Other("character device".into()),
            b'4' => MemberKind::Other("block device".into()),
            b'6' => MemberKind::Other("FIFO".into()),
            b'D' => MemberKind::Other("GNU directory dump".into()),
            b'M' => MemberKind::Other("GNU multi-volume continuation".into()),
            b'V' => MemberKind::Other("volume label".into()),
            other if other.is_ascii_graphic() => {
                MemberKind::Other(format!("member of type '{}'", other as char))
            }
            other => MemberKind::Other(format!("member of type {other:#04x}")),
        };
        let is_dir = kind == MemberKind::Directory;
        let mut p = path.as_str();
        while let Some(rest) = p.strip_prefix("./") {
            p = rest;
        }
        if p.starts_with('/') {
            return Err(TarError(format!(
                "member at byte offset {at} has an absolute path: {path:?}"
            )));
        }
        if is_dir {
            p = p.trim_end_matches('/');
        }
        if p.is_empty() || p == "." {
            if is_dir {
                self.state = skipping_data(size, "the data of the root directory entry");
                return Ok(None);
            }
            return Err(TarError(format!(
                "member at byte offset {at} has an empty path: {path:?}"
            )));
        }
        if p.split('/').any(|segment| segment == "..") {
            return Err(TarError(format!(
                "member at byte offset {at} has a \"..\" segment in its path: {path:?}"
            )));
        }
        if p.contains('\0') {
            return Err(TarError(format!(
                "member at byte offset {at} has a NUL character in its path: {path:?}"
            )));
        }
        let member = Member {
            path: p.to_string(),
            size,
            kind,
        };
        self.current.clone_from(&member.path);
        self.state = if size == 0 {
            State::MemberEnd { pad: 0 }
        } else {
            State::Data {
                remaining: size,
                pad: padding(size) as u64,
            }
        };
        Ok(Some(Event::Member(member)))
    }

    /// Applies the extended header just read to the member that follows.
    fn apply_extension(&mut self, kind: Extension) -> Result<(), TarError> {
        let data = std::mem::take(&mut self.extension);
        self.pending.apply(kind, &data, self.header_at)?;
        self.extension = data;
        self.extension.clear();
        Ok(())
    }
}

/// The state after a member or extended header and `pad` bytes of padding.
fn after_padding(pad: u64) -> State {
    skipping(pad, "padding")
}

/// The state that passes over `size` bytes of data (and their padding)
/// that are not emitted.
fn skipping_data(size: u64, what: &'static str) -> State {
    skipping(size + padding(size) as u64, what)
}

/// The state that passes over `remaining` bytes of `what`; none: the next
/// header.
fn skipping(remaining: u64, what: &'static str) -> State {
    if remaining == 0 {
        State::Header
    } else {
        State::Skip { remaining, what }
    }
}

/// How many of `available` bytes to take when `remaining` are wanted.
fn take(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tar::testing::{bytes, file, other, read_all, read_err, Read};
    use crate::tar::END_OF_ARCHIVE;
    use ::tar::{Builder, EntryType, Header};
    use std::io;

    fn add_file(b: &mut Builder<Vec<u8>>, mut h: Header, path: &str, data: &[u8]) {
        h.set_entry_type(EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn add_dir(b: &mut Builder<Vec<u8>>, path: &str) {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_data(&mut h, path, io::empty()).unwrap();
    }

    /// A PAX record, its length found by trying (independent of the
    /// writer's arithmetic).
    fn record(key: &str, value: &str) -> Vec<u8> {
        (1..10_000)
            .map(|len| format!("{len} {key}={value}\n"))
            .find(|r| r.len() == r.split(' ').next().unwrap().parse::<usize>().unwrap())
            .unwrap()
            .into_bytes()
    }

    fn add_extension(b: &mut Builder<Vec<u8>>, kind: EntryType, data: &[u8]) {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path("PaxHeaders/x").unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    /// A header block with raw `name` bytes, the checksum right.
    fn raw_header(name: &[u8], kind: EntryType, size: u64) -> Header {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn archive_of(headers: &[(Header, &[u8])]) -> Vec<u8> {
        let mut b = Builder::new(Vec::new());
        for (h, data) in headers {
            b.append(h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn long_path() -> String {
        format!(
            "{}/{}/{}.txt",
            "d".repeat(70),
            "e".repeat(60),
            "f".repeat(40)
        )
    }

    /// Folders, a directory entry, the root entry, files of several sizes,
    /// a GNU long name, a symlink.
    fn mixed() -> (Vec<u8>, Vec<Read>) {
        let mut b = Builder::new(Vec::new());
        add_dir(&mut b, "./");
        add_dir(&mut b, "a/");
        add_file(&mut b, Header::new_gnu(), "a/b/c.txt", b"hello\n");
        add_file(&mut b, Header::new_gnu(), "empty.txt", b"");
        add_file(&mut b, Header::new_gnu(), "./x/block.bin", &bytes(512, 1));
        add_file(&mut b, Header::new_gnu(), "x/big.bin", &bytes(3000, 2));
        add_file(&mut b, Header::new_gnu(), &long_path(), &bytes(700, 3));
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "link", "a/b/c.txt").unwrap();
        add_file(&mut b, Header::new_gnu(), "last one.txt", &bytes(1, 4));
        let archive = b.into_inner().unwrap();
        let expected = vec![
            other("a", MemberKind::Directory),
            file("a/b/c.txt", b"hello\n"),
            file("empty.txt", b""),
            file("x/block.bin", &bytes(512, 1)),
            file("x/big.bin", &bytes(3000, 2)),
            file(&long_path(), &bytes(700, 3)),
            other(
                "link",
                MemberKind::Other("symbolic link to a/b/c.txt".into()),
            ),
            file("last one.txt", &bytes(1, 4)),
            Read::End,
        ];
        (archive, expected)
    }

    #[test]
    fn reads_a_mixed_gnu_archive_with_every_chunking() {
        let (archive, expected) = mixed();
        assert!(
            archive.windows(13).any(|w| w == b"././@LongLink"),
            "the long name is written as GNU 'L'"
        );
        assert_eq!(read_all(&archive), expected);
    }

    #[test]
    fn without_a_trailer_the_archive_ends_at_a_member_boundary() {
        let (archive, mut expected) = mixed();
        let trimmed = &archive[..archive.len() - 1024];
        expected.pop();
        assert_eq!(read_all(trimmed), expected);
        // One zero block and then the input ends: also accepted.
        assert_eq!(read_all(&archive[..archive.len() - 512]), expected);
    }

    #[test]
    fn a_trailerless_archive_whose_last_member_fills_its_blocks_ends_cleanly() {
        let mut b = Builder::new(Vec::new());
        add_file(&mut b, Header::new_ustar(), "a", &bytes(1024, 9));
        add_file(&mut b, Header::new_ustar(), "b", b"");
        let archive = b.into_inner().unwrap();
        let trimmed = &archive[..archive.len() - 1024];
        // MemberEnd of "b" is still due when the input ends: next(&[]) yields it.
        assert_eq!(
            read_all(trimmed),
            vec![file("a", &bytes(1024, 9)), file("b", b"")]
        );
        let mut r = TarReader::new();
        let (n, e) = r.next(trimmed).unwrap();
        assert!(matches!(e, Some(Event::Member(_))));
        let mut rest = &trimmed[n..];
        while !rest.is_empty() {
            let (n, _) = r.next(rest).unwrap();
            rest = &rest[n..];
        }
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn reads_pax_path_size_and_ignores_other_keys_and_global_headers() {
        let pax_path = format!("{}/ü {}.dat", "p".repeat(120), "q".repeat(90));
        let mut b = Builder::new(Vec::new());
        add_extension(
            &mut b,
            EntryType::XGlobalHeader,
            &record("comment", "ignored"),
        );
        let mut records = record("mtime", "1350244992.023960108");
        records.extend(record("path", &pax_path));
        records.extend(record("atime", "1350244992.023960108"));
        add_extension(&mut b, EntryType::XHeader, &records);
        add_file(&mut b, Header::new_ustar(), "short", &bytes(600, 5));
        // PAX size overrides the header's.
        add_extension(&mut b, EntryType::XHeader, &record("size", "5"));
        let mut h = raw_header(b"sized", EntryType::Regular, 0);
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        b.get_mut().extend_from_slice(b"12345");
        b.get_mut().extend_from_slice(&[0; 507]);
        // A ustar name split into prefix and name.
        let split = format!("{}/{}", "s".repeat(130), "t".repeat(90));
        add_file(&mut b, Header::new_ustar(), &split, b"split");
        let archive = b.into_inner().unwrap();
        let split_at = archive.len() - 1024 - 1024;
        assert_ne!(archive[split_at + 345], 0, "the ustar prefix is used");
        assert_eq!(
            read_all(&archive),
            vec![
                file(&pax_path, &bytes(600, 5)),
                file("sized", b"12345"),
                file(&split, b"split"),
                Read::End,
            ]
        );
    }

    #[test]
    fn gnu_magic_has_no_prefix_field() {
        let mut h = raw_header(b"name", EntryType::Regular, 0);
        h.as_mut_bytes()[257..265].copy_from_slice(b"ustar  \0");
        // GNU keeps atime there; a ustar reader would take it as a prefix.
        h.as_mut_bytes()[345..350].copy_from_slice(b"01234");
        h.set_cksum();
        assert_eq!(read_all(&archive_of(&[(h, b"")]))[0], file("name", b""));
    }

    /// A V7 header (no magic, type NUL) with raw `name` bytes.
    fn v7_header(name: &[u8], size: u64, mode: u32) -> Header {
        let mut h = Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(size);
        h.set_mode(mode);
        h.as_mut_bytes()[156] = 0;
        h.set_cksum();
        h
    }

    #[test]
    fn v7_headers_and_trailing_slash_directories() {
        let h = v7_header(b"old/dir/", 0, 0o755);
        let f = v7_header(b"old/a.txt", 3, 0o644);
        let archive = archive_of(&[(h, b""), (f, b"abc")]);
        assert_eq!(
            read_all(&archive),
            vec![
                other("old/dir", MemberKind::Directory),
                file("old/a.txt", b"abc"),
                Read::End
            ]
        );
    }

    #[test]
    fn other_kinds_are_described() {
        let mut hard = raw_header(b"hard", EntryType::Link, 0);
        hard.set_link_name("a/b").unwrap();
        hard.set_cksum();
        let fifo = raw_header(b"fifo", EntryType::Fifo, 0);
        let chr = raw_header(b"tty", EntryType::Char, 0);
        let blk = raw_header(b"sda", EntryType::Block, 0);
        let sparse = raw_header(b"sparse", EntryType::GNUSparse, 4);
        let contiguous = raw_header(b"cont", EntryType::Continuous, 2);
        let archive = archive_of(&[
            (hard, b""),
            (fifo, b""),
            (chr, b""),
            (blk, b""),
            (sparse, b"abcd"),
            (contiguous, b"xy"),
        ]);
        let sparse = Read::Member(
            Member {
                path: "sparse".into(),
                size: 4,
                kind: MemberKind::Other("sparse file".into()),
            },
            b"abcd".to_vec(),
        );
        assert_eq!(
            read_all(&archive),
            vec![
                other("hard", MemberKind::Other("hard link to a/b".into())),
                other("fifo", MemberKind::Other("FIFO".into())),
                other("tty", MemberKind::Other("character device".into())),
                other("sda", MemberKind::Other("block device".into())),
                sparse,
                file("cont", b"xy"),
                Read::End,
            ]
        );
    }

    #[test]
    fn gnu_long_link_and_pax_sparse() {
        let target = "t/".repeat(80) + "end";
        let mut b = Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "sym", &target).unwrap();
        let mut records = record("GNU.sparse.major", "1");
        records.extend(record("GNU.sparse.minor", "0"));
        records.extend(record("GNU.sparse.name", "real/name.img"));
        records.extend(record("GNU.sparse.realsize", "10000"));
        add_extension(&mut b, EntryType::XHeader, &records);
        add_file(
            &mut b,
            Header::new_ustar(),
            "GNUSparseFile.0/name.img",
            b"map",
        );
        let archive = b.into_inner().unwrap();
        assert!(archive.windows(13).any(|w| w == b"././@LongLink"));
        assert_eq!(
            read_all(&archive),
            vec![
                other(
                    "sym",
                    MemberKind::Other(format!("symbolic link to {target}"))
                ),
                Read::Member(
                    Member {
                        path: "real/name.img".into(),
                        size: 3,
                        kind: MemberKind::Other("sparse file".into())
                    },
                    b"map".to_vec()
                ),
                Read::End,
            ]
        );
    }

    /// A GNU header whose size is base-256 (over 8 GiB).
    fn huge_header(size: u64) -> [u8; 512] {
        let mut h = raw_header(b"huge.bin", EntryType::Regular, 0);
        let field = &mut h.as_mut_bytes()[124..136];
        field.fill(0);
        field[0] = 0x80;
        field[4..12].copy_from_slice(&size.to_be_bytes());
        h.set_cksum();
        *h.as_bytes()
    }

    #[test]
    fn base_256_sizes_over_8_gib() {
        let size = (9u64 << 30) + 12345;
        let mut input = huge_header(size).to_vec();
        input.extend_from_slice(&bytes(1000, 7));
        for chunk in [1, 7, 511, 513, input.len()] {
            let mut r = TarReader::new();
            let mut member = None;
            let mut data = Vec::new();
            for piece in input.chunks(chunk) {
                let mut buf = piece;
                while !buf.is_empty() {
                    let (n, e) = r.next(buf).unwrap();
                    buf = &buf[n..];
                    match e {
                        Some(Event::Member(m)) => member = Some(m),
                        Some(Event::Data(d)) => data.extend_from_slice(d),
                        None => {}
                        Some(e) => panic!("unexpected {e:?}"),
                    }
                }
            }
            let member = member.unwrap();
            assert_eq!(member.size, size);
            assert_eq!(member.path, "huge.bin");
            assert_eq!(data, bytes(1000, 7));
            let e = r.finish().unwrap_err();
            assert!(e.0.contains("archive truncated"), "{e}");
            assert!(e.0.contains(&(size - 1000).to_string()), "{e}");
        }
        // The tar crate's own base-256 encoding agrees.
        let mut h = Header::new_gnu();
        h.set_path("g").unwrap();
        h.set_size(size);
        h.set_cksum();
        assert_eq!(h.as_bytes()[124] & 0x80, 0x80);
        let mut r = TarReader::new();
        match r.next(h.as_bytes()).unwrap() {
            (512, Some(Event::Member(m))) => assert_eq!(m.size, size),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_checksum_names_the_offset_and_the_error_sticks() {
        let mut b = Builder::new(Vec::new());
        add_file(&mut b, Header::new_ustar(), "one", &bytes(600, 1));
        add_file(&mut b, Header::new_ustar(), "two", b"2");
        let mut archive = b.into_inner().unwrap();
        archive[1536] ^= 0x01; // the second header's name
        let e = read_err(&archive);
        assert!(e.0.contains("checksum"), "{e}");
        assert!(e.0.contains("offset 1536"), "{e}");
        let mut r = TarReader::new();
        let mut buf = &archive[..];
        let err = loop {
            match r.next(buf) {
                Ok((n, _)) => buf = &buf[n..],
                Err(e) => break e,
            }
        };
        assert_eq!(err, e);
        assert!(r.next(&archive[2048..]).is_err());
        assert!(r.next(&[]).is_err());
        assert!(r.finish().is_err());
    }

    #[test]
    fn a_signed_checksum_is_accepted() {
        let mut h = raw_header("é".as_bytes(), EntryType::Regular, 0);
        let block = h.as_mut_bytes();
        block[148..156].fill(b' ');
        let signed: i64 = block.iter().map(|&x| i64::from(x as i8)).sum();
        let unsigned: i64 = block.iter().map(|&x| i64::from(x)).sum();
        assert_ne!(signed, unsigned);
        block[148..156].copy_from_slice(format!("{signed:06o}\0 ").as_bytes());
        assert_eq!(read_all(&archive_of(&[(h, b"")]))[0], file("é", b""));
    }

    #[test]
    fn truncated_archives_fail_at_finish() {
        let (archive, _) = mixed();
        // Inside a header, inside the GNU long name, inside data, inside padding.
        let data_start = 512 * 3; // root, "a", then "a/b/c.txt"'s header
        for (cut, what) in [
            (data_start - 100, "header"),
            (data_start + 3, "data"),
            (data_start + 100, "padding"),
        ] {
            let e = read_err(&archive[..cut]);
            assert!(e.0.starts_with("archive truncated"), "{what}: {e}");
            assert!(e.0.contains(what), "{what}: {e}");
        }
        let long = archive
            .windows(13)
            .position(|w| w == b"././@LongLink")
            .unwrap();
        for cut in [long + 512 + 10, long + 1024] {
            let e = read_err(&archive[..cut]);
            assert!(e.0.starts_with("archive truncated"), "{e}");
            assert!(e.0.contains("extended header"), "{e}");
        }
    }

    #[test]
    fn everything_after_the_end_is_ignored() {
        let (mut archive, expected) = mixed();
        archive.extend_from_slice(b"trailing garbage that is not a header");
        archive.extend_from_slice(&[0xff; 2000]);
        assert_eq!(read_all(&archive), expected);
        let mut r = TarReader::new();
        let (n, e) = r.next(&END_OF_ARCHIVE).unwrap();
        assert_eq!((n, e), (1024, Some(Event::End)));
        assert_eq!(r.next(b"junk").unwrap(), (4, None));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn unsafe_or_empty_paths_are_refused() {
        for (name, kind) in [
            (&b"/etc/passwd"[..], EntryType::Regular),
            (b"./../x", EntryType::Regular),
            (b"a/../../x", EntryType::Regular),
            (b"..", EntryType::Directory),
            (b"a/..", EntryType::Regular),
            (b"", EntryType::Regular),
            (b".", EntryType::Regular),
            (b"/", EntryType::Directory),
        ] {
            let archive = archive_of(&[(raw_header(name, kind, 0), b"")]);
            let e = read_err(&archive);
            assert!(e.0.contains("offset 0"), "{e}");
        }
        let e = read_err(&archive_of(&[(
            raw_header(b"\xff\xfe", EntryType::Regular, 0),
            b"",
        )]));
        assert!(e.0.contains("UTF-8"), "{e}");
        // Not refused: ".." inside a name, "./" repeated, the root entry.
        let archive = archive_of(&[
            (raw_header(b".", EntryType::Directory, 0), b""),
            (raw_header(b"././", EntryType::Directory, 0), b""),
            (raw_header(b"a..b/..c", EntryType::Regular, 0), b""),
            (raw_header(b"././d//", EntryType::Directory, 0), b""),
        ]);
        assert_eq!(
            read_all(&archive),
            vec![
                file("a..b/..c", b""),
                other("d", MemberKind::Directory),
                Read::End
            ]
        );
    }

    #[test]
    fn extended_headers_are_bounded_and_checked() {
        let mut h = raw_header(b"PaxHeaders/x", EntryType::XHeader, 0);
        h.set_size((1 << 20) + 1);
        h.set_cksum();
        let e = read_err(h.as_bytes());
        assert!(e.0.contains("extended header"), "{e}");
        let mut h = raw_header(b"././@LongLink", EntryType::GNULongName, 0);
        h.set_size(2 << 20);
        h.set_cksum();
        assert!(read_err(h.as_bytes()).0.contains("extended header"));
        for bad in [
            &b"5 path=x\n"[..],
            b"99 path=x\n",
            b"x path=x\n",
            b"10 pathx\n\n",
        ] {
            let mut b = Builder::new(Vec::new());
            add_extension(&mut b, EntryType::XHeader, bad);
            add_file(&mut b, Header::new_ustar(), "f", b"");
            let e = read_err(&b.into_inner().unwrap());
            assert!(e.0.contains("PAX"), "{e}");
        }
        // An extended header followed by the end of the archive.
        let mut b = Builder::new(Vec::new());
        add_extension(&mut b, EntryType::XHeader, &record("path", "p"));
        assert!(read_err(&b.into_inner().unwrap()).0.contains("zero block"));
    }

    #[test]
    fn a_lone_zero_block_followed_by_a_header_is_refused() {
        let mut archive = vec![0; 512];
        archive.extend_from_slice(raw_header(b"f", EntryType::Regular, 0).as_bytes());
        let e = read_err(&archive);
        assert!(e.0.contains("zero block"), "{e}");
    }
}

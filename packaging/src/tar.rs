//! TAR archives, read while they stream and written member by member.
//!
//! Reading is a pull parser over the bytes as they arrive: the caller
//! hands it whatever it has ([`TarReader::next`]) and gets back how much it
//! consumed and at most one [`Event`]; member data is borrowed from the
//! input, never copied. Headers (ustar, GNU long names, PAX records) are
//! buffered inside, bounded.
//!
//! Writing produces the header block(s) of one member ([`header`]); the
//! caller streams the data after it and then [`padding`] zero bytes, and
//! ends the archive with [`END_OF_ARCHIVE`].

/// What kind of member a header announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// A regular file (types `0`, NUL, `7`).
    File,
    Directory,
    /// Anything else (symlink, hard link, sparse file, device, FIFO…):
    /// what it is, in words, e.g. "symbolic link to a/b" or "sparse file".
    Other(String),
}

/// One member's header, with its long name or PAX path applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's path as stored (a leading `./` removed; directories
    /// without their trailing `/`).
    pub path: String,
    /// Bytes of data that follow the header.
    pub size: u64,
    pub kind: MemberKind,
}

/// What the parser found in the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A member starts; its data follows as `Data` events, then `MemberEnd`.
    Member(Member),
    /// The next bytes of the current member's data.
    Data(&'a [u8]),
    /// The current member's data is complete.
    MemberEnd,
    /// The end-of-archive marker (two zero blocks): nothing after it counts.
    End,
}

/// Why an archive cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TarError(pub String);

/// Bytes in a TAR block.
const BLOCK: usize = 512;

/// The most extended-header data (PAX records, a GNU long name or link)
/// buffered for one member.
const EXTENSION_LIMIT: u64 = 1 << 20;

/// The largest value of a 12-byte octal field (11 digits).
const OCTAL_MAX: u64 = 0o777_7777_7777;

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

#[derive(Debug, Clone, Copy)]
enum Extension {
    Pax,
    LongName,
    LongLink,
}

/// What extended headers say about the member that follows them.
#[derive(Debug, Default)]
struct Pending {
    /// An extended header was read and its member has not come yet.
    any: bool,
    pax_path: Option<String>,
    pax_link: Option<String>,
    pax_size: Option<u64>,
    sparse_name: Option<String>,
    sparse: bool,
    long_name: Option<String>,
    long_link: Option<String>,
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
                let skip = header_size + padding(header_size) as u64;
                self.state = if skip == 0 {
                    State::Header
                } else {
                    State::Skip {
                        remaining: skip,
                        what: "a global extended header",
                    }
                };
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
                let skip = size + padding(size) as u64;
                self.state = if skip == 0 {
                    State::Header
                } else {
                    State::Skip {
                        remaining: skip,
                        what: "the data of the root directory entry",
                    }
                };
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
        let at = self.header_at;
        let data = std::mem::take(&mut self.extension);
        let text = |bytes: &[u8], what: &str| -> Result<String, TarError> {
            let end = bytes.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
            String::from_utf8(bytes[..end].to_vec()).map_err(|_| {
                TarError(format!(
                    "the {what} in the extended header at byte offset {at} is not UTF-8"
                ))
            })
        };
        match kind {
            Extension::LongName => self.pending.long_name = Some(text(&data, "long name")?),
            Extension::LongLink => self.pending.long_link = Some(text(&data, "long link name")?),
            Extension::Pax => parse_pax(&data, at, &mut self.pending)?,
        }
        self.extension = data;
        self.extension.clear();
        Ok(())
    }
}

/// The state after a member or extended header and `pad` bytes of padding.
fn after_padding(pad: u64) -> State {
    if pad == 0 {
        State::Header
    } else {
        State::Skip {
            remaining: pad,
            what: "padding",
        }
    }
}

/// How many of `available` bytes to take when `remaining` are wanted.
fn take(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

/// A NUL-terminated header field (or the whole field when it has no NUL).
fn field_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&x| x == 0).unwrap_or(field.len());
    &field[..end]
}

/// A numeric header field: octal digits (optionally surrounded by spaces
/// and NULs), or GNU base-256 when the first byte's high bit is set.
fn numeric(field: &[u8]) -> Option<u64> {
    let first = *field.first()?;
    if first & 0x80 != 0 {
        if first & 0x40 != 0 {
            return None; // negative
        }
        let mut value = u64::from(first & 0x3f);
        for &byte in &field[1..] {
            if value >> 56 != 0 {
                return None;
            }
            value = value << 8 | u64::from(byte);
        }
        return Some(value);
    }
    let mut digits = field.iter().skip_while(|&&x| x == b' ').peekable();
    let mut value: u64 = 0;
    while let Some(&&d) = digits.peek() {
        if !(b'0'..=b'7').contains(&d) {
            break;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(d - b'0'))?;
        digits.next();
    }
    digits.all(|&x| x == b' ' || x == 0).then_some(value)
}

/// Checks a header block's checksum (the unsigned sum, or the signed sum
/// some old writers used).
fn check_checksum(b: &[u8], at: u64) -> Result<(), TarError> {
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &x) in b.iter().enumerate() {
        let x = if (148..156).contains(&i) { b' ' } else { x };
        unsigned += u64::from(x);
        signed += i64::from(x as i8);
    }
    match numeric(&b[148..156]) {
        Some(stored) if stored == unsigned || i64::try_from(stored).ok() == Some(signed) => Ok(()),
        Some(stored) => Err(TarError(format!(
            "bad header checksum at byte offset {at}: stored {stored}, computed {unsigned}"
        ))),
        None => Err(TarError(format!(
            "bad header checksum at byte offset {at}: the checksum field is not a number"
        ))),
    }
}

/// Reads PAX records `"%d key=value\n"` into `pending`.
fn parse_pax(data: &[u8], at: u64, pending: &mut Pending) -> Result<(), TarError> {
    let bad = |why: &str| {
        TarError(format!(
            "bad PAX extended header at byte offset {at}: {why}"
        ))
    };
    let text = |value: &[u8], key: &str| {
        String::from_utf8(value.to_vec()).map_err(|_| bad(&format!("{key} is not UTF-8")))
    };
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&x| x == 0) {
            break;
        }
        let space = rest
            .iter()
            .position(|&x| x == b' ')
            .ok_or_else(|| bad("a record without a length"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|d| d.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("a record length is not a number"))?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad("a record's length does not match its contents"));
        }
        let record = &rest[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&x| x == b'=')
            .ok_or_else(|| bad("a record without '='"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => {
                pending.pax_path = (!value.is_empty())
                    .then(|| text(value, "path"))
                    .transpose()?
            }
            b"linkpath" => {
                pending.pax_link = (!value.is_empty())
                    .then(|| text(value, "linkpath"))
                    .transpose()?;
            }
            b"size" => {
                pending.pax_size = if value.is_empty() {
                    None
                } else {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .filter(|s| s.bytes().all(|d| d.is_ascii_digit()))
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad("size is not a number"))?;
                    Some(size)
                };
            }
            b"GNU.sparse.name" => {
                pending.sparse = true;
                pending.sparse_name = Some(text(value, "GNU.sparse.name")?);
            }
            k if k.starts_with(b"GNU.sparse.") => pending.sparse = true,
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(())
}

/// The header block(s) of a regular file `path` of `size` bytes, modified
/// at `mtime` (unix seconds): one ustar block, preceded by a PAX extended
/// header when the path or the size does not fit ustar's fields.
///
/// A path that is not plain ASCII also gets a PAX `path` record, so that
/// readers decode it as UTF-8 whatever their locale.
pub fn header(path: &str, size: u64, mtime: u64) -> Vec<u8> {
    let mut records = Vec::new();
    let split = ustar_split(path);
    if split.is_none() || !path.is_ascii() {
        records.extend(pax_record("path", path.as_bytes()));
    }
    let (prefix, name) = split.unwrap_or(("", truncate(path, 100)));
    let size_field = if size > OCTAL_MAX {
        records.extend(pax_record("size", size.to_string().as_bytes()));
        0
    } else {
        size
    };
    let mtime_field = if mtime > OCTAL_MAX {
        records.extend(pax_record("mtime", mtime.to_string().as_bytes()));
        OCTAL_MAX
    } else {
        mtime
    };
    let mut out = Vec::with_capacity(3 * BLOCK);
    if !records.is_empty() {
        let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
        let pax_name = format!("PaxHeaders/{}", truncate(last, 100 - "PaxHeaders/".len()));
        out.extend_from_slice(&ustar_block(
            &pax_name,
            "",
            records.len() as u64,
            mtime_field,
            b'x',
        ));
        out.extend_from_slice(&records);
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    out.extend_from_slice(&ustar_block(name, prefix, size_field, mtime_field, b'0'));
    out
}

/// `path` as ustar's `prefix` and `name` fields, if it fits them.
fn ustar_split(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    path.match_indices('/')
        .map(|(i, _)| i)
        .find(|&i| i > 0 && i <= 155 && path.len() - i - 1 <= 100 && path.len() - i - 1 > 0)
        .map(|i| (&path[..i], &path[i + 1..]))
}

/// The longest front of `s` of at most `max` bytes that ends on a character.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One PAX record, `"%d key=value\n"`, its length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// One ustar header block.
fn ustar_block(name: &str, prefix: &str, size: u64, mtime: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    let put = |b: &mut [u8; BLOCK], at: usize, bytes: &[u8]| {
        b[at..at + bytes.len()].copy_from_slice(bytes)
    };
    put(&mut b, 0, name.as_bytes());
    put(&mut b, 100, b"0000644\0");
    put(&mut b, 108, b"0000000\0");
    put(&mut b, 116, b"0000000\0");
    put(&mut b, 124, format!("{size:011o}\0").as_bytes());
    put(&mut b, 136, format!("{mtime:011o}\0").as_bytes());
    put(&mut b, 148, b"        ");
    b[156] = typeflag;
    put(&mut b, 257, b"ustar\0");
    put(&mut b, 263, b"00");
    put(&mut b, 329, b"0000000\0");
    put(&mut b, 337, b"0000000\0");
    put(&mut b, 345, prefix.as_bytes());
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    put(&mut b, 148, format!("{sum:06o}\0 ").as_bytes());
    b
}

/// Zero bytes after `size` bytes of data, to the next 512-byte block.
pub fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// Two zero blocks: the end of an archive.
pub const END_OF_ARCHIVE: [u8; 1024] = [0; 1024];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ::tar::{Builder, EntryType, Header};
    use std::io;

    /// A member as the reader reported it, with its data joined.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Read {
        Member(Member, Vec<u8>),
        End,
    }

    /// Reads `archive` fed in pieces of `chunk` bytes, as a caller would.
    fn read_chunked(archive: &[u8], chunk: usize) -> Result<Vec<Read>, TarError> {
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

    const CHUNKINGS: [usize; 7] = [1, 7, 511, 512, 513, 4096, usize::MAX];

    /// Reads `archive` with every chunking; all must agree.
    fn read_all(archive: &[u8]) -> Vec<Read> {
        let whole = read_chunked(archive, archive.len()).unwrap();
        for chunk in CHUNKINGS {
            let chunked = read_chunked(archive, chunk.min(archive.len()))
                .unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
            assert_eq!(chunked, whole, "chunk {chunk}");
        }
        whole
    }

    /// The error reading `archive`, the same with every chunking.
    fn read_err(archive: &[u8]) -> TarError {
        let whole = read_chunked(archive, archive.len()).unwrap_err();
        for chunk in CHUNKINGS {
            let e = read_chunked(archive, chunk.min(archive.len())).unwrap_err();
            assert_eq!(e, whole, "chunk {chunk}");
        }
        whole
    }

    fn file(path: &str, data: &[u8]) -> Read {
        Read::Member(
            Member {
                path: path.into(),
                size: data.len() as u64,
                kind: MemberKind::File,
            },
            data.to_vec(),
        )
    }

    fn other(path: &str, kind: MemberKind) -> Read {
        Read::Member(
            Member {
                path: path.into(),
                size: 0,
                kind,
            },
            Vec::new(),
        )
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

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

    #[test]
    fn v7_headers_and_trailing_slash_directories() {
        let mut h = Header::new_old();
        h.as_old_mut().name[..8].copy_from_slice(b"old/dir/");
        h.set_size(0);
        h.set_mode(0o755);
        h.as_mut_bytes()[156] = 0;
        h.set_cksum();
        let mut f = Header::new_old();
        f.as_old_mut().name[..9].copy_from_slice(b"old/a.txt");
        f.set_size(3);
        f.set_mode(0o644);
        f.as_mut_bytes()[156] = 0;
        f.set_cksum();
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
    fn numeric_fields() {
        assert_eq!(numeric(b"00000001750\0"), Some(1000));
        assert_eq!(numeric(b"   1750 \0\0\0\0"), Some(1000));
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(numeric(b"77777777777\0"), Some(OCTAL_MAX));
        assert_eq!(numeric(b"0000001x50\0\0"), None);
        assert_eq!(numeric(b"0000008\0"), None);
        let mut base256 = [0u8; 12];
        base256[0] = 0x80;
        base256[11] = 1;
        assert_eq!(numeric(&base256), Some(1));
        base256[0] = 0xff;
        assert_eq!(numeric(&base256), None, "negative");
        base256 = [0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(numeric(&base256), None, "over 64 bits");
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

    // --- the writer

    fn write_archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, data) in files {
            out.extend(header(path, data.len() as u64, 1_700_000_000));
            out.extend_from_slice(data);
            out.resize(out.len() + padding(data.len() as u64), 0);
        }
        out.extend_from_slice(&END_OF_ARCHIVE);
        out
    }

    fn written_files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("short.txt".into(), bytes(10, 1)),
            (
                format!("{}/{}", "p".repeat(60), "n".repeat(139)),
                bytes(513, 2),
            ),
            (
                format!("{}/{}", "q".repeat(140), "r".repeat(90)),
                bytes(1, 3),
            ),
            ("x".repeat(100), bytes(512, 4)),
            ("Ünïcödé/файл 名前 with space.txt".into(), bytes(1000, 5)),
            (
                format!("{}/{}", "ü".repeat(60), "名".repeat(40)),
                bytes(3, 6),
            ),
            ("empty".into(), Vec::new()),
        ]
    }

    fn written() -> Vec<u8> {
        let files = written_files();
        let refs: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
        write_archive(&refs)
    }

    #[test]
    fn written_archives_read_back_with_the_tar_crate() {
        let archive = written();
        let mut a = ::tar::Archive::new(&archive[..]);
        let mut got = Vec::new();
        for entry in a.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            assert_eq!(entry.header().entry_type(), EntryType::Regular);
            assert_eq!(entry.header().mode().unwrap(), 0o644);
            assert_eq!(entry.header().mtime().unwrap(), 1_700_000_000);
            let mut data = Vec::new();
            io::Read::read_to_end(&mut entry, &mut data).unwrap();
            got.push((path, data));
        }
        assert_eq!(got, written_files());
    }

    #[test]
    fn written_archives_read_back_with_this_reader() {
        let mut expected: Vec<Read> = written_files().iter().map(|(p, d)| file(p, d)).collect();
        expected.push(Read::End);
        assert_eq!(read_all(&written()), expected);
    }

    #[test]
    fn written_archives_read_back_with_python() {
        let Ok(out) = std::process::Command::new("python3")
            .arg("--version")
            .output()
        else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let path =
            std::env::temp_dir().join(format!("packaging-tar-test-{}.tar", std::process::id()));
        std::fs::write(&path, written()).unwrap();
        let out = std::process::Command::new("python3")
            .env("PYTHONIOENCODING", "utf-8")
            .arg("-c")
            .arg(
                "import tarfile,sys; t=tarfile.open(sys.argv[1]); \
                 print(\"\\n\".join(m.name+\" \"+str(m.size) for m in t.getmembers()))",
            )
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected: String = written_files()
            .iter()
            .map(|(p, d)| format!("{p} {}\n", d.len()))
            .collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    }

    #[test]
    fn the_ustar_header_fields() {
        let h = header("dir/file.txt", 1000, 1_700_000_000);
        assert_eq!(h.len(), 512);
        assert_eq!(&h[0..13], b"dir/file.txt\0");
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[108..116], b"0000000\0");
        assert_eq!(&h[116..124], b"0000000\0");
        assert_eq!(&h[124..136], b"00000001750\0");
        assert_eq!(&h[136..148], format!("{:011o}\0", 1_700_000_000).as_bytes());
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert!(h[265..329].iter().all(|&x| x == 0), "uname, gname empty");
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(x)
                }
            })
            .sum();
        assert_eq!(numeric(&h[148..156]), Some(sum));
        assert_eq!(&h[154..156], b"\0 ");
        // The ustar split: the prefix, then the name.
        let path = format!("{}/{}", "a".repeat(150), "b".repeat(100));
        let h = header(&path, 0, 0);
        assert_eq!(h.len(), 512);
        assert_eq!(&h[345..495], "a".repeat(150).as_bytes());
        assert_eq!(&h[0..100], "b".repeat(100).as_bytes());
    }

    #[test]
    fn sizes_over_8_gib_get_a_pax_size() {
        let size = (8u64 << 30) + 1;
        let h = header("big.bin", size, 0);
        assert_eq!(h.len(), 3 * 512);
        assert_eq!(h[156], b'x');
        assert_eq!(&h[512..512 + 20], b"19 size=8589934593\n\0");
        assert_eq!(&h[1024..1032], b"big.bin\0");
        assert_eq!(numeric(&h[1024 + 124..1024 + 136]), Some(0));
        let mut r = TarReader::new();
        let mut buf = &h[..];
        let mut member = None;
        while !buf.is_empty() {
            let (n, e) = r.next(buf).unwrap();
            buf = &buf[n..];
            if let Some(Event::Member(m)) = e {
                member = Some(m);
            }
        }
        assert_eq!(
            member,
            Some(Member {
                path: "big.bin".into(),
                size,
                kind: MemberKind::File
            })
        );
        let mut a = ::tar::Archive::new(&h[..]);
        let entry = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.size(), size);
        assert_eq!(&*entry.path_bytes(), b"big.bin");
        // Just under the limit: octal, no PAX.
        assert_eq!(header("f", OCTAL_MAX, 0).len(), 512);
        assert_eq!(header("f", OCTAL_MAX + 1, 0).len(), 1536);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in 0..1200 {
            let value = "v".repeat(n);
            let r = pax_record("path", value.as_bytes());
            let s = std::str::from_utf8(&r).unwrap();
            let (len, rest) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "value of {n}");
            assert_eq!(rest, format!("path={value}\n"));
        }
    }

    #[test]
    fn pax_header_names_fit_and_stay_utf8() {
        let path = format!("{}/{}", "dir", "ö".repeat(80));
        let h = header(&path, 1, 0);
        assert_eq!(h[156], b'x');
        let name = field_str(&h[0..100]);
        assert!(name.starts_with(b"PaxHeaders/"));
        assert!(std::str::from_utf8(name).is_ok());
        let name = field_str(&h[1024..1124]);
        assert!(std::str::from_utf8(name).is_ok());
        assert!(name.len() <= 100);
    }
}

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

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

mod extended;
mod fields;
mod read;
#[cfg(test)]
mod testing;
mod write;

pub use read::TarReader;
pub use write::header;

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

/// The largest value of a 12-byte octal field (11 digits).
const OCTAL_MAX: u64 = 0o777_7777_7777;

/// Zero bytes after `size` bytes of data, to the next 512-byte block.
pub fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// Two zero blocks: the end of an archive.
pub const END_OF_ARCHIVE: [u8; 1024] = [0; 1024];

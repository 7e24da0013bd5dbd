//! Extended headers: PAX records (`x`) and GNU long names and links
//! (`L`, `K`), and what they say about the member that follows them (its
//! path, link target and size, or that it is a sparse file).

use super::TarError;

/// The kind of an extended header.
#[derive(Debug, Clone, Copy)]
pub(super) enum Extension {
    Pax,
    LongName,
    LongLink,
}

/// What extended headers say about the member that follows them.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// An extended header was read and its member has not come yet.
    pub(super) any: bool,
    pub(super) pax_path: Option<String>,
    pub(super) pax_link: Option<String>,
    pub(super) pax_size: Option<u64>,
    pub(super) sparse_name: Option<String>,
    pub(super) sparse: bool,
    pub(super) long_name: Option<String>,
    pub(super) long_link: Option<String>,
}

impl Pending {
    /// Takes in the data of an extended header of `kind` that started at
    /// byte offset `at`.
    pub(super) fn apply(&mut self, kind: Extension, data: &[u8], at: u64) -> Result<(), TarError> {
        let text = |bytes: &[u8], what: &str| -> Result<String, TarError> {
            let end = bytes.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
            String::from_utf8(bytes[..end].to_vec()).map_err(|_| {
                TarError(format!(
                    "the {what} in the extended header at byte offset {at} is not UTF-8"
                ))
            })
        };
        match kind {
            Extension::LongName => self.long_name = Some(text(data, "long name")?),
            Extension::LongLink => self.long_link = Some(text(data, "long link name")?),
            Extension::Pax => parse_pax(data, at, self)?,
        }
        Ok(())
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

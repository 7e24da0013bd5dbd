//! The fields of a header block as values: NUL-terminated strings, octal
//! or GNU base-256 numbers, and the checksum that guards the block.

use super::TarError;

/// A NUL-terminated header field (or the whole field when it has no NUL).
pub(super) fn field_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&x| x == 0).unwrap_or(field.len());
    &field[..end]
}

/// A numeric header field: octal digits (optionally surrounded by spaces
/// and NULs), or GNU base-256 when the first byte's high bit is set.
pub(super) fn numeric(field: &[u8]) -> Option<u64> {
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
pub(super) fn check_checksum(b: &[u8], at: u64) -> Result<(), TarError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tar::OCTAL_MAX;

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
}

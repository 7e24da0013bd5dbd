//! Cursors: a position in one client's log, opaque and URL-safe, bound to
//! the client by a MAC, so a client can neither forge a position nor walk
//! another client's feed with its cursor.
//!
//! Layout: base64url (no padding) of the sequence number (8 bytes, big
//! endian) and the first 16 bytes of HMAC-SHA256 over a domain tag, the
//! client id (length-prefixed) and the number: 32 characters.

use crate::FeedError;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::Arc;

/// 128 bits: a forgery needs 2^128 tries, and the cursor stays short.
const TAG_LEN: usize = 16;
const DOMAIN: &[u8] = b"dissemination-feed-cursor/v1";

/// A position in a client's feed: the events after it come next.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Cursor> for String {
    fn from(c: Cursor) -> Self {
        c.0
    }
}

/// The key cursors are signed with.
#[derive(Clone)]
pub(crate) struct CursorKey(Arc<[u8]>);

impl CursorKey {
    pub(crate) fn new(key: &[u8]) -> Self {
        Self(key.into())
    }

    fn mac(&self, client_id: &str, seq: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(&(client_id.len() as u64).to_be_bytes());
        mac.update(client_id.as_bytes());
        mac.update(&seq.to_be_bytes());
        mac
    }

    /// The cursor of position `seq` (0: before every event) for `client_id`.
    pub(crate) fn issue(&self, client_id: &str, seq: u64) -> Cursor {
        let tag = self.mac(client_id, seq).finalize().into_bytes();
        let mut raw = [0u8; 8 + TAG_LEN];
        raw[..8].copy_from_slice(&seq.to_be_bytes());
        raw[8..].copy_from_slice(&tag[..TAG_LEN]);
        Cursor(URL_SAFE_NO_PAD.encode(raw))
    }

    /// The position a cursor names, if it was issued to `client_id`.
    pub(crate) fn open(&self, client_id: &str, cursor: &str) -> Result<u64, FeedError> {
        let raw = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| FeedError::BadCursor("not a cursor of this feed".into()))?;
        if raw.len() != 8 + TAG_LEN {
            return Err(FeedError::BadCursor("not a cursor of this feed".into()));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&raw[..8]);
        let seq = u64::from_be_bytes(seq);
        // Constant time: the comparison does not tell how much of a guess was right.
        self.mac(client_id, seq)
            .verify_truncated_left(&raw[8..])
            .map_err(|_| FeedError::BadCursor("not issued to this client".into()))?;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(b"test cursor key")
    }

    #[test]
    fn a_cursor_round_trips_and_is_url_safe() {
        for seq in [0, 1, 42, u64::MAX] {
            let c = key().issue("client-a", seq);
            assert_eq!(c.as_str().len(), 32);
            assert!(c
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(key().open("client-a", c.as_str()).unwrap(), seq);
        }
    }

    #[test]
    fn a_tampered_cursor_is_refused() {
        let c = key().issue("client-a", 7).0;
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        // Another position with the old tag, and the old position with a changed tag.
        for i in [7, 20] {
            raw[i] ^= 1;
            let forged = URL_SAFE_NO_PAD.encode(&raw);
            assert!(matches!(
                key().open("client-a", &forged),
                Err(FeedError::BadCursor(_))
            ));
            raw[i] ^= 1;
        }
        for bad in ["", "abc", "!!!!", &c[..31], &format!("{c}A")] {
            assert!(
                matches!(key().open("client-a", bad), Err(FeedError::BadCursor(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn another_clients_cursor_or_another_key_is_refused() {
        let c = key().issue("client-a", 7);
        assert!(matches!(
            key().open("client-b", c.as_str()),
            Err(FeedError::BadCursor(_))
        ));
        assert!(matches!(
            CursorKey::new(b"another key").open("client-a", c.as_str()),
            Err(FeedError::BadCursor(_))
        ));
        // The length prefix: ("ab", …) and ("a", "b…") hash different input.
        assert_ne!(key().issue("ab", 1), key().issue("a", 1));
    }
}

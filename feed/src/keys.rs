//! Object keys. Per client: `log/{client}/{seq:020}` (the events, in
//! order), `ids/{client}/{webhookId}` (the canonical sequence number of a
//! message) and `acked/{client}/{webhookId}` (the endpoint took it).
//!
//! Ids are percent-encoded outside `[A-Za-z0-9._-]`, so an id can neither
//! add a path segment (`/`) nor collide with another id's encoding (`%`
//! itself is encoded); a segment of dots only is encoded whole, so no key
//! holds `.` or `..` segments that a proxy could normalise away.

use crate::FeedError;
use std::fmt::Write as _;

/// Digits of a sequence number in its key: lexicographic order is numeric
/// order, which is the order `ListObjectsV2` returns.
const SEQ_DIGITS: usize = 20;

/// The keys of one client.
#[derive(Clone, Debug)]
pub(crate) struct ClientKeys {
    client: String,
    log_prefix: String,
}

impl ClientKeys {
    pub(crate) fn new(client_id: &str) -> Result<Self, FeedError> {
        let client = segment(client_id, "client id")?;
        Ok(Self {
            log_prefix: format!("log/{client}/"),
            client,
        })
    }

    pub(crate) fn log_prefix(&self) -> &str {
        &self.log_prefix
    }

    pub(crate) fn log(&self, seq: u64) -> String {
        format!("{}{seq:0SEQ_DIGITS$}", self.log_prefix)
    }

    /// The sequence number of a key listed under [`Self::log_prefix`].
    pub(crate) fn seq_of(&self, key: &str) -> Option<u64> {
        let digits = key.strip_prefix(&self.log_prefix)?;
        if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    pub(crate) fn ids_prefix(&self) -> String {
        format!("ids/{}/", self.client)
    }

    pub(crate) fn acked_prefix(&self) -> String {
        format!("acked/{}/", self.client)
    }

    pub(crate) fn id(&self, webhook_id: &str) -> Result<String, FeedError> {
        Ok(format!(
            "{}{}",
            self.ids_prefix(),
            segment(webhook_id, "webhook id")?
        ))
    }

    pub(crate) fn acked(&self, webhook_id: &str) -> Result<String, FeedError> {
        Ok(format!(
            "{}{}",
            self.acked_prefix(),
            segment(webhook_id, "webhook id")?
        ))
    }
}

/// One id as one key segment.
pub(crate) fn segment(id: &str, what: &str) -> Result<String, FeedError> {
    if id.is_empty() {
        return Err(FeedError::Invalid(format!("empty {what}")));
    }
    if id.bytes().all(|b| b == b'.') {
        return Ok("%2E".repeat(id.len()));
    }
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn safe_ids_are_kept_and_the_rest_percent_encoded() {
        assert_eq!(segment("client-1_a.b", "id").unwrap(), "client-1_a.b");
        assert_eq!(segment("a/b c", "id").unwrap(), "a%2Fb%20c");
        assert_eq!(segment("50%", "id").unwrap(), "50%25");
        assert_eq!(segment("ä", "id").unwrap(), "%C3%A4");
        assert_eq!(segment("..", "id").unwrap(), "%2E%2E");
        assert!(matches!(segment("", "id"), Err(FeedError::Invalid(_))));
    }

    #[test]
    fn distinct_ids_never_share_a_key_or_prefix() {
        // "a/b" must not land under "a", nor "a%2Fb" on "a/b".
        let ids = ["a", "a/b", "a%2Fb", "a b", "a+b"];
        let prefixes: Vec<String> = ids
            .iter()
            .map(|id| ClientKeys::new(id).unwrap().log_prefix().to_owned())
            .collect();
        for (i, p) in prefixes.iter().enumerate() {
            for (j, q) in prefixes.iter().enumerate() {
                assert!(
                    i == j || !q.starts_with(p.as_str()),
                    "{p} is a prefix of {q}"
                );
            }
        }
    }

    #[test]
    fn log_keys_sort_in_sequence_order_and_parse_back() {
        let keys = ClientKeys::new("client a").unwrap();
        assert_eq!(keys.log(42), "log/client%20a/00000000000000000042");
        assert!(keys.log(9) < keys.log(10));
        assert_eq!(keys.log(u64::MAX).len(), "log/client%20a/".len() + 20);
        assert_eq!(keys.seq_of(&keys.log(123_456)), Some(123_456));
        assert_eq!(keys.seq_of("log/client%20a/0042"), None);
        assert_eq!(keys.seq_of("log/other/00000000000000000042"), None);
        assert_eq!(
            keys.id("msg_1/x").unwrap(),
            "ids/client%20a/msg_1%2Fx".to_owned()
        );
        assert_eq!(keys.acked("m").unwrap(), "acked/client%20a/m");
    }
}

//! Identifiers parsed at the edge: the core never sees raw strings.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a client-supplied identifier or value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("archiveId must be a UUID or a 24-character hex object id")]
    ArchiveId,
    #[error("disseminationId must be 22 base62 characters")]
    DisseminationId,
    #[error("a batchId is 22 base62 characters")]
    BatchId,
    #[error("contract id must be 4 hex characters")]
    ContractId,
    #[error("priority must be an integer from 1 (most urgent) to 100")]
    Priority,
}

/// What every id kept as a checked string has (svix's `string_wrapper!`):
/// `as_str`, `Deref` to `str`, `Display`, and serde through
/// `TryFrom<String>` (so a malformed id never deserializes) and
/// `Into<String>`. The type defines `parse`.
macro_rules! string_id {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// An id the service mints (svix's `create_id_type!`): 22 base62
/// characters encoding a random 128-bit value, from the operating system's
/// CSPRNG; refused with `$error` when malformed.
macro_rules! create_id_type {
    ($(#[$doc:meta])* $name:ident, $error:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const LEN: usize = BASE62_LEN;

            /// A fresh id.
            pub fn generate() -> Self {
                let mut bytes = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                Self(base62(u128::from_be_bytes(bytes)))
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                if s.len() == BASE62_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::$error)
                }
            }
        }

        string_id!($name);
    };
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// 62^22 > 2^128: every 128-bit value has 22 base62 digits.
const BASE62_LEN: usize = 22;

/// `n` in base62, left-padded with '0' to a fixed width.
fn base62(mut n: u128) -> String {
    let mut out = [b'0'; BASE62_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

create_id_type!(
    /// A dissemination's id. It is also the id of the dissemination's workflow.
    DisseminationId,
    DisseminationId
);

create_id_type!(
    /// A batch's id. It is also the id of the batch's workflow, and the
    /// `BatchId` search attribute of its items.
    BatchId,
    BatchId
);

/// An AIP's id in DPS: a UUID (v7 in new data) or a legacy 24-hex object id.
/// Kept in its canonical lowercase form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArchiveId(String);

impl ArchiveId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let is_object_id = s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit());
        // Only the hyphenated 8-4-4-4-12 form: it is the form DPS publishes.
        let is_uuid = s.len() == 36 && uuid::Uuid::try_parse(s).is_ok();
        if is_object_id || is_uuid {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(IdError::ArchiveId)
        }
    }
}

string_id!(ArchiveId);

/// A contract id (the AIP's `accessGroupId`): 4 hex characters, e.g. `2d17`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContractId(String);

impl ContractId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(IdError::ContractId)
        }
    }

    /// The roles that grant read access to this contract's content.
    pub fn grants_read(&self, role: &str) -> bool {
        role.strip_suffix("_R")
            .or_else(|| role.strip_suffix("_W"))
            .is_some_and(|c| c.eq_ignore_ascii_case(&self.0))
    }
}

string_id!(ContractId);

/// The calling system's OAuth client id, taken from its token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// The client id a verified token names.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a delivered object lives in the client's bucket:
/// `dissemination/{disseminationId}/{archiveId}/{path}`, so a dissemination's
/// objects share one prefix and never meet another's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// The key of `path` (a file name or bag member) delivered by `dissemination`.
    pub fn delivered(dissemination: &DisseminationId, archive: &ArchiveId, path: &str) -> Self {
        Self(format!("dissemination/{dissemination}/{archive}/{path}"))
    }

    /// The prefix every object of `dissemination` starts with.
    pub fn prefix_of(dissemination: &DisseminationId, archive: &ArchiveId) -> String {
        Self::delivered(dissemination, archive, "").0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request's priority: 1 (most urgent) to 100; 50 when not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Priority(u8);

impl Priority {
    pub const DEFAULT: Priority = Priority(50);

    pub fn new(p: i64) -> Result<Self, IdError> {
        if (1..=100).contains(&p) {
            Ok(Self(p as u8))
        } else {
            Err(IdError::Priority)
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// Temporal's native priority key, 1 (highest) to 5: twenty values a key.
    pub fn priority_key(self) -> u8 {
        (self.0 - 1) / 20 + 1
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u32> for Priority {
    type Error = IdError;
    fn try_from(p: u32) -> Result<Self, Self::Error> {
        Self::new(i64::from(p))
    }
}

impl From<Priority> for u32 {
    fn from(p: Priority) -> Self {
        u32::from(p.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_22_base62_and_distinct() {
        let a = DisseminationId::generate();
        let b = DisseminationId::generate();
        assert_eq!(a.as_str().len(), 22);
        assert!(DisseminationId::parse(a.as_str()).is_ok());
        assert_ne!(a, b);
        assert_eq!(base62(0), "0000000000000000000000");
        assert_eq!(base62(u128::MAX), "7n42DGM5Tflk9n8mt7Fhc7");
        assert!(BatchId::parse(BatchId::generate().as_str()).is_ok());
    }

    #[test]
    fn dissemination_id_shape() {
        assert!(DisseminationId::parse("8Z7x1T9rN0Xc2B5Yq4L3zP").is_ok());
        for bad in [
            "",
            "short",
            "8Z7x1T9rN0Xc2B5Yq4L3z-",
            "8Z7x1T9rN0Xc2B5Yq4L3zPP",
            "8Z7x1T9rN0Xc2B5Yq4L3zé",
        ] {
            assert_eq!(
                DisseminationId::parse(bad),
                Err(IdError::DisseminationId),
                "{bad}"
            );
            assert_eq!(BatchId::parse(bad), Err(IdError::BatchId), "{bad}");
        }
        // Serde goes through `parse`: a malformed id never deserializes.
        let id: Result<BatchId, _> = serde_json::from_str("\"8Z7x1T9rN0Xc2B5Yq4L3zP\"");
        assert_eq!(
            id.map(String::from).ok().as_deref(),
            Some("8Z7x1T9rN0Xc2B5Yq4L3zP")
        );
        assert!(serde_json::from_str::<BatchId>("\"batch-1\"").is_err());
    }

    #[test]
    fn archive_id_accepts_uuid_and_object_id_only() {
        assert!(ArchiveId::parse("019e404e-60ab-7457-b7c9-94c453242c69").is_ok());
        assert_eq!(
            ArchiveId::parse("019E404E-60AB-7457-B7C9-94C453242C69").map(|a| a.0),
            Ok("019e404e-60ab-7457-b7c9-94c453242c69".to_owned())
        );
        assert!(ArchiveId::parse("5f1b2c3d4e5f6a7b8c9d0e1f").is_ok());
        for bad in [
            "",
            "not-an-id",
            "019e404e60ab7457b7c994c453242c69",
            "{019e404e-60ab-7457-b7c9-94c453242c69}",
            "5f1b2c3d4e5f6a7b8c9d0e1g",
            "019e404e-60ab-7457-b7c9-94c453242c6",
        ] {
            assert_eq!(ArchiveId::parse(bad), Err(IdError::ArchiveId), "{bad}");
        }
    }

    #[test]
    fn priority_range_and_keys() {
        assert_eq!(Priority::new(0), Err(IdError::Priority));
        assert_eq!(Priority::new(101), Err(IdError::Priority));
        assert_eq!(Priority::new(1).map(Priority::priority_key), Ok(1));
        assert_eq!(Priority::new(20).map(Priority::priority_key), Ok(1));
        assert_eq!(Priority::new(21).map(Priority::priority_key), Ok(2));
        assert_eq!(Priority::new(100).map(Priority::priority_key), Ok(5));
    }

    #[test]
    fn contract_roles() {
        let c = ContractId::parse("2d17").expect("valid");
        assert!(c.grants_read("2d17_R"));
        assert!(c.grants_read("2D17_W"));
        assert!(!c.grants_read("2d18_R"));
        assert!(!c.grants_read("2d17"));
        assert!(!c.grants_read("x2d17_R"));
    }
}

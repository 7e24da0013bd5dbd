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
    #[error("contract id must be 4 hex characters")]
    ContractId,
    #[error("priority must be an integer from 1 (most urgent) to 100")]
    Priority,
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A dissemination's id: 22 base62 characters encoding a random 128-bit value.
/// It is also the id of the dissemination's workflow.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisseminationId(String);

impl DisseminationId {
    pub const LEN: usize = 22;

    /// A fresh id from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_u128(u128::from_be_bytes(bytes))
    }

    fn from_u128(mut n: u128) -> Self {
        // 62^22 > 2^128, so every value fits; left-pad with '0' to a fixed width.
        let mut out = [b'0'; Self::LEN];
        for slot in out.iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        Self(out.iter().map(|&b| b as char).collect())
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() == Self::LEN && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::DisseminationId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisseminationId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DisseminationId> for String {
    fn from(id: DisseminationId) -> Self {
        id.0
    }
}

impl fmt::Display for DisseminationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ArchiveId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ArchiveId> for String {
    fn from(id: ArchiveId) -> Self {
        id.0
    }
}

impl fmt::Display for ArchiveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The roles that grant read access to this contract's content.
    pub fn grants_read(&self, role: &str) -> bool {
        role.strip_suffix("_R")
            .or_else(|| role.strip_suffix("_W"))
            .is_some_and(|c| c.eq_ignore_ascii_case(&self.0))
    }
}

impl TryFrom<String> for ContractId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ContractId> for String {
    fn from(id: ContractId) -> Self {
        id.0
    }
}

impl fmt::Display for ContractId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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
        assert_eq!(
            DisseminationId::from_u128(0).as_str(),
            "0000000000000000000000"
        );
        assert_eq!(DisseminationId::from_u128(u128::MAX).as_str().len(), 22);
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
        }
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

//! Types that belong to no single step of a dissemination: identifiers,
//! statuses, the catalog model (as DPS describes an AIP) and configuration.
//! The API and the workers both build on them; nothing here does network I/O.

pub mod catalog;
pub mod config;
pub mod ids;
pub mod presign;
pub mod shutdown;
pub mod status;
pub mod telemetry;
pub mod time;

pub use ids::{ArchiveId, ClientId, ContractId, DisseminationId, IdError, Priority};
pub use status::DisseminationStatus;

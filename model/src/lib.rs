//! What belongs to no single step of a dissemination: identifiers,
//! statuses, timestamps, the catalog model (as DPS describes an AIP) with
//! its folder catalog, and link signing (pure SigV4). The API and the
//! workers both build on them; configuration and telemetry are `platform`'s.

pub mod catalog;
pub mod ids;
pub mod path;
pub mod presign;
pub mod status;
pub mod time;

pub use ids::{
    ArchiveId, BatchId, ClientId, ContractId, DisseminationId, IdError, ObjectKey, Priority,
};
pub use status::DisseminationStatus;

//! What belongs to no single step of a dissemination: identifiers,
//! statuses, the catalog model (as DPS describes an AIP) with its folder
//! catalog, configuration, link signing (pure SigV4), and the process
//! plumbing both binaries share (telemetry set-up and OTLP export, the
//! shutdown signal). The API and the workers both build on them.

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

//! The workflow side of the service: the contract between the API and the
//! workers (input, status view, query and signal names, activity
//! signatures) and the deterministic workflows themselves.
//!
//! The workflows do no I/O: activities are declared with
//! `#[activity_definitions]` so the API can start workflows without
//! compiling the activities' S3 and HTTP clients, and nothing here reads
//! configuration or holds a secret (the settings a workflow needs come in
//! its input).

mod acknowledge;
pub mod activities;
mod audit;
pub mod batch;
pub mod contract;
mod counted;
pub mod dissemination;
mod flow;
pub mod lock;
mod mirror;
mod options;
mod outcome;
mod packaged;
mod plan;
pub mod receipt;
pub mod recovery;
mod retention;
mod staging;
mod state;
mod streaming;
mod webhook;

pub use acknowledge::MAX_ACKNOWLEDGEMENTS;
pub use batch::DisseminationBatch;
pub use contract::*;
pub use dissemination::DisseminationWorkflow;
pub use lock::DisseminationLock;
pub use recovery::WebhookRecovery;
pub use staging::first_tape_copies;

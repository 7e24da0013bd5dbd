//! What every process of the service stands on: its configuration (file,
//! environment, defaults, checks), telemetry (logs, traces and their OTLP
//! export), the connection to Temporal, download-link signing and the
//! shutdown signal.

pub mod config;
pub mod links;
pub mod shutdown;
pub mod telemetry;
pub mod temporal;

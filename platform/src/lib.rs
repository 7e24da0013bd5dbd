//! What every process of the service stands on: its configuration (file,
//! environment, defaults, checks), telemetry (logs, traces and their OTLP
//! export) and the shutdown signal.

pub mod config;
pub mod shutdown;
pub mod telemetry;

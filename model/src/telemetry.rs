//! Tracing set up in one place for every binary.

use crate::config::LogConfig;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Installs the global subscriber: `RUST_LOG` wins over the configured filter.
pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.filter));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if log.format == "json" {
        registry
            .with(fmt::layer().json().with_current_span(true))
            .try_init()
    } else {
        registry.with(fmt::layer()).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}

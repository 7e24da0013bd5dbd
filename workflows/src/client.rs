//! Connecting to Temporal, the same way for the API and the worker.
//!
//! The client carries the SDK's OpenTelemetry plugin: workflow starts,
//! queries, signals and updates become spans, and the W3C trace context
//! travels in Temporal headers to the workflow and every activity (workers
//! built from this client get the plugin's worker interceptors too).

use anyhow::Context;
use model::config::TemporalConfig;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_sdk::opentelemetry::OpenTelemetryPlugin;

pub async fn connect(cfg: &TemporalConfig, identity: &str) -> anyhow::Result<Client> {
    let url = url::Url::parse(&cfg.address)
        .with_context(|| format!("temporal.address {:?}", cfg.address))?;
    let connection = Connection::connect(
        ConnectionOptions::new(url)
            .identity(identity.to_owned())
            .build(),
    )
    .await
    .with_context(|| format!("connecting to Temporal at {}", cfg.address))?;
    Client::new(
        connection,
        ClientOptions::new(cfg.namespace.clone())
            .plugin(OpenTelemetryPlugin::builder().build())
            .build(),
    )
    .context("creating the Temporal client")
}

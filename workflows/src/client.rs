//! Connecting to Temporal, the same way for the API and the worker.

use anyhow::Context;
use model::config::TemporalConfig;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};

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
        ClientOptions::new(cfg.namespace.clone()).build(),
    )
    .context("creating the Temporal client")
}

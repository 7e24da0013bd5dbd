//! Connecting to Temporal, the same way for the API and the worker.
//!
//! Plain gRPC for the embedded default's dev server; TLS (a CA of its own,
//! a client certificate and key for mTLS, a server name override) and an
//! API key (Temporal Cloud) for production, all from `temporal.*`. The
//! connection is bounded by `temporal.connect_timeout_ms`, so a wrong
//! address or certificate fails the start with a message instead of hanging.
//!
//! The client carries the SDK's OpenTelemetry plugin: workflow starts,
//! queries, signals and updates become spans, and the W3C trace context
//! travels in Temporal headers to the workflow and every activity (workers
//! built from this client get the plugin's worker interceptors too).

use crate::config::TemporalConfig;
use anyhow::Context;
use secrecy::ExposeSecret;
use std::time::Duration;
use temporalio_client::{
    Client, ClientOptions, ClientTlsOptions, Connection, ConnectionOptions, TlsOptions,
};
use temporalio_sdk::opentelemetry::OpenTelemetryPlugin;

/// A connection for workers: the SDK's own retries ride out short outages.
pub async fn connect(cfg: &TemporalConfig, identity: &str) -> anyhow::Result<Client> {
    connect_with(cfg, identity, None).await
}

/// A connection for answering requests: a call to a Temporal that is down
/// fails within `temporal.rpc_timeout_ms` (the API answers 503 then)
/// instead of retrying for the SDK's default 10 s.
pub async fn connect_for_requests(cfg: &TemporalConfig, identity: &str) -> anyhow::Result<Client> {
    let retries = temporalio_client::RetryOptions::builder()
        .initial_interval(Duration::from_millis(50))
        .max_interval(Duration::from_millis(300))
        .max_elapsed_time(Some(Duration::from_millis(cfg.rpc_timeout_ms)))
        .max_retries(3)
        .build();
    connect_with(cfg, identity, Some(retries)).await
}

async fn connect_with(
    cfg: &TemporalConfig,
    identity: &str,
    retries: Option<temporalio_client::RetryOptions>,
) -> anyhow::Result<Client> {
    let mut url = url::Url::parse(&cfg.address)
        .with_context(|| format!("temporal.address {:?}", cfg.address))?;
    let tls = tls_options(cfg, &url)?;
    if tls.is_some() && url.scheme() == "http" {
        // The transport applies TLS to https:// targets only.
        let _ = url.set_scheme("https");
    }
    let over = if tls.is_some() { " over TLS" } else { "" };
    let timeout = Duration::from_millis(cfg.connect_timeout_ms);
    let options = ConnectionOptions::new(url.clone())
        .identity(identity.to_owned())
        .maybe_tls_options(tls)
        .maybe_api_key(cfg.api_key.as_ref().map(|k| k.expose_secret().to_owned()))
        .connect_timeout(timeout)
        .retry_options(retries.clone().unwrap_or_default())
        .build();
    // A connection whose calls retry only briefly still gets the whole
    // connect budget at start (a server still starting, a loaded host).
    let deadline = tokio::time::Instant::now() + timeout;
    let attempt = async {
        loop {
            let result = Connection::connect(options.clone()).await;
            let again = retries.is_some()
                && result.is_err()
                && tokio::time::Instant::now() + Duration::from_millis(500) < deadline;
            if !again {
                break result;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let connection = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "connecting to Temporal at {url}{over}: no answer within {} ms",
                cfg.connect_timeout_ms
            )
        })?
        .map_err(|e| {
            let hint = if over.is_empty() {
                ""
            } else {
                " (check temporal.tls_ca_path, temporal.tls_server_name and the client certificate)"
            };
            anyhow::Error::new(e).context(format!("connecting to Temporal at {url}{over}{hint}"))
        })?;
    Client::new(
        connection,
        ClientOptions::new(cfg.namespace.clone())
            .plugin(OpenTelemetryPlugin::builder().build())
            .build(),
    )
    .context("creating the Temporal client")
}

/// TLS settings from `temporal.tls*`; `None` for plain gRPC. On unless
/// `temporal.tls = false` when any TLS key or the API key is set or the
/// address is `https://`.
fn tls_options(cfg: &TemporalConfig, url: &url::Url) -> anyhow::Result<Option<TlsOptions>> {
    let wanted = cfg.tls.unwrap_or(
        url.scheme() == "https"
            || cfg.tls_ca_path.is_some()
            || cfg.tls_cert_path.is_some()
            || cfg.tls_key_path.is_some()
            || cfg.tls_server_name.is_some()
            || cfg.api_key.is_some(),
    );
    if !wanted {
        return Ok(None);
    }
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading temporal.{key} {}", path.display()))
    };
    let ca = cfg
        .tls_ca_path
        .as_deref()
        .map(|p| read("tls_ca_path", p))
        .transpose()?;
    let client = match (&cfg.tls_cert_path, &cfg.tls_key_path) {
        (Some(cert), Some(key)) => Some(
            ClientTlsOptions::builder()
                .client_cert(read("tls_cert_path", cert)?)
                .client_private_key(read("tls_key_path", key)?)
                .build(),
        ),
        (None, None) => None,
        _ => anyhow::bail!("temporal.tls_cert_path and temporal.tls_key_path go together (mTLS)"),
    };
    Ok(Some(
        TlsOptions::builder()
            .maybe_server_root_ca_cert(ca)
            .maybe_domain(cfg.tls_server_name.clone())
            .maybe_client_tls_options(client)
            .build(),
    ))
}

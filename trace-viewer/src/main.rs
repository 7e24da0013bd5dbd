//! The trace viewer of the embedded default. Deployments run Jaeger (see
//! `docker-compose.temporal.yml`); locally and in the tests this process
//! stands in for it: it takes OTLP/gRPC from the API and the worker and
//! serves the Jaeger UI with Jaeger's query API (`/api/services`,
//! `/api/traces?service=…`, `/api/traces/{traceId}`) over an in-memory
//! store bounded in traces and bytes.

use anyhow::Context;
use clap::Parser;
use otlp_embedded::{ui_app, Config, State, TraceServiceImpl, TraceServiceServer};

#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Where the Jaeger UI and query API listen.
    #[arg(long, default_value = "127.0.0.1:16686")]
    ui: String,
    /// Where OTLP/gRPC spans are received.
    #[arg(long, default_value = "127.0.0.1:4317")]
    otlp: String,
    /// Traces kept (oldest dropped first).
    #[arg(long, default_value_t = 2000)]
    max_traces: u32,
    /// Memory the kept traces may use, in MiB.
    #[arg(long, default_value_t = 256)]
    max_memory_mib: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let state = State::new(Config {
        max_length: cli.max_traces,
        max_memory_usage: cli.max_memory_mib << 20,
    });
    let ui = tokio::net::TcpListener::bind(&cli.ui)
        .await
        .with_context(|| format!("binding {}", cli.ui))?;
    let otlp = tokio::net::TcpListener::bind(&cli.otlp)
        .await
        .with_context(|| format!("binding {}", cli.otlp))?;
    println!(
        "trace viewer: UI http://{} , OTLP/gRPC http://{}",
        ui.local_addr()?,
        otlp.local_addr()?
    );
    let ui_server = axum::serve(ui, ui_app(state.clone(), "/"))
        .with_graceful_shutdown(platform::shutdown::signal());
    let otlp_server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(TraceServiceImpl::new(state)))
        .serve_with_incoming_shutdown(tokio_stream_listener(otlp), platform::shutdown::signal());
    tokio::try_join!(async { ui_server.await.context("UI server") }, async {
        otlp_server.await.context("OTLP server")
    },)?;
    Ok(())
}

fn tokio_stream_listener(
    listener: tokio::net::TcpListener,
) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
}

use anyhow::Context;
use clap::Parser;
use std::io::{IsTerminal, Write};
use tape_library::{config::Config, Server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let server = Server::bind(&cfg).await?;
    let url = server.url().context("reading the bound address")?;
    // The server is ready: the line scripts wait for, then the port file.
    let mut out = std::io::stdout();
    writeln!(out, "listening on {url}")?;
    out.flush()?;
    if let Some(file) = &cfg.port_file {
        let port = server.local_addr()?.port();
        // Written whole then renamed: a reader never sees half a number.
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, format!("{port}\n"))
            .and_then(|()| std::fs::rename(&tmp, file))
            .with_context(|| format!("writing --port-file {}", file.display()))?;
    }
    tracing::info!(%url, tape_dir = %cfg.tape_dir.display(), drives = cfg.drives, "tape library ready");
    server.run(platform::shutdown::signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::{path::PathBuf, sync::Arc};

/// The Dissemination Service's HTTP API.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file (environment variables DISSEMINATION_* override it).
    #[arg(long, env = "DISSEMINATION_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Create a local signing key and its JWKS (development), unless present.
    Keygen {
        #[arg(long, default_value = ".data/auth")]
        dir: PathBuf,
    },
    /// Mint an RS256 token for a client and its roles (development).
    MintToken {
        #[arg(long)]
        client_id: String,
        /// Roles, e.g. 2d17_R (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        role: Vec<String>,
        #[arg(long, default_value = ".data/auth/private.pem")]
        key: PathBuf,
        #[arg(long, default_value = "dissemination-dev")]
        kid: String,
        /// `iss`; the embedded default's API checks this one.
        #[arg(long, default_value = platform::config::DEV_ISSUER)]
        issuer: String,
        /// `aud`; the embedded default's API checks this one.
        #[arg(long, default_value = platform::config::DEV_AUDIENCE)]
        audience: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Print the OpenAPI document the API serves at `/openapi.json`.
    Openapi {
        /// The base path routes are mounted under (`api.base_path`).
        #[arg(long, default_value = "")]
        base_path: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let cfg = Arc::new(platform::config::Config::load(cli.config.as_deref())?);
            let _telemetry =
                platform::telemetry::init(&cfg.log, &cfg.telemetry, "dissemination-api");
            let listener = tokio::net::TcpListener::bind(&cfg.api.listen)
                .await
                .with_context(|| format!("binding {}", cfg.api.listen))?;
            let metrics = tokio::net::TcpListener::bind(&cfg.api.metrics_listen)
                .await
                .with_context(|| {
                    format!("binding api.metrics_listen {}", cfg.api.metrics_listen)
                })?;
            let state = api::build_state(cfg).await?;
            // One signal stops both listeners.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let wait = move || {
                let mut stopped = stopped.clone();
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }
            };
            tokio::spawn(async move {
                platform::shutdown::signal().await;
                let _ = stop.send(true);
            });
            tokio::try_join!(
                api::serve_metrics(state.clone(), metrics, wait()),
                api::run(state, listener, wait()),
            )
            .map(|_| ())
        }
        Command::Keygen { dir } => api::auth::dev::ensure_files(&dir),
        Command::Openapi { base_path } => {
            println!("{}", api::openapi::document(&base_path).to_pretty_json()?);
            Ok(())
        }
        Command::MintToken {
            client_id,
            role,
            key,
            kid,
            issuer,
            audience,
            ttl,
        } => {
            let pem = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let spec = api::auth::dev::TokenSpec {
                client_id: &client_id,
                roles: &role,
                issuer: &issuer,
                audience: Some(&audience),
                expires_in: ttl,
                not_before_in: 0,
            };
            println!("{}", api::auth::dev::mint(&pem, &kid, &spec)?);
            Ok(())
        }
    }
}

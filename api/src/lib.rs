//! The Dissemination Service's HTTP API. `run` serves it on a listener
//! until a shutdown signal; tests call the same function on `127.0.0.1:0`.
//! Prometheus metrics are served apart (`serve_metrics`, on
//! `api.metrics_listen`), never on the public listener.

pub mod auth;
pub mod batches;
pub mod disseminations;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod jwks;
pub mod observe;
pub mod openapi;
pub mod pagination;
pub mod queue;
pub mod ratelimit;
pub mod responses;
pub mod settings;
pub mod state;
pub mod temporal;

use anyhow::Context;
use axum::{response::IntoResponse, Router};
use error::{ApiError, ErrorCode};
use model::catalog::FsCatalog;
use platform::config::Config;
use state::AppState;
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// Connects to Temporal and loads the JWKS and catalog.
pub async fn build_state(cfg: Arc<Config>) -> anyhow::Result<AppState> {
    let verifier = auth::Verifier::from_config(&cfg.auth).await?;
    let client = platform::temporal::connect_for_requests(
        &cfg.temporal,
        &format!("dissemination-api@{}", std::process::id()),
    )
    .await?;
    let budget = Duration::from_millis(cfg.temporal.rpc_timeout_ms);
    let feed = {
        use secrecy::ExposeSecret;
        feed::Feed::new(
            &cfg.s3,
            &cfg.events,
            cfg.events.cursor_secret.expose_secret().as_bytes(),
        )
    };
    // The workers create the feed's bucket too; the API only reads it, and
    // a store down at start is a 503 on the feed's routes, not a failed start.
    if let Err(e) = feed.ensure_bucket().await {
        tracing::warn!(error = %e, "the event feed's bucket could not be checked");
    }
    let queue = queue::QueueWatch::start(
        client.clone(),
        cfg.clone(),
        Duration::from_millis(cfg.api.queue_sample_ms.max(100)),
    );
    Ok(AppState {
        feed: Arc::new(feed),
        queue,
        catalog: Arc::new(FsCatalog::new(&cfg.catalog.root)),
        temporal: temporal::Temporal::new(client, budget),
        verifier: Arc::new(verifier),
        limiter: Arc::new(ratelimit::RateLimiter::new(
            cfg.api.rate_limit_per_minute,
            cfg.api.rate_limit_burst,
        )),
        metrics: Arc::new(observe::ApiMetrics::new()?),
        admissions: tokio_util::task::TaskTracker::new(),
        cfg,
    })
}

pub fn router(state: AppState) -> Router {
    let api = disseminations::router()
        .merge(batches::router())
        .merge(events::router())
        .merge(health::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::track,
        ));
    let base = state.cfg.api.base_path.trim_end_matches('/').to_owned();
    let docs = openapi::router(&base);
    let app = if base.is_empty() {
        api
    } else {
        Router::new().nest(&base, api).fallback(fallback)
    };
    app.with_state(state).merge(docs)
}

async fn fallback() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> impl IntoResponse {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

/// The metrics listener's routes: `GET /metrics` and nothing else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(observe::metrics))
        .fallback(fallback)
        .with_state(state)
}

/// Serves `/metrics` until `shutdown` resolves.
pub async fn serve_metrics(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics at http://{addr}/metrics");
    axum::serve(listener, metrics_router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the metrics")
}

/// Serves the API until `shutdown` resolves, then drains in-flight requests.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, base_path = %state.cfg.api.base_path, "API listening");
    let admissions = state.admissions.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the API")?;
    // The requests are answered; what a hung-up client's request started
    // ends before the process does.
    admissions.close();
    admissions.wait().await;
    Ok(())
}

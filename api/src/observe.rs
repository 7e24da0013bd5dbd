//! Per-request span and metrics, and the Prometheus endpoint (served on its
//! own listener, see `serve_metrics`).
//!
//! Every request runs in a server span named after its route template
//! (`POST /v1/disseminations`): the root of the dissemination's trace, whose
//! context the Temporal client plugin carries on to the workflow. Metrics:
//! requests, errors and latency per route, and disseminations by status
//! (counted from Temporal's visibility store, so every API instance reports
//! the same truth; the counts are reused for `api.metrics_count_cache_ms`,
//! so frequent or parallel scrapes do not each query Temporal).

use crate::state::AppState;
use crate::temporal::count_options;
use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use model::status::DisseminationStatus;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::time::{Duration, Instant};
use tracing::{field::Empty, Instrument};

/// The API's metrics, registered once per process.
pub struct ApiMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    by_status: IntGaugeVec,
    count_refreshes: prometheus::IntCounter,
    /// Acknowledgements whose digests differed from the delivered ones.
    ack_mismatches: prometheus::IntCounter,
    /// When the counts were last taken; held across the refresh so parallel
    /// scrapes wait for one refresh instead of each running their own.
    counted_at: tokio::sync::Mutex<Option<Instant>>,
}

impl ApiMetrics {
    /// An acknowledgement named a file whose digest differs.
    pub fn acknowledgement_mismatch(&self) {
        self.ack_mismatches.inc();
    }

    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "dissemination_api_requests_total",
                "HTTP requests by route template, method and status code",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "dissemination_api_request_duration_seconds",
                "HTTP request latency by route template and method",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?;
        let by_status = IntGaugeVec::new(
            Opts::new(
                "dissemination_disseminations",
                "Disseminations by status (Temporal visibility, refreshed at most every api.metrics_count_cache_ms)",
            ),
            &["status"],
        )?;
        let count_refreshes = prometheus::IntCounter::new(
            "dissemination_api_status_count_refreshes_total",
            "Times the disseminations-by-status counts were taken from Temporal",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(by_status.clone()))?;
        let ack_mismatches = prometheus::IntCounter::new(
            "dissemination_acknowledgement_mismatches_total",
            "Acknowledgements in which the receiving archive's SHA-256 of a file differed from the delivered one",
        )?;
        registry.register(Box::new(count_refreshes.clone()))?;
        registry.register(Box::new(ack_mismatches.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            by_status,
            count_refreshes,
            ack_mismatches,
            counted_at: tokio::sync::Mutex::new(None),
        })
    }
}

/// Middleware: the request's span (OpenTelemetry server span, HTTP
/// semantic-convention attributes) and its metrics.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        url.path = %req.uri().path(),
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let m = &state.metrics;
    m.requests
        .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
        .inc();
    m.latency
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let max_age = Duration::from_millis(state.cfg.api.metrics_count_cache_ms);
    {
        let mut counted_at = state.metrics.counted_at.lock().await;
        if counted_at.is_none_or(|t| t.elapsed() >= max_age) {
            count_by_status(&state).await;
            *counted_at = Some(Instant::now());
        }
    }
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.metrics.registry.gather(), &mut body) {
        Ok(()) => ([(header::CONTENT_TYPE, encoder.format_type())], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Sets the by-status gauges from Temporal's visibility counts.
async fn count_by_status(state: &AppState) {
    state.metrics.count_refreshes.inc();
    let counts = futures::future::join_all(DisseminationStatus::ALL.iter().map(|s| {
        let query = format!(
            "WorkflowType = 'DisseminationWorkflow' AND DisseminationStatus = '{}'",
            s.as_str()
        );
        let client = state.temporal.client.clone();
        async move { (s, client.count_workflows(query, count_options()).await) }
    }))
    .await;
    for (status, count) in counts {
        match count {
            Ok(c) => state
                .metrics
                .by_status
                .with_label_values(&[status.as_str()])
                .set(i64::try_from(c.count()).unwrap_or(i64::MAX)),
            Err(e) => tracing::warn!(error = %e, "counting disseminations by status"),
        }
    }
}

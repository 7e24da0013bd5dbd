//! Shared application state: one cheap clone per request.

use crate::{
    auth::Verifier, observe::ApiMetrics, queue::QueueWatch, ratelimit::RateLimiter,
    temporal::Temporal,
};
use feed::Feed;
use model::catalog::Catalog;
use platform::config::Config;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub catalog: Arc<dyn Catalog>,
    pub temporal: Temporal,
    pub verifier: Arc<Verifier>,
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<ApiMetrics>,
    /// The clients' event feed (`GET /v1/events`, recovery).
    pub feed: Arc<Feed>,
    /// Each band's recent throughput (a QUEUED dissemination's estimate).
    pub queue: Arc<QueueWatch>,
    /// Work a request starts that must end even if its client hangs up (a
    /// batch's admission); a graceful shutdown waits for it.
    pub admissions: tokio_util::task::TaskTracker,
}

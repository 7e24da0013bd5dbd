//! Shared application state: one cheap clone per request.

use crate::{auth::Verifier, observe::ApiMetrics, ratelimit::RateLimiter};
use model::catalog::Catalog;
use platform::config::Config;
use std::sync::Arc;
use temporalio_client::Client;

#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub catalog: Arc<dyn Catalog>,
    pub temporal: Client,
    pub verifier: Arc<Verifier>,
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<ApiMetrics>,
}

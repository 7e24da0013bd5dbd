//! Batches on the real stack, by concern: a mixed batch's items checked one
//! by one as single POSTs are, counted as they end and told once in a
//! `dissemination-batch.completed` webhook verified with `standardwebhooks`
//! (`mixed`); cancel (`cancel`); sharing the workers fairly with other
//! clients' requests (`fairness`); a client that hangs up mid-POST
//! (`hangup`); read with no worker running (`reading`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cancel;
mod fairness;
mod hangup;
mod mixed;
mod reading;

use crate::support::TestApp;
use serde_json::Value;
use std::time::Duration;

/// The type of a batch's webhook.
const BATCH_COMPLETED: &str = "dissemination-batch.completed";

/// `n` small AIPs (one TAR each) in the demo contract; their archiveIds.
pub(crate) async fn small_aips(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    worker::demo::seed_small(&app.cfg, prefix, n, 16)
        .await
        .unwrap()
}

/// `POST /v1/dissemination-batches` at `base`: the response as is.
pub(crate) async fn post_batch(
    app: &TestApp,
    base: &str,
    token: &str,
    body: Value,
) -> reqwest::Response {
    app.api_at(base, token).create_batch(body).response().await
}

/// `DELETE /v1/dissemination-batches/{id}` at `base`: the response as is.
pub(crate) async fn delete_batch(
    app: &TestApp,
    base: &str,
    token: &str,
    id: &str,
) -> reqwest::Response {
    app.api_at(base, token).cancel_batch(id).response().await
}

/// Waits (bounded) until the batch at `base` is COMPLETED.
pub(crate) async fn until_completed(
    app: &TestApp,
    base: &str,
    token: &str,
    id: &str,
    timeout: Duration,
) {
    let api = app.api_at(base, token);
    api.until_batch_completed(id, timeout).await;
}

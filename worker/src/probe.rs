//! A baseline for the benchmark: how fast the Temporal server accepts
//! workflow starts from the SDK alone (no HTTP, no auth, no catalog), with
//! the same concurrency as the API's load test.

use futures::StreamExt;
use model::ids::DisseminationId;
use platform::config::Config;
use std::time::Instant;
use temporalio_client::WorkflowStartOptions;
use workflows::{DisseminationLock, LockInput};

/// Starts `count` workflows (`concurrency` at a time) on a queue no worker
/// polls; returns (starts per second, failures).
pub async fn raw_start_rate(
    cfg: &Config,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, usize)> {
    let client = platform::temporal::connect(&cfg.temporal, "start-rate-probe").await?;
    let run = DisseminationId::generate();
    let started = Instant::now();
    let failures = futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            let id = format!("start-rate-probe-{run}-{i}");
            async move {
                let opts = WorkflowStartOptions::new("start-rate-probe", id).build();
                let input = LockInput {
                    dissemination_id: DisseminationId::generate(),
                };
                client
                    .start_workflow(DisseminationLock::run, input, opts)
                    .await
                    .is_err()
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    Ok((count as f64 / started.elapsed().as_secs_f64(), failures))
}

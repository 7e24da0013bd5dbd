//! The batch items' workers: each band's `{prefix}-{band}-batched` queue
//! and each size class's (`{prefix}-small-batched`,
//! `{prefix}-medium-batched`, `{prefix}-large-batched`), polled from a
//! thread of their own whose runtime runs at a lower CPU priority
//! (`worker.batch_nice`). Alone, a batch takes every core it finds; beside
//! single requests, the kernel gives those the CPU first, so a collection
//! slows another client's request down less (P6) without being held to
//! fewer slots when it runs alone (P5).

use super::{telemetry_for, tuner, Pollers};
use activities::Activities;
use anyhow::Context;
use platform::config::Config;
use std::{
    sync::{mpsc, Arc},
    thread::JoinHandle,
};
use temporalio_client::Client;
use temporalio_common::telemetry::metrics::CoreMeter;
use temporalio_sdk::{Runtime, Worker};

type Stop = Box<dyn Fn() + Send>;

/// The running batch items' workers.
pub(crate) struct BatchItems {
    stops: Vec<Stop>,
    thread: JoinHandle<anyhow::Result<()>>,
}

impl BatchItems {
    /// Starts them and returns once every one of their workers is built
    /// (or with the error that kept one from it).
    pub(crate) fn spawn(
        cfg: &Arc<Config>,
        client: &Client,
        acts: &Activities,
        meter: Option<Arc<dyn CoreMeter>>,
    ) -> anyhow::Result<Self> {
        let (cfg, client, acts) = (cfg.clone(), client.clone(), acts.clone());
        let (started_tx, started_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("batch-items".into())
            .spawn(move || {
                let (tokio, runtime, mut workers) = match start(&cfg, &client, &acts, meter) {
                    Ok(started) => started,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let stops = workers
                    .iter()
                    .map(|w| Box::new(w.shutdown_handle()) as Stop)
                    .collect();
                let _ = started_tx.send(Ok(stops));
                // The workers and their Temporal runtime end inside it too.
                tokio.block_on(async move {
                    let _runtime = runtime;
                    let ends = futures::future::join_all(workers.iter_mut().map(|w| w.run()));
                    ends.await
                        .into_iter()
                        .try_for_each(|r| r)
                        .context("a batch items' worker stopped with an error")
                })
            })
            .context("starting the batch items' thread")?;
        let stops = started_rx
            .recv()
            .context("the batch items' thread ended as it started")??;
        Ok(Self { stops, thread })
    }

    /// Stops their polling; running items may finish within the graceful
    /// period.
    pub(crate) fn initiate_shutdown(&self) {
        for stop in &self.stops {
            stop();
        }
    }

    /// Stops them (if not yet) and waits for their workers to end.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.initiate_shutdown();
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the batch items' thread panicked")))
    }
}

/// On the calling thread: its priority lowered by `worker.batch_nice`
/// (Linux keeps a nice value per thread, and the threads it starts, its
/// runtime's and the SDK's, inherit it), a runtime, the Temporal runtime
/// on it, a worker for each band's batch queue, one for the batch items'
/// small AIPs and one for their steps.
fn start(
    cfg: &Config,
    client: &Client,
    acts: &Activities,
    meter: Option<Arc<dyn CoreMeter>>,
) -> anyhow::Result<(tokio::runtime::Runtime, Runtime, Vec<Worker>)> {
    rustix::process::nice(cfg.worker.batch_nice)
        .context("lowering the batch items' CPU priority")?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .thread_name("batch-items")
        .enable_all()
        .build()
        .context("starting the batch items' runtime")?;
    let (runtime, workers) = {
        let _inside = tokio.enter();
        let runtime = Runtime::from_current_tokio(telemetry_for(meter)?)
            .context("starting the batch items' Temporal runtime")?;
        let pollers = Pollers {
            runtime: &runtime,
            client,
            acts,
            cfg,
        };
        // Each band's batch items, and their AIPs of each size class (every
        // band's), on slots of their own: never behind the batch's own
        // terabyte items.
        let mut workers = cfg
            .dissemination_queues()
            .into_iter()
            .filter(|q| q.batched)
            .map(|q| pollers.band(q.name, tuner(q.slots, cfg.worker.batch_local_slots)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        workers.push(pollers.activities(cfg.batched_steps_queue(), cfg.worker.batch_steps_slots)?);
        (runtime, workers)
    };
    Ok((tokio, runtime, workers))
}

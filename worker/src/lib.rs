//! The worker process: `DisseminationWorkflow` and the activities on every
//! priority band's task queue (each band with its own slots, so urgent work
//! never waits behind a full low queue) and the lock workflows on their queue.

mod batch_items;
pub mod demo;
pub mod floor;
pub mod health;
pub mod probe;
pub mod spans;

use activities::{observe::WorkerMetrics, Activities};
use anyhow::Context;
use platform::config::Config;
use std::{future::Future, sync::Arc, time::Duration};
use temporalio_common::telemetry::{
    metrics::CoreMeter, start_prometheus_metric_exporter, PrometheusExporterOptions,
    TelemetryOptions,
};
use temporalio_sdk::{
    runtime::{
        worker_tuner::{FixedSizeSlotSupplier, TunerHolder},
        RuntimeOptions,
    },
    Runtime, Worker, WorkerOptions,
};
use tracing::info;
use workflows::{DisseminationBatch, DisseminationLock, DisseminationWorkflow};

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Slots of a worker on one queue: `activity_slots` bound the transfers in
/// activities of their own (large AIPs: each holds its part buffers),
/// `local_slots` the small AIPs moved inside their workflow task (fewer on
/// a batch's queue: see `worker.batch_local_slots`). Memory stays about
/// activity_slots × (upload_concurrency + 1) × part size, plus local_slots
/// × `worker.local_max_bytes`; the small AIPs' queue's transfers hold at
/// most `worker.small_max_bytes` each, the medium and large AIPs' a large
/// transfer's part buffers: admission is by size class, not only by count.
/// As many workflow tasks as local slots: a task that started never waits
/// for a local slot behind others the worker holds, so the next task the
/// server hands out (urgent first, then by fair share) is the next to move.
pub(crate) fn tuner(activity_slots: usize, local_slots: usize) -> TunerHolder {
    TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(local_slots.max(2)))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(activity_slots))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(local_slots))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build()
}

/// Runs every worker until `shutdown` resolves, then lets running
/// activities finish within the graceful period.
///
/// The returned future is not `Send` (the SDK's workers are not): await it
/// on the thread that owns the runtime.
pub async fn run(cfg: Arc<Config>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let identity = cfg
        .worker
        .identity
        .clone()
        .unwrap_or_else(|| format!("{}@{}", std::process::id(), hostname()));
    // One Prometheus endpoint for the SDK's worker metrics and our own.
    let prometheus = match cfg.worker.metrics_addr {
        Some(addr) => {
            let started = start_prometheus_metric_exporter(
                PrometheusExporterOptions::builder()
                    .socket_addr(addr)
                    .counters_total_suffix(true)
                    .use_seconds_for_durations(true)
                    .unit_suffix(true)
                    .build(),
            )
            .with_context(|| format!("starting the metrics endpoint on {addr}"))?;
            info!(addr = %started.bound_addr, "metrics at http://{}/metrics", started.bound_addr);
            Some(started)
        }
        None => None,
    };
    let meter = prometheus
        .as_ref()
        .map(|p| p.meter.clone() as Arc<dyn CoreMeter>);
    let runtime = Runtime::from_current_tokio(telemetry_for(meter.clone())?)
        .context("starting the Temporal runtime")?;
    let client = platform::temporal::connect(&cfg.temporal, &identity).await?;
    let acts = Activities::new(cfg.clone())?
        .with_metrics(meter.clone().map(WorkerMetrics::new).unwrap_or_default());
    report_locations(&acts).await;
    let health = match cfg.worker.health_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the health endpoint on {addr}"))?;
            info!(addr = %listener.local_addr()?, "probes at /healthz and /readyz");
            let app = health::router(acts.clone());
            Some(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ))
        }
        None => None,
    };
    let mut workers = Vec::new();
    let pollers = Pollers {
        runtime: &runtime,
        client: &client,
        acts: &acts,
        cfg: &cfg,
    };
    // Single requests: each band's queue, and each size class's (every
    // band's, and the most urgent band's own), each with slots of its own,
    // so none waits behind a band's terabyte transfers nor an urgent one
    // behind a less urgent transfer of its class. Batch items have queues
    // and slots of their own (a collection never holds the slots a request
    // starts on), on threads of their own at a lower CPU priority.
    for queue in cfg
        .dissemination_queues()
        .into_iter()
        .filter(|q| !q.batched)
    {
        let slots = tuner(queue.slots, cfg.worker.local_slots);
        workers.push(pollers.band(queue.name, slots)?);
    }
    // The locks of executions before flow 10 run until released; a lock
    // from flow 10 on only has a task if it is held past its start delay,
    // or was started without one: taken here, so none stays in a backlog.
    for queue in [cfg.lock_queue(), cfg.held_lock_queue()] {
        let locks = WorkerOptions::new(queue)
            .register_workflow::<DisseminationLock>()?
            .tuner(tuner(1, 1))
            .build();
        workers.push(Worker::new(&runtime, client.clone(), locks).context("lock worker")?);
    }
    let batches = WorkerOptions::new(cfg.batch_queue())
        .register_workflow::<DisseminationBatch>()?
        .register_workflow::<workflows::WebhookRecovery>()?
        .register_activities(acts.clone())
        .tuner(tuner(2, 2))
        .build();
    workers.push(Worker::new(&runtime, client.clone(), batches).context("batch worker")?);
    // Waiting for tape on slots of its own: a recall holds no transfer slot.
    workers.push(pollers.activities(cfg.staging_queue(), cfg.tape.staging_slots)?);
    // Short steps on slots of their own: a band whose slots all hold long
    // transfers still releases the other disseminations' locks and sends
    // their webhooks (batch items': with the batch queues, below).
    workers.push(pollers.activities(cfg.steps_queue(), cfg.worker.steps_slots)?);

    // Last, so that no error above leaves their thread polling.
    let batch_items = batch_items::BatchItems::spawn(&cfg, &client, &acts, meter)?;
    info!(%identity, bands = cfg.bands.len(), "worker polling");
    let stops: Vec<_> = workers.iter().map(|w| w.shutdown_handle()).collect();
    let mut all = std::pin::pin!(futures::future::join_all(
        workers.iter_mut().map(|w| w.run())
    ));
    let results = tokio::select! {
        results = &mut all => results,
        () = shutdown => {
            info!("shutting down: finishing running tasks");
            for stop in &stops {
                stop();
            }
            batch_items.initiate_shutdown();
            all.await
        }
    };
    let batch_items = batch_items.stop().await;
    if let Some(h) = health {
        h.abort();
    }
    for r in results {
        r.context("worker stopped with an error")?;
    }
    batch_items
}

/// The Temporal runtime's telemetry: the SDK's worker metrics into the
/// process's Prometheus endpoint, if it has one.
fn telemetry_for(meter: Option<Arc<dyn CoreMeter>>) -> anyhow::Result<RuntimeOptions> {
    RuntimeOptions::builder()
        .telemetry_options(TelemetryOptions::builder().maybe_metrics(meter).build())
        .build()
        .map_err(anyhow::Error::msg)
}

/// What the workers of one Temporal runtime share.
pub(crate) struct Pollers<'a> {
    pub runtime: &'a Runtime,
    pub client: &'a temporalio_client::Client,
    pub acts: &'a Activities,
    pub cfg: &'a Config,
}

impl Pollers<'_> {
    /// The worker of one band's queue: dissemination workflows and their
    /// activities, with the queue's slots.
    pub fn band(&self, queue: String, slots: TunerHolder) -> anyhow::Result<Worker> {
        self.worker(queue, slots, true)
    }

    /// The worker of a queue of activities only (tape's `stage` steps, the
    /// short steps), with `slots` of its own.
    pub fn activities(&self, queue: String, slots: usize) -> anyhow::Result<Worker> {
        self.worker(queue, tuner(slots, 1), false)
    }

    fn worker(
        &self,
        queue: String,
        slots: TunerHolder,
        disseminations: bool,
    ) -> anyhow::Result<Worker> {
        let mut opts = WorkerOptions::new(queue.clone());
        if disseminations {
            opts = opts.register_workflow::<DisseminationWorkflow>()?;
        }
        let cfg = &self.cfg.worker;
        let opts = opts
            .register_activities(self.acts.clone())
            .tuner(slots)
            .max_heartbeat_throttle_interval(cfg.heartbeat_throttle())
            // New work arrives on the shared queue (where the server's
            // priority and fairness order it); continuations of workflows
            // this worker runs on its sticky queue. As many polls for the
            // one as for the other: new requests are not starved by them.
            .nonsticky_to_sticky_poll_ratio(1.0)
            .graceful_shutdown_period(cfg.graceful_shutdown())
            .build();
        Worker::new(self.runtime, self.client.clone(), opts)
            .with_context(|| format!("worker for {queue}"))
    }
}

/// At start: a location that cannot be read is an operator's mistake to
/// hear about now, not at the first dissemination (`/readyz` says it too).
async fn report_locations(acts: &Activities) {
    if let Err(e) = acts.ensure_feed().await {
        tracing::error!(error = %e, "the event feed cannot be written yet: webhooks wait for it");
    }
    for (id, why) in acts.check_locations(Duration::from_secs(5)).await {
        tracing::error!(location = %id, problem = %why,
            "repository location cannot be read: its copies will be unreadable");
    }
}

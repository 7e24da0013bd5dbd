//! The benchmark's floor for small AIPs: the minimal workflow the SDK can
//! run for one item — one workflow with one activity that copies the
//! item's bytes with one S3 PUT — on the same Temporal server, S3 and
//! machine as the service. Its items per second are the yardstick P5
//! holds the service's against (`scripts/bench.sh`, BENCH_PARTS=p5).

use activities::s3::S3;
use anyhow::Context;
use futures::StreamExt;
use model::DisseminationId;
use platform::config::Config;
use serde::{Deserialize, Serialize};
use std::{path::PathBuf, sync::Arc, time::Duration, time::Instant};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_common::{protos::temporal::api::enums::v1::EventType, ActivityError};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    activities::ActivityContext, ActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};

/// One item: a file to copy into a bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FloorItem {
    pub path: PathBuf,
    pub bucket: String,
    pub key: String,
}

pub struct FloorActivities {
    s3: S3,
}

#[activities]
impl FloorActivities {
    /// The item's bytes into the bucket, one PUT.
    #[activity(name = "floor_put")]
    pub async fn put(
        self: Arc<Self>,
        _ctx: ActivityContext,
        item: FloorItem,
    ) -> Result<(), ActivityError> {
        let bytes = tokio::fs::read(&item.path).await?;
        self.s3
            .put_small(&item.bucket, &item.key, bytes.into())
            .await?;
        Ok(())
    }
}

#[workflow]
pub struct FloorWorkflow {
    item: FloorItem,
}

#[workflow_methods]
impl FloorWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, item: FloorItem) -> Self {
        Self { item }
    }

    #[run(name = "FloorWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let item = ctx.state(|s| s.item.clone());
        ctx.execute_activity(
            FloorActivities::put,
            item,
            ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60)).build(),
        )
        .await?;
        Ok(())
    }
}

/// What a floor run measured.
pub struct FloorRun {
    pub items_per_sec: f64,
    pub failures: usize,
    /// Events and workflow tasks of one item's history.
    pub events: usize,
    pub workflow_tasks: usize,
}

/// Runs `files.len()` floor workflows (`concurrency` starts at a time) on
/// a worker of `activity_slots` activity slots, from the first start to the
/// last result.
pub async fn run(
    cfg: &Config,
    files: Vec<PathBuf>,
    concurrency: usize,
    activity_slots: usize,
) -> anyhow::Result<FloorRun> {
    let client = platform::temporal::connect(&cfg.temporal, "floor").await?;
    let runtime = Runtime::from_current_tokio(Default::default()).map_err(anyhow::Error::msg)?;
    let run_id = DisseminationId::generate();
    let queue = format!("floor-{run_id}");
    let s3 = S3::new(&cfg.s3);
    let bucket = "floor".to_owned();
    s3.ensure_bucket(&bucket).await?;
    let opts = WorkerOptions::new(queue.clone())
        .register_workflow::<FloorWorkflow>()?
        .register_activities(FloorActivities { s3 })
        .tuner(crate::tuner(activity_slots, 1))
        .build();
    let mut worker = Worker::new(&runtime, client.clone(), opts).context("floor worker")?;
    let stop = worker.shutdown_handle();
    let started = Instant::now();
    let items = files.into_iter().enumerate().map(|(i, path)| {
        let item = FloorItem {
            path,
            bucket: bucket.clone(),
            key: format!("{run_id}/{i}"),
        };
        (format!("floor-{run_id}-{i}"), item)
    });
    let first = format!("floor-{run_id}-0");
    let runs = futures::stream::iter(items)
        .map(|(id, item)| {
            let client = client.clone();
            let queue = queue.clone();
            async move {
                let opts = WorkflowStartOptions::new(queue, id).build();
                let handle = client
                    .start_workflow(FloorWorkflow::run, item, opts)
                    .await?;
                handle
                    .get_result(WorkflowGetResultOptions::default())
                    .await
                    .map_err(anyhow::Error::from)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>();
    let (results, worked) = tokio::join!(
        async {
            let r = runs.await;
            stop();
            r
        },
        worker.run()
    );
    worked.context("floor worker stopped")?;
    let elapsed = started.elapsed().as_secs_f64();
    let failures = results.iter().filter(|r| r.is_err()).count();
    let events = client
        .get_workflow_handle::<FloorWorkflow>(first)
        .fetch_history(Default::default())
        .into_events()
        .await?;
    let workflow_tasks = events
        .iter()
        .filter(|e| e.event_type == EventType::WorkflowTaskCompleted as i32)
        .count();
    Ok(FloorRun {
        items_per_sec: results.len() as f64 / elapsed,
        failures,
        events: events.len(),
        workflow_tasks,
    })
}

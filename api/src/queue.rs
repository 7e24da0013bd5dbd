//! Where a QUEUED dissemination stands (v1.2): how many requests of its
//! queue start before it, and an estimate of when it starts.
//!
//! - `ahead`: the running disseminations of its task queue (its band's,
//!   its band's for batch items, or its size class's: of single requests,
//!   of the most urgent band's single requests or of batch items) not yet
//!   final, of a higher priority or of the same priority and older (the
//!   order the task queue serves them in), less the ones the queue's
//!   workers are moving (its slots times the workers polling it).
//! - `estimatedStart`: from the queue's throughput — items that reached a
//!   final status per second, sampled every `api.queue_sample_ms` over the
//!   last `QUEUE_WINDOW` — the time for `ahead + 1` slots to free up. Each
//!   API replica samples on its own (a few count queries per queue).
//!
//! Both come from Temporal's visibility store, which lags by up to a
//! second or so: they are estimates, and labelled so.

use model::time::Timestamp;
use platform::config::Config;
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};
use temporalio_client::{
    grpc::WorkflowService, tonic, Client, NamespacedClient, WorkflowCountOptions,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::{TaskQueueKind, TaskQueueType},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::DescribeTaskQueueRequest,
};
use workflows::{
    dissemination::{SA_PRIORITY, SA_STATUS},
    QueuePosition,
};

/// The names of the search attributes the queries use.
fn names() -> (&'static str, &'static str) {
    (SA_STATUS.name(), SA_PRIORITY.name())
}

/// How far back the band's throughput is measured.
const QUEUE_WINDOW: Duration = Duration::from_secs(300);

const FINAL: &str = "('DISSEMINATED', 'FAILED', 'REJECTED', 'CANCELLED')";

/// Each band's count of final items over time (this replica's samples).
#[derive(Default)]
pub struct QueueWatch {
    samples: Mutex<HashMap<String, VecDeque<(Instant, u64)>>>,
}

impl QueueWatch {
    /// Samples every band's final count every `every`, for as long as the
    /// process runs.
    pub fn start(client: Client, cfg: Arc<Config>, every: Duration) -> Arc<Self> {
        let watch = Arc::new(Self::default());
        let sampler = watch.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                for queue in cfg.dissemination_queues().into_iter().map(|q| q.name) {
                    let status = names().0;
                    let query = format!("TaskQueue = '{queue}' AND {status} IN {FINAL}");
                    let counted = tokio::time::timeout(
                        every.max(Duration::from_secs(1)),
                        client.count_workflows(query, WorkflowCountOptions::default()),
                    )
                    .await;
                    if let Ok(Ok(c)) = counted {
                        sampler.record(&queue, c.count() as u64, Instant::now());
                    }
                }
            }
        });
        watch
    }

    fn record(&self, queue: &str, finals: u64, at: Instant) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let ring = samples.entry(queue.to_owned()).or_default();
        ring.push_back((at, finals));
        while ring
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > QUEUE_WINDOW)
        {
            ring.pop_front();
        }
    }

    /// Items per second the band finished over the window, if any: from
    /// the last sample before the first finish in the window (an idle start
    /// of the window says nothing of the band's pace) to the last sample.
    fn rate(&self, queue: &str) -> Option<f64> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let ring = samples.get(queue)?;
        let last = ring.back()?;
        let first = ring
            .iter()
            .zip(ring.iter().skip(1))
            .find(|(a, b)| b.1 > a.1)
            .map(|(a, _)| a)?;
        let secs = last.0.duration_since(first.0).as_secs_f64();
        let done = last.1.checked_sub(first.1)?;
        (secs > 0.0 && done > 0).then(|| done as f64 / secs)
    }
}

/// The place of a QUEUED dissemination of `priority` created at
/// `created` on `task_queue` (one of `Config::dissemination_queues`);
/// `None` when Temporal did not answer.
pub async fn position(
    client: &Client,
    cfg: &Config,
    watch: &QueueWatch,
    priority: model::Priority,
    created: &Timestamp,
    task_queue: &str,
) -> Option<QueuePosition> {
    let band = cfg.band_for(priority);
    let slots = cfg
        .dissemination_queues()
        .into_iter()
        .find_map(|q| (q.name == task_queue).then_some(q.slots))
        .unwrap_or(band.slots);
    let priority = priority.get();
    let since = created;
    let (status, prio) = names();
    let query = format!(
        "WorkflowType = '{}' AND ExecutionStatus = 'Running' AND TaskQueue = '{task_queue}' \
         AND {status} = 'QUEUED' AND ({prio} < {priority} OR \
         ({prio} = {priority} AND StartTime < '{since}'))",
        workflows::DISSEMINATION_WORKFLOW
    );
    let (before, workers) = futures::join!(
        client.count_workflows(query, WorkflowCountOptions::default()),
        workers(client, task_queue)
    );
    let before = before.ok()?.count() as u64;
    let capacity = (slots * workers.max(1)) as u64;
    let ahead = before.saturating_sub(capacity);
    let estimated_start = if before < capacity {
        Some(Timestamp::utc(SystemTime::now()))
    } else {
        watch.rate(task_queue).map(|per_sec| {
            let wait = Duration::from_secs_f64((ahead + 1) as f64 / per_sec);
            Timestamp::utc(SystemTime::now() + wait)
        })
    };
    Some(QueuePosition {
        ahead: u32::try_from(ahead).unwrap_or(u32::MAX),
        band: band.name.clone(),
        estimated_start,
    })
}

/// Workers polling the band's activities (1 when Temporal does not say).
async fn workers(client: &Client, task_queue: &str) -> usize {
    let request = DescribeTaskQueueRequest {
        namespace: client.namespace(),
        task_queue: Some(TaskQueue {
            name: task_queue.to_owned(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        }),
        task_queue_type: TaskQueueType::Activity as i32,
        ..Default::default()
    };
    let mut service = client.clone();
    match WorkflowService::describe_task_queue(&mut service, tonic::Request::new(request)).await {
        Ok(r) => {
            let mut identities: Vec<String> = r
                .into_inner()
                .pollers
                .into_iter()
                .map(|p| p.identity)
                .collect();
            identities.sort();
            identities.dedup();
            identities.len().max(1)
        }
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_finals_over_the_window() {
        let watch = QueueWatch::default();
        let t0 = Instant::now();
        assert_eq!(watch.rate("q"), None);
        watch.record("q", 10, t0);
        assert_eq!(watch.rate("q"), None, "one sample is no rate");
        watch.record("q", 10, t0 + Duration::from_secs(5));
        assert_eq!(watch.rate("q"), None, "nothing finished: no rate");
        watch.record("q", 20, t0 + Duration::from_secs(10));
        // From the last idle sample (5 s): 10 in 5 s.
        assert_eq!(watch.rate("q"), Some(2.0));
        watch.record("q", 30, t0 + Duration::from_secs(15));
        assert_eq!(watch.rate("q"), Some(2.0));
        // Samples older than the window fall out.
        watch.record("q", 50, t0 + QUEUE_WINDOW + Duration::from_secs(10));
        assert_eq!(watch.rate("q"), Some(30.0 / QUEUE_WINDOW.as_secs_f64()));
    }
}

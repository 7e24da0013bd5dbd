//! Activity implementations: the one-pass `transfer` (repository → fixity
//! → client's bucket), the delivery steps after it (links, discard) and the
//! webhook. Each holds its clients behind `self: Arc<Self>` and fails with
//! one [`failure::Failure`], converted once into the SDK's error: a fixity
//! mismatch or an unreadable location is final for that copy; I/O errors
//! are retried for the workflow's configured duration.
//!
//! The staged flow's activities (`download`, `verify_fixity`, `upload`,
//! `cleanup_staging`) are no longer implemented: only executions started
//! before one-pass transfers (histories before v4) scheduled them, and such
//! executions must finish on a release that still runs them.

mod attempt;
mod batch;
pub mod delivery;
pub mod digest;
pub mod failure;
mod finish;
pub mod notify;
pub mod observe;
pub mod package;
mod parts;
mod recover;
pub mod repository;
pub mod s3;
pub mod tape;
pub mod transfer;
pub mod webhook;

use observe::WorkerMetrics;
use platform::config::Config;
use repository::Repository;
use s3::S3;
use secrecy::ExposeSecret;
use std::{sync::Arc, time::Duration};
use temporalio_common::ActivityError;
use temporalio_macros::activities;
use temporalio_sdk::activities::ActivityContext;
use workflows::{
    activities::defs, BatchNotifyInput, DeliveredFile, DiscardInput, FinishInput, FinishOutcome,
    ItemTally, NotifyInput, NotifyOutcome, PackageInput, PackageOutcome, PresignInput,
    RecoveryInput, RecoveryOutcome, StageInput, StageOutcome, TransferInput, TransferOutcome,
};

/// The activities the worker registers, with the clients they share.
#[derive(Clone)]
pub struct Activities {
    pub(crate) cfg: Arc<Config>,
    pub(crate) repo: Repository,
    pub(crate) s3: S3,
    pub(crate) http: reqwest::Client,
    pub(crate) metrics: WorkerMetrics,
    /// The clients' event feed (every webhook message, in order).
    pub(crate) feed: Arc<feed::Feed>,
}

impl Activities {
    pub fn new(cfg: Arc<Config>) -> anyhow::Result<Self> {
        let s3 = S3::new(&cfg.s3);
        let repo = Repository::new(&cfg)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(
                cfg.timings.webhook_request_timeout_ms,
            ))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let feed = Arc::new(feed::Feed::new(
            &cfg.s3,
            &cfg.events,
            cfg.events.cursor_secret.expose_secret().as_bytes(),
        ));
        Ok(Self {
            cfg,
            repo,
            s3,
            http,
            metrics: WorkerMetrics::default(),
            feed,
        })
    }

    /// Every configured repository location that cannot be read now:
    /// (location id, what is wrong).
    pub async fn check_locations(&self, timeout: Duration) -> Vec<(String, String)> {
        self.repo.check(timeout).await
    }

    /// The event feed's bucket exists (created when missing).
    pub async fn ensure_feed(&self) -> anyhow::Result<()> {
        self.feed
            .ensure_bucket()
            .await
            .map_err(|e| anyhow::anyhow!("the event feed's bucket: {e}"))
    }

    /// Records the worker's metrics with `metrics` (default: nowhere).
    pub fn with_metrics(mut self, metrics: WorkerMetrics) -> Self {
        self.metrics = metrics;
        self
    }
}

#[activities]
impl Activities {
    #[activity(definition = defs::Transfer)]
    pub async fn transfer(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TransferInput,
    ) -> Result<TransferOutcome, ActivityError> {
        transfer::transfer(&self, &ctx, input).await
    }

    #[activity(definition = defs::Package)]
    pub async fn package(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: PackageInput,
    ) -> Result<PackageOutcome, ActivityError> {
        package::package(&self, &ctx, input).await
    }

    #[activity(definition = defs::Finish)]
    pub async fn finish(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: FinishInput,
    ) -> Result<FinishOutcome, ActivityError> {
        Ok(finish::finish(&self, &ctx, input).await?)
    }

    #[activity(definition = defs::Stage)]
    pub async fn stage(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: StageInput,
    ) -> Result<StageOutcome, ActivityError> {
        Ok(tape::stage::stage(&self, &ctx, input).await?)
    }

    #[activity(definition = defs::Redeliver)]
    pub async fn redeliver(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RecoveryInput,
    ) -> Result<RecoveryOutcome, ActivityError> {
        Ok(recover::redeliver(&self, &ctx, input).await?)
    }

    #[activity(definition = defs::TallyBatch)]
    pub async fn tally_batch(
        self: Arc<Self>,
        ctx: ActivityContext,
        batch_id: String,
    ) -> Result<ItemTally, ActivityError> {
        Ok(batch::tally(&ctx, batch_id).await?)
    }

    #[activity(definition = defs::CancelBatchItems)]
    pub async fn cancel_batch_items(
        self: Arc<Self>,
        ctx: ActivityContext,
        batch_id: String,
    ) -> Result<u32, ActivityError> {
        Ok(batch::cancel_items(&ctx, batch_id).await?)
    }

    #[activity(definition = defs::NotifyBatch)]
    pub async fn notify_batch(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: BatchNotifyInput,
    ) -> Result<(), ActivityError> {
        Ok(notify::notify_batch(&self, &ctx, input).await?)
    }

    #[activity(definition = defs::DiscardDelivery)]
    pub async fn discard_delivery(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DiscardInput,
    ) -> Result<u32, ActivityError> {
        // Past its time limit no one hears the attempt's outcome: it stops
        // there, so nothing is deleted after the record says it failed.
        let left = ctx.info().deadline.map(|deadline| {
            deadline
                .duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        let work = delivery::discard(&self, input);
        Ok(match left {
            Some(left) => tokio::time::timeout(left, work).await.unwrap_or_else(|_| {
                Err(failure::Failure::Transient(
                    "the deletion outlived its time limit".into(),
                ))
            })?,
            None => work.await?,
        })
    }

    #[activity(definition = defs::PresignLinks)]
    pub async fn presign_links(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PresignInput,
    ) -> Result<Vec<DeliveredFile>, ActivityError> {
        Ok(delivery::presign_links(&self, input).await?)
    }

    #[activity(definition = defs::Notify)]
    pub async fn notify(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: NotifyInput,
    ) -> Result<NotifyOutcome, ActivityError> {
        Ok(notify::notify(&self, &ctx, input).await?)
    }
}

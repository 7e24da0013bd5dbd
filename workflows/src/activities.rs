//! The activities' signatures. Implementations live in the `activities`
//! crate; names are explicit so renaming Rust items breaks no history.

use crate::contract::*;
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

pub struct DisseminationActivities;

#[activity_definitions]
impl DisseminationActivities {
    /// One pass from one repository location to the client's bucket:
    /// reads, hashes and uploads parts concurrently; completes the multipart
    /// upload only when the digest matches the stored one (a mismatch is
    /// non-retryable and aborts it). Heartbeats the uploaded parts; a retry
    /// reuses those whose MD5 matches the bytes read again.
    #[activity(name = "transfer")]
    pub fn transfer(input: TransferInput) -> Result<TransferOutcome, ActivityError> {
        unimplemented!()
    }

    /// The whole AIP in one pass per repository file: TARs parsed while
    /// they stream, the selected members (or the files whole) uploaded as
    /// their own objects or as one BagIt bag; nothing completed unless
    /// the file's digest matched. A refused copy names the file (the
    /// workflow chooses its next location); heartbeats carry progress.
    #[activity(name = "package")]
    pub fn package(input: PackageInput) -> Result<PackageOutcome, ActivityError> {
        unimplemented!()
    }

    /// Deletes whatever part of a delivery reached the client's bucket.
    #[activity(name = "discard_delivery")]
    pub fn discard_delivery(input: DiscardInput) -> Result<u32, ActivityError> {
        unimplemented!()
    }

    /// New presigned links (new expiry) for objects already in the bucket:
    /// nothing is downloaded or uploaded again.
    #[activity(name = "presign_links")]
    pub fn presign_links(input: PresignInput) -> Result<Vec<DeliveredFile>, ActivityError> {
        unimplemented!()
    }

    /// Once the final status is recorded: releases the in-progress lock,
    /// then makes the webhook's first attempt, whatever the endpoint says.
    #[activity(name = "finish")]
    pub fn finish(input: FinishInput) -> Result<FinishOutcome, ActivityError> {
        unimplemented!()
    }

    /// Brings tape copies online (flow 11 on): their locality asked
    /// first, the nearline ones staged in bulk requests and polled until
    /// each is online, failed or past the deadline; heartbeats its requests
    /// (a retry finds them again) and its progress. A batch's groups name
    /// their item, signalled (`tape_ready`) as soon as its files settle.
    /// Cancelled: its requests are cancelled and deleted.
    #[activity(name = "stage")]
    pub fn stage(input: StageInput) -> Result<StageOutcome, ActivityError> {
        unimplemented!()
    }

    /// Sends again the client's events since a time that its endpoint
    /// did not take (same `webhook-id`), marking the ones it now takes.
    #[activity(name = "redeliver")]
    pub fn redeliver(input: RecoveryInput) -> Result<RecoveryOutcome, ActivityError> {
        unimplemented!()
    }

    /// How a batch's items stand in the visibility store.
    #[activity(name = "tally_batch")]
    pub fn tally_batch(batch_id: String) -> Result<ItemTally, ActivityError> {
        unimplemented!()
    }

    /// Requests the cancellation of a batch's items not final yet.
    #[activity(name = "cancel_batch_items")]
    pub fn cancel_batch_items(batch_id: String) -> Result<u32, ActivityError> {
        unimplemented!()
    }

    /// Posts the signed `dissemination-batch.completed` message.
    #[activity(name = "notify_batch")]
    pub fn notify_batch(input: BatchNotifyInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Posts a signed Standard Webhooks message to the client's endpoint.
    #[activity(name = "notify")]
    pub fn notify(input: NotifyInput) -> Result<NotifyOutcome, ActivityError> {
        unimplemented!()
    }
}

/// The activities' marker types, for `#[activity(definition = …)]` in the
/// implementing crate.
pub mod defs {
    pub use super::dissemination_activities::*;
}

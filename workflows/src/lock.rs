//! One running `DisseminationLock` per (client, AIP) while a dissemination
//! of that AIP for that client is in progress. Temporal's workflow-id
//! uniqueness makes the duplicate check race-free: starting a second lock
//! with the same id fails. The dissemination releases it by signal when it
//! reaches a final status.

use crate::contract::LockInput;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

#[workflow]
pub struct DisseminationLock {
    holder: String,
    released: bool,
}

#[workflow_methods]
impl DisseminationLock {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: LockInput) -> Self {
        Self {
            holder: input.dissemination_id.to_string(),
            released: false,
        }
    }

    #[run(name = "DisseminationLock")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        ctx.wait_condition(|s| s.released).await?;
        Ok(ctx.state(|s| s.holder.clone()))
    }

    #[signal(name = "release")]
    pub fn release(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.released = true;
    }

    #[query(name = "holder")]
    pub fn holder(&self, _ctx: &WorkflowContextView) -> String {
        self.holder.clone()
    }
}

/// The lock's workflow id for a client and an AIP.
pub fn lock_id(client_id: &str, archive_id: &str) -> String {
    format!("lock:{client_id}:{archive_id}")
}

//! The API's Temporal round trips: start a dissemination behind its
//! per-(client, AIP) lock (`start`), read a dissemination's view (`read`:
//! describe + memo, no worker needed), list, regenerate links, cancel and
//! read the audit trail. Every call is bounded: while Temporal is down,
//! clients get a 503 at once.

pub mod batch;
mod read;
mod start;

pub use read::Described;
pub use start::{start, Existing, StartOutcome, StartRequest};

use crate::error::{ApiError, ErrorCode};
use model::DisseminationId;
use std::time::Duration;
use temporalio_client::{
    Client, NamespacedClient, RpcOptions, WorkflowDescribeOptions, WorkflowQueryOptions,
};
use workflows::{DisseminationView, DisseminationWorkflow, MEMO_VIEW};

/// The API's connection to Temporal, with the budget its calls answer in.
#[derive(Clone)]
pub struct Temporal {
    pub client: Client,
    /// Every call to Temporal answers within this (`temporal.rpc_timeout_ms`):
    /// while it is down, clients get a 503 with `Retry-After` at once, not
    /// after the SDK's own retries.
    pub budget: Duration,
}

impl Temporal {
    pub fn new(client: Client, budget: Duration) -> Self {
        Self { client, budget }
    }

    /// `call`, or 503 when Temporal does not answer within the budget.
    pub(crate) async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        within(self.budget, call).await
    }

    pub(crate) fn describe_options(&self) -> WorkflowDescribeOptions {
        describe_options_within(self.budget)
    }

    /// The dissemination's view from describe alone (see `read::read_view`);
    /// `None`: no such workflow.
    pub async fn read_view(
        &self,
        id: &DisseminationId,
    ) -> Result<Option<DisseminationView>, ApiError> {
        BUDGET
            .scope(self.budget, read::read_view(&self.client, id))
            .await
    }

    /// `read_view`, with the task queue the workflow runs on.
    pub async fn read_view_and_queue(
        &self,
        id: &DisseminationId,
    ) -> Result<Option<(DisseminationView, String)>, ApiError> {
        BUDGET
            .scope(self.budget, read::read_view_and_queue(&self.client, id))
            .await
    }

    /// Describes a dissemination's workflow; `None` when there is none.
    pub async fn describe(&self, id: &DisseminationId) -> Result<Option<Described>, ApiError> {
        BUDGET
            .scope(self.budget, read::describe(&self.client, id))
            .await
    }
}

tokio::task_local! {
    /// The budget of the `Temporal` a call of `read.rs` is made for: its
    /// functions take a `Client` and call `bounded()` and
    /// `describe_options()` with no budget, so `Temporal::read_view` and
    /// `Temporal::describe` set it around them (per call, not per process).
    static BUDGET: Duration;
}

/// The budget `read.rs` calls run in (the default outside a `Temporal` call).
fn scoped_budget() -> Duration {
    BUDGET.try_with(|b| *b).unwrap_or_else(|_| {
        Duration::from_millis(platform::config::TemporalConfig::default().rpc_timeout_ms)
    })
}

/// `Temporal::bounded` for `read.rs`, with the budget of the call it is in.
pub(crate) async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    within(scoped_budget(), call).await
}

/// `Temporal::describe_options` for `read.rs`, with the budget of the call it is in.
pub(crate) fn describe_options() -> WorkflowDescribeOptions {
    describe_options_within(scoped_budget())
}

async fn within<T>(
    budget: Duration,
    call: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(budget, call)
        .await
        .unwrap_or_else(|_| Err(ApiError::unavailable("Temporal", "no answer in time")))
}

fn describe_options_within(budget: Duration) -> WorkflowDescribeOptions {
    WorkflowDescribeOptions::builder()
        .rpc_options(RpcOptions::builder().timeout(budget).build())
        .build()
}

/// `call` until it is answered, at most `tries` times (at least once): a
/// dependency that did not answer (503) is asked again after a pause that
/// doubles from 250 ms. Only for calls that are safe to repeat.
pub(crate) async fn persist<T, F, Fut>(tries: usize, mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut pause = Duration::from_millis(250);
    for _ in 1..tries {
        match call().await {
            Err(e) if e.code == ErrorCode::ServiceUnavailable => {
                tracing::debug!(error = %e.message, "asking again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            answered => return answered,
        }
    }
    call().await
}

/// Temporal's visibility queries take string literals: escape what could end one.
pub(crate) fn literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// One page of the caller's disseminations, newest first, from the
/// visibility store (eventually consistent: a dissemination created a moment
/// ago may appear a moment later).
pub async fn list_views(
    temporal: &Temporal,
    query: String,
    page_size: i32,
    cursor: Vec<u8>,
) -> Result<(Vec<DisseminationView>, Vec<u8>), ApiError> {
    list_memos(temporal, query, page_size, cursor, MEMO_VIEW).await
}

/// One page of workflows from the visibility store, each as the value its
/// memo keeps under `memo_key`.
pub async fn list_memos<T: serde::de::DeserializeOwned>(
    temporal: &Temporal,
    query: String,
    page_size: i32,
    cursor: Vec<u8>,
    memo_key: &str,
) -> Result<(Vec<T>, Vec<u8>), ApiError> {
    use temporalio_common::protos::temporal::api::workflowservice::v1::ListWorkflowExecutionsRequest;
    let client = &temporal.client;
    let request = ListWorkflowExecutionsRequest {
        namespace: client.namespace(),
        page_size,
        next_page_token: cursor,
        query,
    };
    let mut service = client.connection().workflow_service();
    let had_cursor = !request.next_page_token.is_empty();
    let probe = ListWorkflowExecutionsRequest {
        next_page_token: Vec::new(),
        page_size: 1,
        ..request.clone()
    };
    let response = match service
        .list_workflow_executions(temporalio_client::tonic::Request::new(request))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => {
            // The server rejects a forged or stale page token with a
            // generic error: if the same query without it works, the
            // client's cursor was at fault.
            let cursor_fault = had_cursor
                && service
                    .list_workflow_executions(temporalio_client::tonic::Request::new(probe))
                    .await
                    .is_ok();
            return Err(
                if cursor_fault || status.code() == temporalio_client::tonic::Code::InvalidArgument
                {
                    ApiError::new(
                        ErrorCode::InvalidCursor,
                        "the cursor is not valid (or has expired)",
                    )
                } else {
                    ApiError::unavailable("Temporal", status)
                },
            );
        }
    };
    let views = response
        .executions
        .iter()
        .filter_map(|e| e.memo.as_ref()?.fields.get(memo_key))
        .filter_map(|payload| serde_json::from_slice::<T>(&payload.data).ok())
        .collect();
    Ok((views, response.next_page_token))
}

/// The dissemination's workflow and the options of an update on it
/// answered within `timeout`.
fn for_update(
    temporal: &Temporal,
    id: &DisseminationId,
    timeout: Duration,
) -> (
    temporalio_client::WorkflowHandle<temporalio_client::Client, DisseminationWorkflow>,
    temporalio_client::WorkflowExecuteUpdateOptions,
) {
    let handle = temporal
        .client
        .get_workflow_handle::<DisseminationWorkflow>(id.to_string());
    let opts = temporalio_client::WorkflowExecuteUpdateOptions::builder()
        .rpc_options(RpcOptions::builder().timeout(timeout).build())
        .build();
    (handle, opts)
}

/// Asks the workflow for new download links (an update: the workflow runs
/// the presigning step and records it).
pub async fn regenerate_links(
    temporal: &Temporal,
    id: &DisseminationId,
    timeout: Duration,
) -> Result<DisseminationView, temporalio_client::errors::WorkflowUpdateError> {
    let (handle, opts) = for_update(temporal, id, timeout);
    handle
        .execute_update(DisseminationWorkflow::regenerate_links, (), opts)
        .await
}

/// The client's acknowledgement, checked and recorded by the workflow.
pub async fn acknowledge(
    temporal: &Temporal,
    id: &DisseminationId,
    ack: workflows::Acknowledgement,
    timeout: Duration,
) -> Result<workflows::AcknowledgementOutcome, temporalio_client::errors::WorkflowUpdateError> {
    let (handle, opts) = for_update(temporal, id, timeout);
    handle
        .execute_update(DisseminationWorkflow::acknowledge, ack, opts)
        .await
}

/// Requests cancellation: the workflow stops the running step, removes
/// what it left behind and ends CANCELLED.
pub async fn cancel(
    temporal: &Temporal,
    id: &DisseminationId,
    reason: &str,
) -> Result<(), temporalio_client::errors::WorkflowInteractionError> {
    let handle = temporal
        .client
        .get_workflow_handle::<DisseminationWorkflow>(id.to_string());
    let opts = temporalio_client::WorkflowCancelOptions::builder()
        .reason(reason)
        .build();
    handle.cancel(opts).await
}

/// The dissemination's audit trail, from the workflow (a worker must answer).
pub async fn read_events(
    temporal: &Temporal,
    id: &DisseminationId,
    query_timeout: Duration,
) -> Result<Vec<workflows::DisseminationEvent>, ApiError> {
    let handle = temporal
        .client
        .get_workflow_handle::<DisseminationWorkflow>(id.to_string());
    let opts = query_options(query_timeout);
    handle
        .query(DisseminationWorkflow::events, (), opts)
        .await
        .map_err(|e| ApiError::unavailable("the workers", e))
}

/// Queries time out quickly: with no worker polling, one would hang ~30 s.
/// Counting in the visibility store (readiness, metrics): bounded at 2 s.
pub fn count_options() -> temporalio_client::WorkflowCountOptions {
    temporalio_client::WorkflowCountOptions::builder()
        .rpc_options(
            RpcOptions::builder()
                .timeout(Duration::from_secs(2))
                .build(),
        )
        .build()
}

pub(crate) fn query_options(timeout: Duration) -> WorkflowQueryOptions {
    WorkflowQueryOptions::builder()
        .rpc_options(RpcOptions::builder().timeout(timeout).build())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn read_calls_answer_within_the_budget_of_their_call() {
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, ApiError>(())
        };
        let (short, long) = (Duration::from_millis(20), Duration::from_secs(30));
        let started = std::time::Instant::now();
        // Two calls at once, each with its own budget.
        let (a, b) = tokio::join!(
            BUDGET.scope(short, bounded(slow())),
            BUDGET.scope(long, async { Ok::<_, ApiError>(scoped_budget()) }),
        );
        assert_eq!(
            a.map_err(|e| e.code).err(),
            Some(ErrorCode::ServiceUnavailable)
        );
        assert_eq!(b.ok(), Some(long));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(scoped_budget(), Duration::from_millis(1_500), "the default");
    }

    #[tokio::test]
    async fn persist_asks_again_only_what_did_not_answer() {
        let calls = AtomicUsize::new(0);
        let unanswered = || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(ApiError::unavailable("Temporal", "no answer in time"))
        };
        let e = persist(3, unanswered).await.expect_err("never answered");
        assert_eq!(e.code, ErrorCode::ServiceUnavailable);
        assert_eq!(calls.swap(0, Ordering::Relaxed), 3);

        // A refusal is an answer: not asked again.
        let refused = || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(ApiError::new(ErrorCode::ArchiveNotFound, "no such AIP"))
        };
        assert_eq!(
            persist(3, refused).await.expect_err("refused").code,
            ErrorCode::ArchiveNotFound
        );
        assert_eq!(calls.swap(0, Ordering::Relaxed), 1);

        // Answered on the second try; zero tries still asks once.
        let second = || async {
            match calls.fetch_add(1, Ordering::Relaxed) {
                0 => Err(ApiError::unavailable("the catalog", "connection refused")),
                n => Ok(n),
            }
        };
        assert_eq!(persist(3, second).await.expect("the second try"), 1);
        calls.store(5, Ordering::Relaxed);
        assert_eq!(persist(0, second).await.expect("one try"), 5);
    }
}

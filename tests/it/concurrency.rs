//! The duplicate check holds under concurrency: Temporal's workflow-id
//! uniqueness, not an eventually consistent visibility query.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{Options, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};
use worker::demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_posts_create_exactly_one_dissemination() {
    // No worker: the first dissemination stays in progress for the whole test.
    let app = TestApp::start_with(Options::without_worker()).await;
    let api = app.api(&app.client_token());
    let posts = (0..50).map(|_| {
        let api = api.clone();
        tokio::spawn(async move {
            let body = json!({"archiveId": demo::DEMO_TWO_FILES});
            api.create(body).answer().await
        })
    });
    let answers: Vec<_> = futures::future::join_all(posts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();

    let created: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(created.len(), 1, "{statuses:?}");
    let others: Vec<_> = answers
        .iter()
        .filter(|a| a.status != 201 && a.status != 409)
        .collect();
    assert!(others.is_empty(), "neither 201 nor 409: {others:?}");
    let id = created[0].created().dissemination_id;
    let conflicts: Vec<_> = answers.iter().filter(|a| a.status == 409).collect();
    assert_eq!(conflicts.len(), 49);
    for conflict in conflicts {
        let refused = conflict.refused(409, "DISSEMINATION_IN_PROGRESS", "a second POST");
        assert_eq!(refused.dissemination_id.as_deref(), Some(id.as_str()));
        assert_eq!(
            refused.location.as_deref(),
            Some(format!("/v1/disseminations/{id}").as_str())
        );
    }

    // Exactly one dissemination workflow exists for the AIP.
    assert_eq!(dissemination_workflows(&app, demo::DEMO_TWO_FILES).await, 1);
}

/// How many dissemination workflows of the AIP Temporal knows (asked
/// until it knows one, bounded: its visibility store is eventually
/// consistent).
pub(crate) async fn dissemination_workflows(app: &TestApp, archive_id: &str) -> usize {
    let client = app.stack_client().await;
    let query = format!("WorkflowType = 'DisseminationWorkflow' AND ArchiveId = '{archive_id}'");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = client
            .count_workflows(query.clone(), Default::default())
            .await
            .unwrap()
            .count();
        if count >= 1 || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

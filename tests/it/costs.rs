//! What a dissemination costs Temporal, and small AIPs many at once: every
//! event and workflow task is a persistence write (and a billed action on
//! Temporal Cloud). A small AIP's whole life, lock included, stays within
//! 25 events and 4 workflow tasks; two hundred at once are each delivered
//! exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{Options, TestApp, CLIENT};
use futures::StreamExt;
use std::time::{Duration, Instant};
use temporalio_client::WorkflowExecutionStatus;
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use worker::demo;
use workflows::{DisseminationLock, DisseminationWorkflow};

/// The event types of a workflow's history (every run of the id).
async fn history_of(app: &TestApp, workflow_id: &str, lock: bool) -> Vec<EventType> {
    let client = app.stack_client().await;
    let events = if lock {
        client
            .get_workflow_handle::<DisseminationLock>(workflow_id.to_owned())
            .fetch_history(Default::default())
            .into_events()
            .await
    } else {
        client
            .get_workflow_handle::<DisseminationWorkflow>(workflow_id.to_owned())
            .fetch_history(Default::default())
            .into_events()
            .await
    };
    events
        .unwrap()
        .iter()
        .map(|e| EventType::try_from(e.event_type).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_dissemination_costs_at_most_25_events_and_4_workflow_tasks_lock_included() {
    let app = TestApp::start_with(Options {
        retention_secs: 2,
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let (id, _) = app
        .create_until(&token, demo::DEMO_SINGLE, "DISSEMINATED")
        .await;
    app.assert_every_link_delivers(&token, &id).await;
    // Its whole life: the retention's end deletes the objects and the
    // workflow completes.
    let client = app.stack_client().await;
    let handle = client.get_workflow_handle::<DisseminationWorkflow>(id.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let desc = handle.describe(Default::default()).await.unwrap();
        if desc.status() == WorkflowExecutionStatus::Completed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dissemination never completed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let view = app.api(&token).view(&id).await;
    assert!(view.objects_deleted, "{view:?}");
    let own = history_of(&app, &id, false).await;
    let lock_id = workflows::lock::lock_id(CLIENT, demo::DEMO_SINGLE);
    let lock = history_of(&app, &lock_id, true).await;
    let tasks = own
        .iter()
        .filter(|t| **t == EventType::WorkflowTaskCompleted)
        .count()
        + lock
            .iter()
            .filter(|t| **t == EventType::WorkflowTaskCompleted)
            .count();
    let total = own.len() + lock.len();
    println!(
        "a small dissemination's whole life: {total} events ({} + lock {}), {tasks} workflow tasks: {own:?} + {lock:?}",
        own.len(),
        lock.len()
    );
    assert!(total <= 25, "{total} events: {own:?} + lock {lock:?}");
    assert!(tasks <= 4, "{tasks} workflow tasks: {own:?}");
    assert_eq!(
        lock.last(),
        Some(&EventType::WorkflowExecutionTerminated),
        "the lock was released: {lock:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_small_aips_at_once_are_each_delivered_exactly_once() {
    let app = TestApp::start().await;
    let token = app.client_token();
    let smalls = crate::batches::small_aips(&app, "c05d", 200).await;
    let api = app.api(&token);
    let ids: Vec<String> = futures::stream::iter(&smalls)
        .map(|archive_id| {
            let api = &api;
            async move {
                api.create(serde_json::json!({"archiveId": archive_id}))
                    .await
                    .dissemination_id
            }
        })
        .buffered(32)
        .collect()
        .await;
    let hooks = app
        .hooks_until(Duration::from_secs(240), "every one delivered", |hooks| {
            ids.iter()
                .all(|id| hooks.iter().any(|(h, _)| h.delivered(id)))
        })
        .await;
    for (archive_id, id) in smalls.iter().zip(&ids) {
        app.assert_delivered_once(&hooks, archive_id, id).await;
    }
}

//! Determinism guard: histories recorded from real runs
//! (`tests/histories/*.json` at the workspace root) must replay with the
//! current workflow code. A change that would break running or completed
//! executions (and queries on them) fails here; version such changes by
//! flow (see docs/determinism.md). No server is needed:
//! `cargo test -p workflows --test replay`. The histories are recorded by
//! the end-to-end suite (`tests/it/replay.rs`), only for a deliberate,
//! versioned change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::{DisseminationBatch, DisseminationLock, DisseminationWorkflow};

fn histories_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/histories")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_histories_replay_with_the_current_workflow() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(histories_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected recorded histories in {}",
        histories_dir().display()
    );
    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<DisseminationWorkflow>()
            .unwrap()
            .register_workflow::<DisseminationLock>()
            .unwrap()
            .register_workflow::<DisseminationBatch>()
            .unwrap()
            // As in production: the tracing interceptors must not change
            // what the workflow does.
            .worker_plugin(temporalio_sdk::opentelemetry::OpenTelemetryPlugin::builder().build())
            .build(),
    )
    .unwrap();
    for file in files {
        let history = WorkflowHistory::from_json(&std::fs::read(&file).unwrap()).unwrap();
        assert!(history.workflow_id().is_some());
        if let Err(e) = replayer.replay_workflow(history).await {
            panic!("{} no longer replays: {e}", file.display());
        }
    }
}

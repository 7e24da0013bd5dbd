//! Scale-out as a deployment: worker processes and API replicas on one
//! Temporal and one S3, haproxy round-robin in front. Every replica
//! answers for what another created (the state is in Temporal, not in a
//! replica) and the duplicate check holds across replicas (`replicas`);
//! work is shared by the workers, each dissemination delivered once, a
//! killed worker and a restarted replica notwithstanding (`workers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod replicas;
mod workers;

use crate::support::{Haproxy, TestApp};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Responses each replica gave through the proxy since `before`.
async fn answered_since(proxy: &Haproxy, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    proxy
        .responses_by_server()
        .await
        .into_iter()
        .map(|(server, n)| {
            let earlier = before.get(&server).copied().unwrap_or(0);
            (server, n - earlier)
        })
        .collect()
}

/// Both replicas answered some of the proxy's twenty requests since
/// `before`: round-robin spread them.
async fn assert_spread(proxy: &Haproxy, before: &BTreeMap<String, u64>) {
    let by_server = answered_since(proxy, before).await;
    assert_eq!(by_server.len(), 2, "{by_server:?}");
    assert_eq!(by_server.values().sum::<u64>(), 20, "{by_server:?}");
    assert!(
        by_server.values().all(|n| *n >= 5),
        "round-robin spread the requests over both replicas: {by_server:?}"
    );
}

/// Every worker identity that started an activity of workflow `id`.
fn activity_identities(app: &TestApp, id: &str) -> BTreeSet<String> {
    let out = app.temporal_cli(&["workflow", "show", "--workflow-id", id, "--output", "json"]);
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["activityTaskStartedEventAttributes"]["identity"].as_str())
        .map(str::to_owned)
        .collect()
}

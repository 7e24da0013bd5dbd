//! Operators' view of one dissemination: a single trace from the POST to
//! the client's webhook (read back from the bundled viewer's Jaeger query
//! API), Prometheus metrics that moved, JSON logs that carry the trace id
//! and never a secret. API and worker run as their own processes, exporting
//! OTLP to the viewer like a deployment exports to Jaeger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    free_ports, spawn_api_process, spawn_trace_viewer, spawn_worker_process, Options, TestApp,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use worker::demo;

const EXPECTED_SPANS: [&str; 8] = [
    "POST /v1/disseminations",
    "StartWorkflow:DisseminationWorkflow",
    "RunWorkflow:DisseminationWorkflow",
    "RunActivity:transfer",
    "download",
    "fixity",
    "upload",
    // Releases the lock and sends the webhook (with its traceparent).
    "RunActivity:finish",
];

fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .map(|t| &t["value"])
}

fn parent_of(span: &Value) -> Option<String> {
    span["references"].as_array().and_then(|refs| {
        refs.iter()
            .find(|r| r["refType"] == "CHILD_OF")
            .map(|r| r["spanID"].as_str().unwrap_or_default().to_owned())
    })
}

/// One sample's value from a Prometheus text page (labels as written).
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_post_to_webhook_metrics_and_logs() {
    let app = TestApp::start_with(Options::without_worker()).await;
    let dir = app.dir.path().to_owned();
    let (_viewer, viewer_url, otlp) = spawn_trace_viewer(&dir).await;
    let mut cfg = (*app.cfg).clone();
    let ports = free_ports(3);
    cfg.telemetry.otlp_endpoint = Some(otlp);
    cfg.api.listen = format!("127.0.0.1:{}", ports[0]);
    cfg.api.metrics_listen = format!("127.0.0.1:{}", ports[2]);
    cfg.worker.metrics_addr = Some(format!("127.0.0.1:{}", ports[1]).parse().unwrap());
    cfg.log.format = "json".into();
    cfg.log.filter = "info".into();
    let _worker = spawn_worker_process(&cfg, "worker-traced");
    let _api = spawn_api_process(&cfg, "api-traced").await;
    let api = format!("http://{}", cfg.api.listen);
    let token = app.client_token();

    let id = app
        .api_at(&api, &token)
        .create(json!({"archiveId": demo::DEMO_SINGLE, "priority": 30}))
        .await
        .dissemination_id;

    // The webhook request joins the dissemination's trace.
    let hooks = app.wait_webhooks(1, Duration::from_secs(60)).await;
    let traceparent = hooks[0]
        .headers
        .get("traceparent")
        .expect("the webhook carries traceparent")
        .to_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {traceparent}");
    let trace_id = parts[1].to_owned();

    // The viewer's Jaeger query API has the whole trace (spans arrive in
    // batches: wait until every step is there).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (trace, names) = loop {
        let res = app
            .http
            .get(format!("{viewer_url}/api/traces/{trace_id}"))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            let body: Value = res.json().await.unwrap();
            let trace = body["data"][0].clone();
            let names: Vec<String> = trace["spans"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .map(|s| s["operationName"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            // A span's parent may end one workflow task later than the span
            // (StartActivity ends when its result is delivered): wait for
            // every parent too, not only for the names.
            let spans = trace["spans"].as_array().cloned().unwrap_or_default();
            let ids: HashSet<String> = spans
                .iter()
                .filter_map(|s| s["spanID"].as_str().map(str::to_owned))
                .collect();
            let orphans: Vec<&str> = spans
                .iter()
                .filter(|s| parent_of(s).is_some_and(|p| !ids.contains(&p)))
                .map(|s| s["operationName"].as_str().unwrap_or_default())
                .collect();
            if EXPECTED_SPANS.iter().all(|e| names.iter().any(|n| n == e)) && orphans.is_empty() {
                assert_eq!(body["data"].as_array().unwrap().len(), 1, "one trace");
                break (trace, names);
            }
            assert!(
                Instant::now() < deadline,
                "spans so far: {names:?}; parents not yet exported for {orphans:?}"
            );
        } else {
            assert!(
                Instant::now() < deadline,
                "trace {trace_id} not in the viewer"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let spans = trace["spans"].as_array().unwrap();
    assert!(spans.iter().all(|s| s["traceID"] == trace_id.as_str()));
    let roots: Vec<&Value> = spans.iter().filter(|s| parent_of(s).is_none()).collect();
    assert_eq!(roots.len(), 1, "one root among {names:?}");
    let root = roots[0];
    assert_eq!(root["operationName"], "POST /v1/disseminations");
    assert_eq!(tag(root, "disseminationId"), Some(&json!(id)));
    assert_eq!(tag(root, "archiveId"), Some(&json!(demo::DEMO_SINGLE)));
    assert!(tag(root, "clientId").is_some() && tag(root, "contractId").is_some());
    // Every span hangs off the root.
    let ids: Vec<&str> = spans
        .iter()
        .map(|s| s["spanID"].as_str().unwrap())
        .collect();
    for s in spans {
        if let Some(parent) = parent_of(s) {
            assert!(
                ids.contains(&parent.as_str()),
                "{} has a foreign parent",
                s["operationName"]
            );
        }
    }
    let by_name = |n: &str| spans.iter().find(|s| s["operationName"] == n).unwrap();
    let transfer = by_name("RunActivity:transfer");
    assert_eq!(tag(transfer, "disseminationId"), Some(&json!(id)));
    assert!(tag(transfer, "file").is_some() && tag(transfer, "bytes").is_some());
    assert_eq!(tag(transfer, "attempt"), Some(&json!(1)));
    // The one-pass transfer's steps are its children.
    for step in ["download", "fixity", "upload"] {
        assert_eq!(
            parent_of(by_name(step)).as_deref(),
            transfer["spanID"].as_str(),
            "{step} under the transfer"
        );
    }
    assert!(tag(by_name("fixity"), "digestAlgorithm").is_some());
    let processes = trace["processes"].to_string();
    assert!(
        processes.contains("dissemination-api") && processes.contains("dissemination-worker"),
        "both services in the trace: {processes}"
    );

    // Metrics: the API's and the worker's counters moved.
    let page = |url: String| async move { reqwest::get(url).await.unwrap().text().await.unwrap() };
    let api_page = page(format!("http://{}/metrics", cfg.api.metrics_listen)).await;
    assert_eq!(
        sample(
            &api_page,
            r#"dissemination_api_requests_total{method="POST",route="/v1/disseminations",status="201"}"#
        ),
        Some(1.0),
        "{api_page}"
    );
    assert_eq!(
        sample(
            &api_page,
            r#"dissemination_disseminations{status="DISSEMINATED"}"#
        ),
        Some(1.0)
    );
    assert!(api_page.contains("dissemination_api_request_duration_seconds_bucket"));
    let worker_page = page(format!(
        "http://{}/metrics",
        cfg.worker.metrics_addr.unwrap()
    ))
    .await;
    let size = app
        .catalog_doc(demo::DEMO_SINGLE)
        .intellectual_entity
        .sum_size_in_bytes as f64;
    let find = |prefix: &str| {
        worker_page
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert!(
        find("dissemination_bytes_downloaded") >= size,
        "{worker_page}"
    );
    assert!(find("dissemination_bytes_uploaded") >= size);
    assert!(worker_page.lines().any(
        |l| l.starts_with("dissemination_fixity_checks") && l.contains(r#"outcome="success""#)
    ));
    assert!(worker_page
        .lines()
        .any(|l| l.starts_with("dissemination_webhook_attempts")
            && l.contains(r#"outcome="delivered""#)));
    assert!(find("dissemination_queue_wait_seconds_count") >= 2.0);
    assert!(
        worker_page.contains("temporal_activity_execution_latency"),
        "the SDK's own worker metrics are there too"
    );

    // JSON logs carry the trace id and never a secret or a token.
    let worker_log = std::fs::read_to_string(dir.join("worker-traced.log")).unwrap();
    let api_log = std::fs::read_to_string(dir.join("api-traced.log")).unwrap();
    let traced = worker_log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["trace_id"] == trace_id.as_str())
        .count();
    assert!(
        traced >= 3,
        "worker log lines with the trace id: {traced}\n{worker_log}"
    );
    assert!(
        api_log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| l["trace_id"] == trace_id.as_str()),
        "API log lines with the trace id:\n{api_log}"
    );
    let secret = app.webhook_secret.trim_start_matches("whsec_");
    for log in [&worker_log, &api_log] {
        assert!(!log.contains(secret), "a webhook secret in the logs");
        assert!(!log.contains(&token), "a bearer token in the logs");
    }
}

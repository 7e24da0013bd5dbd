//! The duplicate check holds under concurrency: Temporal's workflow-id
//! uniqueness, not an eventually consistent visibility query.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{Options, TestApp};
use serde_json::{json, Value};
use worker::demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_posts_create_exactly_one_dissemination() {
    // No worker: the first dissemination stays in progress for the whole test.
    let app = TestApp::start_with(Options {
        with_worker: false,
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let posts = (0..50).map(|_| {
        let (http, url, token) = (app.http.clone(), app.api_url.clone(), token.clone());
        tokio::spawn(async move {
            let res = http
                .post(format!("{url}/v1/disseminations"))
                .bearer_auth(token)
                .json(&json!({"archiveId": demo::DEMO_TWO_FILES}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let location = res
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, location, res.json::<Value>().await.unwrap())
        })
    });
    let results: Vec<_> = futures::future::join_all(posts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let created: Vec<_> = results.iter().filter(|r| r.0 == 201).collect();
    let conflicts: Vec<_> = results.iter().filter(|r| r.0 == 409).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let others: Vec<_> = results
        .iter()
        .filter(|r| r.0 != 201 && r.0 != 409)
        .map(|r| (r.0, &r.2))
        .collect();
    assert!(others.is_empty(), "neither 201 nor 409: {others:?}");
    assert_eq!(conflicts.len(), 49);
    let id = created[0].2["disseminationId"].as_str().unwrap();
    for (_, location, body) in &conflicts {
        assert_eq!(body["error"]["code"], "DISSEMINATION_IN_PROGRESS");
        assert_eq!(body["disseminationId"], id);
        assert_eq!(
            location.as_deref(),
            Some(format!("/v1/disseminations/{id}").as_str())
        );
    }

    // Exactly one dissemination workflow exists for the AIP.
    let client = app.stack_client().await;
    let query = format!(
        "WorkflowType = 'DisseminationWorkflow' AND ArchiveId = '{}'",
        demo::DEMO_TWO_FILES
    );
    let mut count = 0;
    for _ in 0..50 {
        count = client
            .count_workflows(query.clone(), Default::default())
            .await
            .unwrap()
            .count();
        if count >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count, 1);
}

//! Two API replicas: each answers for what the other created, changed or
//! cancelled, and twenty POSTs of one AIP spread over both create one
//! dissemination.

use super::assert_spread;
use crate::support::{start_replicas, start_workers, Haproxy, Options, TestApp};
use model::DisseminationStatus as Status;
use serde_json::json;
use std::time::Duration;
use worker::demo;
use workflows::{EventType, ReasonCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_answers_for_what_another_created() {
    // The large AIP below is read slowly enough to be cancelled midway.
    let app = TestApp::start_with(Options::workers_apart_reading_at(8 * 1024 * 1024)).await;
    let _workers = start_workers(&app, 2);
    let (_replicas, urls) = start_replicas(&app, 2).await;
    let token = app.client_token();
    let (a, b) = (app.api_at(&urls[0], &token), app.api_at(&urls[1], &token));
    let post = |archive_id: &str| json!({"archiveId": archive_id, "priority": 30});

    // Created on A, read on B straight away: the workflow is the record.
    let id = a.create(post(demo::DEMO_SINGLE)).await.dissemination_id;
    let seen = b.view(&id).await;
    assert_eq!(seen.record.dissemination_id.as_str(), id);
    assert_eq!(seen.record.archive_id.as_str(), demo::DEMO_SINGLE);

    let done_a = a.until_final(&id, Duration::from_secs(90)).await;
    assert_eq!(done_a.status, Status::Disseminated, "{done_a:?}");
    let done_b = b.view(&id).await;
    assert_eq!(done_b, done_a, "B answers exactly what A answers");
    let stored = app.stored_sha256(demo::DEMO_SINGLE, None);
    assert_eq!(
        app.download_sha256(&done_b.files[0].download_url).await,
        stored
    );

    // Links regenerated on B are what A shows next.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new signing second
    let renewed = b.links(&id).await;
    assert_ne!(renewed.files, done_a.files, "new links");
    let after_a = a.view(&id).await;
    assert_eq!(after_a.files, renewed.files);
    assert_eq!(
        app.download_sha256(&after_a.files[0].download_url).await,
        stored
    );

    // The audit trail is the same on both, link regeneration included.
    let events_a = a.events(&id).await;
    assert_eq!(events_a, b.events(&id).await);
    let types: Vec<EventType> = events_a.iter().map(|e| e.event_type).collect();
    assert!(types.contains(&EventType::LinkRegeneration), "{types:?}");

    // B's list shows what A created (visibility is eventually consistent).
    b.list("?status=DISSEMINATED")
        .until(Duration::from_secs(20), |page| page.ids() == [id.as_str()])
        .await;

    // A large AIP created on A, cancelled on B while it downloads.
    let large = "019e404e-5ca1-7000-8000-0000000000ff";
    demo::seed_large(&app.cfg, large, 48).await.unwrap();
    let large_id = a.create(post(large)).await.dissemination_id;
    b.wait_for(&large_id, Duration::from_secs(60), |v| {
        v.progress
            .as_ref()
            .is_some_and(|p| p.bytes_done >= 8 * 1024 * 1024)
    })
    .await;
    b.cancel(&large_id).await;
    let cancelled_a = a.until_final(&large_id, Duration::from_secs(60)).await;
    assert_eq!(cancelled_a.status, Status::Cancelled, "{cancelled_a:?}");
    assert_eq!(cancelled_a.reasons[0].code, ReasonCode::Cancelled);
    assert_eq!(b.view(&large_id).await, cancelled_a);
    // Final on both: a second cancel through A is refused like through B.
    a.cancel(&large_id)
        .refused(409, "DISSEMINATION_ENDED")
        .await;
    assert_eq!(a.events(&large_id).await, b.events(&large_id).await);
    assert!(app.delivered_keys(&large_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_posts_over_two_replicas_create_exactly_one_dissemination() {
    // No worker: the first dissemination stays in progress for the whole test.
    let app = TestApp::start_with(Options::without_worker()).await;
    let (_replicas, urls) = start_replicas(&app, 2).await;
    let proxy = Haproxy::start(app.dir.path(), &urls).await;
    let token = app.client_token();
    let api = app.api_at(&proxy.url, &token);
    let before = proxy.responses_by_server().await;
    let body = json!({"archiveId": demo::DEMO_TWO_FILES, "priority": 30});
    let posts = (0..20).map(|_| async { api.create(body.clone()).answer().await });
    let answers = futures::future::join_all(posts).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    let created: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(created.len(), 1, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    let id = created[0].created().dissemination_id;
    for conflict in answers.iter().filter(|a| a.status == 409) {
        let refused = conflict.refused(409, "DISSEMINATION_IN_PROGRESS", "a second POST");
        assert_eq!(refused.dissemination_id.as_deref(), Some(id.as_str()));
    }
    // Both replicas answered some of them.
    assert_spread(&proxy, &before).await;

    // Exactly one dissemination workflow exists for the AIP.
    let workflows = crate::concurrency::dissemination_workflows(&app, demo::DEMO_TWO_FILES);
    assert_eq!(workflows.await, 1);
    // Either replica reads it.
    for base in &urls {
        let view = app.api_at(base, &token).view(&id).await;
        assert_eq!(view.record.archive_id.as_str(), demo::DEMO_TWO_FILES);
    }
}

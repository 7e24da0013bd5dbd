//! Tape recalls through faults: a lost worker and a Temporal restart, a
//! tape library restart (its requests forgotten), a tape system answering
//! garbage, a staged copy of the wrong size, a read redirected outside its
//! prefix; and a history that does not grow with recall time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{app_with, app_with_slow, bytes, has_event, on_tape, until_requested};
use crate::support::{
    tape_aip, tempdir, AipFile, Options, TapeLibrary, TapeOptions, TestApp, TAPE_PREFIX,
};
use platform::config::LocationConfig;
use std::time::Duration;
use workflows::{EventType, Outcome, StageHeartbeat};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_and_a_temporal_restart_during_staging_deliver_once_from_one_request() {
    let archive = "019e404e-7a9e-7000-8000-000000000041";
    let (_dir, lib, mut app) = on_tape(
        archive,
        &[("primary.tar", bytes(41, 2 * 1024 * 1024))],
        30_000,
        Options {
            private_stack: true,
            with_worker: false,
            retry_for_ms: Some(15 * 60 * 1000),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let first = crate::support::spawn_worker_process(&app.cfg, "worker-tape-1");
    let token = app.client_token();
    let (id, _) = app.create_until(&token, archive, "STAGING").await;
    until_requested(&lib).await;
    let seen = std::time::Instant::now();
    until_temporal_knows_the_request(&app, &id).await;
    println!(
        "Temporal held the request {:?} after the tape system",
        seen.elapsed()
    );
    // The worker waiting on the recall dies; another takes the step over
    // (after the heartbeat timeout) and finds the request again.
    first.kill_hard();
    let _second = crate::support::spawn_worker_process(&app.cfg, "worker-tape-2");
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Temporal goes away and comes back while the recall goes on.
    app.stack.stop_temporal();
    tokio::time::sleep(Duration::from_secs(5)).await;
    app.stack.start_temporal().await.unwrap();
    let (_, body) = app
        .poll_until(&token, &id, Duration::from_secs(120), |b| {
            b["status"] == "DISSEMINATED"
        })
        .await;
    assert_eq!(body["files"].as_array().unwrap().len(), 1);
    app.assert_every_link_delivers(&token, &id).await;
    assert_eq!(app.delivered_keys(&id).await.len(), 1);
    assert_eq!(lib.stage_requests_seen(), 1, "{}", lib.log_text());
    assert_eq!(lib.mounts().await, 1);
    assert_eq!(lib.pins().await, 0, "{}", lib.state().await);
    let hooks = app.wait_webhooks(1, Duration::from_secs(90)).await;
    let ids: std::collections::BTreeSet<String> = hooks
        .iter()
        .map(|h| h.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one delivered message id");
}

/// Until Temporal holds the stage step's heartbeat naming its request.
/// Between the tape system accepting a request and that, a worker lost
/// leaves the next attempt to make another: no client of the WLCG Tape
/// REST API can close that window (it has no way to list requests), the
/// step only keeps it short (`heartbeat_now`).
async fn until_temporal_knows_the_request(app: &TestApp, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let desc = app
            .stack_client()
            .await
            .get_workflow_handle::<workflows::DisseminationWorkflow>(id.to_owned())
            .describe(Default::default())
            .await
            .unwrap();
        let known = desc.into_raw().pending_activities.iter().any(|a| {
            a.heartbeat_details.as_ref().is_some_and(|d| {
                d.payloads.iter().any(|p| {
                    serde_json::from_slice::<StageHeartbeat>(&p.data)
                        .is_ok_and(|b| !b.requests.is_empty())
                })
            })
        });
        if known {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Temporal never heard of the stage request"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tape_library_restart_during_a_recall_is_resubmitted_and_delivered() {
    let archive = "019e404e-7a9e-7000-8000-000000000051";
    let (_dir, mut lib, app) = on_tape(
        archive,
        &[("primary.tar", bytes(51, 256 * 1024))],
        4_000,
        Options {
            // The tape system may be away this long before its copies are
            // given up.
            unreadable_retry_ms: Some(60_000),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let token = app.client_token();
    let (id, _) = app.create_until(&token, archive, "STAGING").await;
    until_requested(&lib).await;
    lib.kill_hard();
    tokio::time::sleep(Duration::from_secs(2)).await;
    lib.restart().await;
    app.poll_until(&token, &id, Duration::from_secs(60), |b| {
        b["status"] == "DISSEMINATED"
    })
    .await;
    app.assert_every_link_delivers(&token, &id).await;
    // Forgotten by the restart, made again once; nothing pinned after.
    assert_eq!(lib.stage_requests_seen(), 2, "{}", lib.log_text());
    assert_eq!(lib.pins().await, 0, "{}", lib.state().await);
    assert!(lib.requests().await.is_empty());
}

/// History events other than workflow tasks (as the outage tests count).
async fn history_events(app: &TestApp, id: &str) -> usize {
    use temporalio_common::protos::temporal::api::enums::v1::EventType as E;
    app.history(id)
        .await
        .iter()
        .filter(|e| {
            !matches!(
                E::try_from(e.event_type),
                Ok(E::WorkflowTaskScheduled
                    | E::WorkflowTaskStarted
                    | E::WorkflowTaskCompleted
                    | E::WorkflowTaskTimedOut
                    | E::WorkflowTaskFailed)
            )
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_does_not_grow_with_recall_time() {
    // The same AIP recalled by a quick library and by a slow one (a mount
    // 60 times longer): the same history, however long the wait.
    let (quick_dir, slow_dir) = (tempdir().unwrap(), tempdir().unwrap());
    let quick_id = "019e404e-7a9e-7000-8000-000000000061";
    let slow_id = "019e404e-7a9e-7000-8000-000000000062";
    let file = |seed, at| AipFile {
        path: "primary.tar",
        bytes: bytes(seed, 256 * 1024),
        copies: vec![(at, None)],
    };
    let quick = tape_aip(quick_id, &[file(61, "hpss")], "V001", 1);
    let slow = tape_aip(slow_id, &[file(62, "hpss-slow")], "V001", 1);
    let quick_lib = TapeLibrary::mounting_in(quick_dir.path(), &quick.entries(), 250).await;
    let slow_lib = TapeLibrary::mounting_in(slow_dir.path(), &slow.entries(), 15_000).await;
    let app = app_with_slow(&quick_lib, &slow_lib, Options::default(), |_| {}).await;
    quick.put(&app).await;
    slow.put(&app).await;
    let token = app.client_token();
    let mut counts = Vec::new();
    for archive in [quick_id, slow_id] {
        let started = std::time::Instant::now();
        let (id, _) = app.create_until(&token, archive, "DISSEMINATED").await;
        counts.push((history_events(&app, &id).await, started.elapsed()));
    }
    println!("history events but workflow tasks (recall time): {counts:?}");
    assert!(counts[1].1 >= Duration::from_secs(15), "{counts:?}");
    assert!(
        counts[0].0.abs_diff(counts[1].0) <= 2,
        "history length depends on recall time: {counts:?}"
    );
}

/// A server that answers every request with `status` and `body`, or a
/// redirect to `location` (for the tests of bad answers).
async fn answering(status: u16, body: &'static str, location: Option<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move {
        let mut res = axum::response::Response::builder().status(status);
        if let Some(l) = location {
            res = res.header("location", l);
        }
        res.body(axum::body::Body::from(body)).unwrap()
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tape_answers_make_the_copy_unreadable_and_the_next_one_serves() {
    let dir = tempdir().unwrap();
    let garbage = "019e404e-7a9e-7000-8000-000000000071";
    let resized = "019e404e-7a9e-7000-8000-000000000072";
    let redirected = "019e404e-7a9e-7000-8000-000000000073";
    let file = |seed, at| AipFile {
        path: "primary.tar",
        bytes: bytes(seed, 128 * 1024),
        copies: vec![(at, None), ("disk", None)],
    };
    let a = tape_aip(garbage, &[file(71, "junk")], "V001", 1);
    let b = tape_aip(resized, &[file(72, "hpss")], "V001", 2);
    let c = tape_aip(redirected, &[file(73, "redirected")], "V001", 3);
    // On tape, b's copy is one byte longer than the catalog says.
    let mut entries = b.entries();
    entries[0].bytes.push(0);
    entries.extend(c.entries());
    let lib = TapeLibrary::start(dir.path(), &entries, TapeOptions::default()).await;
    let junk_api = answering(500, "{\"title\": \"boom\"", None).await;
    let elsewhere = answering(302, "", Some("http://127.0.0.1:1/elsewhere")).await;
    let (mut junk, mut redirect) = (
        lib.location_config(TAPE_PREFIX),
        lib.location_config(TAPE_PREFIX),
    );
    junk.api_url = Some(format!("{junk_api}/api/v1"));
    redirect.read_url = Some(elsewhere);
    let app = app_with(&lib, Options::default(), move |cfg| {
        for (id, mut location) in [("junk", junk.clone()), ("redirected", redirect.clone())] {
            location.preference = Some(1);
            cfg.repository
                .locations
                .insert(id.into(), LocationConfig::Tape(location));
        }
        if let Some(LocationConfig::Tape(hpss)) = cfg.repository.locations.get_mut("hpss") {
            hpss.preference = Some(1);
        }
    })
    .await;
    for aip in [&a, &b, &c] {
        aip.put(&app).await;
    }
    let token = app.client_token();
    for (archive, said) in [
        (garbage, "did not answer"),
        (resized, "bytes"),
        (redirected, "redirected outside"),
    ] {
        let (id, _) = app.create_until(&token, archive, "DISSEMINATED").await;
        app.assert_every_link_delivers(&token, &id).await;
        let events = app.api(&token).events(&id).await;
        assert!(
            has_event(&events, EventType::Retrieval, Outcome::Failure, said),
            "{archive}: the tape copy's refusal is on the record ({said}): {events:?}"
        );
        assert!(
            has_event(&events, EventType::FixityCheck, Outcome::Success, ""),
            "{archive}: verified from disk"
        );
    }
    assert!(
        lib.pins().await == 0 && lib.requests().await.is_empty(),
        "{}",
        lib.state().await
    );
}

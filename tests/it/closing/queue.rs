//! A queued request's place: 20 requests behind one busy slot, `ahead`
//! counts down as the queue drains, the estimated start is within a
//! factor of two of the real one, and an urgent request is first in its
//! own band.

use crate::support::{Options, TestApp};
use model::DisseminationStatus;
use serde_json::json;
use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};
use workflows::DisseminationView;

/// Seconds from now to an RFC 3339 time (negative when past).
fn secs_until(t: &model::time::Timestamp) -> f64 {
    let at = chrono::DateTime::parse_from_rfc3339(t.as_str()).unwrap();
    let now = chrono::DateTime::<chrono::Utc>::from(SystemTime::now());
    (at.with_timezone(&chrono::Utc) - now).num_milliseconds() as f64 / 1000.0
}

fn queued(v: &DisseminationView) -> bool {
    v.status == DisseminationStatus::Queued
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_count_down_and_their_estimate_holds() {
    let app = TestApp::start_with(Options {
        // One transfer at a time per band, each about a second.
        band_slots: Some(1),
        max_read_bytes_per_sec: Some(2 * 1024 * 1024),
        configure: Some(Arc::new(|cfg| cfg.api.queue_sample_ms = 200)),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let api = app.api(&token);
    let n = 20;
    let mut aips = Vec::new();
    for i in 0..n + 2 {
        let id = format!("019e404e-9e0e-7000-8000-{i:012x}");
        // Over the size a workflow moves by itself: each takes the slot.
        let mib = if i == n { 8 } else { 2 };
        worker::demo::seed_large(&app.cfg, &id, mib).await.unwrap();
        aips.push(id);
    }
    let mut ids = Vec::new();
    for a in &aips[..n] {
        ids.push(
            api.create(json!({"archiveId": a, "priority": 50}))
                .await
                .dissemination_id,
        );
    }
    let last = ids.last().unwrap().clone();

    // `ahead` counts down while the last one waits.
    let first = api.view(&last).await;
    let place = first.queue.clone().expect("a QUEUED request has a place");
    assert_eq!(place.band, "normal");
    assert!((n as u32 - 6..n as u32).contains(&place.ahead), "{place:?}");
    let mut aheads = vec![place.ahead];
    let mut estimate: Option<(Instant, f64, u32)> = None;
    let deadline = Instant::now() + Duration::from_secs(180);
    let started = loop {
        assert!(Instant::now() < deadline, "never started: {aheads:?}");
        let view = api.view(&last).await;
        if !queued(&view) {
            break Instant::now();
        }
        let place = view.queue.expect("QUEUED with its place");
        aheads.push(place.ahead);
        // The estimate once the band has a pace, far enough from the start.
        if estimate.is_none() && place.ahead >= 8 && place.ahead <= 12 {
            if let Some(at) = &place.estimated_start {
                estimate = Some((Instant::now(), secs_until(at), place.ahead));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        aheads.windows(2).all(|w| w[1] <= w[0] + 1),
        "ahead only counts down (give or take the visibility store's lag): {aheads:?}"
    );
    assert!(
        *aheads.last().unwrap() <= 1 && aheads[0] >= 14,
        "down to the front: {aheads:?}"
    );
    let (asked, predicted, ahead) = estimate.expect("an estimate while queued");
    let real = started.duration_since(asked).as_secs_f64();
    assert!(
        predicted >= real / 2.0 && predicted <= real * 2.0,
        "estimated {predicted:.1} s with {ahead} ahead, started after {real:.1} s"
    );

    // An urgent request is first in its band: behind the one transfer it
    // has, more urgent than that, nothing ahead of it.
    let running = api
        .create(json!({"archiveId": aips[n], "priority": 10}))
        .await
        .dissemination_id;
    api.wait_for(&running, Duration::from_secs(30), |v| !queued(v))
        .await;
    let urgent = api
        .create(json!({"archiveId": aips[n + 1], "priority": 1}))
        .await
        .dissemination_id;
    let view = api.view(&urgent).await;
    assert!(queued(&view), "{view:?}");
    let place = view.queue.expect("its place");
    assert_eq!(
        (place.band.as_str(), place.ahead),
        ("urgent", 0),
        "{place:?}"
    );
    // Every one of them is delivered in the end.
    for id in ids.iter().chain([&running, &urgent]) {
        api.wait_for(id, Duration::from_secs(120), |v| {
            v.status == DisseminationStatus::Disseminated
        })
        .await;
    }
}

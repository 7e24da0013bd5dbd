//! A queued request's place: 20 requests behind one busy slot, `ahead`
//! counts down as the queue drains, the estimated start is within a
//! factor of two of the real one, and an urgent request is first in its
//! own band.

use crate::support::{ok_when, Options, TestApp, Wait};
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
        // One transfer at a time on the small AIPs' queue (every one of
        // these AIPs is over the size a workflow moves by itself and small),
        // each about two seconds: the throttle, not the host's load, sets
        // the queue's pace, so it is steady even on a busy CI host.
        band_slots: Some(1),
        max_read_bytes_per_sec: Some(1024 * 1024),
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
        // The urgent band's one (`n`) runs 8 s, long enough to queue
        // behind it on a loaded host.
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
    // `ahead` counts the requests the visibility store has recorded, which
    // lags their start (more so on a loaded host): the count-down is
    // watched from when all of them are there.
    let client = app.stack_client().await;
    let query = format!("WorkflowType = '{}'", workflows::DISSEMINATION_WORKFLOW);
    let recorded = || async {
        let count = client
            .count_workflows(query.clone(), Default::default())
            .await
            .map(|c| c.count())
            .unwrap_or(0);
        ok_when(count >= n, count)
    };
    Wait::secs(30)
        .every_ms(100)
        .until("every request in the visibility store", recorded)
        .await;

    // `ahead` counts down while the last one waits.
    let first = api.view(&last).await;
    let place = first.queue.clone().expect("a QUEUED request has a place");
    assert_eq!(place.band, "normal");
    assert!((n as u32 - 6..n as u32).contains(&place.ahead), "{place:?}");
    // What the client saw, for every message below: seconds since the
    // first GET, `ahead`, and the estimated start in seconds from then.
    let t0 = Instant::now();
    let mut seen: Vec<(f64, u32, Option<f64>)> = vec![(0.0, place.ahead, None)];
    let deadline = Instant::now() + Duration::from_secs(240);
    let started = loop {
        assert!(Instant::now() < deadline, "never started: {seen:?}");
        let view = api.view(&last).await;
        if !queued(&view) {
            break t0.elapsed().as_secs_f64();
        }
        let place = view.queue.expect("QUEUED with its place");
        let eta = place.estimated_start.as_ref().map(secs_until);
        seen.push((t0.elapsed().as_secs_f64(), place.ahead, eta));
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let aheads: Vec<u32> = seen.iter().map(|s| s.1).collect();
    assert!(
        aheads.windows(2).all(|w| w[1] <= w[0] + 1),
        "ahead only counts down (give or take the visibility store's lag): {seen:?}"
    );
    // `ahead` counts by the time a request was started; the band serves by
    // the time its transfer was scheduled, in its first workflow task. Of
    // requests posted within a second or two those tasks may run in
    // another order (run 18: the last one started with 3 still counted
    // ahead, each count then steady for one item's ~2 s): near the front,
    // within three.
    assert!(
        *aheads.last().unwrap() <= 3 && aheads[0] >= 14,
        "down to the front: {seen:?}"
    );
    // The estimates given once the band has a pace, far enough from the
    // start (8 to 12 ahead): each one's ratio to the real wait, and their
    // median within a factor of two (one answer read while the
    // visibility store lags is not what a polling client plans on).
    let mut ratios: Vec<f64> = seen
        .iter()
        .filter(|(_, ahead, _)| (8..=12).contains(ahead))
        .filter_map(|&(at, _, eta)| eta.map(|eta| eta / (started - at)))
        .collect();
    assert!(ratios.len() >= 4, "estimates while queued: {seen:?}");
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    assert!(
        (0.5..=2.0).contains(&median),
        "estimated/real start {median:.2} (of {ratios:.2?}), started at {started:.1} s: {seen:?}"
    );

    // An urgent request is first in its band (on the small AIPs' queue,
    // served urgent first): behind the one transfer it has, more urgent
    // than that, nothing ahead of it.
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

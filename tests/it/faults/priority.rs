//! Priorities that hold: an urgent request starts next, however full the
//! low band's queue.

use crate::support::{is_transferring, ok_when, Options, TestApp, Wait};
use model::DisseminationStatus as Status;
use serde_json::json;
use std::time::{Duration, Instant};
use worker::demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_request_starts_next_however_full_the_low_queue_is() {
    // One slot per band (for small AIPs too), downloads slowed to ~4 s each.
    let app = TestApp::start_with(Options {
        band_slots: Some(1),
        max_read_bytes_per_sec: Some(64 * 1024),
        configure: Some(std::sync::Arc::new(|cfg| cfg.worker.local_slots = 1)),
        ..Default::default()
    })
    .await;
    let mut low = Vec::new();
    for i in 0..20 {
        let token = app.token(&format!("low-client-{i}"), &["2d17_R"]);
        let id = app.create(&token, demo::DEMO_SINGLE, 90).await;
        low.push((token, id));
    }
    // The low band's one slot is busy; the others wait. A low item that has
    // ended holds no slot, though its status may say so a moment longer (on
    // a loaded machine the workflow task that records its end waits while
    // the next item already starts): at most two show a transfer at once.
    let one_started = || async {
        let now = statuses(&app, &low).await;
        let transferring = now.iter().filter(|s| is_transferring(**s)).count();
        assert!(
            transferring <= 2,
            "one slot, yet {transferring} low-priority transfers at once: {now:?}"
        );
        ok_when(transferring > 0, now)
    };
    Wait::secs(30)
        .until("a low-priority download", one_started)
        .await;

    let queued = |now: &[Status]| now.iter().filter(|s| **s == Status::Queued).count();
    let before = queued(&statuses(&app, &low).await);
    let posted = Instant::now();
    let urgent = app.api(&app.token("urgent-client", &["2d17_R"]));
    let id = urgent
        .create(json!({"archiveId": demo::DEMO_SINGLE, "priority": 1}))
        .await
        .dissemination_id;
    urgent
        .wait_for(&id, Duration::from_secs(60), |v| {
            v.status == Status::DownloadingFromRepository
        })
        .await;
    let now = statuses(&app, &low).await;
    let started = before.saturating_sub(queued(&now));
    // Behind the queue, the urgent one would have started after all of the
    // low items still queued (~4 s each). Ahead of it, it starts next: the
    // low band goes on beside it, so while it is posted and its workflow
    // task waits on a loaded machine, a few low items may start.
    assert!(
        started <= 4,
        "the urgent request waited behind the low-priority queue: {started} of the {before} \
         queued low items started before it, {:.1} s after its POST: {now:?}",
        posted.elapsed().as_secs_f64()
    );
    println!(
        "the urgent request started {:.1} s after its POST; {started} of {before} queued low items started meanwhile",
        posted.elapsed().as_secs_f64()
    );
}

/// The statuses of `items` (token, id) at one moment (read at once, not
/// one by one).
async fn statuses(app: &TestApp, items: &[(String, String)]) -> Vec<Status> {
    let views = items
        .iter()
        .map(|(token, id)| async move { app.api(token).view(id).await.status });
    futures::future::join_all(views).await
}

/// Short steps and each size class have slots of their own: while a
/// band's every activity slot holds a long transfer, a small request of
/// the same band is delivered, its webhook sent and its lock released, and
/// a photograph-sized AIP, a medium one and a large one (just not a
/// terabyte) transferred, none of them after that transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_steps_and_small_aips_never_wait_behind_long_transfers() {
    // One activity slot per band, held for about 100 s by a 24 MiB AIP;
    // AIPs up to 2.5 MiB are small, up to 3.5 MiB medium, up to 8 MiB
    // large.
    let app = TestApp::start_with(Options::one_slot_held_long()).await;
    let api = app.api(&app.client_token());
    // An AIP of `mib` MiB, seeded and asked for.
    let ask = |archive_id: &'static str, mib| {
        let (app, api) = (&app, &api);
        async move {
            demo::seed_large(&app.cfg, archive_id, mib).await.unwrap();
            let created = api.create(json!({"archiveId": archive_id})).await;
            created.dissemination_id
        }
    };
    let held = ask("019e404e-5e95-7000-8000-000000000000", 24).await;
    api.until_transferring(&held).await;
    // A small AIP moves inside its workflow task; what follows (the lock
    // released, the webhook's first attempt) needs no slot of the band.
    let small = api
        .create(json!({"archiveId": demo::DEMO_SINGLE}))
        .await
        .dissemination_id;
    app.delivered(&small).await;
    // Released: the same AIP can be asked for again at once.
    let again = api
        .create(json!({"archiveId": demo::DEMO_SINGLE}))
        .await
        .dissemination_id;
    assert_ne!(again, small);
    // Too large to move inside its workflow task (over 1 MiB), too small
    // to wait for the band's slot: a transfer of its own on the small
    // AIPs' queue, read at the same pace (about 8 s).
    app.delivered(&ask("019e404e-5e95-7000-8000-000000000002", 2).await)
        .await;
    // Over the small class, under the band's terabytes: the medium AIPs'
    // queue (about 12 s at this pace), and beside it, over the medium
    // class, the large AIPs' queue (about 16 s).
    let medium = ask("019e404e-5e95-7000-8000-000000000003", 3).await;
    let large = ask("019e404e-5e95-7000-8000-000000000004", 4).await;
    futures::future::join(app.delivered(&medium), app.delivered(&large)).await;
    let why = "the long transfer should still hold the band's slot";
    api.assert_transferring(&held, why).await;
    api.cancel(&held).await;
    api.until_final(&held, Duration::from_secs(60)).await;
    api.until_final(&again, Duration::from_secs(60)).await;
}

/// The most urgent band's requests have each size class's queue to
/// themselves: while a less urgent transfer holds the large class's slot
/// (for about 100 s), an urgent AIP of that class is delivered, and a
/// normal one of the class still waits for the slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_aip_never_waits_behind_a_less_urgent_transfer_of_its_class() {
    // One slot per class; AIPs over 3.5 MiB and up to 32 MiB are large.
    let mut opts = Options::one_slot_held_long();
    let classes = opts.configure.take().expect("the classes' bounds");
    opts.configure = Some(std::sync::Arc::new(move |cfg| {
        classes(cfg);
        cfg.worker.large_max_bytes = 32 * 1024 * 1024;
    }));
    let app = TestApp::start_with(opts).await;
    let api = app.api(&app.client_token());
    let ask = |archive_id: &'static str, mib, priority| {
        let (app, api) = (&app, &api);
        async move {
            demo::seed_large(&app.cfg, archive_id, mib).await.unwrap();
            let body = json!({"archiveId": archive_id, "priority": priority});
            api.create(body).await.dissemination_id
        }
    };
    // 24 MiB at 256 KiB/s: the large class's slot for about 100 s.
    let held = ask("019e404e-5e95-7000-8000-000000000010", 24, 90).await;
    api.until_transferring(&held).await;
    let normal = ask("019e404e-5e95-7000-8000-000000000011", 4, 50).await;
    // About 16 s at this pace, on the urgent band's large-class queue.
    let urgent = ask("019e404e-5e95-7000-8000-000000000012", 4, 1).await;
    app.delivered(&urgent).await;
    let why = "the less urgent transfer should still hold the class's slot";
    api.assert_transferring(&held, why).await;
    let normal_now = api.view(&normal).await.status;
    assert_eq!(
        normal_now,
        Status::Queued,
        "a normal request of the class waits for the class's slot"
    );
    for id in [&held, &normal] {
        api.cancel(id).await;
        api.until_final(id, Duration::from_secs(60)).await;
    }
}

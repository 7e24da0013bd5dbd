//! The client's webhook endpoint failing: retries keep their id, follow
//! the schedule and honour Retry-After; 410 stops them; an endpoint down,
//! then slow, still gets the message. The files are there whatever the
//! webhook does.

use crate::support::{verify_with_standardwebhooks, Options, TestApp};
use model::DisseminationStatus as Status;
use std::time::Duration;
use worker::demo;
use workflows::{DisseminationView, WebhookState};

/// Where the view's webhook delivery stands.
fn webhook_state(view: &DisseminationView) -> Option<WebhookState> {
    view.webhook.as_ref().map(|w| w.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_keep_their_id_follow_the_schedule_and_honour_retry_after() {
    // Seconds, not milliseconds: Temporal's timers have about a second of precision.
    let app = TestApp::start_with(Options {
        webhook_retry_initial_ms: Some(2_000),
        ..Default::default()
    })
    .await;
    app.receiver.plan.lock().unwrap().extend([
        (500, None),
        (500, None),
        (429, Some("10".to_owned())),
    ]);
    let token = app.client_token();
    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    let hooks = app.wait_webhooks(4, Duration::from_secs(60)).await;
    assert_eq!(
        hooks.len(),
        4,
        "delivered on the fourth attempt and not again"
    );
    let ids: Vec<String> = hooks.iter().map(|h| h.webhook_id()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(ids[0], format!("msg_{id}_delivered"));
    for h in &hooks {
        verify_with_standardwebhooks(&app.webhook_secret, h).expect("every attempt is signed");
    }
    // Configured schedule: 2 s doubling, each wait drawn from [½, 1] × the
    // backoff (jitter); Retry-After: 10 s wins over the schedule's 4–8 s.
    // The waits as the workflow scheduled them (its timers, in the history)
    // are exact whatever the machine's load; the attempts came no sooner.
    let waits = webhook_waits(&app, &id).await;
    let gaps: Vec<Duration> = hooks.windows(2).map(|w| w[1].at - w[0].at).collect();
    println!("webhook waits scheduled: {waits:?}; attempt gaps: {gaps:?}");
    let within = |g: Duration, lo: u64, hi: u64| {
        g >= Duration::from_millis(lo) && g <= Duration::from_millis(hi)
    };
    assert_eq!(waits.len(), 3, "a wait before each retry: {waits:?}");
    assert!(within(waits[0], 1_000, 2_000), "{waits:?}");
    assert!(within(waits[1], 2_000, 4_000), "{waits:?}");
    assert_eq!(waits[2], Duration::from_secs(10), "Retry-After honoured");
    for (gap, wait) in gaps.iter().zip(&waits) {
        // Timers do not fire early; Temporal's are precise to about a second.
        assert!(*gap + Duration::from_secs(1) >= *wait, "{gaps:?} {waits:?}");
        assert!(
            *gap <= *wait + Duration::from_secs(10),
            "{gaps:?} {waits:?}"
        );
    }
    assert_eq!(hooks[3].hook().kind, "dissemination.delivered");

    // The delivery attempts are visible on GET.
    let view = app
        .api(&token)
        .wait_for(&id, Duration::from_secs(10), |v| {
            webhook_state(v) == Some(WebhookState::Delivered)
        })
        .await;
    assert_eq!(view.status, Status::Disseminated);
    let webhook = view.webhook.unwrap();
    assert_eq!(webhook.attempts, 4);
    assert_eq!(webhook.message_id, format!("msg_{id}_delivered"));
}

/// The timers a workflow started between its first and its last webhook
/// attempt: the waits of its webhook schedule.
async fn webhook_waits(app: &TestApp, id: &str) -> Vec<Duration> {
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    let events = app.history(id).await;
    // The first attempt is `finish`'s (flow 10 on), the retries `notify`.
    let is_notify = |a: &Option<Attributes>| {
        matches!(a, Some(Attributes::ActivityTaskScheduledEventAttributes(s))
            if s.activity_type.as_ref().is_some_and(|t| ["notify", "finish"].contains(&t.name.as_str())))
    };
    let first = events.iter().position(|e| is_notify(&e.attributes));
    let last = events.iter().rposition(|e| is_notify(&e.attributes));
    let (Some(first), Some(last)) = (first, last) else {
        return Vec::new();
    };
    events[first..last]
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::TimerStartedEventAttributes(t)) => t.start_to_fire_timeout.as_ref(),
            _ => None,
        })
        .map(|d| Duration::new(d.seconds as u64, d.nanos as u32))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_webhook_endpoint_stops_retries() {
    let app = TestApp::start().await;
    app.receiver.plan.lock().unwrap().push((410, None));
    let token = app.client_token();
    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    let view = app
        .api(&token)
        .wait_for(&id, Duration::from_secs(60), |v| {
            webhook_state(v) == Some(WebhookState::Gone)
        })
        .await;
    assert_eq!(
        view.status,
        Status::Disseminated,
        "the files are available all the same"
    );
    assert_eq!(view.webhook.unwrap().attempts, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.receiver.all().len(), 1, "no retry after 410");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_endpoint_that_is_down_then_slow_still_gets_the_message() {
    let app = TestApp::start_with(Options {
        webhook_request_timeout_ms: Some(1_000),
        ..Default::default()
    })
    .await;
    app.receiver.go_down().await;
    let token = app.client_token();
    let api = app.api(&token);
    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    let down = api
        .wait_for(&id, Duration::from_secs(60), |v| {
            v.webhook.as_ref().is_some_and(|w| w.attempts >= 2)
        })
        .await;
    assert_eq!(
        down.status,
        Status::Disseminated,
        "the files are there whatever the webhook does"
    );
    let webhook = down.webhook.as_ref().unwrap();
    assert_eq!(webhook.state, WebhookState::Pending);
    let last_error = webhook.last_error.as_deref().unwrap();
    assert!(last_error.contains("connect"), "{down:?}");
    assert!(webhook.next_attempt_at.is_some());

    // Back, but the first answer takes longer than the endpoint's 1 s.
    app.receiver
        .plan
        .lock()
        .unwrap()
        .push((0, Some("3000".to_owned())));
    app.receiver.come_back().await;
    let done = api
        .wait_for(&id, Duration::from_secs(60), |v| {
            webhook_state(v) == Some(WebhookState::Delivered)
        })
        .await;
    let hooks = app.receiver.all();
    assert!(
        hooks.len() >= 2,
        "the slow attempt timed out and was retried"
    );
    assert!(hooks
        .iter()
        .all(|h| h.webhook_id() == hooks[0].webhook_id()));
    assert!(done.webhook.unwrap().attempts >= 4);
    app.download(&done.files[0].download_url).await;
}

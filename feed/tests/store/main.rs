//! The feed against a real S3 (SeaweedFS on free loopback ports): several
//! writers and readers at once, retried and crashed writers, filters,
//! paging, acknowledgements, retention, pruning, cursors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod weed;

use chrono::{Duration as Days, SecondsFormat, Utc};
use feed::{Cursor, Feed, FeedError, NewEvent, Page, StoredEvent};
use platform::config::EventsConfig;
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

const KEY: &[u8] = b"feed test cursor key";
const DELIVERED: &str = "dissemination.delivered";
const FAILED: &str = "dissemination.failed";
const BATCH: &str = "dissemination-batch.completed";

/// A feed on its own bucket; another call with the same bucket is another
/// process (its own tails), on the same log.
async fn feed_on(bucket: &str) -> Feed {
    let events = EventsConfig {
        bucket: format!("feed-it-{bucket}"),
        max_page_size: 50,
        ..Default::default()
    };
    let feed = Feed::new(&weed::s3().await, &events, KEY);
    feed.ensure_bucket().await.expect("bucket");
    feed
}

/// A webhook message.
struct Msg {
    client: String,
    id: String,
    kind: &'static str,
    at: String,
    payload: String,
}

impl Msg {
    fn new(client: &str, id: &str, kind: &'static str) -> Self {
        Self::at(client, id, kind, Utc::now())
    }

    fn at(client: &str, id: &str, kind: &'static str, at: chrono::DateTime<Utc>) -> Self {
        let at = at.to_rfc3339_opts(SecondsFormat::Micros, true);
        let payload = format!(r#"{{"type":"{kind}", "timestamp":"{at}","data":{{"n":"{id}"}}}}"#);
        Self {
            client: client.into(),
            id: id.into(),
            kind,
            at,
            payload,
        }
    }

    fn event(&self) -> NewEvent<'_> {
        NewEvent {
            client_id: &self.client,
            webhook_id: &self.id,
            event_type: self.kind,
            occurred_at: &self.at,
            payload: &self.payload,
        }
    }
}

async fn page(feed: &Feed, client: &str, after: Option<&Cursor>, types: &[&str], n: usize) -> Page {
    let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    feed.page(client, after.map(Cursor::as_str), &types, n)
        .await
        .expect("a page")
}

/// The webhook ids of a page, in order.
fn ids(events: &[(Cursor, StoredEvent)]) -> Vec<String> {
    events.iter().map(|(_, e)| e.webhook_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_walking_readers_see_every_event_once_in_order() {
    const WRITERS: usize = 8;
    const EACH: usize = 40;
    let client = "client-concurrent";
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        // Each writer its own feed: another worker process, its own tails.
        let feed = feed_on("concurrent").await;
        writers.push(tokio::spawn(async move {
            let mut appended = Vec::new();
            for i in 0..EACH {
                let msg = Msg::new(client, &format!("msg-{w}-{i}"), DELIVERED);
                appended.push((
                    msg.id.clone(),
                    feed.append(&msg.event()).await.expect("append"),
                ));
            }
            appended
        }));
    }
    // Two API replicas, asked in turn, while the writers write.
    let replicas = [feed_on("concurrent").await, feed_on("concurrent").await];
    let reader = tokio::spawn(async move {
        let (mut seen, mut cursor, mut turn) = (Vec::<StoredEvent>::new(), None::<Cursor>, 0);
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.len() < WRITERS * EACH && Instant::now() < deadline {
            turn += 1;
            let p = page(&replicas[turn % 2], client, cursor.as_ref(), &[], 7).await;
            if p.events.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen.extend(p.events.into_iter().map(|(_, e)| e));
            cursor = Some(p.next);
        }
        seen
    });

    let mut appended = HashMap::new();
    for w in writers {
        appended.extend(w.await.expect("writer"));
    }
    let mut numbers: Vec<u64> = appended.values().copied().collect();
    numbers.sort_unstable();
    let all: Vec<u64> = (1..=(WRITERS * EACH) as u64).collect();
    assert_eq!(numbers, all, "distinct and gapless");

    let seen = reader.await.expect("reader");
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, all, "every event once, in order");
    for e in &seen {
        assert_eq!(appended[&e.webhook_id], e.seq, "{}", e.webhook_id);
        assert_eq!(e.event_type, DELIVERED);
        let payload: serde_json::Value = serde_json::from_str(e.payload.get()).expect("JSON");
        assert_eq!(payload["data"]["n"], e.webhook_id.as_str());
    }
    assert_eq!(
        seen.iter()
            .map(|e| &e.webhook_id)
            .collect::<HashSet<_>>()
            .len(),
        WRITERS * EACH
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_that_crash_and_retry_under_concurrent_readers_leave_each_message_once() {
    const WRITERS: usize = 4;
    const EACH: usize = 30;
    let client = "client-crashes";
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let feed = feed_on("crashes").await;
        writers.push(tokio::spawn(async move {
            let (mut appended, mut orphans) = (Vec::new(), Vec::new());
            for i in 0..EACH {
                let msg = Msg::new(client, &format!("msg-{w}-{i}"), DELIVERED);
                // Every third message: a crash after the claim, then the retry.
                if i % 3 == 0 {
                    orphans.push(feed.claim(&msg.event()).await.expect("claim"));
                }
                appended.push((
                    msg.id.clone(),
                    feed.append(&msg.event()).await.expect("append"),
                ));
            }
            (appended, orphans)
        }));
    }
    // Two readers walking at once, each completing indexes it finds missing.
    let mut readers = Vec::new();
    for _ in 0..2 {
        let feed = feed_on("crashes").await;
        readers.push(tokio::spawn(async move {
            let (mut seen, mut cursor) = (Vec::<StoredEvent>::new(), None::<Cursor>);
            let deadline = Instant::now() + Duration::from_secs(120);
            while seen.len() < WRITERS * EACH && Instant::now() < deadline {
                let p = page(&feed, client, cursor.as_ref(), &[], 5).await;
                if p.events.is_empty() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seen.extend(p.events.into_iter().map(|(_, e)| e));
                cursor = Some(p.next);
            }
            seen
        }));
    }

    let (mut appended, mut claimed, mut won_by_orphan) = (HashMap::new(), HashSet::new(), 0);
    for w in writers {
        let (a, o) = w.await.expect("writer");
        won_by_orphan += a.iter().filter(|(_, seq)| o.contains(seq)).count();
        claimed.extend(o);
        claimed.extend(a.iter().map(|(_, seq)| *seq));
        appended.extend(a);
    }
    // The log itself is gapless. The numbers the test saw are in it; the
    // others are claims of retries that found a reader had already made
    // the orphan canonical (append then returns the orphan's number).
    let log = weed::log_numbers("feed-it-crashes", client).await;
    let gapless: Vec<u64> = (1..=log.len() as u64).collect();
    assert_eq!(log, gapless, "every number claimed once, none skipped");
    assert!(claimed.iter().all(|seq| log.contains(seq)));
    assert!(log.len() - claimed.len() <= won_by_orphan);
    for reader in readers {
        let seen = reader.await.expect("reader");
        assert_eq!(seen.len(), WRITERS * EACH);
        assert!(seen.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
        for e in &seen {
            assert_eq!(appended[&e.webhook_id], e.seq, "{}", e.webhook_id);
        }
        let ids: HashSet<_> = seen.iter().map(|e| &e.webhook_id).collect();
        assert_eq!(ids.len(), WRITERS * EACH, "each message once");
    }
    // Nothing more later either: the orphans stay skipped.
    let all = page(&feed_on("crashes").await, client, None, &[], 50).await;
    let mut cursor = all.next;
    let mut total = all.events.len();
    loop {
        let p = page(&feed_on("crashes").await, client, Some(&cursor), &[], 50).await;
        if p.events.is_empty() {
            break;
        }
        total += p.events.len();
        cursor = p.next;
    }
    assert_eq!(total, WRITERS * EACH);
}

#[tokio::test]
async fn appending_a_message_again_returns_its_number() {
    let feed = feed_on("again").await;
    let (a, b) = (
        Msg::new("client-again", "msg-a", DELIVERED),
        Msg::new("client-again", "msg-b", FAILED),
    );
    assert_eq!(feed.append(&a.event()).await.unwrap(), 1);
    assert_eq!(feed.append(&b.event()).await.unwrap(), 2);
    assert_eq!(feed.append(&a.event()).await.unwrap(), 1);
    // Also from another process, which has no hint.
    let other = feed_on("again").await;
    assert_eq!(other.append(&a.event()).await.unwrap(), 1);
    assert_eq!(other.append(&b.event()).await.unwrap(), 2);

    let p = page(&feed, "client-again", None, &[], 10).await;
    assert_eq!(ids(&p.events), ["msg-a", "msg-b"]);
    // The payload comes back byte for byte.
    assert_eq!(p.events[0].1.payload.get(), a.payload);
    assert_eq!(p.events[0].1.occurred_at, a.at);
}

#[tokio::test]
async fn a_writer_retried_after_a_crash_before_its_index_leaves_one_event() {
    let feed = feed_on("crash").await;

    // The retry comes first: it claims again; the reader skips the orphan.
    let client = "client-crash-retry";
    let msg = Msg::new(client, "msg-1", DELIVERED);
    let orphan = feed.claim(&msg.event()).await.unwrap();
    let retried = feed.append(&msg.event()).await.unwrap();
    assert_ne!(orphan, retried);
    assert_eq!(feed.append(&msg.event()).await.unwrap(), retried);
    let next = Msg::new(client, "msg-2", DELIVERED);
    feed.append(&next.event()).await.unwrap();
    let p = page(&feed, client, None, &[], 10).await;
    assert_eq!(ids(&p.events), ["msg-1", "msg-2"]);
    assert_eq!(p.events[0].1.seq, retried);

    // A reader comes first: it completes the orphan's index, and the retry
    // finds the event appended.
    let client = "client-crash-reader";
    let msg = Msg::new(client, "msg-1", DELIVERED);
    let orphan = feed.claim(&msg.event()).await.unwrap();
    let first = page(&feed, client, None, &[], 10).await;
    assert_eq!(ids(&first.events), ["msg-1"]);
    assert_eq!(feed.append(&msg.event()).await.unwrap(), orphan);
    let next = Msg::new(client, "msg-2", DELIVERED);
    assert_eq!(feed.append(&next.event()).await.unwrap(), orphan + 1);
    let p = page(&feed, client, Some(&first.next), &[], 10).await;
    assert_eq!(ids(&p.events), ["msg-2"]);
    let all = page(&feed, client, None, &[], 10).await;
    assert_eq!(ids(&all.events), ["msg-1", "msg-2"]);
}

#[tokio::test]
async fn a_type_filter_pages_and_resumes_past_what_it_left_out() {
    let feed = feed_on("filter").await;
    // Outside [A-Za-z0-9._-]: percent-encoded in the keys.
    let client = "client/ä b%";
    let kinds = [
        DELIVERED, DELIVERED, FAILED, DELIVERED, DELIVERED, FAILED, DELIVERED, DELIVERED, FAILED,
        BATCH,
    ];
    for (i, kind) in kinds.iter().enumerate() {
        feed.append(&Msg::new(client, &format!("msg-{}", i + 1), kind).event())
            .await
            .unwrap();
    }

    let p1 = page(&feed, client, None, &[FAILED], 2).await;
    assert_eq!(ids(&p1.events), ["msg-3", "msg-6"]);
    assert_eq!(p1.next, p1.events[1].0, "next is after the last returned");
    assert!(p1.more);
    let p2 = page(&feed, client, Some(&p1.next), &[FAILED], 2).await;
    assert_eq!(ids(&p2.events), ["msg-9"]);
    // The batch event was examined and left out: not examined again.
    let p3 = page(&feed, client, Some(&p2.next), &[FAILED], 2).await;
    assert!(p3.events.is_empty() && !p3.more);
    assert_eq!(p3.next, p2.next, "nothing new: the same cursor");
    let batch = page(&feed, client, Some(&p2.next), &[BATCH], 2).await;
    assert!(batch.events.is_empty());
    let batch = page(&feed, client, Some(&p1.next), &[BATCH, FAILED], 5).await;
    assert_eq!(ids(&batch.events), ["msg-9", "msg-10"]);

    // Every type, by four: 4, 4, 2, then nothing.
    let (mut cursor, mut sizes, mut walked) = (None, Vec::new(), Vec::new());
    loop {
        let p = page(&feed, client, cursor.as_ref(), &[], 4).await;
        if p.events.is_empty() {
            assert_eq!(Some(&p.next), cursor.as_ref());
            break;
        }
        sizes.push((p.events.len(), p.more));
        walked.extend(ids(&p.events));
        cursor = Some(p.next);
    }
    assert_eq!(sizes, [(4, true), (4, true), (2, false)]);
    let want: Vec<String> = (1..=10).map(|i| format!("msg-{i}")).collect();
    assert_eq!(walked, want);

    // A page is at most `max_page_size` (50 here).
    for i in 11..=60 {
        feed.append(&Msg::new(client, &format!("msg-{i}"), DELIVERED).event())
            .await
            .unwrap();
    }
    let most = page(&feed, client, None, &[], 1000).await;
    assert_eq!((most.events.len(), most.more), (50, true));
    // An empty feed has a cursor too, which finds what comes later.
    let empty = page(&feed, "client-empty", None, &[], 10).await;
    assert!(empty.events.is_empty());
    feed.append(&Msg::new("client-empty", "msg-1", DELIVERED).event())
        .await
        .unwrap();
    let later = page(&feed, "client-empty", Some(&empty.next), &[], 10).await;
    assert_eq!(ids(&later.events), ["msg-1"]);
}

#[tokio::test]
async fn undelivered_events_are_those_not_acknowledged_since_a_time() {
    let feed = feed_on("undelivered").await;
    let client = "client-undelivered";
    let now = Utc::now();
    for i in 1..=5 {
        feed.append(&Msg::new(client, &format!("msg-{i}"), DELIVERED).event())
            .await
            .unwrap();
    }
    // Appended now, but it occurred two hours ago (a late retry).
    let late = Msg::at(client, "msg-6", FAILED, now - Days::hours(2));
    feed.append(&late.event()).await.unwrap();
    for id in ["msg-2", "msg-4"] {
        feed.acknowledge_delivery(client, id).await.unwrap();
    }
    // Acknowledging twice is harmless.
    feed.acknowledge_delivery(client, "msg-2").await.unwrap();

    let feed = &feed;
    let since = |at| async move {
        let found = feed.undelivered_since(client, at, 100).await.unwrap();
        found.into_iter().map(|e| e.webhook_id).collect::<Vec<_>>()
    };
    assert_eq!(
        since(now - Days::hours(3)).await,
        ["msg-1", "msg-3", "msg-5", "msg-6"]
    );
    assert_eq!(
        since(now - Days::hours(1)).await,
        ["msg-1", "msg-3", "msg-5"]
    );
    assert_eq!(
        since(feed.oldest_allowed() - Days::days(365)).await.len(),
        4
    );
    assert!(since(now + Days::hours(1)).await.is_empty());
    let two = feed
        .undelivered_since(client, now - Days::hours(3), 2)
        .await;
    let two: Vec<u64> = two.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(two, [1, 3]);
    assert!(feed
        .undelivered_since("client-none", now, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn events_older_than_the_window_are_not_served() {
    let feed = feed_on("window").await;
    let client = "client-window";
    let old = Msg::at(client, "msg-old", DELIVERED, Utc::now() - Days::days(40));
    let new = Msg::new(client, "msg-new", DELIVERED);
    feed.append(&old.event()).await.unwrap();
    feed.append(&new.event()).await.unwrap();
    let p = page(&feed, client, None, &[], 10).await;
    assert_eq!(ids(&p.events), ["msg-new"]);
    let recovered = feed
        .undelivered_since(client, Utc::now() - Days::days(400), 10)
        .await
        .unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].webhook_id, "msg-new");
    assert!(feed.oldest_allowed() < Utc::now() - Days::days(29));
}

#[tokio::test]
async fn pruning_keeps_the_newest_so_numbers_are_never_reused() {
    let feed = feed_on("prune").await;
    let client = "client-prune";
    for i in 1..=5 {
        feed.append(&Msg::new(client, &format!("msg-{i}"), DELIVERED).event())
            .await
            .unwrap();
    }
    feed.acknowledge_delivery(client, "msg-1").await.unwrap();
    // Inside the window nothing goes.
    assert_eq!(feed.prune(client).await.unwrap(), 0);
    // Everything written so far is "old": 4 of 5 log objects (not the
    // newest), 5 index entries, 1 acknowledgement.
    let deleted = feed
        .prune_before(client, Utc::now() + Days::seconds(2))
        .await
        .unwrap();
    assert_eq!(deleted, 4 + 5 + 1);

    // A process without a hint searches from what is left: 6, not 1.
    let fresh = feed_on("prune").await;
    let six = Msg::new(client, "msg-6", DELIVERED);
    assert_eq!(fresh.append(&six.event()).await.unwrap(), 6);
    assert_eq!(
        feed.append(&Msg::new(client, "msg-7", FAILED).event())
            .await
            .unwrap(),
        7
    );
    let p = page(&feed, client, None, &[], 10).await;
    assert_eq!(ids(&p.events), ["msg-5", "msg-6", "msg-7"]);
}

#[tokio::test]
async fn a_cursor_of_another_client_or_a_tampered_one_is_refused() {
    let feed = feed_on("cursors").await;
    feed.append(&Msg::new("client-a", "msg-1", DELIVERED).event())
        .await
        .unwrap();
    let p = page(&feed, "client-a", None, &[], 10).await;
    let cursor = p.next.as_str();
    let refused = |r: Result<Page, FeedError>| matches!(r, Err(FeedError::BadCursor(_)));

    assert!(refused(feed.page("client-b", Some(cursor), &[], 10).await));
    let mut tampered = cursor.as_bytes().to_vec();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(refused(
        feed.page("client-a", Some(&tampered), &[], 10).await
    ));
    assert!(refused(
        feed.page("client-a", Some("not-a-cursor"), &[], 10).await
    ));
    // Signed with another key (another deployment).
    let other = Feed::new(
        &weed::s3().await,
        &EventsConfig {
            bucket: "feed-it-cursors".into(),
            ..Default::default()
        },
        b"another key",
    );
    assert!(refused(other.page("client-a", Some(cursor), &[], 10).await));
    // The cursor still works for its own client.
    let again = feed.page("client-a", Some(cursor), &[], 10).await.unwrap();
    assert!(again.events.is_empty());
}

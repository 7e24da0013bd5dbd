//! `/metrics` lives on its own (loopback by default) listener, not on the
//! public one, and its visibility counts are reused between scrapes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{free_ports, ok_when, spawn_api_process, Options, TestApp, Wait};
use serde_json::json;
use std::time::{Duration, Instant};
use worker::demo;

fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_apart_and_counts_are_cached() {
    let default = platform::config::Config::default().api.metrics_listen;
    let addr: std::net::SocketAddr = default.parse().unwrap();
    assert!(addr.ip().is_loopback(), "loopback by default: {default}");

    let app = TestApp::start_with(Options::without_worker()).await;
    let mut cfg = (*app.cfg).clone();
    let ports = free_ports(2);
    cfg.api.listen = format!("127.0.0.1:{}", ports[0]);
    cfg.api.metrics_listen = format!("127.0.0.1:{}", ports[1]);
    let cache = Duration::from_millis(2_000);
    cfg.api.metrics_count_cache_ms = 2_000;
    let _api = spawn_api_process(&cfg, "api-metrics").await;
    let api = format!("http://{}", cfg.api.listen);
    let metrics = format!("http://{}/metrics", cfg.api.metrics_listen);
    let token = app.client_token();

    // Not on the public listener, with or without a token.
    let public = app.anonymous_at(&api);
    public.page("/metrics").refused(404, "NOT_FOUND").await;
    let caller = app.api_at(&api, &token);
    caller.page("/metrics").refused(404, "NOT_FOUND").await;

    let scrape = || async { reqwest::get(&metrics).await.unwrap().text().await.unwrap() };
    let refreshes = |page: &str| value(page, "dissemination_api_status_count_refreshes_total");
    let total = |page: &str| value(page, "dissemination_disseminations{");
    let first = scrape().await;
    let first_at = Instant::now();
    assert_eq!(refreshes(&first), 1.0, "{first}");
    let before = total(&first);

    caller.create(json!({"archiveId": demo::DEMO_SINGLE})).await;

    // Within the cache interval, 20 scrapes (10 at once) query Temporal no more.
    let started = Instant::now();
    let pages = futures::future::join_all((0..10).map(|_| scrape())).await;
    for _ in 0..10 {
        let page = scrape().await;
        if first_at.elapsed() < cache {
            assert_eq!(refreshes(&page), 1.0);
            assert_eq!(total(&page), before, "cached counts");
        }
    }
    eprintln!(
        "20 scrapes in {:?}: {} count refresh(es)",
        started.elapsed(),
        refreshes(pages.last().unwrap())
    );
    assert!(pages.iter().all(|p| refreshes(p) == 1.0) || first_at.elapsed() >= cache);

    // Past the interval the counts are taken again and show the new one.
    let refreshed = || async {
        let page = scrape().await;
        ok_when(
            refreshes(&page) >= 2.0 && total(&page) == before + 1.0,
            page,
        )
    };
    Wait::secs(20)
        .every_ms(250)
        .until("the counts taken again", refreshed)
        .await;
}

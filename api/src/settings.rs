//! What a workflow is given of the configuration at start: its timings and
//! the bit repository's location preferences, fixed in its input so that
//! replay never depends on configuration changed later.

use platform::config::Config;
use workflows::{LocationPolicy, WorkflowSettings};

pub fn workflow_settings(cfg: &Config) -> WorkflowSettings {
    let t = &cfg.timings;
    let locations = cfg
        .repository
        .locations
        .iter()
        .map(|(id, l)| {
            let policy = LocationPolicy {
                kind: l.kind(),
                preference: l.preference(),
            };
            (id.clone(), policy)
        })
        .collect();
    WorkflowSettings {
        heartbeat_timeout_ms: t.heartbeat_timeout_ms,
        transfer_timeout_ms: t.transfer_timeout_ms,
        short_activity_timeout_ms: t.short_activity_timeout_ms,
        retry_initial_ms: t.retry_initial_ms,
        retry_max_interval_ms: t.retry_max_interval_ms,
        retry_max_attempts: t.retry_max_attempts,
        webhook_retry_initial_ms: t.webhook_retry_initial_ms,
        webhook_retry_max_interval_ms: t.webhook_retry_max_interval_ms,
        webhook_give_up_after_ms: t.webhook_give_up_after_ms,
        link_lifetime_secs: t.link_lifetime_secs,
        retention_secs: Some(t.retention_secs),
        retry_for_ms: Some(t.retry_for_ms),
        unreadable_retry_ms: Some(t.unreadable_retry_ms),
        max_link_regenerations: Some(t.max_link_regenerations),
        locations,
        local_max_bytes: Some(cfg.worker.local_max_bytes).filter(|b| *b > 0),
        batch_poll_ms: Some(cfg.api.batch_poll_ms),
        staging_queue: Some(cfg.staging_queue()),
        steps_queue: Some(cfg.steps_queue()),
        stage_timeout_ms: Some(t.stage_timeout_ms),
        release_on_ack: cfg.retention.release_on_ack,
    }
}

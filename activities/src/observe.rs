//! What the activities tell operators: attributes on the activity's span
//! (the SDK's `RunActivity:…` span, child of the workflow's), the W3C trace
//! context for outgoing webhook requests, and the worker's own metrics,
//! recorded through the Temporal SDK's meter so they are scraped from the
//! same Prometheus endpoint as the SDK's worker metrics.

use opentelemetry::{
    trace::{Status, TraceContextExt},
    Context, KeyValue,
};
use std::{sync::Arc, time::SystemTime};
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, HistogramDuration, MetricKeyValue, MetricParameters, NewAttributes,
    NoOpCoreMeter,
};
use temporalio_sdk::activities::ActivityContext;

/// At an activity's start: the attempt number and `attributes` on its span.
pub fn begin(ctx: &ActivityContext, attributes: impl IntoIterator<Item = KeyValue>) {
    let attempt = KeyValue::new("attempt", i64::from(ctx.info().attempt));
    annotate(std::iter::once(attempt).chain(attributes));
}

/// Sets attributes on the current activity span.
pub fn annotate(attributes: impl IntoIterator<Item = KeyValue>) {
    let cx = Context::current();
    let span = cx.span();
    for kv in attributes {
        span.set_attribute(kv);
    }
}

/// Marks the current activity span failed with a reason an operator reads.
pub fn mark_error(message: impl Into<String>) {
    Context::current()
        .span()
        .set_status(Status::error(message.into()));
}

/// `traceparent` (and `tracestate`) of the current span, for an outgoing
/// request, so the receiver can join the dissemination's trace.
pub fn trace_headers() -> Vec<(String, String)> {
    struct Headers(Vec<(String, String)>);
    impl opentelemetry::propagation::Injector for Headers {
        fn set(&mut self, key: &str, value: String) {
            self.0.push((key.to_owned(), value));
        }
    }
    let mut headers = Headers(Vec::new());
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&Context::current(), &mut headers);
    });
    headers.0
}

/// The worker's own metrics (names end in `_total` / `_seconds` on the
/// Prometheus endpoint).
#[derive(Clone)]
pub struct WorkerMetrics {
    meter: Arc<dyn CoreMeter>,
    bytes_downloaded: Counter,
    bytes_uploaded: Counter,
    fixity_checks: Counter,
    webhook_attempts: Counter,
    unreadable_copies: Counter,
    queue_wait: HistogramDuration,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new(Arc::new(NoOpCoreMeter))
    }
}

impl WorkerMetrics {
    pub fn new(meter: Arc<dyn CoreMeter>) -> Self {
        let param = |name: &'static str, description: &'static str, unit: &'static str| {
            MetricParameters::builder()
                .name(name)
                .description(description)
                .unit(unit)
                .build()
        };
        Self {
            bytes_downloaded: meter.counter(param(
                "dissemination_bytes_downloaded",
                "Bytes read from the bit repository",
                "By",
            )),
            bytes_uploaded: meter.counter(param(
                "dissemination_bytes_uploaded",
                "Bytes delivered to the clients' buckets",
                "By",
            )),
            fixity_checks: meter.counter(param(
                "dissemination_fixity_checks",
                "Fixity checks by digest algorithm and outcome (success, failure)",
                "",
            )),
            webhook_attempts: meter.counter(param(
                "dissemination_webhook_attempts",
                "Webhook deliveries by outcome (delivered, rejected, gone, error, not_configured)",
                "",
            )),
            unreadable_copies: meter.counter(param(
                "dissemination_unreadable_copies",
                "Repository copies that could not be opened (absent, refused), by location",
                "",
            )),
            queue_wait: meter.histogram_duration(param(
                "dissemination_queue_wait",
                "Time an activity waited in its task queue, by band queue and activity",
                "",
            )),
            meter,
        }
    }

    fn attrs(
        &self,
        kvs: &[(&'static str, &str)],
    ) -> temporalio_common::telemetry::metrics::MetricAttributes {
        self.meter.new_attributes(NewAttributes::new(
            kvs.iter()
                .map(|(k, v)| MetricKeyValue::new(*k, v.to_string()))
                .collect(),
        ))
    }

    pub fn downloaded(&self, bytes: u64) {
        self.bytes_downloaded.add(bytes, &self.attrs(&[]));
    }

    pub fn uploaded(&self, bytes: u64) {
        self.bytes_uploaded.add(bytes, &self.attrs(&[]));
    }

    pub fn fixity(&self, algorithm: &str, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.fixity_checks.add(
            1,
            &self.attrs(&[("algorithm", algorithm), ("outcome", outcome)]),
        );
    }

    pub fn unreadable(&self, location: &str) {
        self.unreadable_copies
            .add(1, &self.attrs(&[("location", location)]));
    }

    pub fn webhook(&self, outcome: &str) {
        self.webhook_attempts
            .add(1, &self.attrs(&[("outcome", outcome)]));
    }

    /// How long this attempt waited between scheduling and its start.
    pub fn queue_wait(&self, ctx: &ActivityContext) {
        let info = ctx.info();
        let (Some(scheduled), Some(started)) =
            (info.current_attempt_scheduled_time, info.started_time)
        else {
            return;
        };
        let waited = started
            .duration_since(scheduled)
            .or_else(|_| SystemTime::now().duration_since(scheduled))
            .unwrap_or_default();
        self.queue_wait.record(
            waited,
            &self.attrs(&[
                ("task_queue", info.task_queue.as_str()),
                ("activity", info.activity_type.as_str()),
            ]),
        );
    }
}

/// The dissemination's identity as span attributes.
pub(crate) fn record_attributes(record: &workflows::DisseminationRecord) -> Vec<KeyValue> {
    vec![
        KeyValue::new("disseminationId", record.dissemination_id.to_string()),
        KeyValue::new("archiveId", record.archive_id.to_string()),
        KeyValue::new("clientId", record.client_id.to_string()),
        KeyValue::new("contractId", record.contract_id.to_string()),
    ]
}

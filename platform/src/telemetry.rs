//! Logs and traces, set up in one place for every binary.
//!
//! Log lines carry the trace and span id of the OpenTelemetry context they
//! were written in, so a line found in the logs leads to its trace. Spans
//! are exported over OTLP/gRPC when `telemetry.otlp_endpoint` is set (the
//! bundled trace viewer locally, Jaeger or a collector in deployments).

use crate::config::{LogConfig, TelemetryConfig};
use opentelemetry::{
    trace::{TraceContextExt, TracerProvider as _},
    Context as OtelContext,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, TracerProviderBuilder},
    Resource,
};
use serde_json::{Map, Value};
use std::fmt;
use tracing::{field::Field, Event, Subscriber};
use tracing_subscriber::{
    fmt::{format, FmtContext, FormatEvent, FormatFields, FormattedFields},
    prelude::*,
    registry::LookupSpan,
    EnvFilter,
};

/// Flushes exported spans when dropped (at the end of `main`).
#[must_use = "dropping it stops the trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber and, when configured, the OTLP exporter
/// with a batch processor. `RUST_LOG` wins over the configured filter.
pub fn init(log: &LogConfig, telemetry: &TelemetryConfig, service: &'static str) -> Telemetry {
    init_with(log, telemetry, service, |exporter| {
        SdkTracerProvider::builder().with_batch_exporter(exporter)
    })
}

/// As [`init`], with the tracer provider built by `provider` around the
/// exporter (the worker adds replay-safe ids for workflow spans).
pub fn init_with(
    log: &LogConfig,
    telemetry: &TelemetryConfig,
    service: &'static str,
    provider: impl FnOnce(opentelemetry_otlp::SpanExporter) -> TracerProviderBuilder,
) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut built = None;
    let mut export_error = None;
    if let Some(endpoint) = &telemetry.otlp_endpoint {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
        {
            Ok(exporter) => {
                let p = provider(exporter)
                    .with_resource(
                        Resource::builder()
                            .with_service_name(service)
                            .with_attribute(opentelemetry::KeyValue::new(
                                "service.instance.id",
                                format!("{service}-{}", std::process::id()),
                            ))
                            .build(),
                    )
                    .build();
                opentelemetry::global::set_tracer_provider(p.clone());
                built = Some(p);
            }
            Err(e) => export_error = Some(format!("{endpoint}: {e}")),
        }
    }
    let otel = built.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service))
            .with_error_records_to_exceptions(true)
    });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.filter));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let result = if log.format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(format::JsonFields::new())
                    .event_format(JsonWithTrace),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .event_format(TextWithTrace(format::Format::default().with_ansi(ansi))),
            )
            .try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
    if let Some(e) = export_error {
        tracing::warn!(error = %e, "trace export disabled: bad OTLP endpoint");
    }
    Telemetry { provider: built }
}

/// The current trace and span id, when a sampled span is current.
pub fn current_ids() -> Option<(String, String)> {
    let cx = OtelContext::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

/// Human lines: the usual format, then `trace_id=… span_id=…`.
struct TextWithTrace(format::Format);

impl<S, N> FormatEvent<S, N> for TextWithTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0
            .format_event(ctx, format::Writer::new(&mut line), event)?;
        let line = line.trim_end_matches('\n');
        match current_ids() {
            Some((trace_id, span_id)) => {
                writeln!(writer, "{line} trace_id={trace_id} span_id={span_id}")
            }
            None => writeln!(writer, "{line}"),
        }
    }
}

/// One JSON object per line: time, level, target, the event's fields, the
/// current span's name and fields, and the trace and span ids.
struct JsonWithTrace;

impl<S, N> FormatEvent<S, N> for JsonWithTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            model::time::Timestamp::at(&chrono::Utc::now())
                .to_string()
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        let mut fields = FieldMap(Map::new());
        event.record(&mut fields);
        line.insert("fields".into(), Value::Object(fields.0));
        if let Some(span) = ctx.lookup_current() {
            let mut s = Map::new();
            s.insert("name".into(), span.name().into());
            if let Some(f) = span.extensions().get::<FormattedFields<N>>() {
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(f.as_str()) {
                    s.extend(m);
                }
            }
            line.insert("span".into(), Value::Object(s));
        }
        if let Some((trace_id, span_id)) = current_ids() {
            line.insert("trace_id".into(), trace_id.into());
            line.insert("span_id".into(), span_id.into());
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct FieldMap(Map<String, Value>);

impl tracing::field::Visit for FieldMap {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

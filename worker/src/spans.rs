//! Workflow spans in traces.
//!
//! The SDK's `RunWorkflow:…` span lasts as long as the workflow, and a
//! dissemination's workflow lives until its retention period ends (days),
//! so the span would reach the trace viewer only then, leaving the steps of
//! a running dissemination hanging off a parent nobody has seen. Like the
//! other Temporal SDKs do, it is exported as a marker when the run starts
//! (its end is not exported again); the steps are their own spans.

use opentelemetry::Context;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
    Resource,
};
use std::time::Duration;

const RUN_WORKFLOW: &str = "RunWorkflow:";

/// Wraps a span processor: `RunWorkflow:…` spans are handed on at start.
#[derive(Debug)]
pub struct RunWorkflowMarkers<P>(pub P);

impl<P: SpanProcessor> SpanProcessor for RunWorkflowMarkers<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.0.on_start(span, cx);
        if let Some(mut data) = span.exported_data() {
            if data.name.starts_with(RUN_WORKFLOW) {
                data.end_time = data.start_time;
                self.0.on_end(data);
            }
        }
    }

    fn on_end(&self, span: SpanData) {
        if !span.name.starts_with(RUN_WORKFLOW) {
            self.0.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

//! One integration test binary; each test brings up its own stack.

mod harness;

mod jwks_server;
mod tls_proxy;

mod batches;
mod compose;
mod concurrency;
mod dissemination;
mod faults;
mod formats;
mod identity;
mod lifecycle;
mod listing;
mod metrics_listener;
mod observability;
mod openapi;
mod outages;
mod rejections;
mod replay;
mod scale;
mod schemathesis;
mod temporal_tls;

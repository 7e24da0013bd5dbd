//! One integration test binary. Its tests share one stack (Temporal, S3),
//! each on its own namespace and buckets; a test that breaks a server has
//! its own (see `support`).

mod support;

mod jwks_server;
mod tls_proxy;

mod batches;
mod closing;
mod compose;
mod concurrency;
mod copies;
mod costs;
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
mod tape;
mod tape_library;
mod temporal_tls;

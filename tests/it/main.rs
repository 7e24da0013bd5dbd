//! One integration test binary; each test brings up its own stack.

mod harness;

mod compose;
mod concurrency;
mod dissemination;
mod faults;
mod lifecycle;
mod listing;
mod observability;
mod openapi;
mod outages;
mod rejections;
mod replay;
mod schemathesis;

//! One integration test binary; each test brings up its own stack.

mod harness;

mod concurrency;
mod dissemination;
mod rejections;
mod replay;

//! One integration test binary; each test brings up its own stack.

mod harness;

mod dissemination;
mod rejections;
mod replay;

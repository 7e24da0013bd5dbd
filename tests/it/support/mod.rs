//! What the end-to-end tests stand on, by concern:
//!
//! - `stack`: Temporal dev server and SeaweedFS, one shared by the binary's
//!   tests (each on its own namespace and buckets), private to a test that
//!   stops, freezes or restarts a server;
//! - `app`: the service under test on a stack, its configuration (the real
//!   `Config`) and what a test inspects (S3, the catalog, the `temporal` CLI);
//! - `client`: the HTTP API as a test calls it, with bounded waits;
//! - `receiver`: the webhook endpoint, and `standardwebhooks` to verify it;
//! - `links`: every link of a delivery checked against its SHA-256;
//! - `process`: child processes, the service's binaries, stopped by PID;
//! - `ports`: free loopback ports;
//! - `scale`: several workers and API replicas, haproxy in front;
//! - `tape`: the tape-library stand-in as a process, and AIPs with tape copies;
//! - `tempdir`: folders that remove themselves;
//! - `wait`: bounded waits, one way for every test.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

mod app;
mod client;
mod links;
mod ports;
mod process;
mod receiver;
mod scale;
mod stack;
pub mod tape;
mod tempdir;
mod wait;

pub use app::{Options, TestApp};
pub use client::{expect, is_transferring, refused};
pub use ports::free_ports;
pub use process::{
    spawn_api_process, spawn_trace_viewer, spawn_worker_process, write_config_toml, ChildGuard,
};
pub use receiver::{serve_until_stopped, verify_with_standardwebhooks, Received};
pub use scale::{start_replicas, start_workers, worker_identity, Haproxy};
// (Also `tape::{make_pki, Pki, put_tape_aip}`.)
pub use tape::{
    tape_aip, AipFile, TapeAip, TapeEntry, TapeLibrary, TapeOptions, TapeState, TAPE_PREFIX,
};
pub use tempdir::{log_tail, tempdir, TempDir};
pub use wait::{ok_when, Wait};

pub const CLIENT: &str = "client-a";
pub const OTHER_CLIENT: &str = "client-b";
pub const ISSUER: &str = "http://localhost/realms/dps";
pub const AUDIENCE: &str = "dissemination-service";

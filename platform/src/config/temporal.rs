//! `[temporal]`: where the Temporal frontend is, how this process
//! connects to it (TLS, mTLS, an API key) and how long a call may take.

use super::expose_opt;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct TemporalConfig {
    /// gRPC address of the frontend, e.g. `http://127.0.0.1:7233`.
    pub address: String,
    pub namespace: String,
    /// Prefix of every task queue name (lets several deployments share a namespace).
    pub task_queue_prefix: String,
    /// RPC timeout of a query a worker answers (the audit trail, the receipt,
    /// a batch's items); GET itself reads describe and the memo, no worker.
    pub query_timeout_ms: u64,
    /// TLS to the frontend: `None` (the default) turns it on when any
    /// `tls_*` key or `api_key` is set or the address is `https://`.
    pub tls: Option<bool>,
    /// PEM CA that signed the frontend's certificate; unset: the system's roots.
    pub tls_ca_path: Option<PathBuf>,
    /// PEM client certificate and its key, for mTLS (both or neither).
    pub tls_cert_path: Option<PathBuf>,
    pub tls_key_path: Option<PathBuf>,
    /// Name the frontend's certificate is checked against (and SNI), when it
    /// differs from the address's host.
    pub tls_server_name: Option<String>,
    /// API key (Temporal Cloud), sent as a bearer token on every call.
    #[serde(serialize_with = "expose_opt")]
    pub api_key: Option<SecretString>,
    /// Bound on establishing the connection at start.
    pub connect_timeout_ms: u64,
    /// Bound on one call while answering a request (retries included):
    /// past it the API answers 503 with `Retry-After`.
    pub rpc_timeout_ms: u64,
}

impl Default for TemporalConfig {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:7233".into(),
            namespace: "default".into(),
            task_queue_prefix: "dissemination".into(),
            query_timeout_ms: 2000,
            tls: None,
            tls_ca_path: None,
            tls_cert_path: None,
            tls_key_path: None,
            tls_server_name: None,
            api_key: None,
            connect_timeout_ms: 10_000,
            rpc_timeout_ms: 1_500,
        }
    }
}

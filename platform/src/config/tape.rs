//! A tape location (`kind = "tape"`): a tape system spoken to through the
//! WLCG Tape REST API v1 (dCache, EOS-CTA, StoRM; the embedded default's
//! `tape-library`), and the `[tape]` settings shared by every tape location.

use super::expose_opt;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where the tape system is, how its staged bytes are read, and with what
/// credentials.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TapeLocationConfig {
    /// Lower is tried first (default 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<u32>,
    /// The API's base URL, e.g. `https://tape.example.org:8444/api/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Or the storage's discovery document,
    /// `https://host:port/.well-known/wlcg-tape-rest-api`: its `v1` endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// The tape system's namespace path of a copy is this prefix joined
    /// with the copy's `filePath` (`/aips` + `a/b.tar` = `/aips/a/b.tar`).
    #[serde(default = "root_prefix")]
    pub path_prefix: String,
    /// Staged bytes are read by HTTP(S) GET of `{read_url}{namespace path}`
    /// (the WebDAV door); default: the origin of the API's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_url: Option<String>,
    /// URL prefixes a read may be redirected to (a door sending reads to
    /// its pools); a redirect anywhere else makes the copy unreadable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_redirect_prefixes: Vec<String>,
    /// Or staged bytes are read from this mounted folder:
    /// `{read_root}{namespace path}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_root: Option<PathBuf>,
    /// A bearer token in this file (re-read when it changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Or an OAuth2 client-credentials grant at this token endpoint,
    /// refreshed before the token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(
        default,
        serialize_with = "expose_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_secret: Option<SecretString>,
    /// The scopes asked for (space separated), e.g.
    /// `storage.read:/ storage.stage:/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_scope: Option<String>,
    /// The CA certificates (PEM) the tape system's TLS certificate is
    /// checked against, besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<PathBuf>,
    /// How long a staged copy stays pinned for us (ISO 8601, the API's
    /// `diskLifetime`); released as soon as it is read anyway.
    #[serde(default = "day")]
    pub disk_lifetime: String,
}

impl Default for TapeLocationConfig {
    fn default() -> Self {
        Self {
            preference: None,
            api_url: None,
            discovery_url: None,
            path_prefix: root_prefix(),
            read_url: None,
            read_redirect_prefixes: Vec::new(),
            read_root: None,
            token_file: None,
            token_url: None,
            client_id: None,
            client_secret: None,
            token_scope: None,
            ca_path: None,
            disk_lifetime: day(),
        }
    }
}

fn root_prefix() -> String {
    "/".into()
}

fn day() -> String {
    "PT24H".into()
}

impl TapeLocationConfig {
    pub(super) fn validate(&self, id: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.api_url.is_some() != self.discovery_url.is_some(),
            "repository.locations.{id}: a tape location needs api_url or discovery_url (one of them)"
        );
        anyhow::ensure!(
            self.read_url.is_none() || self.read_root.is_none(),
            "repository.locations.{id}: read_url or read_root, not both"
        );
        anyhow::ensure!(
            self.path_prefix.starts_with('/'),
            "repository.locations.{id}: path_prefix must start with '/'"
        );
        let oauth = [
            self.token_url.is_some(),
            self.client_id.is_some(),
            self.client_secret.is_some(),
        ];
        anyhow::ensure!(
            oauth.iter().all(|x| *x) || oauth.iter().all(|x| !*x),
            "repository.locations.{id}: token_url, client_id and client_secret go together"
        );
        anyhow::ensure!(
            !(self.token_file.is_some() && self.token_url.is_some()),
            "repository.locations.{id}: token_file or token_url, not both"
        );
        anyhow::ensure!(
            !self.disk_lifetime.is_empty(),
            "repository.locations.{id}: disk_lifetime is empty"
        );
        Ok(())
    }
}

/// `[tape]`: how the workers talk to every tape location.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct TapeConfig {
    /// A stage request carries at most this many files (a batch's tape
    /// files go in as few requests as this allows).
    pub max_files_per_stage_request: usize,
    /// Stage requests a worker waits on at once (waiting holds no
    /// transfer slot: these are slots of the staging queue).
    pub staging_slots: usize,
    /// Polling a stage request: first after this, doubling…
    pub poll_initial_ms: u64,
    /// …up to this.
    pub poll_max_ms: u64,
    /// One request to the tape system.
    pub request_timeout_ms: u64,
}

impl Default for TapeConfig {
    fn default() -> Self {
        Self {
            max_files_per_stage_request: 1000,
            staging_slots: 1000,
            poll_initial_ms: 1_000,
            poll_max_ms: 60_000,
            request_timeout_ms: 30_000,
        }
    }
}

impl TapeConfig {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_files_per_stage_request >= 1,
            "tape.max_files_per_stage_request must be at least 1"
        );
        anyhow::ensure!(
            self.staging_slots >= 1,
            "tape.staging_slots must be at least 1"
        );
        anyhow::ensure!(
            self.poll_initial_ms >= 1 && self.poll_max_ms >= self.poll_initial_ms,
            "tape.poll_initial_ms must be positive and at most tape.poll_max_ms"
        );
        Ok(())
    }
}

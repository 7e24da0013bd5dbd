//! Configuration, loaded once at startup: built-in defaults, then an
//! optional TOML file, then environment variables `DISSEMINATION_SECTION__KEY`.
//! Nothing reads the environment after startup. Every timer and retry
//! schedule lives here so tests can shrink them.

use anyhow::Context;
use figment::{
    providers::{Env, Format, Toml},
    Figment,
};
use model::{catalog::LocationKind, Priority};
use secrecy::ExposeSecret;
use secrecy::SecretString;

mod tape;
use serde::{Deserialize, Serialize, Serializer};
use std::{collections::BTreeMap, path::PathBuf};
pub use tape::{TapeConfig, TapeLocationConfig};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    pub temporal: TemporalConfig,
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub catalog: CatalogConfig,
    pub repository: RepositoryConfig,
    pub s3: S3Config,
    pub worker: WorkerConfig,
    pub bands: Vec<BandConfig>,
    pub timings: Timings,
    /// Per-client delivery settings, keyed by OAuth client id. Operator
    /// configuration only: never taken from a request.
    pub clients: BTreeMap<String, ClientConfig>,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub bagit: BagitConfig,
    pub tape: TapeConfig,
}

/// Secrets are written out only when a whole configuration is serialized
/// (a configuration file for a process this one starts, as the tests do).
fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

fn expose_opt<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(v) => s.serialize_some(v.expose_secret()),
        None => s.serialize_none(),
    }
}

impl Config {
    /// Defaults ← `path` (if given) ← environment.
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            anyhow::ensure!(path.exists(), "config file {} not found", path.display());
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("DISSEMINATION_").split("__"));
        let mut config: Config = figment.extract().context("reading configuration")?;
        config.fill_defaults();
        config.validate()?;
        Ok(config)
    }

    /// The configuration that environment variables alone give (as in a
    /// container): `vars` as `DISSEMINATION_SECTION__KEY` pairs, read the way
    /// `load` reads the process's environment.
    pub fn from_env_vars(vars: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Self> {
        use figment::value::{Dict, Value};
        let mut root = Dict::new();
        for (key, value) in vars {
            let Some(path) = key.strip_prefix("DISSEMINATION_") else {
                continue;
            };
            let mut dict = &mut root;
            let mut parts = path.split("__").map(str::to_ascii_lowercase).peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    let parsed = value.parse::<Value>().unwrap_or_else(|e| match e {});
                    dict.insert(part, parsed);
                    break;
                }
                let entry = dict.entry(part).or_insert_with(|| Dict::new().into());
                let Value::Dict(_, inner) = entry else {
                    anyhow::bail!("{key} sets a key below a value");
                };
                dict = inner;
            }
        }
        let mut config: Config = Figment::from(figment::providers::Serialized::defaults(root))
            .extract()
            .context("reading configuration")?;
        config.fill_defaults();
        config.validate()?;
        Ok(config)
    }

    /// Defaults that depend on other values.
    pub fn fill_defaults(&mut self) {
        if self.bands.is_empty() {
            self.bands = BandConfig::defaults();
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let mut last = 0u8;
        for band in &self.bands {
            anyhow::ensure!(
                band.max_priority > last && band.max_priority <= 100,
                "bands must have increasing max_priority within 1..=100"
            );
            anyhow::ensure!(band.slots > 0, "band {} needs at least one slot", band.name);
            last = band.max_priority;
        }
        anyhow::ensure!(last == 100, "the last band must end at priority 100");
        anyhow::ensure!(
            self.timings.link_lifetime_secs <= 7 * 24 * 3600,
            "timings.link_lifetime_secs is over the 7-day SigV4 limit"
        );
        anyhow::ensure!(
            self.timings.link_lifetime_secs >= 1,
            "timings.link_lifetime_secs must be positive"
        );
        anyhow::ensure!(
            self.s3.part_size_mib >= 5,
            "s3.part_size_mib must be at least 5 (the S3 minimum part size)"
        );
        self.tape.validate()?;
        self.repository.validate()
    }

    /// The band a priority falls into.
    pub fn band_for(&self, priority: Priority) -> &BandConfig {
        self.bands
            .iter()
            .find(|b| priority.get() <= b.max_priority)
            .or(self.bands.last())
            .expect("validated: at least one band")
    }

    /// The task queue a band's workflows and activities run on.
    pub fn band_queue(&self, band: &BandConfig) -> String {
        format!("{}-{}", self.temporal.task_queue_prefix, band.name)
    }

    /// The queue of the batch workflows (and their webhook).
    pub fn batch_queue(&self) -> String {
        format!("{}-batches", self.temporal.task_queue_prefix)
    }

    /// The queue of the per-(client, AIP) lock workflows of executions
    /// before flow 10 (a worker runs them until they are released).
    pub fn lock_queue(&self) -> String {
        format!("{}-locks", self.temporal.task_queue_prefix)
    }

    /// The queue of the locks from flow 10 on: no worker polls it. A lock
    /// only holds its workflow id (Temporal's uniqueness is the check) and
    /// is released by terminating it, so it costs no workflow task.
    pub fn held_lock_queue(&self) -> String {
        format!("{}-locks-held", self.temporal.task_queue_prefix)
    }

    /// The queue of the `stage` steps (waiting for tape): polled with
    /// slots of its own, so a recall holds no transfer slot.
    pub fn staging_queue(&self) -> String {
        format!("{}-staging", self.temporal.task_queue_prefix)
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.get(client_id)
    }

    /// The bucket a client's deliveries go to.
    pub fn client_bucket(&self, client_id: &str) -> String {
        self.client(client_id)
            .and_then(|c| c.bucket.clone())
            .unwrap_or_else(|| self.s3.default_bucket.clone())
    }
}

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

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ApiConfig {
    pub listen: String,
    /// Where the routes are mounted, e.g. `/dps-submission`; empty for `/`.
    pub base_path: String,
    pub body_limit_bytes: usize,
    /// Requests a client may make per minute (token bucket refill rate).
    pub rate_limit_per_minute: u32,
    /// Requests a client may make in a burst above the steady rate.
    pub rate_limit_burst: u32,
    /// Repository files one dissemination may carry (Temporal's payload
    /// limit); an AIP with more is refused with 422.
    pub max_repository_files: usize,
    /// Prometheus `/metrics`, on its own listener (never the public one);
    /// loopback by default, so only the host's scraper reaches it.
    pub metrics_listen: String,
    /// How long the disseminations-by-status counts (Temporal visibility
    /// queries) are reused between scrapes.
    pub metrics_count_cache_ms: u64,
    /// archiveIds one batch may carry.
    pub batch_max_items: usize,
    /// Body limit of a batch request (its archiveIds).
    pub batch_body_limit_bytes: usize,
    /// Items of one batch transferring at once: the rest wait for their
    /// turn, so a large batch never holds more workers than this.
    pub batch_max_in_flight: u32,
    /// Items of a batch request started at once by the API.
    pub batch_start_concurrency: usize,
    /// How often a batch counts its items (backing off to 30× this while
    /// nothing changes): how soon its counts and its completion show.
    pub batch_poll_ms: u64,
    /// How often a single POST asks Temporal or the catalog what did not
    /// answer (pauses of 250 ms, doubling; each ask is idempotent by the
    /// dissemination id); still unanswered, it is refused with 503.
    pub start_tries: usize,
    /// How often the API asks Temporal or the catalog for one item of a
    /// batch request, or Temporal for the batch's workflow, when it does
    /// not answer (pauses of 250 ms, doubling); still unanswered, the batch
    /// is refused with 503.
    pub batch_start_tries: usize,
    /// A batch's history longer than this continues as new.
    pub batch_continue_after_events: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            base_path: String::new(),
            body_limit_bytes: 16 * 1024,
            rate_limit_per_minute: 600,
            rate_limit_burst: 60,
            max_repository_files: 1000,
            metrics_listen: "127.0.0.1:9090".into(),
            metrics_count_cache_ms: 15_000,
            batch_max_items: 1000,
            batch_body_limit_bytes: 128 * 1024,
            batch_max_in_flight: 3,
            batch_start_concurrency: 32,
            batch_poll_ms: 2_000,
            start_tries: 3,
            batch_start_tries: 3,
            batch_continue_after_events: 20_000,
        }
    }
}

/// The embedded default's issuer and audience: `mint-token` signs them and
/// the API checks them, as production checks its own.
pub const DEV_ISSUER: &str = "http://localhost/realms/dps";
pub const DEV_AUDIENCE: &str = "dissemination-service";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthConfig {
    /// JWKS document with the issuer's public keys (RS256), read once at
    /// start: the embedded default's local key. Unused when `jwks_url` is set.
    pub jwks_path: PathBuf,
    /// The issuer's JWKS endpoint (Keycloak:
    /// `{issuer}/protocol/openid-connect/certs`): fetched, cached, refreshed.
    pub jwks_url: Option<String>,
    /// How long a fetched key set is used before it is fetched again; while
    /// the issuer is unreachable the last good set keeps serving.
    pub jwks_cache_ttl_secs: u64,
    /// Least time between two fetches, however many tokens name an unknown `kid`.
    pub jwks_min_refresh_interval_ms: u64,
    /// Bound on one fetch of the key set.
    pub jwks_fetch_timeout_ms: u64,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// This API's client at the issuer: roles count from
    /// `realm_access.roles` and `resource_access[api_client_id].roles` only.
    /// Default: the audience, else `dissemination-service`.
    pub api_client_id: Option<String>,
    pub leeway_secs: u64,
}

impl AuthConfig {
    /// The `resource_access` entry whose roles count.
    pub fn api_client(&self) -> &str {
        self.api_client_id
            .as_deref()
            .or(self.audience.as_deref())
            .unwrap_or(DEV_AUDIENCE)
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwks_path: ".data/auth/jwks.json".into(),
            jwks_url: None,
            jwks_cache_ttl_secs: 300,
            jwks_min_refresh_interval_ms: 10_000,
            jwks_fetch_timeout_ms: 5_000,
            issuer: Some(DEV_ISSUER.into()),
            audience: Some(DEV_AUDIENCE.into()),
            api_client_id: None,
            leeway_secs: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct CatalogConfig {
    /// Folder of AIP documents (the embedded catalog).
    pub root: PathBuf,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            root: ".data/catalog".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RepositoryConfig {
    /// Every location the catalog names, by its `locationId`: how it is
    /// read and how much it is preferred. A copy at a location not listed
    /// here is unreadable (skipped, never fatal by itself).
    pub locations: BTreeMap<String, LocationConfig>,
    /// Cap on the read rate from a location per download, to spare the bit
    /// repository (tape recalls, shared disks); none when absent.
    pub max_read_bytes_per_sec: Option<u64>,
    /// Replaced by `[repository.locations.disk]`: refused when set, so an
    /// old configuration is not silently ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_root: Option<PathBuf>,
    /// Replaced by `[repository.locations.s3]` (see `disk_root`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        let locations = [
            (
                "disk".to_owned(),
                LocationConfig::Disk {
                    root: ".data/repository".into(),
                    preference: None,
                },
            ),
            (
                "s3".to_owned(),
                LocationConfig::S3(S3LocationConfig {
                    bucket: "repository".into(),
                    ..Default::default()
                }),
            ),
        ];
        Self {
            locations: locations.into_iter().collect(),
            max_read_bytes_per_sec: None,
            disk_root: None,
            s3_bucket: None,
        }
    }
}

impl RepositoryConfig {
    /// The root of disk location `id`, if it is one.
    pub fn disk_root(&self, id: &str) -> Option<&std::path::Path> {
        match self.locations.get(id) {
            Some(LocationConfig::Disk { root, .. }) => Some(root),
            _ => None,
        }
    }

    /// The bucket of S3 location `id`, if it is one.
    pub fn s3_bucket(&self, id: &str) -> Option<&str> {
        match self.locations.get(id) {
            Some(LocationConfig::S3(s3)) => Some(&s3.bucket),
            _ => None,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.disk_root.is_none() && self.s3_bucket.is_none(),
            "repository.disk_root and repository.s3_bucket are replaced by \
             [repository.locations.<locationId>] entries (kind = \"disk\" with root, \
             kind = \"s3\" with bucket)"
        );
        for (id, location) in &self.locations {
            anyhow::ensure!(
                !id.is_empty() && !id.chars().any(char::is_control),
                "repository.locations: {id:?} is no location id"
            );
            match location {
                LocationConfig::Disk { root, .. } => anyhow::ensure!(
                    !root.as_os_str().is_empty(),
                    "repository.locations.{id}: a disk location needs its root"
                ),
                LocationConfig::S3(s3) => anyhow::ensure!(
                    !s3.bucket.is_empty(),
                    "repository.locations.{id}: an s3 location needs its bucket"
                ),
                LocationConfig::Tape(t) => t.validate(id)?,
            }
        }
        Ok(())
    }
}

/// One location of the bit repository, by kind.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LocationConfig {
    /// A folder: the copy's `filePath` is relative to `root`.
    Disk {
        root: PathBuf,
        /// Lower is tried first (default 10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preference: Option<u32>,
    },
    /// A bucket: the copy's `filePath` is its key.
    S3(S3LocationConfig),
    /// A tape system (WLCG Tape REST API).
    Tape(TapeLocationConfig),
}

impl LocationConfig {
    pub fn kind(&self) -> LocationKind {
        match self {
            Self::Disk { .. } => LocationKind::Disk,
            Self::S3(_) => LocationKind::S3,
            Self::Tape(_) => LocationKind::Tape,
        }
    }

    /// Lower is tried first; the kind's default unless configured.
    pub fn preference(&self) -> u32 {
        let configured = match self {
            Self::Disk { preference, .. } => *preference,
            Self::S3(s3) => s3.preference,
            Self::Tape(t) => t.preference,
        };
        configured.unwrap_or_else(|| self.kind().default_preference())
    }
}

/// An S3 location: its own endpoint and credentials, which default to the
/// delivery S3's (`[s3]`) when left out.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct S3LocationConfig {
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(
        default,
        serialize_with = "expose_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_key: Option<SecretString>,
    /// Lower is tried first (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<u32>,
}

impl S3LocationConfig {
    /// The S3 client settings of this location: the delivery S3's, with
    /// this location's endpoint and credentials where given.
    pub fn client_config(&self, delivery: &S3Config) -> S3Config {
        let mut c = delivery.clone();
        if let Some(e) = &self.endpoint {
            c.endpoint.clone_from(e);
            c.public_endpoint = None;
        }
        if let Some(r) = &self.region {
            c.region.clone_from(r);
        }
        if let Some(a) = &self.access_key {
            c.access_key.clone_from(a);
        }
        if let Some(s) = &self.secret_key {
            c.secret_key = s.clone();
        }
        // Buckets of the repository are never created or owned by us.
        c.expected_bucket_owner = None;
        c
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct S3Config {
    pub endpoint: String,
    /// Endpoint clients download from; presigned URLs are signed for its host.
    pub public_endpoint: Option<String>,
    pub region: String,
    pub access_key: String,
    #[serde(serialize_with = "expose")]
    pub secret_key: SecretString,
    /// Bucket for clients without one of their own.
    pub default_bucket: String,
    /// Multipart part size; larger files get larger parts (S3 allows
    /// 10,000 parts), with fewer in flight so memory stays the same.
    pub part_size_mib: u64,
    /// Parts uploaded at once. Memory per transfer is about
    /// (upload_concurrency + 1) × part size. Measured on SeaweedFS
    /// (scripts/bench.sh): 8 MiB × 4 keeps up with `aws s3 cp` at ~135 MiB RSS.
    pub upload_concurrency: usize,
    /// How long one S3 request may take before it fails and is retried (a
    /// server that stopped answering must not hang a transfer).
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Each part goes with its `Content-MD5`, which S3 checks; off only to
    /// measure what that costs (`scripts/bench.sh`).
    pub content_md5: bool,
    /// The account that must own the clients' buckets (AWS account id):
    /// sent with every request, and buckets are then never created.
    pub expected_bucket_owner: Option<String>,
}

impl S3Config {
    pub fn public_endpoint(&self) -> &str {
        self.public_endpoint.as_deref().unwrap_or(&self.endpoint)
    }
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:8333".into(),
            public_endpoint: None,
            region: "us-east-1".into(),
            access_key: "dissemination".into(),
            secret_key: SecretString::from("dissemination-secret"),
            default_bucket: "dissemination".into(),
            part_size_mib: 8,
            upload_concurrency: 4,
            request_timeout_ms: 120_000,
            connect_timeout_ms: 5_000,
            content_md5: true,
            expected_bucket_owner: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct WorkerConfig {
    pub identity: Option<String>,
    /// On shutdown, how long running activities may take to finish.
    pub graceful_shutdown_secs: u64,
    /// Longest interval between heartbeats sent to the server (the SDK
    /// otherwise waits up to 0.8 × the heartbeat timeout): how much a retry
    /// after a crash may have to fetch again.
    pub heartbeat_throttle_ms: u64,
    /// Prometheus endpoint (`/metrics`) for the worker's own and the
    /// Temporal SDK's metrics, e.g. `127.0.0.1:9464`; unset: none.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The worker's probes (`/healthz`, `/readyz`: every repository
    /// location readable), e.g. `127.0.0.1:9465`; unset: none.
    pub health_addr: Option<std::net::SocketAddr>,
    /// AIPs up to this many bytes in all move inside their workflow's task
    /// (local activities: no activity task, fewer workflow tasks); larger
    /// ones in an activity of their own (heartbeats, resume). 0: none.
    pub local_max_bytes: u64,
    /// Local activities a worker runs at once, per band (small AIPs).
    pub local_slots: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            identity: None,
            graceful_shutdown_secs: 30,
            heartbeat_throttle_ms: 2_000,
            metrics_addr: None,
            health_addr: None,
            local_max_bytes: 1024 * 1024,
            local_slots: 20,
        }
    }
}

/// A priority band: priorities up to `max_priority` share a task queue.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct BandConfig {
    pub name: String,
    pub max_priority: u8,
    /// Concurrent activities a worker runs for this band.
    #[serde(default = "default_slots")]
    pub slots: usize,
}

fn default_slots() -> usize {
    4
}

impl BandConfig {
    pub fn defaults() -> Vec<Self> {
        [("urgent", 10), ("high", 40), ("normal", 70), ("low", 100)]
            .into_iter()
            .map(|(name, max_priority)| Self {
                name: name.into(),
                max_priority,
                slots: default_slots(),
            })
            .collect()
    }
}

/// Timeouts and retry schedules, all in milliseconds unless named otherwise.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Timings {
    pub heartbeat_timeout_ms: u64,
    pub transfer_timeout_ms: u64,
    pub short_activity_timeout_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_interval_ms: u64,
    /// Attempts of short steps in executions started before retries were
    /// timed (kept for them; new work retries for `retry_for_ms`).
    pub retry_max_attempts: u32,
    /// How long infrastructure errors (S3, the repository, Temporal, a lost
    /// worker) are retried without progress before a dissemination fails.
    pub retry_for_ms: u64,
    /// How long a repository copy that cannot be opened (absent, refused,
    /// an I/O error) is tried again before the next location.
    pub unreadable_retry_ms: u64,
    /// Link regenerations allowed per dissemination.
    pub max_link_regenerations: u32,
    pub webhook_request_timeout_ms: u64,
    pub webhook_retry_initial_ms: u64,
    pub webhook_retry_max_interval_ms: u64,
    /// Total time webhook delivery is retried (5 days).
    pub webhook_give_up_after_ms: u64,
    pub link_lifetime_secs: u64,
    /// How long delivered objects are kept before the workflow deletes them.
    pub retention_secs: u64,
    /// A recall from tape not done after this long makes that copy
    /// unreadable (the next copy is tried; none left: STAGING_FAILED).
    pub stage_timeout_ms: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            heartbeat_timeout_ms: 30_000,
            transfer_timeout_ms: 12 * 3600 * 1000,
            short_activity_timeout_ms: 60_000,
            retry_initial_ms: 1_000,
            retry_max_interval_ms: 60_000,
            retry_max_attempts: 10,
            retry_for_ms: 6 * 3600 * 1000,
            unreadable_retry_ms: 5 * 60 * 1000,
            max_link_regenerations: 100,
            webhook_request_timeout_ms: 10_000,
            webhook_retry_initial_ms: 5_000,
            webhook_retry_max_interval_ms: 3600 * 1000,
            webhook_give_up_after_ms: 5 * 24 * 3600 * 1000,
            link_lifetime_secs: 24 * 3600,
            retention_secs: 7 * 24 * 3600,
            stage_timeout_ms: 48 * 3600 * 1000,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClientConfig {
    pub webhook_url: Option<String>,
    /// `whsec_<base64>`; several secrets separated by spaces during rotation.
    #[serde(serialize_with = "expose_opt")]
    pub webhook_secret: Option<SecretString>,
    pub bucket: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct LogConfig {
    /// `text` for people, `json` for machines.
    pub format: String,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub filter: String,
}

/// BagIt deliveries (`format: "bagit"`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct BagitConfig {
    /// `Source-Organization` in every bag's `bag-info.txt`.
    pub source_organization: String,
}

impl Default for BagitConfig {
    fn default() -> Self {
        Self {
            source_organization: "Dissemination Service (local)".into(),
        }
    }
}

/// Trace export. The same keys for the embedded default (the bundled trace
/// viewer) and for deployments (a real Jaeger or OpenTelemetry collector).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// OTLP/gRPC endpoint, e.g. `http://127.0.0.1:4317`; unset: no export.
    pub otlp_endpoint: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bands_cover_every_priority() {
        let mut c = Config::default();
        c.fill_defaults();
        c.validate().expect("defaults valid");
        for p in 1..=100 {
            let band = c.band_for(Priority::new(p).expect("in range"));
            assert!(p as u8 <= band.max_priority);
        }
        assert_eq!(c.band_for(Priority::new(1).expect("ok")).name, "urgent");
        assert_eq!(c.band_for(Priority::new(50).expect("ok")).name, "normal");
        assert_eq!(
            c.band_queue(c.band_for(Priority::new(100).expect("ok"))),
            "dissemination-low"
        );
    }

    #[test]
    fn locations_come_from_the_environment_and_old_keys_are_refused() {
        let env = |pairs: &[(&str, &str)]| {
            Config::from_env_vars(
                pairs
                    .iter()
                    .map(|(k, v)| (format!("DISSEMINATION_{k}"), (*v).to_owned())),
            )
        };
        let c = env(&[
            ("REPOSITORY__LOCATIONS__DISK__KIND", "disk"),
            ("REPOSITORY__LOCATIONS__DISK__ROOT", "/mnt/aips"),
            ("REPOSITORY__LOCATIONS__HPSS__KIND", "tape"),
            ("REPOSITORY__LOCATIONS__HPSS__PREFERENCE", "95"),
            (
                "REPOSITORY__LOCATIONS__HPSS__API_URL",
                "https://tape.example.org/api/v1",
            ),
        ])
        .expect("valid");
        assert_eq!(
            c.repository.disk_root("disk"),
            Some(std::path::Path::new("/mnt/aips"))
        );
        assert_eq!(
            c.repository.locations.len(),
            2,
            "the table replaces the default one"
        );
        assert_eq!(c.repository.locations["hpss"].preference(), 95);
        assert_eq!(c.repository.locations["hpss"].kind(), LocationKind::Tape);
        let old = env(&[("REPOSITORY__DISK_ROOT", "/mnt/aips")]).err();
        assert!(old.is_some_and(|e| e.to_string().contains("[repository.locations.")));
        assert!(
            env(&[("REPOSITORY__LOCATIONS__DISK__ROOT", "/x")]).is_err(),
            "kind is required"
        );
    }

    #[test]
    fn link_lifetime_over_seven_days_is_refused() {
        let mut c = Config::default();
        c.fill_defaults();
        c.timings.link_lifetime_secs = 8 * 24 * 3600;
        assert!(c.validate().is_err());
    }
}

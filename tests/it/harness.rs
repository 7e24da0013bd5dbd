//! Brings up real components for a test: Temporal dev server and SeaweedFS
//! (child processes on free ports, killed by PID on drop), a webhook
//! receiver, the worker (own thread and runtime) and the API, all configured
//! with shortened timers.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use anyhow::Context;
use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};
use base64::Engine;
use model::config::{ClientConfig, Config};
use std::{
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::oneshot;

pub const CLIENT: &str = "client-a";
pub const OTHER_CLIENT: &str = "client-b";
pub const ISSUER: &str = "http://localhost/realms/dps";
pub const AUDIENCE: &str = "dissemination-service";

/// The folder with the `temporal` and `weed` binaries (scripts/install-tools.sh).
pub fn tools_bin() -> PathBuf {
    std::env::var_os("DISSEMINATION_TOOLS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin"))
}

/// `n` distinct free loopback ports (held open together, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<StdListener> = (0..n)
        .map(|_| StdListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Free ports whose +10000 neighbour (SeaweedFS's gRPC port) is free too:
/// both are held while choosing, so parallel tests do not collide.
fn free_ports_below(n: usize, max: u16) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let a = StdListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < max {
            if let Ok(b) = StdListener::bind(("127.0.0.1", p + 10_000)) {
                ports.push(p);
                held.push(b);
            }
        }
        held.push(a);
    }
    ports
}

/// `n` consecutive free ports, all held while choosing.
fn free_block(n: u16) -> u16 {
    loop {
        let first = StdListener::bind("127.0.0.1:0").unwrap();
        let p = first.local_addr().unwrap().port();
        if p > 65_000 {
            continue;
        }
        let rest: Vec<_> = (1..n)
            .filter_map(|i| StdListener::bind(("127.0.0.1", p + i)).ok())
            .collect();
        if rest.len() == usize::from(n - 1) {
            return p;
        }
    }
}

/// Starts the Temporal dev server (file-backed, so a restart keeps every
/// execution) on fresh free ports; returns it, its arguments and address.
fn start_temporal(dir: &Path, attempt: u32) -> anyhow::Result<(ChildGuard, Vec<String>, String)> {
    let port = free_block(8);
    let [ui, http, metrics] = free_ports(3)[..] else {
        unreachable!()
    };
    let mut cmd = Command::new(tools_bin().join("temporal"));
    cmd.args([
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--log-level",
        "error",
    ])
    .args(["--port", &port.to_string(), "--ui-port", &ui.to_string()])
    .args([
        "--http-port",
        &http.to_string(),
        "--metrics-port",
        &metrics.to_string(),
    ]);
    for sa in SEARCH_ATTRIBUTES {
        cmd.args(["--search-attribute", &format!("{sa}=Keyword")]);
    }
    cmd.args([
        "--db-filename",
        dir.join(format!("temporal-{attempt}.db")).to_str().unwrap(),
    ]);
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let guard = spawn(
        "temporal",
        &mut cmd,
        &dir.join(format!("temporal-{attempt}.log")),
    )?;
    Ok((guard, args, format!("http://127.0.0.1:{port}")))
}

/// Whether a Temporal frontend answers at `address` within `timeout`.
async fn temporal_answers(address: &str, timeout: Duration) -> bool {
    let cfg = model::config::TemporalConfig {
        address: address.to_owned(),
        ..Default::default()
    };
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if workflows::client::connect(&cfg, "test-probe").await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Starts `weed mini` on fresh free ports; returns it, its arguments and
/// the S3 endpoint.
fn start_weed(dir: &Path, attempt: u32) -> anyhow::Result<(ChildGuard, Vec<String>, String)> {
    let p = free_ports_below(6, 55000);
    let s3_config = dir.join("s3.json");
    let defaults = model::config::S3Config::default();
    std::fs::write(
        &s3_config,
        serde_json::json!({"identities": [{"name": "svc",
            "credentials": [{"accessKey": defaults.access_key,
                "secretKey": secrecy::ExposeSecret::expose_secret(&defaults.secret_key)}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]})
        .to_string(),
    )?;
    let weed_dir = dir.join(format!("weed-data-{attempt}"));
    std::fs::create_dir_all(&weed_dir)?;
    let mut cmd = Command::new(tools_bin().join("weed"));
    cmd.arg("mini")
        .arg(format!("-dir={}", weed_dir.display()))
        .args([
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
        ])
        .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
        .arg(format!("-s3.config={}", s3_config.display()))
        .arg(format!("-s3.port={}", p[0]))
        .arg(format!("-master.port={}", p[1]))
        .arg(format!("-volume.port={}", p[2]))
        .arg(format!("-filer.port={}", p[3]))
        .arg(format!("-admin.port={}", p[4]))
        .arg(format!("-metricsPort={}", p[5]));
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let guard = spawn("weed", &mut cmd, &dir.join(format!("weed-{attempt}.log")))?;
    Ok((guard, args, format!("http://127.0.0.1:{}", p[0])))
}

/// Whether an S3 server answers at `endpoint` within `timeout`.
async fn s3_answers(endpoint: &str, timeout: Duration) -> bool {
    let s3 = activities::s3::S3::new(&model::config::S3Config {
        endpoint: endpoint.to_owned(),
        ..Default::default()
    });
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if s3.client().list_buckets().send().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A child process stopped by PID when dropped.
pub struct ChildGuard {
    pub name: &'static str,
    child: Child,
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> anyhow::Result<ChildGuard> {
    let out = std::fs::File::create(log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {name} (run scripts/install-tools.sh first)"))?;
    Ok(ChildGuard { name, child })
}

/// Real Temporal and S3, private to one test.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub temporal_address: String,
    pub s3_endpoint: String,
    temporal: Option<ChildGuard>,
    temporal_args: Vec<String>,
    weed: Option<ChildGuard>,
    weed_args: Vec<String>,
}

pub const SEARCH_ATTRIBUTES: [&str; 4] =
    ["ArchiveId", "ClientId", "ContractId", "DisseminationStatus"];

impl Stack {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        // The dev server also listens next to its frontend port (internal
        // services), so a whole block is chosen free; a start that still
        // collides with a parallel test is retried on new ports.
        let mut started = None;
        for attempt in 1..=3 {
            let (guard, args, address) = start_temporal(dir.path(), attempt)?;
            if temporal_answers(&address, Duration::from_secs(30)).await {
                started = Some((guard, args, address));
                break;
            }
        }
        let Some((temporal, temporal_args, temporal_address)) = started else {
            let log =
                std::fs::read_to_string(dir.path().join("temporal-3.log")).unwrap_or_default();
            anyhow::bail!("the Temporal dev server did not start in 3 attempts; last log:\n{log}");
        };
        let temporal = Some(temporal);

        // SeaweedFS also opens random internal ports (each with a +10000
        // twin), which can collide with another test's: retry on new ports.
        let mut started = None;
        for attempt in 1..=3 {
            let (guard, args, endpoint) = start_weed(dir.path(), attempt)?;
            if s3_answers(&endpoint, Duration::from_secs(30)).await {
                started = Some((guard, args, endpoint));
                break;
            }
        }
        let Some((weed, weed_args, s3_endpoint)) = started else {
            let log = std::fs::read_to_string(dir.path().join("weed-3.log")).unwrap_or_default();
            anyhow::bail!("SeaweedFS did not start in 3 attempts; last log:\n{log}");
        };
        let weed = Some(weed);

        // Both servers already answered above.
        Ok(Self {
            temporal_address,
            s3_endpoint,
            dir,
            temporal,
            temporal_args,
            weed,
            weed_args,
        })
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let timeout = Duration::from_secs(90);
        let temporal_ok = temporal_answers(&self.temporal_address, timeout).await;
        let s3_ok = s3_answers(&self.s3_endpoint, timeout).await;
        if temporal_ok && s3_ok {
            return Ok(());
        }
        let tail = |name: &str| {
            let log = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            log.lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        };
        anyhow::bail!(
            "stack not ready (temporal {temporal_ok}, s3 {s3_ok}); logs in {}\n--- temporal.log\n{}\n--- weed.log\n{}",
            self.dir.path().display(),
            tail("temporal-1.log"),
            tail("weed-1.log")
        )
    }

    /// Stops the S3 server (an outage); `start_s3` brings it back, same data.
    pub fn stop_s3(&mut self) {
        self.weed = None;
    }

    /// Same ports and data. SeaweedFS also picks internal ports of its own,
    /// which another test's server may hold meanwhile: retried, and each
    /// start picks them anew.
    pub async fn start_s3(&mut self) -> anyhow::Result<()> {
        for attempt in 1..=3 {
            let mut cmd = Command::new(tools_bin().join("weed"));
            cmd.args(&self.weed_args);
            self.weed = Some(spawn(
                "weed",
                &mut cmd,
                &self.dir.path().join(format!("weed-restart-{attempt}.log")),
            )?);
            if s3_answers(&self.s3_endpoint, Duration::from_secs(30)).await {
                return Ok(());
            }
            self.weed = None;
        }
        self.wait_ready().await
    }

    /// Freezes the S3 server (SIGSTOP): connections open, nothing answers.
    pub fn pause_s3(&self) {
        signal(self.weed.as_ref().expect("S3 runs").pid(), "-STOP");
    }

    pub fn resume_s3(&self) {
        signal(self.weed.as_ref().expect("S3 runs").pid(), "-CONT");
    }

    /// Stops the Temporal server (an outage); `start_temporal` brings it back.
    pub fn stop_temporal(&mut self) {
        self.temporal = None;
    }

    pub async fn start_temporal(&mut self) -> anyhow::Result<()> {
        self.restart_temporal().await
    }

    /// Stops and starts the Temporal server on the same port and database.
    pub async fn restart_temporal(&mut self) -> anyhow::Result<()> {
        self.temporal = None;
        let mut cmd = Command::new(tools_bin().join("temporal"));
        cmd.args(&self.temporal_args);
        self.temporal = Some(spawn(
            "temporal",
            &mut cmd,
            &self.dir.path().join("temporal-restart.log"),
        )?);
        self.wait_ready().await
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// One request a webhook receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

/// A status code to answer with, and an optional `Retry-After`; code 0
/// means "answer 204 after the given number of milliseconds".
pub type PlannedAnswer = (u16, Option<String>);

/// A real HTTP server recording webhook deliveries; answers from a plan of
/// status codes, then 200.
#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub plan: Arc<Mutex<Vec<PlannedAnswer>>>,
    pub url: String,
    addr: Option<std::net::SocketAddr>,
    stop: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    r.received.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let next = {
        let mut plan = r.plan.lock().unwrap();
        if plan.is_empty() {
            None
        } else {
            Some(plan.remove(0))
        }
    };
    let mut out = HeaderMap::new();
    match next {
        Some((0, Some(delay_ms))) => {
            // A slow endpoint: answers, but only after the delay.
            tokio::time::sleep(Duration::from_millis(delay_ms.parse().unwrap())).await;
            (StatusCode::NO_CONTENT, out)
        }
        Some((code, retry_after)) => {
            if let Some(v) = retry_after {
                out.insert("retry-after", v.parse().unwrap());
            }
            (StatusCode::from_u16(code).unwrap(), out)
        }
        None => (StatusCode::NO_CONTENT, out),
    }
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut r = Receiver {
            url: format!("http://{}/hooks/dissemination", listener.local_addr()?),
            ..Default::default()
        };
        r.addr = Some(listener.local_addr()?);
        r.serve(listener);
        Ok(r)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/hooks/dissemination", post(receive))
            .with_state(self.clone());
        let (tx, rx) = oneshot::channel::<()>();
        *self.stop.lock().unwrap() = Some(tx);
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
    }

    /// The endpoint goes down: connections are refused.
    pub async fn go_down(&self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// Back on the same address.
    pub async fn come_back(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr.unwrap())
            .await
            .unwrap();
        self.serve(listener);
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

pub struct Options {
    pub with_worker: bool,
    /// Requests per minute per client (the burst is a tenth of it).
    pub rate_limit_per_minute: u32,
    pub retention_secs: u64,
    pub max_read_bytes_per_sec: Option<u64>,
    pub base_path: String,
    /// Activity slots of every band (default: the configured ones).
    pub band_slots: Option<usize>,
    /// First webhook retry backoff (default 200 ms).
    pub webhook_retry_initial_ms: Option<u64>,
    /// How long the endpoint has to answer (default 10 s).
    pub webhook_request_timeout_ms: Option<u64>,
    /// How long infrastructure errors are retried (default 20 s).
    pub retry_for_ms: Option<u64>,
    /// How long an unreadable copy is tried again (default 2 s).
    pub unreadable_retry_ms: Option<u64>,
    /// Last changes to the configuration, before anything starts.
    pub configure: Option<Configure>,
}

/// A change to the configuration a test makes before anything starts.
pub type Configure = Arc<dyn Fn(&mut Config) + Send + Sync>;

impl Default for Options {
    fn default() -> Self {
        Self {
            with_worker: true,
            rate_limit_per_minute: 60_000,
            retention_secs: 3600,
            max_read_bytes_per_sec: None,
            base_path: String::new(),
            band_slots: None,
            webhook_retry_initial_ms: None,
            webhook_request_timeout_ms: None,
            retry_for_ms: None,
            unreadable_retry_ms: None,
            configure: None,
        }
    }
}

/// The service under test, on its own stack.
pub struct TestApp {
    pub stack: Stack,
    pub cfg: Arc<Config>,
    pub api_url: String,
    pub http: reqwest::Client,
    pub receiver: Receiver,
    pub webhook_secret: String,
    pub key_pem: String,
    pub jwks: serde_json::Value,
    api_stop: Option<oneshot::Sender<()>>,
    worker: Option<(
        oneshot::Sender<()>,
        std::thread::JoinHandle<anyhow::Result<()>>,
    )>,
}

pub fn test_config(stack: &Stack, receiver: &Receiver, secret: &str) -> Config {
    let root = stack.dir.path();
    let mut cfg = Config::default();
    cfg.fill_defaults();
    cfg.temporal.address = stack.temporal_address.clone();
    cfg.temporal.query_timeout_ms = 1000;
    // Two test stacks share two cores: calls may be slow without Temporal
    // being down (the Temporal-down test sets the production budget).
    cfg.temporal.rpc_timeout_ms = 5_000;
    cfg.api.metrics_listen = "127.0.0.1:0".into();
    cfg.auth.jwks_path = root.join("auth/jwks.json");
    cfg.auth.issuer = Some(ISSUER.into());
    cfg.auth.audience = Some(AUDIENCE.into());
    cfg.catalog.root = root.join("catalog");
    cfg.repository.disk_root = root.join("repository");
    cfg.worker.graceful_shutdown_secs = 2;
    cfg.worker.heartbeat_throttle_ms = 500;
    cfg.s3.endpoint = stack.s3_endpoint.clone();
    cfg.s3.part_size_mib = 5;
    cfg.timings.heartbeat_timeout_ms = 5_000;
    cfg.timings.retry_initial_ms = 200;
    cfg.timings.retry_max_interval_ms = 1_000;
    cfg.timings.retry_max_attempts = 5;
    cfg.timings.retry_for_ms = 20_000;
    cfg.timings.unreadable_retry_ms = 2_000;
    cfg.s3.request_timeout_ms = 20_000;
    cfg.s3.connect_timeout_ms = 2_000;
    cfg.timings.host_schedule_to_start_ms = 30_000;
    cfg.timings.webhook_retry_initial_ms = 200;
    cfg.timings.webhook_retry_max_interval_ms = 1_000;
    cfg.timings.webhook_give_up_after_ms = 60_000;
    cfg.timings.link_lifetime_secs = 3600;
    cfg.clients.insert(
        CLIENT.into(),
        ClientConfig {
            webhook_url: Some(receiver.url.clone()),
            webhook_secret: Some(secret.to_owned().into()),
            bucket: Some("deliveries-client-a".into()),
        },
    );
    cfg.clients
        .insert(OTHER_CLIENT.into(), ClientConfig::default());
    cfg
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Self {
        // Logs only: the trace test exports from API and worker processes.
        drop(model::telemetry::init(
            &model::config::LogConfig {
                format: "text".into(),
                filter: "warn".into(),
            },
            &Default::default(),
            "e2e-tests",
        ));
        let stack = Stack::start().await.expect("stack starts");
        let receiver = Receiver::start().await.expect("receiver starts");
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(rand_bytes())
        );
        let mut cfg = test_config(&stack, &receiver, &secret);
        cfg.api.rate_limit_per_minute = opts.rate_limit_per_minute;
        cfg.api.rate_limit_burst = (opts.rate_limit_per_minute / 10).max(1);
        cfg.timings.retention_secs = opts.retention_secs;
        cfg.repository.max_read_bytes_per_sec = opts.max_read_bytes_per_sec;
        cfg.api.base_path = opts.base_path.clone();
        if let Some(ms) = opts.webhook_retry_initial_ms {
            cfg.timings.webhook_retry_initial_ms = ms;
            cfg.timings.webhook_retry_max_interval_ms = 8 * ms;
        }
        if let Some(ms) = opts.webhook_request_timeout_ms {
            cfg.timings.webhook_request_timeout_ms = ms;
        }
        if let Some(ms) = opts.retry_for_ms {
            cfg.timings.retry_for_ms = ms;
        }
        if let Some(ms) = opts.unreadable_retry_ms {
            cfg.timings.unreadable_retry_ms = ms;
        }
        if let Some(slots) = opts.band_slots {
            cfg.bands.iter_mut().for_each(|b| b.slots = slots);
        }
        if let Some(configure) = &opts.configure {
            configure(&mut cfg);
        }
        let pair = api::auth::dev::generate("test-key").expect("key");
        std::fs::create_dir_all(cfg.auth.jwks_path.parent().unwrap()).unwrap();
        std::fs::write(&cfg.auth.jwks_path, pair.jwks.to_string()).unwrap();
        worker::demo::seed(&cfg).await.expect("demo AIPs");
        let cfg = Arc::new(cfg);

        let worker = opts.with_worker.then(|| spawn_worker(cfg.clone()));
        let state = api::build_state(cfg.clone()).await.expect("api state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!(
            "http://{}{}",
            listener.local_addr().unwrap(),
            opts.base_path
        );
        let (api_stop, rx) = oneshot::channel::<()>();
        tokio::spawn(api::run(state, listener, async move {
            let _ = rx.await;
        }));
        Self {
            stack,
            cfg,
            api_url,
            http: reqwest::Client::new(),
            receiver,
            webhook_secret: secret,
            key_pem: pair.private_pem,
            jwks: pair.jwks,
            api_stop: Some(api_stop),
            worker,
        }
    }

    pub fn token(&self, client: &str, roles: &[&str]) -> String {
        self.token_with(client, roles, 3600, 0)
    }

    pub fn token_with(
        &self,
        client: &str,
        roles: &[&str],
        expires_in: i64,
        not_before_in: i64,
    ) -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        api::auth::dev::mint(
            &self.key_pem,
            "test-key",
            &api::auth::dev::TokenSpec {
                client_id: client,
                roles: &roles,
                issuer: ISSUER,
                audience: Some(AUDIENCE),
                expires_in,
                not_before_in,
            },
        )
        .unwrap()
    }

    /// A token for CLIENT with read access to the demo contract.
    pub fn client_token(&self) -> String {
        self.token(CLIENT, &["2d17_R"])
    }

    pub async fn post(&self, token: Option<&str>, body: serde_json::Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/v1/disseminations", self.api_url))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// `DELETE /v1/disseminations/{id}`: the client cancels.
    pub async fn cancel(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}/v1/disseminations/{id}", self.api_url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/disseminations/{id}", self.api_url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// The audit trail (GET …/events), as (type, outcome, location) triples
    /// plus the raw items.
    pub async fn events(&self, token: &str, id: &str) -> Vec<serde_json::Value> {
        // A worker answers; right after an outage it may still be
        // reconnecting (503 with Retry-After): asked again, bounded.
        let deadline = Instant::now() + Duration::from_secs(30);
        let res = loop {
            let res = self
                .http
                .get(format!("{}/v1/disseminations/{id}/events", self.api_url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            if res.status() != 503 || Instant::now() > deadline {
                break res;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        body["items"].as_array().unwrap().clone()
    }

    /// POSTs a dissemination and returns its id (asserting 201).
    pub async fn create(&self, token: &str, archive_id: &str, priority: u8) -> String {
        let res = self
            .post(
                Some(token),
                serde_json::json!({"archiveId": archive_id, "priority": priority}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let body: serde_json::Value = res.json().await.unwrap();
        body["disseminationId"].as_str().unwrap().to_owned()
    }

    /// Creates a dissemination and waits (bounded) for `status`.
    pub async fn create_until(
        &self,
        token: &str,
        archive_id: &str,
        status: &str,
    ) -> (String, serde_json::Value) {
        let id = self.create(token, archive_id, 50).await;
        let (_, body) = self
            .poll_until(token, &id, Duration::from_secs(60), |b| {
                b["status"] == status
            })
            .await;
        (id, body)
    }

    /// Polls GET until `done` holds for the body (bounded); returns every
    /// distinct status seen, in order, and the last body.
    pub async fn poll_until(
        &self,
        token: &str,
        id: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> (Vec<String>, serde_json::Value) {
        let deadline = Instant::now() + timeout;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let res = self.get(token, id).await;
            if res.status() == 503 && Instant::now() < deadline {
                // A dependency coming back (Temporal restarted): as a client
                // would, honour Retry-After (shortened here) and ask again.
                assert!(
                    res.headers().contains_key("retry-after"),
                    "503 without Retry-After"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            assert_eq!(res.status(), 200, "GET {id}");
            let body: serde_json::Value = res.json().await.unwrap();
            let status = body["status"].as_str().unwrap_or_default().to_owned();
            if seen.last() != Some(&status) {
                seen.push(status);
            }
            if done(&body) {
                return (seen, body);
            }
            assert!(
                Instant::now() < deadline,
                "timed out; statuses seen: {seen:?}; last: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (bounded) until the receiver has at least `n` requests.
    pub async fn wait_webhooks(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.receiver.all();
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} webhook(s), got {}",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn s3(&self) -> activities::s3::S3 {
        activities::s3::S3::new(&self.cfg.s3)
    }

    /// Keys under `prefix` in a bucket (empty when the bucket does not exist).
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        match self
            .s3()
            .client()
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
        {
            Ok(out) => out
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect(),
            Err(_) => vec![],
        }
    }

    /// A Temporal client on this test's server.
    /// Keys of the objects a dissemination left in the client's bucket.
    pub async fn delivered_keys(&self, id: &str) -> Vec<String> {
        self.list_keys(
            &self.cfg.client_bucket(CLIENT),
            &format!("dissemination/{id}/"),
        )
        .await
    }

    /// The audit trail's event types, oldest first.
    pub async fn event_types(&self, token: &str, id: &str) -> Vec<String> {
        self.events(token, id)
            .await
            .iter()
            .map(|e| e["eventType"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Runs the `temporal` CLI against this stack's server; asserts success.
    pub fn temporal_cli(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new(tools_bin().join("temporal"))
            .args(args)
            .args([
                "--address",
                self.stack.temporal_address.trim_start_matches("http://"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "temporal {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Moves the AIP's only copy away; it comes back after `gone`.
    pub fn hide_only_copy(&self, archive_id: &str, gone: Duration) -> tokio::task::JoinHandle<()> {
        let doc = self.catalog_doc(archive_id);
        assert_eq!(doc.repository_files[0].locations.len(), 1, "the only copy");
        let path = self
            .cfg
            .repository
            .disk_root
            .join(&doc.repository_files[0].locations[0].file_path);
        let hidden = path.with_extension("hidden");
        std::fs::rename(&path, &hidden).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(gone).await;
            std::fs::rename(&hidden, &path).unwrap();
        })
    }

    pub async fn stack_client(&self) -> temporalio_client::Client {
        workflows::client::connect(&self.cfg.temporal, "test")
            .await
            .unwrap()
    }

    pub fn catalog_doc(&self, archive_id: &str) -> model::catalog::Aip {
        let path = self.cfg.catalog.root.join(format!("{archive_id}.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }
}

fn rand_bytes() -> [u8; 24] {
    let id = model::DisseminationId::generate();
    let mut out = [0u8; 24];
    out[..22].copy_from_slice(id.as_str().as_bytes());
    out
}

/// The whole configuration as a TOML file, for the service's own binaries:
/// serialized from the same `Config`, so no key is left out.
pub fn write_config_toml(cfg: &Config, name: &str) -> PathBuf {
    let dir = cfg.catalog.root.parent().unwrap().to_owned();
    let toml_path = dir.join(format!("{name}.toml"));
    std::fs::write(&toml_path, toml::to_string(cfg).expect("config serializes")).unwrap();
    toml_path
}

/// One of the service's binaries as its own process, logging to `{name}.log`.
fn spawn_service(cfg: &Config, name: &'static str, bin: &str, command: &str) -> ChildGuard {
    let toml_path = write_config_toml(cfg, name);
    let dir = toml_path.parent().unwrap().to_owned();
    let mut cmd = Command::new(service_bin(bin));
    cmd.args(["--config", toml_path.to_str().unwrap(), command]);
    if std::env::var_os("RUST_LOG").is_none() && cfg.log.format != "json" {
        cmd.env("RUST_LOG", "warn");
    }
    spawn(name, &mut cmd, &dir.join(format!("{name}.log"))).expect("service binary (cargo build)")
}

/// The worker as its own process (the real binary), so a test can kill it.
pub fn spawn_worker_process(cfg: &Config, name: &'static str) -> ChildGuard {
    spawn_service(cfg, name, "dissemination-worker", "run")
}

/// The API as its own process on `cfg.api.listen`, answering once ready.
pub async fn spawn_api_process(cfg: &Config, name: &'static str) -> ChildGuard {
    let guard = spawn_service(cfg, name, "dissemination-api", "serve");
    let url = format!("http://{}{}/healthz", cfg.api.listen, cfg.api.base_path);
    assert!(
        http_answers(&url, Duration::from_secs(20)).await,
        "{name} did not answer at {url}"
    );
    guard
}

/// Whether `url` answers 200 within `timeout`.
async fn http_answers(url: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if reqwest::get(url).await.is_ok_and(|r| r.status() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// One of the service's binaries in the workspace's debug build.
fn service_bin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/debug")
        .join(name)
}

/// The bundled trace viewer: (process, Jaeger UI/query URL, OTLP endpoint).
pub async fn spawn_trace_viewer(dir: &Path) -> (ChildGuard, String, String) {
    let p = free_ports(2);
    let mut cmd = Command::new(service_bin("dissemination-trace-viewer"));
    cmd.args(["--ui", &format!("127.0.0.1:{}", p[0])])
        .args(["--otlp", &format!("127.0.0.1:{}", p[1])]);
    let guard = spawn("trace-viewer", &mut cmd, &dir.join("trace-viewer.log"))
        .expect("trace viewer binary (cargo build)");
    let ui = format!("http://127.0.0.1:{}", p[0]);
    assert!(
        http_answers(&format!("{ui}/api/services"), Duration::from_secs(10)).await,
        "trace viewer did not start"
    );
    (guard, ui, format!("http://127.0.0.1:{}", p[1]))
}

impl ChildGuard {
    /// SIGKILL: no chance to finish anything.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_worker(
    cfg: Arc<Config>,
) -> (
    oneshot::Sender<()>,
    std::thread::JoinHandle<anyhow::Result<()>>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(worker::run(cfg, async move {
            let _ = rx.await;
        }))
    });
    (tx, handle)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.api_stop.take() {
            let _ = stop.send(());
        }
        if let Some((stop, handle)) = self.worker.take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
    }
}

/// Verifies a Standard Webhooks signature with the reference Python library.
pub fn verify_with_standardwebhooks(secret: &str, r: &Received) -> Result<(), String> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/py");
    let script = "import sys,json\nfrom standardwebhooks import Webhook\n\
        h=json.loads(sys.argv[2])\nbody=sys.stdin.buffer.read()\nWebhook(sys.argv[1]).verify(body,h)\nprint('ok')";
    let headers = serde_json::json!({
        "webhook-id": r.headers.get("webhook-id").and_then(|v| v.to_str().ok()),
        "webhook-timestamp": r.headers.get("webhook-timestamp").and_then(|v| v.to_str().ok()),
        "webhook-signature": r.headers.get("webhook-signature").and_then(|v| v.to_str().ok()),
    });
    let mut child = Command::new("python3")
        .args(["-c", script, secret, &headers.to_string()])
        .env("PYTHONPATH", py)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&r.body)
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

// Scale-out: several worker and API processes on one stack, and haproxy
// (Debian's, installed by scripts/install-tools.sh) in front of the API.

/// A leaked copy of `s`: the child-process names are `&'static str`, and a
/// test starts only a handful of them.
fn static_name(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The host part of a worker identity.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The identity worker `i` (from 1) of `start_workers` polls Temporal with.
pub fn worker_identity(i: usize) -> String {
    format!("worker-{i}@{}", host_name())
}

/// `n` worker processes (the real binary) on the app's configuration, each
/// with its own identity (`worker_identity(i)`), no metrics listener and
/// its own log (`worker-<i>.log` in the stack's folder).
pub fn start_workers(app: &TestApp, n: usize) -> Vec<ChildGuard> {
    (1..=n)
        .map(|i| {
            let mut cfg = (*app.cfg).clone();
            cfg.worker.identity = Some(worker_identity(i));
            cfg.worker.metrics_addr = None;
            spawn_worker_process(&cfg, static_name(format!("worker-{i}")))
        })
        .collect()
}

/// `n` API processes on the app's configuration (same JWKS, catalog,
/// Temporal, S3, clients), each on its own free port with its own metrics
/// listener and log (`api-replica-<i>.log`); returns them, once each
/// answers, and their base URLs.
pub async fn start_replicas(app: &TestApp, n: usize) -> (Vec<ChildGuard>, Vec<String>) {
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for i in 1..=n {
        let ports = free_ports(2);
        let mut cfg = (*app.cfg).clone();
        cfg.api.listen = format!("127.0.0.1:{}", ports[0]);
        cfg.api.metrics_listen = format!("127.0.0.1:{}", ports[1]);
        children.push(spawn_api_process(&cfg, static_name(format!("api-replica-{i}"))).await);
        urls.push(format!("http://{}{}", cfg.api.listen, cfg.api.base_path));
    }
    (children, urls)
}

/// The `haproxy` binary: on PATH, else where Debian puts it.
fn haproxy_bin() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/haproxy"))
}

/// haproxy round-robin over API replicas (HTTP mode: every request is
/// balanced on its own), health-checked on `/healthz`, on a free port;
/// stopped by PID when dropped. Its statistics page says which replica
/// answered how many requests.
pub struct Haproxy {
    child: ChildGuard,
    /// The one address clients use.
    pub url: String,
    /// The statistics page (`;csv` appended gives CSV).
    pub stats_url: String,
    pub config: PathBuf,
}

impl Haproxy {
    /// In front of `backends` (base URLs `http://host:port`, no path).
    pub async fn start(dir: &Path, backends: &[String]) -> Self {
        let ports = free_ports(2);
        let mut servers = String::new();
        for (i, b) in backends.iter().enumerate() {
            let u = url::Url::parse(b).expect("backend URL");
            servers.push_str(&format!(
                "  server api-{} {}:{} check inter 500ms fall 2 rise 1\n",
                i + 1,
                u.host_str().expect("backend host"),
                u.port_or_known_default().expect("backend port"),
            ));
        }
        let cfg = format!(
            "global\n  maxconn 1024\n\n\
             defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  \
             timeout server 60s\n  timeout http-request 10s\n  timeout http-keep-alive 5s\n  \
             retries 2\n  option redispatch\n\n\
             frontend api\n  bind 127.0.0.1:{api}\n  default_backend replicas\n\n\
             frontend stats\n  bind 127.0.0.1:{stats}\n  stats enable\n  stats uri /stats\n\n\
             backend replicas\n  balance roundrobin\n  option httpchk GET /healthz\n  \
             http-check expect status 200\n{servers}",
            api = ports[0],
            stats = ports[1],
        );
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, cfg).unwrap();
        let mut cmd = Command::new(haproxy_bin());
        cmd.arg("-db").arg("-f").arg(&config);
        let child = spawn("haproxy", &mut cmd, &dir.join("haproxy.log"))
            .expect("haproxy (scripts/install-tools.sh installs it with apt)");
        let url = format!("http://127.0.0.1:{}", ports[0]);
        let ready = http_answers(&format!("{url}/healthz"), Duration::from_secs(20)).await;
        let log = std::fs::read_to_string(dir.join("haproxy.log")).unwrap_or_default();
        assert!(ready, "haproxy did not answer at {url}: {log}");
        Self {
            child,
            url,
            stats_url: format!("http://127.0.0.1:{}/stats", ports[1]),
            config,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Responses each replica (`api-<i>`) gave through the proxy, from
    /// haproxy's own counters (health checks not included).
    pub async fn responses_by_server(&self) -> std::collections::BTreeMap<String, u64> {
        let csv = reqwest::get(format!("{};csv", self.stats_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (px, sv) = (col("pxname"), col("svname"));
        let codes: Vec<usize> = ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx"]
            .iter()
            .map(|c| col(c))
            .collect();
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > px && f[px] == "replicas" && f[sv].starts_with("api-"))
            .map(|f| {
                let n = codes
                    .iter()
                    .map(|&c| f[c].parse::<u64>().unwrap_or(0))
                    .sum();
                (f[sv].to_owned(), n)
            })
            .collect()
    }
}

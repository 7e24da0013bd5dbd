//! Real Temporal and S3: the dev server and SeaweedFS as child processes on
//! free loopback ports. One stack is shared by every test of the binary
//! that does not break it (each test on its own namespace and buckets); a
//! test that stops, freezes or restarts a server gets a private one.

use super::ports::{free_block, free_ports, free_ports_below};
use super::process::{signal, spawn, tools_bin, ChildGuard};
use std::{
    ops::{Deref, DerefMut},
    path::Path,
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

/// Starts the Temporal dev server (file-backed, so a restart keeps every
/// execution) on fresh free ports; returns it, its arguments and address.
fn start_temporal(
    dir: &Path,
    attempt: u32,
    namespaces: &[String],
) -> anyhow::Result<(ChildGuard, Vec<String>, String, Vec<u16>)> {
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
    for (sa, kind) in SEARCH_ATTRIBUTES {
        cmd.args(["--search-attribute", &format!("{sa}={kind}")]);
    }
    // Fair shares within a task queue (the client is the fairness key), and
    // one partition per task queue, so a band serves its requests in the
    // order a queued one's place counts (priority, then age); as
    // scripts/stack.sh and the compose file run the server.
    for value in [
        "matching.useNewMatcher=true",
        "matching.enableFairness=true",
        "matching.numTaskqueueReadPartitions=1",
        "matching.numTaskqueueWritePartitions=1",
    ] {
        cmd.args(["--dynamic-config-value", value]);
    }
    for ns in namespaces {
        cmd.args(["--namespace", ns]);
    }
    // SQLite with a write-ahead log, synced at checkpoints, as
    // scripts/stack.sh runs it.
    cmd.args([
        "--db-filename",
        dir.join(format!("temporal-{attempt}.db")).to_str().unwrap(),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
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
    let ports = (port..port + 8).chain([ui, http, metrics]).collect();
    Ok((guard, args, format!("http://127.0.0.1:{port}"), ports))
}

/// Whether a server that has answered still runs a second later. Its
/// ports were free when chosen, but another process may take one before the
/// server binds it (a loaded host makes that gap seconds long): a server
/// whose frontend answered can still exit when one of its internal
/// services then fails to bind. Seen: the suite's shared Temporal refused
/// the first test's connection after it had answered the probe.
async fn stays_up(guard: &mut ChildGuard) -> bool {
    tokio::time::sleep(Duration::from_secs(1)).await;
    guard.try_wait().is_none()
}

/// Whether a Temporal frontend answers at `address` within `timeout`.
async fn temporal_answers(address: &str, timeout: Duration) -> bool {
    let cfg = platform::config::TemporalConfig {
        address: address.to_owned(),
        ..Default::default()
    };
    let probe = || platform::temporal::connect(&cfg, "test-probe");
    super::Wait::up_to(timeout).within(probe).await.is_ok()
}

/// A SeaweedFS server: its guard, arguments, S3 endpoint and ports.
struct Weed {
    guard: ChildGuard,
    args: Vec<String>,
    endpoint: String,
    /// Its six ports and their gRPC twins (+10000).
    ports: Vec<u16>,
}

/// Starts `weed mini` on fresh free ports.
fn start_weed(dir: &Path, attempt: u32) -> anyhow::Result<Weed> {
    let p = free_ports_below(6, 55000);
    let s3_config = dir.join("s3.json");
    let defaults = platform::config::S3Config::default();
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
        // Every bucket is a collection with volumes of its own: the shared
        // stack holds the buckets of every test on it, more than the limit
        // SeaweedFS derives from free disk space.
        .arg("-volume.max=1000")
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
    Ok(Weed {
        guard,
        args,
        endpoint: format!("http://127.0.0.1:{}", p[0]),
        ports: p.iter().flat_map(|&port| [port, port + 10_000]).collect(),
    })
}

/// Whether an S3 server answers at `endpoint` within `timeout`.
async fn s3_answers(endpoint: &str, timeout: Duration) -> bool {
    let s3 = activities::s3::S3::new(&platform::config::S3Config {
        endpoint: endpoint.to_owned(),
        ..Default::default()
    });
    let probe = || s3.client().list_buckets().send();
    super::Wait::up_to(timeout).within(probe).await.is_ok()
}

/// Real Temporal and S3.
pub struct Stack {
    pub dir: crate::support::TempDir,
    pub temporal_address: String,
    pub s3_endpoint: String,
    temporal: Option<ChildGuard>,
    temporal_args: Vec<String>,
    /// The ports the Temporal server listens on (its frontend block, UI,
    /// HTTP, metrics): held while it is stopped, so that no other test's
    /// server or connection takes one and the restart on them fails.
    temporal_ports: Vec<u16>,
    temporal_held: Vec<tokio::net::TcpSocket>,
    weed: Option<ChildGuard>,
    weed_args: Vec<String>,
    /// SeaweedFS's ports, held while it is stopped like Temporal's.
    weed_ports: Vec<u16>,
    weed_held: Vec<tokio::net::TcpSocket>,
}

pub const SEARCH_ATTRIBUTES: [(&str, &str); 6] = [
    ("ArchiveId", "Keyword"),
    ("ClientId", "Keyword"),
    ("ContractId", "Keyword"),
    ("DisseminationStatus", "Keyword"),
    ("BatchId", "Keyword"),
    ("DisseminationPriority", "Int"),
];

impl Stack {
    /// A stack private to one test (its namespace is `default`).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_namespaces(&[]).await
    }

    /// A stack whose Temporal server also has `namespaces`, with the
    /// service's search attributes.
    async fn start_with_namespaces(namespaces: &[String]) -> anyhow::Result<Self> {
        let dir = crate::support::tempdir()?;
        // The dev server also listens next to its frontend port (internal
        // services), so a whole block is chosen free; a start that still
        // collides with a parallel test is retried on new ports.
        let mut started = None;
        for attempt in 1..=3 {
            let (mut guard, args, address, ports) =
                start_temporal(dir.path(), attempt, namespaces)?;
            if temporal_answers(&address, Duration::from_secs(30)).await
                && stays_up(&mut guard).await
                && temporal_answers(&address, Duration::from_secs(10)).await
            {
                started = Some((guard, args, address, ports));
                break;
            }
        }
        let Some((temporal, temporal_args, temporal_address, temporal_ports)) = started else {
            let log =
                std::fs::read_to_string(dir.path().join("temporal-3.log")).unwrap_or_default();
            anyhow::bail!("the Temporal dev server did not start in 3 attempts; last log:\n{log}");
        };
        let temporal = Some(temporal);

        // SeaweedFS also opens random internal ports (each with a +10000
        // twin), which can collide with another test's: retry on new ports.
        let mut started = None;
        for attempt in 1..=3 {
            let mut weed = start_weed(dir.path(), attempt)?;
            if s3_answers(&weed.endpoint, Duration::from_secs(30)).await
                && stays_up(&mut weed.guard).await
                && s3_answers(&weed.endpoint, Duration::from_secs(10)).await
            {
                started = Some(weed);
                break;
            }
        }
        let Some(Weed {
            guard: weed,
            args: weed_args,
            endpoint: s3_endpoint,
            ports: weed_ports,
        }) = started
        else {
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
            temporal_ports,
            temporal_held: Vec::new(),
            weed,
            weed_args,
            weed_ports,
            weed_held: Vec::new(),
        })
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let timeout = Duration::from_secs(90);
        let temporal_ok = temporal_answers(&self.temporal_address, timeout).await;
        let s3_ok = s3_answers(&self.s3_endpoint, timeout).await;
        if temporal_ok && s3_ok {
            return Ok(());
        }
        let tail = |name: &str| crate::support::log_tail(&self.dir.path().join(name), 15);
        anyhow::bail!(
            "stack not ready (temporal {temporal_ok}, s3 {s3_ok}); logs in {}\n--- temporal.log\n{}\n--- weed.log\n{}",
            self.dir.path().display(),
            tail("temporal-1.log"),
            tail("weed-1.log")
        )
    }

    /// Stops the S3 server (an outage); `start_s3` brings it back, same data.
    /// SIGTERM, as an operator stopping it would: after a SIGKILL, an object
    /// written seconds before was once missing from the listing when it
    /// came back (on a loaded host). Its ports are held meanwhile, so that
    /// no other test's server takes one and the restart talks to a stranger.
    pub fn stop_s3(&mut self) {
        if let Some(weed) = self.weed.take() {
            weed.terminate(Duration::from_secs(10));
        }
        self.weed_held = hold_ports(&self.weed_ports);
    }

    /// Same ports and data. SeaweedFS also picks internal ports of its own,
    /// which another test's server may hold meanwhile: retried, and each
    /// start picks them anew.
    pub async fn start_s3(&mut self) -> anyhow::Result<()> {
        for attempt in 1..=3 {
            self.weed_held.clear();
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
    pub fn pause_s3(&mut self) {
        signal(self.weed.as_ref().expect("S3 runs").pid(), "-STOP");
    }

    pub fn resume_s3(&mut self) {
        signal(self.weed.as_ref().expect("S3 runs").pid(), "-CONT");
    }

    /// Stops the Temporal server (an outage); `start_temporal` brings it back.
    pub fn stop_temporal(&mut self) {
        self.temporal = None;
        self.temporal_held = hold_ports(&self.temporal_ports);
    }

    pub async fn start_temporal(&mut self) -> anyhow::Result<()> {
        self.restart_temporal().await
    }

    /// Stops and starts the Temporal server on the same port and database.
    /// A start that does not answer (on a loaded host) is tried again.
    pub async fn restart_temporal(&mut self) -> anyhow::Result<()> {
        for attempt in 1..=3 {
            self.temporal = None;
            self.temporal_held.clear();
            let mut cmd = Command::new(tools_bin().join("temporal"));
            cmd.args(&self.temporal_args);
            let log = self
                .dir
                .path()
                .join(format!("temporal-restart-{attempt}.log"));
            self.temporal = Some(spawn("temporal", &mut cmd, &log)?);
            if temporal_answers(&self.temporal_address, Duration::from_secs(45)).await {
                return Ok(());
            }
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            eprintln!("the restarted Temporal server did not answer (try {attempt}):\n{tail}");
        }
        self.wait_ready().await
    }
}

/// Binds (without listening: a connection is still refused) each port of a
/// stopped server that is free.
fn hold_ports(ports: &[u16]) -> Vec<tokio::net::TcpSocket> {
    ports
        .iter()
        .filter_map(|&port| {
            let socket = tokio::net::TcpSocket::new_v4().ok()?;
            // Past the stopped server's connections in TIME_WAIT.
            socket.set_reuseaddr(true).ok()?;
            socket.bind(([127, 0, 0, 1], port).into()).ok()?;
            Some(socket)
        })
        .collect()
}

/// Namespaces the shared server is started with: one per test on it.
const SHARED_NAMESPACES: usize = 96;

static SHARED: tokio::sync::OnceCell<Stack> = tokio::sync::OnceCell::const_new();
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// The stack shared by this test binary, started by the first test that
/// asks, and a slot on it (its namespace is `it-<slot>`); `None` once every
/// namespace is taken (the test then gets a private stack).
pub async fn shared() -> anyhow::Result<Option<(&'static Stack, usize)>> {
    let slot = NEXT_SLOT.fetch_add(1, Ordering::SeqCst) + 1;
    if slot > SHARED_NAMESPACES {
        return Ok(None);
    }
    let stack = SHARED
        .get_or_try_init(|| async {
            let names: Vec<String> = (1..=SHARED_NAMESPACES).map(shared_namespace).collect();
            let stack = Stack::start_with_namespaces(&names).await?;
            stack.stopped_with_this_process()?;
            anyhow::Ok(stack)
        })
        .await?;
    Ok(Some((stack, slot)))
}

/// The namespace of slot `slot` on the shared stack.
pub fn shared_namespace(slot: usize) -> String {
    format!("it-{slot}")
}

impl Stack {
    /// A static is never dropped: a watcher stops this stack's servers by
    /// PID, and removes its folder, once the test process is gone (however
    /// it ended).
    fn stopped_with_this_process(&self) -> anyhow::Result<()> {
        let pids: Vec<String> = [&self.temporal, &self.weed]
            .into_iter()
            .flatten()
            .map(|c| c.pid().to_string())
            .collect();
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill {pids} 2>/dev/null; \
             sleep 1; kill -9 {pids} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            pids = pids.join(" "),
            dir = self.dir.path().display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        Ok(())
    }
}

/// A test's stack: its own, or the shared one (which a test may not stop,
/// freeze or restart).
pub enum StackRef {
    Private(Box<Stack>),
    Shared(&'static Stack),
}

impl Deref for StackRef {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        match self {
            StackRef::Private(s) => s,
            StackRef::Shared(s) => s,
        }
    }
}

impl DerefMut for StackRef {
    fn deref_mut(&mut self) -> &mut Stack {
        match self {
            StackRef::Private(s) => s,
            StackRef::Shared(_) => panic!(
                "this test stops, freezes or restarts a server of the shared stack: \
                 start it with `Options {{ private_stack: true, .. }}`"
            ),
        }
    }
}

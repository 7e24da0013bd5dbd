//! SeaweedFS (`weed mini`, installed by scripts/install-tools.sh) on free
//! loopback ports: one server for the whole test binary, each test on its
//! own bucket. A static is never dropped, so a watcher stops the server by
//! PID, and removes its folder, once the test process is gone.

use feed::Feed;
use platform::config::{EventsConfig, S3Config};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use tokio::sync::OnceCell;

static WEED: OnceCell<String> = OnceCell::const_new();

/// The S3 configuration of the shared server, started by the first test
/// that asks.
pub async fn s3() -> S3Config {
    let endpoint = WEED.get_or_try_init(start).await.expect("SeaweedFS starts");
    S3Config {
        endpoint: endpoint.clone(),
        ..Default::default()
    }
}

fn weed_bin() -> PathBuf {
    let tools = std::env::var_os("DISSEMINATION_TOOLS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin"));
    let bin = tools.join("weed");
    if bin.exists() {
        bin
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/seaweedfs/bin/weed")
    }
}

/// Free ports whose +10000 neighbour (SeaweedFS's gRPC port) is free too,
/// all held while choosing.
fn free_ports_below(n: usize, max: u16) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let a = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let p = a.local_addr().expect("its address").port();
        if p < max {
            if let Ok(b) = TcpListener::bind(("127.0.0.1", p + 10_000)) {
                ports.push(p);
                held.push(b);
            }
        }
        held.push(a);
    }
    ports
}

async fn start() -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!(
        "feed-it-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir)?;
    let defaults = S3Config::default();
    let identities = dir.join("s3.json");
    std::fs::write(
        &identities,
        serde_json::json!({"identities": [{"name": "svc",
            "credentials": [{"accessKey": defaults.access_key,
                "secretKey": secrecy::ExposeSecret::expose_secret(&defaults.secret_key)}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]})
        .to_string(),
    )?;
    // SeaweedFS also opens internal ports of its own, which can collide
    // with another process's: a start that does not answer is retried.
    for attempt in 1..=3 {
        let p = free_ports_below(6, 55_000);
        let data = dir.join(format!("data-{attempt}"));
        std::fs::create_dir_all(&data)?;
        let log = std::fs::File::create(dir.join(format!("weed-{attempt}.log")))?;
        let child = Command::new(weed_bin())
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-admin.ui=false",
                "-webdav=false",
                "-volume.max=100",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .arg(format!("-s3.config={}", identities.display()))
            .arg(format!("-s3.port={}", p[0]))
            .arg(format!("-master.port={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-filer.port={}", p[3]))
            .arg(format!("-admin.port={}", p[4]))
            .arg(format!("-metricsPort={}", p[5]))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting weed (scripts/install-tools.sh): {e}"))?;
        let mut child = child;
        // Also a server that never answers is stopped with this process.
        stop_with_this_process(child.id(), &dir)?;
        let endpoint = format!("http://127.0.0.1:{}", p[0]);
        if answers(&endpoint, Duration::from_secs(30)).await {
            return Ok(endpoint);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    anyhow::bail!(
        "SeaweedFS did not start in 3 attempts; logs in {}",
        dir.display()
    )
}

/// Whether S3 answers at `endpoint` (a bucket can be created) within `timeout`.
async fn answers(endpoint: &str, timeout: Duration) -> bool {
    let s3 = S3Config {
        endpoint: endpoint.to_owned(),
        request_timeout_ms: 2_000,
        connect_timeout_ms: 500,
        ..Default::default()
    };
    let probe = Feed::new(&s3, &EventsConfig::default(), b"probe");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if probe.ensure_bucket().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// A watcher stops the server by its PID once this process has ended
/// (however it ended), if that PID is still a `weed`, then removes its folder.
fn stop_with_this_process(pid: u32, dir: &Path) -> anyhow::Result<()> {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
         is_weed() {{ [ \"$(cat /proc/{pid}/comm 2>/dev/null)\" = weed ]; }}; \
         is_weed && kill {pid}; sleep 1; is_weed && kill -9 {pid}; rm -rf '{dir}'",
        me = std::process::id(),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(())
}

/// The sequence numbers in a client's log, read with S3 directly (the
/// feed hides the claims that are not canonical).
pub async fn log_numbers(bucket: &str, client: &str) -> Vec<u64> {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let cfg = s3().await;
    let creds = Credentials::new(
        cfg.access_key.clone(),
        secrecy::ExposeSecret::expose_secret(&cfg.secret_key).to_owned(),
        None,
        None,
        "test",
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .endpoint_url(&cfg.endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .build(),
    );
    let prefix = format!("log/{client}/");
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    let mut numbers = Vec::new();
    while let Some(page) = pages.next().await {
        for o in page.expect("listing").contents() {
            let key = o.key().expect("a key");
            numbers.push(key[prefix.len()..].parse().expect("a number"));
        }
    }
    numbers
}

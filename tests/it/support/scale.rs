//! Scale-out: several worker and API processes on one stack, and haproxy
//! (Debian's, installed by scripts/install-tools.sh) in front of the API.

use super::app::TestApp;
use super::ports::free_ports;
use super::process::{
    http_answers, spawn, spawn_api_process, spawn_worker_process, static_name, ChildGuard,
};
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};
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
        // The server timeout is scripts/stack.sh's: a batch's POST answers
        // once every item has started, at the pace of Temporal's writes
        // (a 200-item batch: 16 s on a loaded two-core host, over 60 s
        // beside the rest of the suite).
        let cfg = format!(
            "global\n  maxconn 1024\n\n\
             defaults\n  mode http\n  timeout connect 5s\n  timeout client 5m\n  \
             timeout server 5m\n  timeout http-request 10s\n  timeout http-keep-alive 5s\n  \
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

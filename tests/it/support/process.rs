//! Child processes (servers, the service's own binaries), stopped by PID.

use super::app::Options;
use super::ports::free_ports;
use anyhow::Context;
use platform::config::Config;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The folder with the `temporal` and `weed` binaries (scripts/install-tools.sh).
pub fn tools_bin() -> PathBuf {
    std::env::var_os("DISSEMINATION_TOOLS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin"))
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

    /// Whether the kernel may back its memory with transparent huge pages:
    /// `THP_enabled` in `/proc/{pid}/status`, 0 once the process asked for
    /// none (`PR_SET_THP_DISABLE`).
    pub fn huge_pages_allowed(&self) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|e| panic!("{} is not running: {e}", self.name));
        let field = status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .expect("THP_enabled in /proc/{pid}/status (Linux 5.0 or later)");
        field.trim() == "1"
    }

    /// Each of its threads' name and nice value (`/proc/{pid}/task/*/stat`:
    /// Linux keeps a nice value per thread).
    pub fn thread_nices(&self) -> Vec<(String, i32)> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .unwrap_or_else(|e| panic!("{} is not running: {e}", self.name));
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
            .filter_map(|stat| {
                // `tid (name) state …`: the name may hold spaces; the nice
                // value is the 19th field, the 17th after the name.
                let (head, rest) = stat.rsplit_once(')')?;
                let name = head.split_once('(')?.1.to_owned();
                let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
                Some((name, nice))
            })
            .collect()
    }

    /// Its exit status, if it has exited (reaped); `None` while it runs.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn spawn(
    name: &'static str,
    cmd: &mut Command,
    log: &Path,
) -> anyhow::Result<ChildGuard> {
    spawn_logging(name, cmd, std::fs::File::create(log)?)
        .with_context(|| format!("{name}: is it installed? (scripts/install-tools.sh)"))
}

/// Like [`spawn`], for a tool that is started again on the same log (a
/// server a test restarts): the log is appended to, not truncated.
pub(crate) fn spawn_appending(
    name: &'static str,
    cmd: &mut Command,
    log: &Path,
) -> anyhow::Result<ChildGuard> {
    let mut append = std::fs::OpenOptions::new();
    spawn_logging(name, cmd, append.create(true).append(true).open(log)?)
}

/// `cmd` started with no input, its output and errors into `out`.
fn spawn_logging(
    name: &'static str,
    cmd: &mut Command,
    out: std::fs::File,
) -> anyhow::Result<ChildGuard> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(ChildGuard { name, child })
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

impl Options {
    /// No worker in the test's process: nothing accepted progresses unless
    /// the test starts worker processes of its own.
    pub fn without_worker() -> Self {
        Self {
            with_worker: false,
            ..Default::default()
        }
    }

    /// No worker in the test's process (the test starts worker processes)
    /// and the repository read at `bytes_per_sec`: a transfer lasts long
    /// enough for something to happen to it midway.
    pub fn workers_apart_reading_at(bytes_per_sec: u64) -> Self {
        Self {
            with_worker: false,
            max_read_bytes_per_sec: Some(bytes_per_sec),
            ..Default::default()
        }
    }

    /// A stack of the test's own, for a test that stops, freezes or
    /// restarts a server.
    pub fn private_stack() -> Self {
        Self {
            private_stack: true,
            ..Default::default()
        }
    }
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
pub(crate) async fn http_answers(url: &str, timeout: Duration) -> bool {
    let ok = || async {
        let answer = reqwest::get(url).await;
        super::ok_when(answer.is_ok_and(|r| r.status() == 200), ())
    };
    super::Wait::up_to(timeout).within(ok).await.is_ok()
}

/// One of the service's binaries in the workspace's debug build.
pub(crate) fn service_bin(name: &str) -> PathBuf {
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
    /// SIGTERM, without waiting.
    pub fn sigterm(&self) {
        signal(self.pid(), "-TERM");
    }

    /// Its exit status once it has exited, waiting at most `timeout`.
    pub fn exited_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits at most `timeout` for its exit, which must be clean (0): a late
    /// or failed exit fails the test.
    pub fn exits_cleanly_within(&mut self, timeout: Duration) {
        let status = self
            .exited_within(timeout)
            .unwrap_or_else(|| panic!("{} did not exit within {timeout:?}", self.name));
        assert!(status.success(), "{} exits cleanly: {status}", self.name);
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn terminate(mut self, grace: Duration) {
        self.sigterm();
        self.exited_within(grace);
    }
}

/// A leaked copy of `s`: the child-process names are `&'static str`, and a
/// test starts only a handful of them.
pub(crate) fn static_name(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

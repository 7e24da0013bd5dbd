//! The tape-library stand-in (`target/debug/tape-library`, see
//! docs/tape-library.md) as a real process for end-to-end tests: its tape
//! folder, manifest, token file and PKI written here, started on a free
//! loopback port (`--listen 127.0.0.1:0 --port-file`), stopped by PID.
//!
//! The library needs no state of the service, so a test starts it first and
//! hands its address to the service's configuration:
//!
//! ```ignore
//! let aip = tape_aip(ID, &[AipFile { path: "primary.tar", bytes, copies: vec![("hpss", None)] }], "V001", 1);
//! let lib = TapeLibrary::start(dir.path(), &aip.entries(), TapeOptions::default()).await;
//! let hpss = lib.location_config(TAPE_PREFIX);
//! let app = TestApp::start_with(Options {
//!     configure: Some(Arc::new(move |cfg| {
//!         cfg.repository.locations.insert("hpss".into(), LocationConfig::Tape(hpss.clone()));
//!     })),
//!     ..Default::default()
//! }).await;
//! aip.put(&app).await; // the catalog document and the disk/s3 copies
//! ```
//!
//! Files added later ([`TapeLibrary::add_files`], [`put_tape_aip`]) are on
//! tape at once, on volume `default` until the next
//! [`TapeLibrary::restart`] reads the manifest again.

mod admin;
mod aip;
mod pki;

// `put_tape_aip` is for a test that adds AIPs to a running library.
#[allow(unused_imports)]
pub use aip::put_tape_aip;
pub use aip::{tape_aip, AipFile, TapeAip};
pub use pki::{make_pki, openssl, Pki};

use super::process::{service_bin, spawn_appending, ChildGuard};
use platform::config::TapeLocationConfig;
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

/// The namespace folder of the tests' tape copies: a copy whose catalog
/// `filePath` is `a/b.tar` is `/aips/a/b.tar` on tape (`path_prefix`).
pub const TAPE_PREFIX: &str = "/aips";

/// The health of a file's tape copy (the manifest's `state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TapeState {
    #[default]
    Ok,
    /// Unrecoverable: ARCHIVEINFO `LOST`, stage `FAILED`.
    Lost,
    /// Temporarily unreadable: `UNAVAILABLE`, stage `FAILED`.
    Unavailable,
}

impl TapeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Lost => "lost",
            Self::Unavailable => "unavailable",
        }
    }
}

/// A file on tape: its namespace path (`/aips/…`), bytes, volume, place on
/// the volume and health.
#[derive(Clone, Debug)]
pub struct TapeEntry {
    pub path: String,
    pub bytes: Vec<u8>,
    pub volume: String,
    pub position: u64,
    pub state: TapeState,
}

impl TapeEntry {
    /// A healthy file at `position` of `volume`.
    pub fn new(path: &str, bytes: Vec<u8>, volume: &str, position: u64) -> Self {
        Self {
            path: path.to_owned(),
            bytes,
            volume: volume.to_owned(),
            position,
            state: TapeState::Ok,
        }
    }
}

/// How the library runs.
#[derive(Clone, Debug)]
pub struct TapeOptions {
    /// Tape drives (`--drives`).
    pub drives: u16,
    /// Mount time (`--mount-ms`).
    pub mount_ms: u64,
    /// Read rate per drive (`--read-bytes-per-sec`); 0: unpaced.
    pub read_bytes_per_sec: u64,
    /// The disk buffer's size (`--buffer-bytes`).
    pub buffer_bytes: u64,
    /// HTTPS with a certificate from a CA made for the test (else HTTP).
    pub tls: bool,
    /// The one accepted bearer token (`--token-file`); none: no
    /// authentication.
    pub token: Option<String>,
    /// Pin lifetime when a request gives none (`--default-disk-lifetime`);
    /// none: the library's default (`P1D`).
    pub default_disk_lifetime: Option<String>,
    /// Further arguments, as given (e.g. `--unmount-ms 500`).
    pub extra_args: Vec<String>,
}

impl Default for TapeOptions {
    /// 2 drives, no mount time, unpaced, 10 GiB of buffer, TLS on, a
    /// random token.
    fn default() -> Self {
        Self {
            drives: 2,
            mount_ms: 0,
            read_bytes_per_sec: 0,
            buffer_bytes: 10 << 30,
            tls: true,
            token: Some(format!("tape-token-{:016x}", rand::random::<u64>())),
            default_disk_lifetime: None,
            extra_args: Vec::new(),
        }
    }
}

/// The stand-in as a child process, stopped by PID when dropped. Its
/// folder holds `tape/`, `buffer/`, `manifest.json`, `tokens`, `pki/`,
/// `port` and `tape-library.log` (every start appends to it; requests are
/// logged as `method=… uri=… status=…`).
pub struct TapeLibrary {
    tape_dir: PathBuf,
    buffer_dir: PathBuf,
    manifest_path: PathBuf,
    manifest: BTreeMap<String, Value>,
    port_file: PathBuf,
    log: PathBuf,
    /// Every argument but `--listen`.
    args: Vec<OsString>,
    port: u16,
    token: Option<String>,
    token_file: Option<PathBuf>,
    pki: Option<Pki>,
    http: reqwest::Client,
    child: Option<ChildGuard>,
}

impl TapeLibrary {
    /// [`start`](Self::start) with the default options but `mount_ms`.
    pub async fn mounting_in(dir: &Path, files: &[TapeEntry], mount_ms: u64) -> Self {
        let opts = TapeOptions {
            mount_ms,
            ..Default::default()
        };
        Self::start(dir, files, opts).await
    }

    /// Writes `files` to the tape folder and the manifest under `dir`, the
    /// token file and the PKI, and starts the library on a free port;
    /// returns once it serves.
    pub async fn start(dir: &Path, files: &[TapeEntry], opts: TapeOptions) -> Self {
        let tape_dir = dir.join("tape");
        let buffer_dir = dir.join("buffer");
        std::fs::create_dir_all(&tape_dir).unwrap();
        std::fs::create_dir_all(&buffer_dir).unwrap();
        let pki = opts.tls.then(|| make_pki(&dir.join("pki")));
        let token_file = opts.token.as_ref().map(|t| {
            let f = dir.join("tokens");
            std::fs::write(&f, format!("{t}\n")).unwrap();
            f
        });
        let mut args: Vec<OsString> = vec![
            "--tape-dir".into(),
            tape_dir.clone().into(),
            "--buffer-dir".into(),
            buffer_dir.clone().into(),
            "--manifest".into(),
            dir.join("manifest.json").into(),
            "--drives".into(),
            opts.drives.to_string().into(),
            "--mount-ms".into(),
            opts.mount_ms.to_string().into(),
            "--read-bytes-per-sec".into(),
            opts.read_bytes_per_sec.to_string().into(),
            "--buffer-bytes".into(),
            opts.buffer_bytes.to_string().into(),
            "--port-file".into(),
            dir.join("port").into(),
        ];
        let mut flag = |name: &str, value: OsString| {
            args.push(name.into());
            args.push(value);
        };
        if let Some(lifetime) = &opts.default_disk_lifetime {
            flag("--default-disk-lifetime", lifetime.into());
        }
        if let Some(f) = &token_file {
            flag("--token-file", f.into());
        }
        if let Some(p) = &pki {
            flag("--tls-cert", p.cert.clone().into());
            flag("--tls-key", p.key.clone().into());
        }
        args.extend(opts.extra_args.iter().map(OsString::from));
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(p) = &pki {
            let pem = std::fs::read(&p.ca_pem).unwrap();
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        let mut lib = Self {
            tape_dir,
            buffer_dir,
            manifest_path: dir.join("manifest.json"),
            manifest: BTreeMap::new(),
            port_file: dir.join("port"),
            log: dir.join("tape-library.log"),
            args,
            port: 0,
            token: opts.token.clone(),
            token_file,
            pki,
            http: http.build().unwrap(),
            child: None,
        };
        lib.write_files(files);
        if let Err(e) = lib.launch("127.0.0.1:0").await {
            panic!("{e}");
        }
        lib
    }

    /// Writes files to the tape folder and their entries to the manifest.
    fn write_files(&mut self, files: &[TapeEntry]) {
        for f in files {
            assert!(f.path.starts_with('/'), "namespace paths are absolute");
            let file = self.tape_dir.join(f.path.trim_start_matches('/'));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &f.bytes).unwrap();
            self.manifest.insert(
                f.path.clone(),
                json!({"volume": f.volume, "position": f.position, "state": f.state.as_str()}),
            );
        }
        std::fs::write(
            &self.manifest_path,
            json!({ "files": self.manifest }).to_string(),
        )
        .unwrap();
    }

    /// Puts more files on tape: their bytes are there at once (on volume
    /// `default`); their volume, position and state count from the next
    /// [`restart`](Self::restart), which reads the manifest again.
    pub fn add_files(&mut self, files: &[TapeEntry]) {
        self.write_files(files);
    }

    /// Starts the process on `listen` and waits for its port file.
    async fn launch(&mut self, listen: &str) -> Result<(), String> {
        let _ = std::fs::remove_file(&self.port_file);
        let mut cmd = Command::new(service_bin("tape-library"));
        cmd.arg("--listen")
            .arg(listen)
            .args(&self.args)
            .env("RUST_LOG", "tape_library=debug");
        let mut child = spawn_appending("tape-library", &mut cmd, &self.log)
            .expect("target/debug/tape-library (cargo build -p tape-library)");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&self.port_file)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
            {
                break port;
            }
            if let Some(status) = child.try_wait() {
                return Err(format!(
                    "tape-library exited ({status}):\n{}",
                    self.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "tape-library did not start within 20 s:\n{}",
                    self.log_text()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.port = port;
        self.child = Some(child);
        Ok(())
    }

    /// Whether the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().is_none())
    }

    /// Its PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::pid)
    }

    /// SIGKILL: a crash. Requests in flight are lost; the buffer's whole
    /// copies stay.
    pub fn kill_hard(&mut self) {
        if let Some(child) = self.child.take() {
            child.kill_hard();
        }
    }

    /// SIGTERM and a bounded wait for a clean exit (it finishes requests
    /// in flight and exits 0); a failed or late exit fails the test.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        child.sigterm();
        let status = child
            .exited_within(Duration::from_secs(10))
            .expect("tape-library stops within 10 s of SIGTERM");
        assert!(
            status.success(),
            "exit after SIGTERM: {status}\n{}",
            self.log_text()
        );
    }

    /// Starts it again with the same arguments on the same port (stopping
    /// it first if it runs): it keeps its buffer (copies online, unpinned),
    /// forgets every request and reads the manifest again.
    pub async fn restart(&mut self) {
        if self.is_running() {
            self.stop();
        }
        self.child = None;
        let listen = format!("127.0.0.1:{}", self.port);
        let mut last = String::new();
        // The port may be held a moment longer by the process just gone.
        for _ in 0..20 {
            match self.launch(&listen).await {
                Ok(()) => return,
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("tape-library did not restart on {listen}: {last}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT` (or `http://` without TLS): the origin the
    /// staged bytes are read from, at their namespace path.
    pub fn url(&self) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The API's base URL, `{url}/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.url())
    }

    /// The CA certificate (PEM) the server's certificate is signed by.
    pub fn ca_path(&self) -> &Path {
        &self.pki.as_ref().expect("TLS is on").ca_pem
    }

    /// The CA alone in a hashed folder (`X509_CERT_DIR`).
    pub fn ca_dir(&self) -> &Path {
        &self.pki.as_ref().expect("TLS is on").ca_dir
    }

    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// The file with the accepted token (one line): the service's
    /// `token_file` too.
    pub fn token_file(&self) -> &Path {
        self.token_file.as_deref().expect("a token is set")
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn tape_dir(&self) -> &Path {
        &self.tape_dir
    }

    pub fn buffer_dir(&self) -> &Path {
        &self.buffer_dir
    }

    pub fn manifest_path(&self) -> &Path {
        &self.manifest_path
    }

    /// A client that trusts the test CA (add the token yourself, or use
    /// [`authed`](Self::authed)).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `rb` with the token, if any.
    pub fn authed(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Its log (stdout and stderr of every start).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The location of a tape system's copies for the service: this API,
    /// `prefix` before the catalog's `filePath`, its token file and CA.
    pub fn location_config(&self, prefix: &str) -> TapeLocationConfig {
        TapeLocationConfig {
            api_url: Some(self.api_url()),
            path_prefix: prefix.to_owned(),
            token_file: self.token_file.clone(),
            ca_path: self.pki.as_ref().map(|p| p.ca_pem.clone()),
            disk_lifetime: "PT24H".into(),
            ..Default::default()
        }
    }
}

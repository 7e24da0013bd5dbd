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

use super::app::TestApp;
use super::process::{service_bin, signal, spawn_appending, ChildGuard};
use model::catalog::{
    Aip, DigestAlgorithm, FileLocation, Fixity, FsCatalog, IntellectualEntity, RepositoryFile,
};
use platform::config::TapeLocationConfig;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
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

/// A CA and a server certificate for 127.0.0.1 (and `localhost`) signed by
/// it, made with openssl.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA alone in a hashed certificate folder (`openssl rehash`), as
    /// `X509_CERT_DIR` (davix, gfal2) wants it.
    pub ca_dir: PathBuf,
    /// The CA certificate (PEM), `ca_dir/ca.pem`.
    pub ca_pem: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// Makes a [`Pki`] in `dir` (created if missing).
pub fn make_pki(dir: &Path) -> Pki {
    std::fs::create_dir_all(dir.join("ca")).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl (scripts/install-tools.sh)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca/ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tape-library-test-ca",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca/ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-CAserial",
        "ca.srl",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    openssl(&["rehash", "ca"]);
    Pki {
        ca_dir: dir.join("ca"),
        ca_pem: dir.join("ca/ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
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
        signal(child.pid(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait() {
                assert!(
                    status.success(),
                    "exit after SIGTERM: {status}\n{}",
                    self.log_text()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tape-library did not stop within 10 s of SIGTERM");
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

    /// `GET /admin/state` (see docs/tape-library.md).
    pub async fn state(&self) -> Value {
        let res = self
            .authed(self.http.get(format!("{}/admin/state", self.url())))
            .send()
            .await
            .expect("GET /admin/state");
        assert_eq!(res.status(), 200, "GET /admin/state");
        res.json().await.unwrap()
    }

    /// `POST /admin/forget`: every request, queued recall and pin dropped,
    /// as a restart would.
    pub async fn forget(&self) {
        let res = self
            .authed(self.http.post(format!("{}/admin/forget", self.url())))
            .send()
            .await
            .expect("POST /admin/forget");
        assert_eq!(res.status(), 204, "POST /admin/forget");
    }

    /// `POST /admin/evict`: removes these copies from the buffer whatever
    /// their pins (an empty list: every unpinned copy); the paths evicted.
    pub async fn evict(&self, paths: &[&str]) -> Vec<String> {
        let rb = self.authed(self.http.post(format!("{}/admin/evict", self.url())));
        let rb = if paths.is_empty() {
            rb
        } else {
            rb.json(&json!({ "paths": paths }))
        };
        let res = rb.send().await.expect("POST /admin/evict");
        assert_eq!(res.status(), 200, "POST /admin/evict");
        let body: Value = res.json().await.unwrap();
        body["evicted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect()
    }

    /// Volumes mounted since the start (a restart counts from 0 again).
    pub async fn mounts(&self) -> u64 {
        self.state().await["mounts"].as_u64().unwrap()
    }

    /// Pins held on the buffer's copies, in all.
    pub async fn pins(&self) -> usize {
        let state = self.state().await;
        state["buffer"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["pins"].as_array().map_or(0, Vec::len))
            .sum()
    }

    /// The paths in the buffer (on disk).
    pub async fn on_disk(&self) -> Vec<String> {
        let state = self.state().await;
        state["buffer"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The stage requests it knows, in the progress shape.
    pub async fn requests(&self) -> Vec<Value> {
        self.state().await["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// STAGE requests accepted (201) since the first start, across
    /// restarts and whether or not they were deleted since: counted in the
    /// request log.
    pub fn stage_requests_seen(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| {
                l.contains("method=POST uri=/api/v1/stage ")
                    || l.contains("method=POST uri=/api/v1/stage/ ")
            })
            .filter(|l| l.contains("status=201"))
            .count()
    }
}

/// One repository file of a test AIP: its relative path, bytes, and its
/// copies as (location id, fixityStatus). Copies at `disk` and `s3` are
/// written there; a copy at any other location is a tape copy.
#[derive(Clone, Debug)]
pub struct AipFile<'a> {
    pub path: &'a str,
    pub bytes: Vec<u8>,
    pub copies: Vec<(&'a str, Option<&'a str>)>,
}

/// A test AIP with tape copies, built before anything runs: its catalog
/// document, its disk/s3 copies to write and its files on tape.
#[derive(Clone, Debug)]
pub struct TapeAip {
    pub aip: Aip,
    /// (location id, filePath, bytes) of every copy at `disk` or `s3`.
    pub copies: Vec<(String, String, Vec<u8>)>,
    /// (location id, file on tape) of every other copy.
    pub tape: Vec<(String, TapeEntry)>,
}

/// An AIP (contract `demo::DEMO_CONTRACT`, preserved) whose `n`th file is
/// stored as `{archive_id}/{n}-{path with / as _}`; its tape copies are
/// `/aips/{that}` on `volume` from `position` on (one position per file).
pub fn tape_aip(archive_id: &str, files: &[AipFile<'_>], volume: &str, position: u64) -> TapeAip {
    let mut out = TapeAip {
        aip: Aip {
            intellectual_entity: IntellectualEntity {
                archive_id: model::ArchiveId::parse(archive_id).unwrap(),
                access_group_id: model::ContractId::parse(worker::demo::DEMO_CONTRACT).unwrap(),
                object_id: format!("object-{archive_id}"),
                sum_size_in_bytes: files.iter().map(|f| f.bytes.len() as u64).sum(),
                status: "preserved".into(),
                created_date: "2025-03-25T10:00:00.000000+01:00".into(),
            },
            repository_files: Vec::new(),
        },
        copies: Vec::new(),
        tape: Vec::new(),
    };
    for (n, f) in files.iter().enumerate() {
        let stored = format!("{archive_id}/{n}-{}", f.path.replace('/', "_"));
        let mut locations = Vec::new();
        for (id, status) in &f.copies {
            if ["disk", "s3"].contains(id) {
                out.copies
                    .push(((*id).to_owned(), stored.clone(), f.bytes.clone()));
            } else {
                out.tape.push((
                    (*id).to_owned(),
                    TapeEntry::new(
                        &format!("{TAPE_PREFIX}/{stored}"),
                        f.bytes.clone(),
                        volume,
                        position + n as u64,
                    ),
                ));
            }
            locations.push(FileLocation {
                location_id: (*id).into(),
                file_path: stored.clone(),
                fixity_status: status.map(Into::into),
            });
        }
        out.aip.repository_files.push(RepositoryFile {
            relative_path: f.path.into(),
            size: f.bytes.len() as u64,
            fixities: vec![Fixity {
                algorithm: DigestAlgorithm::Sha256,
                digest: hex::encode(Sha256::digest(&f.bytes)),
                originator: "test".into(),
            }],
            locations,
        });
    }
    out
}

impl TapeAip {
    /// Its files on tape, at every tape location.
    pub fn entries(&self) -> Vec<TapeEntry> {
        self.tape.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Its files on tape at location `id`.
    pub fn entries_at(&self, id: &str) -> Vec<TapeEntry> {
        self.tape
            .iter()
            .filter(|(l, _)| l == id)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Writes its disk/s3 copies and its catalog document into `app`.
    pub async fn put(&self, app: &TestApp) {
        for (id, path, bytes) in &self.copies {
            worker::demo::write_copy(&app.cfg, id, path, bytes)
                .await
                .unwrap();
        }
        FsCatalog::new(&app.cfg.catalog.root)
            .put(&self.aip)
            .unwrap();
    }
}

/// [`tape_aip`] put into `app` at once, its tape files appended to
/// `lib_files` (for [`TapeLibrary::start`], or
/// [`TapeLibrary::add_files`] on a running library).
pub async fn put_tape_aip(
    app: &TestApp,
    lib_files: &mut Vec<TapeEntry>,
    archive_id: &str,
    files: &[AipFile<'_>],
    volume: &str,
    position: u64,
) -> Aip {
    let aip = tape_aip(archive_id, files, volume, position);
    aip.put(app).await;
    lib_files.extend(aip.entries());
    aip.aip
}

//! The tape-library stand-in against the WLCG Tape REST API's reference
//! client, gfal2 (Debian's gfal2 2.21 with its HTTP plugin and
//! gfal2-util-scripts, from scripts/install-tools.sh): over HTTPS, with the
//! server certificate verified against a CA made here (`X509_CERT_DIR`,
//! which davix honours) and a bearer token (`BEARER_TOKEN`, which gfal2
//! sends as `Authorization: Bearer`).
//!
//! gfal2 finds the API through `/.well-known/wlcg-tape-rest-api`, reads
//! `user.status` through ARCHIVEINFO, stages with STAGE and polls its
//! progress, and `gfal-evict` (no request id) releases through
//! `/release/gfal2-placeholder-id`. A missing gfal2 fails the test, it is
//! not skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{free_ports, tempdir};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

const TOKEN: &str = "tape-e2e-token";
const FILE: &str = "/aips/0190a1b2-0000-7000-8000-000000000001/primary.tar";

/// The stand-in as a child process, stopped by PID when dropped.
struct TapeLibrary {
    child: Child,
    log: PathBuf,
}

impl TapeLibrary {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then a bounded wait for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
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
}

impl Drop for TapeLibrary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tape_library_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/tape-library")
}

/// A CA and a server certificate for 127.0.0.1 signed by it; the CA in a
/// hashed certificate folder, as `X509_CERT_DIR` wants it.
fn make_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl (scripts/install-tools.sh)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    std::fs::create_dir_all(dir.join("ca")).unwrap();
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
    (
        dir.join("ca"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Runs a gfal2 command (bounded), with the CA, the token and Debian's
/// python (the scripts pick the first `python` that imports gfal2; a pyenv
/// or venv python earlier on PATH does not).
async fn gfal(ca_dir: &Path, token: Option<&str>, args: &[&str]) -> Output {
    let name = args[0];
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not on PATH: install gfal2 (Debian gfal2, gfal2-plugin-http, \
         gfal2-util-scripts, python3-gfal2) with scripts/install-tools.sh"
    );
    let mut cmd = tokio::process::Command::new(name);
    cmd.args(&args[1..])
        .env("X509_CERT_DIR", ca_dir)
        .env_remove("BEARER_TOKEN")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.env("BEARER_TOKEN", t);
    }
    if Path::new("/usr/bin/python3").exists() && std::env::var_os("GFAL_PYTHONBIN").is_none() {
        cmd.env("GFAL_PYTHONBIN", "/usr/bin/python3");
    }
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} took over 120 s"))
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gfal2_stages_reads_and_evicts_through_the_tape_rest_api() {
    let dir = tempdir().unwrap();
    let root = dir.path();
    let tape_file = root.join("tape").join(&FILE[1..]);
    std::fs::create_dir_all(tape_file.parent().unwrap()).unwrap();
    let bytes: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&tape_file, &bytes).unwrap();
    std::fs::write(
        root.join("manifest.json"),
        json!({"files": {FILE: {"volume": "V001", "position": 1}}}).to_string(),
    )
    .unwrap();
    std::fs::write(root.join("tokens"), format!("{TOKEN}\n")).unwrap();
    let (ca_dir, cert, key) = make_pki(root);

    let port = free_ports(1)[0];
    let port_file = root.join("port");
    let log = root.join("tape-library.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(tape_library_bin())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--tape-dir")
        .arg(root.join("tape"))
        .arg("--buffer-dir")
        .arg(root.join("buffer"))
        .arg("--manifest")
        .arg(root.join("manifest.json"))
        .args(["--drives", "1", "--mount-ms", "0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--token-file")
        .arg(root.join("tokens"))
        .arg("--port-file")
        .arg(&port_file)
        .env("RUST_LOG", "tape_library=debug")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("target/debug/tape-library (cargo build -p tape-library)");
    let mut lib = TapeLibrary { child, log };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !port_file.exists() {
        assert!(
            lib.child.try_wait().unwrap().is_none(),
            "tape-library exited:\n{}",
            lib.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "tape-library did not start:\n{}",
            lib.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(lib
        .log_text()
        .contains(&format!("listening on https://127.0.0.1:{port}")));

    let origin = format!("https://127.0.0.1:{port}");
    let url = format!("{origin}{FILE}");
    let ca_pem = std::fs::read(ca_dir.join("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
        .build()
        .unwrap();
    let admin_state = || async {
        let res = http
            .get(format!("{origin}/admin/state"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()
    };

    // Discovery, as gfal2 reads it.
    let uri = ok(
        gfal(
            &ca_dir,
            Some(TOKEN),
            &["gfal-xattr", &url, "taperestapi.uri"],
        )
        .await,
        "uri",
    );
    assert_eq!(stdout(&uri), format!("{origin}/api/v1"));

    // Not yet recalled: on tape only; its bytes are not served.
    let status = ok(
        gfal(&ca_dir, Some(TOKEN), &["gfal-xattr", &url, "user.status"]).await,
        "status",
    );
    assert_eq!(stdout(&status), "NEARLINE");
    let early = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(early.status(), 409);

    // Without the token gfal2 gets a 401 and fails.
    let refused = gfal(&ca_dir, None, &["gfal-xattr", &url, "user.status"]).await;
    assert!(
        !refused.status.success(),
        "no token, no answer: {refused:?}"
    );

    // Bring online: STAGE, then polling until the file is on disk.
    let staged = ok(
        gfal(
            &ca_dir,
            Some(TOKEN),
            &["gfal-bringonline", "--polling-timeout", "60", &url],
        )
        .await,
        "bringonline",
    );
    assert!(stdout(&staged).ends_with("READY"), "{}", stdout(&staged));
    let state = admin_state().await;
    assert_eq!(state["mounts"], 1, "{state:#}");
    assert_eq!(state["mountsPerVolume"]["V001"], 1);
    assert_eq!(state["requests"][0]["files"][0]["state"], "COMPLETED");
    let request_id = state["requests"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        state["buffer"]["files"][0]["pins"][0]["requestId"], request_id,
        "pinned for gfal2's request: {state:#}"
    );

    let status = ok(
        gfal(&ca_dir, Some(TOKEN), &["gfal-xattr", &url, "user.status"]).await,
        "status",
    );
    assert_eq!(stdout(&status), "ONLINE_AND_NEARLINE");

    // The staged bytes, over verified HTTPS: through gfal2, whole and a range.
    let cat = ok(
        gfal(&ca_dir, Some(TOKEN), &["gfal-cat", "-b", &url]).await,
        "cat",
    );
    assert!(
        cat.stdout == bytes,
        "gfal-cat read {} bytes unlike the tape's",
        cat.stdout.len()
    );
    let whole = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert!(whole.bytes().await.unwrap() == bytes);
    let part = http
        .get(&url)
        .bearer_auth(TOKEN)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert!(part.bytes().await.unwrap() == bytes[1000..2000]);

    // Evict: released (gfal2 has no request id here: the placeholder one).
    ok(
        gfal(&ca_dir, Some(TOKEN), &["gfal-evict", &url]).await,
        "evict",
    );
    let state = admin_state().await;
    assert_eq!(state["buffer"]["files"][0]["pins"], json!([]), "{state:#}");
    assert_eq!(state["requests"][0]["files"][0]["state"], "COMPLETED");
    // What gfal2 sent, as the server logged it (method, path, status).
    let log = lib.log_text();
    for (method, path, status) in [
        ("GET", "/.well-known/wlcg-tape-rest-api".to_owned(), 200),
        ("POST", "/api/v1/archiveinfo/".to_owned(), 200),
        ("POST", "/api/v1/stage/".to_owned(), 201),
        ("GET", format!("/api/v1/stage/{request_id}"), 200),
        (
            "POST",
            "/api/v1/release/gfal2-placeholder-id".to_owned(),
            200,
        ),
        ("GET", FILE.to_owned(), 200),
    ] {
        let line = format!("method={method} uri={path} status={status}");
        assert!(
            log.contains(&line),
            "gfal2 sent {method} {path}: not in the log\n{log}"
        );
    }
    lib.stop();
}

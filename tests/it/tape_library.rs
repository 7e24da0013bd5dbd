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

use crate::support::{tempdir, TapeEntry, TapeLibrary, TapeOptions};
use serde_json::json;
use std::{
    path::Path,
    process::{Output, Stdio},
    time::Duration,
};

const TOKEN: &str = "tape-e2e-token";
const FILE: &str = "/aips/0190a1b2-0000-7000-8000-000000000001/primary.tar";

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
    let bytes: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut lib = TapeLibrary::start(
        dir.path(),
        &[TapeEntry::new(FILE, bytes.clone(), "V001", 1)],
        TapeOptions {
            drives: 1,
            mount_ms: 0,
            token: Some(TOKEN.into()),
            ..Default::default()
        },
    )
    .await;
    assert!(lib
        .log_text()
        .contains(&format!("listening on https://127.0.0.1:{}", lib.port())));

    let origin = lib.url();
    let url = format!("{origin}{FILE}");
    let ca_dir = lib.ca_dir().to_owned();
    let http = lib.http().clone();
    let admin_state = || lib.state();

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

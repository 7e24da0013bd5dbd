//! Temporal over TLS, for real: the API and the worker reach the test's
//! Temporal through a TLS-terminating proxy that demands a client
//! certificate (mTLS), with the server name overridden, and a dissemination
//! is delivered; a wrong CA stops both binaries at start, quickly, with a
//! message that names Temporal and TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{write_config_toml, Options, TestApp};
use crate::tls_proxy::{Pki, TlsProxy, SERVER_NAME};
use platform::config::{Config, TemporalConfig};
use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use worker::demo;

fn host_port(address: &str) -> String {
    let url = url::Url::parse(address).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
}

fn over_tls(cfg: &mut TemporalConfig, proxy: &TlsProxy, ca: &Path, pki: &Pki) {
    cfg.address = format!("http://127.0.0.1:{}", proxy.port);
    cfg.tls_ca_path = Some(ca.to_owned());
    cfg.tls_cert_path = Some(pki.client_cert.clone());
    cfg.tls_key_path = Some(pki.client_key.clone());
    cfg.tls_server_name = Some(SERVER_NAME.into());
    cfg.connect_timeout_ms = 5_000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_reach_temporal_over_mtls_and_deliver() {
    let pki_dir = crate::support::tempdir().unwrap();
    let pki = Arc::new(Pki::generate(pki_dir.path(), "temporal"));
    let proxy: Arc<Mutex<Option<TlsProxy>>> = Arc::default();
    let (p, k) = (proxy.clone(), pki.clone());
    let app = TestApp::start_with(Options {
        configure: Some(Arc::new(move |cfg: &mut Config| {
            let upstream = host_port(&cfg.temporal.address);
            let started = TlsProxy::start(upstream, &k, Some(&k.ca));
            over_tls(&mut cfg.temporal, &started, &k.ca, &k);
            *p.lock().unwrap() = Some(started);
        })),
        ..Default::default()
    })
    .await;
    assert!(app.cfg.temporal.address.contains("127.0.0.1"));
    let token = app.client_token();
    let started = Instant::now();
    let id = app.create(&token, demo::DEMO_SINGLE, 50).await;
    let done = app
        .api(&token)
        .wait_for(&id, Duration::from_secs(60), |v| {
            v.status == model::DisseminationStatus::Disseminated
        })
        .await;
    eprintln!("delivered over mTLS in {:?}", started.elapsed());
    assert_eq!(done.files.len(), 1, "{done:?}");
    let carried = proxy.lock().unwrap().as_ref().unwrap().connections();
    assert!(
        carried >= 2,
        "API and worker connected through TLS: {carried}"
    );

    // Without a client certificate the proxy refuses the handshake.
    let mut no_cert = app.cfg.temporal.clone();
    no_cert.tls_cert_path = None;
    no_cert.tls_key_path = None;
    let Err(err) = platform::temporal::connect(&no_cert, "test-no-cert").await else {
        panic!("mTLS refuses a client without a certificate");
    };
    let msg = format!("{err:#}");
    assert!(msg.contains("Temporal") && msg.contains("TLS"), "{msg}");
}

/// Runs a service binary with `cfg` until it exits (bounded); its status,
/// output and how long it ran.
fn run_until_exit(cfg: &Config, name: &str, bin: &str, command: &str) -> (bool, String, Duration) {
    let toml = write_config_toml(cfg, name);
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/debug")
        .join(bin);
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["--config", toml.to_str().unwrap(), command])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("service binary (cargo build)");
    let deadline = started + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return (status.success(), text, started.elapsed());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} still running after 30 s: the connection must be bounded");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_fails_at_start_naming_temporal_and_tls() {
    let app = TestApp::start_with(Options::without_worker()).await;
    let dir = app.dir.path();
    let pki = Pki::generate(dir, "temporal");
    let stranger = Pki::generate(dir, "stranger");
    let proxy = TlsProxy::start(host_port(&app.cfg.temporal.address), &pki, Some(&pki.ca));
    let mut cfg = (*app.cfg).clone();
    over_tls(&mut cfg.temporal, &proxy, &stranger.ca, &pki);
    cfg.api.listen = format!("127.0.0.1:{}", crate::support::free_ports(1)[0]);

    for (name, bin, command) in [
        ("api-wrong-ca", "dissemination-api", "serve"),
        ("worker-wrong-ca", "dissemination-worker", "run"),
    ] {
        let (ok, out, took) =
            tokio::task::block_in_place(|| run_until_exit(&cfg, name, bin, command));
        eprintln!("{name}: exited after {took:?}: {}", out.trim());
        assert!(!ok, "{name} must not start: {out}");
        assert!(
            out.contains("Temporal") && out.contains("TLS"),
            "{name}'s message names Temporal and TLS: {out}"
        );
        assert!(took < Duration::from_secs(15), "{name} took {took:?}");
    }
    assert_eq!(proxy.connections(), 0, "no handshake completed");
}

//! The service under test: the API in this process, the worker on its own
//! thread and runtime, configured with shortened timers, on a stack (shared
//! or private) with its own namespace, buckets, catalog and repository.

use super::process::tools_bin;
use super::receiver::Receiver;
use super::stack::{shared, shared_namespace, Stack, StackRef};
use super::{AUDIENCE, CLIENT, ISSUER, OTHER_CLIENT};
use base64::Engine;
use platform::config::{ClientConfig, Config, LocationConfig, S3LocationConfig};
use std::{path::Path, process::Command, sync::Arc, time::Duration};
use tokio::sync::oneshot;

pub struct Options {
    pub with_worker: bool,
    /// A stack of the test's own: for a test that stops, freezes or
    /// restarts a server (the shared stack refuses that).
    pub private_stack: bool,
    /// Requests per minute per client (the burst is a tenth of it).
    pub rate_limit_per_minute: u32,
    pub retention_secs: u64,
    pub max_read_bytes_per_sec: Option<u64>,
    pub base_path: String,
    /// Activity slots of every band, and of each size class's queues
    /// (default: the configured ones).
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
            private_stack: false,
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

impl Options {
    /// One activity slot per band (and per size class's queue), which a
    /// 24 MiB AIP holds for about 100 s at the reads' pace (256 KiB/s);
    /// AIPs over 1 MiB and up to 2.5 MiB are small, up to 3.5 MiB medium,
    /// up to 8 MiB large; the 24 MiB one takes its band's slot.
    pub fn one_slot_held_long() -> Self {
        Self {
            band_slots: Some(1),
            max_read_bytes_per_sec: Some(256 * 1024),
            configure: Some(Arc::new(|cfg| {
                cfg.worker.small_max_bytes = 5 * 512 * 1024;
                cfg.worker.medium_max_bytes = 7 * 512 * 1024;
                cfg.worker.large_max_bytes = 8 * 1024 * 1024;
            })),
            ..Default::default()
        }
    }
}

/// The service under test.
pub struct TestApp {
    pub stack: StackRef,
    /// This test's folder: catalog, repository, JWKS, logs of processes.
    pub dir: crate::support::TempDir,
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

/// The configuration of a test on `stack`: its namespace (the shared
/// stack's slot, or `default` on a private one), buckets named after
/// `tag`, files under `root`.
pub fn test_config(
    stack: &Stack,
    namespace: &str,
    tag: &str,
    root: &Path,
    receiver: &Receiver,
    secret: &str,
) -> Config {
    let mut cfg = Config::default();
    cfg.fill_defaults();
    cfg.temporal.address = stack.temporal_address.clone();
    cfg.temporal.namespace = namespace.to_owned();
    cfg.s3.default_bucket = format!("deliveries-{tag}");
    // Each test app its own event feed (clients' ids repeat across tests).
    cfg.events.bucket = format!("events-{tag}");
    cfg.temporal.query_timeout_ms = 1000;
    // Two test stacks share two cores: calls may be slow without Temporal
    // being down (the Temporal-down test sets the production budget).
    cfg.temporal.rpc_timeout_ms = 5_000;
    cfg.api.metrics_listen = "127.0.0.1:0".into();
    cfg.auth.jwks_path = root.join("auth/jwks.json");
    cfg.auth.issuer = Some(ISSUER.into());
    cfg.auth.audience = Some(AUDIENCE.into());
    cfg.catalog.root = root.join("catalog");
    cfg.repository.locations = [
        (
            "disk".to_owned(),
            LocationConfig::Disk {
                root: root.join("repository"),
                preference: None,
            },
        ),
        (
            "s3".to_owned(),
            LocationConfig::S3(S3LocationConfig {
                bucket: format!("repository-{tag}"),
                ..Default::default()
            }),
        ),
    ]
    .into_iter()
    .collect();
    cfg.worker.graceful_shutdown_secs = 2;
    cfg.worker.heartbeat_throttle_ms = 500;
    // Tests share two cores: a batch kept to the CPU the other tests leave
    // would wait on them. The worker process's own default is tested in
    // `batches::fairness`.
    cfg.worker.batch_nice = 0;
    cfg.s3.endpoint = stack.s3_endpoint.clone();
    cfg.s3.part_size_mib = 5;
    cfg.timings.heartbeat_timeout_ms = 5_000;
    cfg.timings.retry_initial_ms = 200;
    cfg.timings.retry_max_interval_ms = 1_000;
    cfg.timings.retry_max_attempts = 5;
    cfg.timings.retry_for_ms = 20_000;
    cfg.timings.unreadable_retry_ms = 2_000;
    // Stage requests polled often (a recall of a test takes seconds).
    cfg.tape.poll_initial_ms = 100;
    cfg.tape.poll_max_ms = 500;
    cfg.s3.request_timeout_ms = 20_000;
    cfg.s3.connect_timeout_ms = 2_000;
    cfg.timings.webhook_retry_initial_ms = 200;
    cfg.timings.webhook_retry_max_interval_ms = 1_000;
    cfg.timings.webhook_give_up_after_ms = 60_000;
    cfg.timings.link_lifetime_secs = 3600;
    cfg.clients.insert(
        CLIENT.into(),
        ClientConfig {
            webhook_url: Some(receiver.url.clone()),
            webhook_secret: Some(secret.to_owned().into()),
            bucket: Some(format!("deliveries-client-a-{tag}")),
        },
    );
    cfg.clients
        .insert(OTHER_CLIENT.into(), ClientConfig::default());
    cfg
}

impl TestApp {
    /// The root of the `disk` location.
    pub fn disk_root(&self) -> std::path::PathBuf {
        self.cfg
            .repository
            .disk_root("disk")
            .expect("a disk location")
            .to_owned()
    }

    /// The bucket of the `s3` location.
    pub fn repository_bucket(&self) -> String {
        self.cfg
            .repository
            .s3_bucket("s3")
            .expect("an s3 location")
            .to_owned()
    }

    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Self {
        // Logs only: the trace test exports from API and worker processes.
        drop(platform::telemetry::init(
            &platform::config::LogConfig {
                format: "text".into(),
                filter: "warn".into(),
            },
            &Default::default(),
            "e2e-tests",
        ));
        let on_shared = if opts.private_stack {
            None
        } else {
            shared().await.expect("shared stack starts")
        };
        let (stack, namespace, tag) = match on_shared {
            Some((stack, slot)) => (
                StackRef::Shared(stack),
                shared_namespace(slot),
                format!("s{slot}"),
            ),
            None => (
                StackRef::Private(Box::new(Stack::start().await.expect("stack starts"))),
                "default".to_owned(),
                "p".to_owned(),
            ),
        };
        let dir = crate::support::tempdir().expect("test folder");
        let receiver = Receiver::start().await.expect("receiver starts");
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(rand_bytes())
        );
        let mut cfg = test_config(&stack, &namespace, &tag, dir.path(), &receiver, &secret);
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
            cfg.worker.small_slots = slots;
            cfg.worker.medium_slots = slots;
            cfg.worker.large_slots = slots;
            cfg.worker.urgent_class_slots = slots;
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
            dir,
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

    pub fn s3(&self) -> activities::s3::S3 {
        activities::s3::S3::new(&self.cfg.s3)
    }

    /// Keys under `prefix` in a bucket (empty when the bucket does not exist).
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.try_list_keys(bucket, prefix).await.unwrap_or_default()
    }

    /// The keys under `prefix`, or what S3 answered instead.
    pub async fn try_list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, String> {
        self.s3()
            .client()
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .map(|out| {
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned))
                    .collect()
            })
            .map_err(|e| format!("{e:?}"))
    }

    /// A Temporal client on this test's server.
    /// Keys of the objects a dissemination left in the client's bucket.
    pub async fn delivered_keys(&self, id: &str) -> Vec<String> {
        self.try_delivered_keys(id).await.unwrap_or_default()
    }

    /// The keys a dissemination left, or what S3 answered instead.
    pub async fn try_delivered_keys(&self, id: &str) -> Result<Vec<String>, String> {
        self.try_list_keys(
            &self.cfg.client_bucket(CLIENT),
            &format!("dissemination/{id}/"),
        )
        .await
    }

    /// Runs the `temporal` CLI against this stack's server; asserts success.
    pub fn temporal_cli(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new(tools_bin().join("temporal"))
            .args(args)
            .args([
                "--address",
                self.stack.temporal_address.trim_start_matches("http://"),
            ])
            .args(["--namespace", &self.cfg.temporal.namespace])
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
            .disk_root()
            .join(&doc.repository_files[0].locations[0].file_path);
        let hidden = path.with_extension("hidden");
        std::fs::rename(&path, &hidden).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(gone).await;
            std::fs::rename(&hidden, &path).unwrap();
        })
    }

    pub async fn stack_client(&self) -> temporalio_client::Client {
        platform::temporal::connect(&self.cfg.temporal, "test")
            .await
            .unwrap()
    }

    /// A dissemination's workflow history, every event.
    pub async fn history(
        &self,
        id: &str,
    ) -> Vec<temporalio_common::protos::temporal::api::history::v1::HistoryEvent> {
        self.stack_client()
            .await
            .get_workflow_handle::<workflows::DisseminationWorkflow>(id.to_owned())
            .fetch_history(Default::default())
            .into_events()
            .await
            .unwrap()
    }

    /// How often a dissemination ran step `name` (an activity, or a local
    /// activity inside a workflow task), from its history.
    pub async fn steps_run(&self, id: &str, name: &str) -> usize {
        use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
        self.history(id)
            .await
            .iter()
            .filter(|e| match &e.attributes {
                Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                    a.activity_type.as_ref().is_some_and(|t| t.name == name)
                }
                Some(Attributes::MarkerRecordedEventAttributes(m)) => {
                    m.marker_name == "core_local_activity"
                        && m.details.get("data").is_some_and(|d| {
                            d.payloads.iter().any(|p| {
                                String::from_utf8_lossy(&p.data)
                                    .contains(&format!("\"activity_type\":\"{name}\""))
                            })
                        })
                }
                _ => false,
            })
            .count()
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

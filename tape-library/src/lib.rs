//! A stand-in for a tape system (dCache, EOS-CTA, StoRM) speaking the WLCG
//! Tape REST API v1, for the embedded default and the tests: files "on
//! tape" in a folder, grouped into volumes by a manifest, recalled by a few
//! drives that mount volumes and read them at a set rate into a disk
//! buffer, where copies are pinned per request and evicted when room is
//! needed. The staged bytes are served over HTTP(S) at their namespace path.
//!
//! State is in memory: a restart forgets the requests (the client must
//! resubmit, as with a real system that lost its queue); the buffer folder
//! persists, its copies online but unpinned after a restart.
//!
//! `main` parses the command line and calls [`Server::bind`] and
//! [`Server::run`]; the tests build a [`Server`] the same way.

pub mod catalog;
pub mod config;
pub mod drives;
pub mod http;
pub mod lifetime;
pub mod nspath;
pub mod state;
pub mod tls;

use anyhow::Context;
use catalog::Catalog;
use config::Config;
use nspath::NsPath;
use state::{Library, LibraryConfig, Millis};
use std::{
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

/// What the HTTP handlers and the drives share.
#[derive(Debug)]
pub struct Shared {
    lib: Mutex<Library>,
    changed: watch::Sender<u64>,
    pub catalog: Catalog,
    pub buffer_dir: PathBuf,
}

impl Shared {
    pub fn new(lib: Library, catalog: Catalog, buffer_dir: PathBuf) -> Self {
        Self {
            lib: Mutex::new(lib),
            changed: watch::Sender::new(0),
            catalog,
            buffer_dir,
        }
    }

    /// The state machine. Held briefly and never across an `.await`; a
    /// panic while held cannot leave it half-updated in a way that matters
    /// more than stopping would, so a poisoned lock is taken over.
    pub fn lock(&self) -> MutexGuard<'_, Library> {
        self.lib.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the idle drives: there may be work.
    pub fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Deletes evicted copies from the buffer folder.
    pub async fn delete_copies(&self, paths: Vec<NsPath>) {
        for path in paths {
            let file = path.under(&self.buffer_dir);
            match tokio::fs::remove_file(&file).await {
                Ok(()) => tracing::info!(%path, "evicted"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(%path, error = %e, "could not delete an evicted copy"),
            }
        }
    }
}

/// Now, for the state machine.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A bound server with its drives running.
pub struct Server {
    router: axum::Router,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Loads the manifest, adopts the buffer's copies, starts the drives and
    /// binds; ready to serve when it returns.
    pub async fn bind(cfg: &Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&cfg.listen)
            .await
            .with_context(|| format!("binding {}", cfg.listen))?;
        Self::with_listener(cfg, listener).await
    }

    pub async fn with_listener(cfg: &Config, listener: TcpListener) -> anyhow::Result<Self> {
        let base = cfg.api_base()?;
        let tls = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            _ => None,
        };
        anyhow::ensure!(
            cfg.tape_dir.is_dir(),
            "--tape-dir {} is not a folder",
            cfg.tape_dir.display()
        );
        std::fs::create_dir_all(&cfg.buffer_dir)
            .with_context(|| format!("creating --buffer-dir {}", cfg.buffer_dir.display()))?;
        let catalog = Catalog::load(cfg.tape_dir.clone(), cfg.manifest.as_deref())?;
        let mut lib = Library::new(LibraryConfig {
            drives: usize::from(cfg.drives),
            buffer_bytes: cfg.buffer_bytes,
            default_lifetime: cfg.default_disk_lifetime,
        });
        let found = drives::scan_buffer(&cfg.buffer_dir)
            .with_context(|| format!("reading --buffer-dir {}", cfg.buffer_dir.display()))?;
        for (rel, size, mtime) in found {
            match NsPath::from_relative(&rel) {
                Some(path) => lib.adopt(path, size, mtime),
                None => {
                    tracing::warn!(file = %rel.display(), "ignoring a buffer file no namespace path names")
                }
            }
        }
        let shared = Arc::new(Shared::new(lib, catalog, cfg.buffer_dir.clone()));
        let evicted = shared.lock().sweep(now_ms());
        shared.delete_copies(evicted).await;
        let tasks = drives::spawn(
            shared.clone(),
            usize::from(cfg.drives),
            drives::Timing {
                mount: Duration::from_millis(cfg.mount_ms),
                unmount: Duration::from_millis(cfg.unmount_ms),
                bytes_per_sec: cfg.read_bytes_per_sec,
            },
        );
        let api = http::ApiConfig {
            base,
            public_url: cfg.public_url.clone(),
            sitename: cfg.sitename.clone(),
            description: cfg.description.clone(),
            scheme: if tls.is_some() { "https" } else { "http" },
        };
        let tokens = cfg.token_file.clone().map(http::auth::TokenFile::new);
        let router = http::router(Arc::new(http::App {
            shared,
            tokens,
            api,
        }));
        Ok(Self {
            router,
            listener,
            tls,
            tasks,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `http://127.0.0.1:PORT` or `https://…`.
    pub fn url(&self) -> std::io::Result<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{}", self.local_addr()?))
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            router,
            listener,
            tls,
            tasks,
        } = self;
        let result = match tls {
            Some(config) => {
                let listener = tls::TlsListener::new(listener, config)?;
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        for t in tasks {
            t.abort();
        }
        result.context("serving HTTP")
    }
}

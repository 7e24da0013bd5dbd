//! The staged bytes of a tape copy, once STAGE brought it on disk: from a
//! mounted folder (`read_root`), or by HTTP(S) GET of its namespace path
//! under the read prefix (the WebDAV door), resumed with `Range`.
//!
//! A copy that is not on disk (any more), refused, or of another size than
//! the catalog says is "unreadable": stage it again or take another copy.
//! No answer, a timeout or a 5xx is worth retrying. Redirects (a door
//! sending reads to its pools) are followed only into the read prefix or
//! the configured `read_redirect_prefixes`, at most five times; the bearer
//! token goes along, as every target is one the operator trusts.

use super::{
    client::{http_builder, problem_reason, TapeClient, TapeError},
    token::error_chain,
};
use crate::repository::{OpenError, Reader};
use anyhow::Context;
use futures::TryStreamExt;
use platform::config::{TapeConfig, TapeLocationConfig};
use reqwest::{header, StatusCode, Url};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const MAX_REDIRECTS: usize = 5;
/// Bytes of an error answer kept for its reason.
const ERROR_BODY_BYTES: usize = 4096;

/// Opens the staged copies of one tape location; cheap to clone.
#[derive(Clone)]
pub struct StagedReader {
    inner: Arc<Inner>,
}

struct Inner {
    client: TapeClient,
    http: reqwest::Client,
    read_root: Option<PathBuf>,
    redirect_prefixes: Vec<String>,
}

impl StagedReader {
    /// The reader of location `location_id`, sharing `client`'s endpoint
    /// and token. Reads have a connect timeout and a timeout per read of
    /// the body, not a total one: a copy may take hours to pass.
    pub fn new(
        location_id: &str,
        cfg: &TapeLocationConfig,
        client: &TapeClient,
        tape: &TapeConfig,
    ) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(tape.request_timeout_ms);
        let http = http_builder(location_id, cfg)?
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .with_context(|| format!("tape location {location_id}: building its read client"))?;
        let redirect_prefixes = cfg
            .read_redirect_prefixes
            .iter()
            .map(|p| normalised_prefix(p))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                client: client.clone(),
                http,
                read_root: cfg.read_root.clone(),
                redirect_prefixes,
            }),
        })
    }

    /// The staged copy of catalog `file_path`, from `offset` on; it must
    /// be `expected_size` bytes long.
    #[tracing::instrument(level = "debug", skip_all, fields(location = %self.inner.client.location_id(), file_path = %file_path, offset = offset))]
    pub async fn open(
        &self,
        file_path: &str,
        offset: u64,
        expected_size: u64,
    ) -> Result<Reader, OpenError> {
        let ns = self
            .inner
            .client
            .namespace_path(file_path)
            .map_err(|e| OpenError::NoReader(e.to_string()))?;
        match &self.inner.read_root {
            Some(root) => self.open_file(root, &ns, offset, expected_size).await,
            None => self.open_url(&ns, offset, expected_size).await,
        }
    }

    async fn open_file(
        &self,
        root: &Path,
        ns: &str,
        offset: u64,
        expected: u64,
    ) -> Result<Reader, OpenError> {
        let path = root.join(ns.trim_start_matches('/'));
        let what = format!(
            "tape location {}: {}",
            self.inner.client.location_id(),
            path.display()
        );
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OpenError::Unreadable(format!(
                    "{what}: not on the disk buffer: stage it first"
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(OpenError::Unreadable(format!("{what}: {e}")))
            }
            Err(e) => return Err(OpenError::Transient(format!("{what}: {e}"))),
        };
        let meta = file
            .metadata()
            .await
            .map_err(|e| OpenError::Transient(format!("{what}: {e}")))?;
        if !meta.is_file() {
            return Err(OpenError::Unreadable(format!("{what}: not a file")));
        }
        check_size(&what, meta.len(), expected)?;
        check_offset(&what, offset, expected)?;
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| OpenError::Transient(format!("{what}: seek: {e}")))?;
        }
        Ok(Box::new(file))
    }

    async fn open_url(&self, ns: &str, offset: u64, expected: u64) -> Result<Reader, OpenError> {
        let id = self.inner.client.location_id();
        let prefix = self.inner.client.read_prefix().await.map_err(tape_error)?;
        let mut url = Url::parse(&prefix).map_err(|e| {
            OpenError::Misconfigured(format!("tape location {id}: read prefix {prefix}: {e}"))
        })?;
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                OpenError::Misconfigured(format!("tape location {id}: read prefix {prefix}"))
            })?;
            segments.pop_if_empty();
            segments.extend(ns.split('/').filter(|s| !s.is_empty()));
        }
        check_offset(&format!("tape location {id}: {url}"), offset, expected)?;
        let token = self
            .inner
            .client
            .tokens()
            .bearer()
            .await
            .map_err(tape_error)?;
        let prefix = normalised_prefix(&prefix);
        let allowed = |u: &Url| {
            std::iter::once(&prefix)
                .chain(&self.inner.redirect_prefixes)
                .any(|p| under(u.as_str(), p))
        };
        let mut hops = 0;
        loop {
            let what = format!("tape location {id}: GET {url}");
            let mut req = self.inner.http.get(url.clone());
            if offset > 0 {
                req = req.header(header::RANGE, format!("bytes={offset}-"));
            }
            if let Some(token) = &token {
                req = req.bearer_auth(token);
            }
            let resp = req.send().await.map_err(|e| {
                OpenError::Transient(format!("{what}: {}", error_chain(&e.without_url())))
            })?;
            if !resp.status().is_redirection() {
                return answer(&what, resp, offset, expected).await;
            }
            let status = resp.status();
            let next = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| {
                    OpenError::Unreadable(format!(
                        "{what}: HTTP {status} without a usable Location"
                    ))
                })?;
            if !allowed(&next) {
                return Err(OpenError::Unreadable(format!(
                    "{what}: redirected outside the configured read prefixes: {next}"
                )));
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(OpenError::Unreadable(format!(
                    "{what}: more than {MAX_REDIRECTS} redirects"
                )));
            }
            tracing::debug!(from = %url, to = %next, "following a read redirect");
            url = next;
        }
    }
}

/// What an answer to the GET means.
async fn answer(
    what: &str,
    resp: reqwest::Response,
    offset: u64,
    expected: u64,
) -> Result<Reader, OpenError> {
    let status = resp.status();
    match status {
        StatusCode::OK => {
            if let Some(len) = resp.content_length() {
                check_size(what, len, expected)?;
            }
            let mut reader = body_reader(resp);
            if offset > 0 {
                // The server ignored the Range: skip to the offset.
                let skipped =
                    tokio::io::copy(&mut (&mut reader).take(offset), &mut tokio::io::sink())
                        .await
                        .map_err(|e| {
                            OpenError::Transient(format!("{what}: skipping to {offset}: {e}"))
                        })?;
                if skipped < offset {
                    return Err(OpenError::Transient(format!(
                        "{what}: the body ended after {skipped} bytes, before offset {offset}"
                    )));
                }
            }
            Ok(reader)
        }
        StatusCode::PARTIAL_CONTENT => {
            let range = content_range(&resp);
            let Some((start, end, total)) = range else {
                return Err(OpenError::Unreadable(format!(
                    "{what}: HTTP 206 without a usable Content-Range"
                )));
            };
            check_size(what, total, expected)?;
            if start != offset || end.saturating_add(1) != total {
                return Err(OpenError::Unreadable(format!(
                    "{what}: asked for bytes {offset}-, got {start}-{end}/{total}"
                )));
            }
            Ok(body_reader(resp))
        }
        StatusCode::RANGE_NOT_SATISFIABLE if offset == expected => {
            // Resuming at the very end: nothing left, if the size is right.
            match content_range(&resp) {
                Some((_, _, total)) => check_size(what, total, expected)?,
                None => {
                    return Err(OpenError::Unreadable(format!(
                        "{what}: HTTP 416 for bytes {offset}-"
                    )))
                }
            }
            Ok(Box::new(tokio::io::empty()))
        }
        s if s.is_success() => Err(OpenError::Unreadable(format!(
            "{what}: HTTP {s}, not the file's bytes"
        ))),
        _ => {
            let reason = error_reason(resp).await;
            let reason = reason.as_deref().unwrap_or("no reason given");
            Err(match status {
                StatusCode::NOT_FOUND | StatusCode::CONFLICT | StatusCode::GONE => {
                    OpenError::Unreadable(format!(
                        "{what}: not on the disk buffer (HTTP {status}: {reason}): stage it first"
                    ))
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => OpenError::Unreadable(format!(
                    "{what}: credentials refused (HTTP {status}: {reason})"
                )),
                s if s.is_server_error()
                    || s == StatusCode::TOO_MANY_REQUESTS
                    || s == StatusCode::REQUEST_TIMEOUT =>
                {
                    OpenError::Transient(format!("{what}: HTTP {status}: {reason}"))
                }
                _ => OpenError::Unreadable(format!("{what}: HTTP {status}: {reason}")),
            })
        }
    }
}

fn body_reader(resp: reqwest::Response) -> Reader {
    let stream = resp.bytes_stream().map_err(|e| {
        let kind = if e.is_timeout() {
            std::io::ErrorKind::TimedOut
        } else {
            std::io::ErrorKind::Other
        };
        std::io::Error::new(kind, error_chain(&e.without_url()))
    });
    Box::new(tokio_util::io::StreamReader::new(Box::pin(stream)))
}

/// `bytes a-b/total` (or `bytes */total`: start and end 0).
fn content_range(resp: &reqwest::Response) -> Option<(u64, u64, u64)> {
    let value = resp.headers().get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let total = total.trim().parse().ok()?;
    if range.trim() == "*" {
        return Some((0, 0, total));
    }
    let (start, end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?, total))
}

/// The start of an error answer's body, as a reason.
async fn error_reason(mut resp: reqwest::Response) -> Option<String> {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_BYTES);
    problem_reason(&body)
}

fn check_size(what: &str, size: u64, expected: u64) -> Result<(), OpenError> {
    if size == expected {
        Ok(())
    } else {
        Err(OpenError::Unreadable(format!(
            "{what}: the staged copy is {size} bytes, the catalog says {expected}"
        )))
    }
}

fn check_offset(what: &str, offset: u64, expected: u64) -> Result<(), OpenError> {
    if offset <= expected {
        Ok(())
    } else {
        Err(OpenError::Unreadable(format!(
            "{what}: offset {offset} is past the end of a {expected}-byte file"
        )))
    }
}

fn tape_error(e: TapeError) -> OpenError {
    match e {
        TapeError::Unavailable(m) => OpenError::Transient(m),
        TapeError::Refused(m) => OpenError::Unreadable(m),
    }
}

/// A prefix as URLs print (`https://Door:443/x/` → `https://door/x`).
fn normalised_prefix(prefix: &str) -> String {
    Url::parse(prefix)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| prefix.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// `url` is `prefix` or below it (not merely sharing its first characters).
fn under(url: &str, prefix: &str) -> bool {
    url.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::tape::client::{FileState, Locality};
    use axum::{
        http::{header as h, StatusCode as Code},
        routing::get,
        Router,
    };

    const SIZE: u64 = 100_000;

    /// A folder under the system's temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "tape-read-{name}-{}-{nanos}-{n}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn contents(n: u64) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// The tape library, in this process, until dropped.
    struct Library {
        url: String,
        dir: TempDir,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    impl Library {
        async fn start() -> Self {
            let dir = TempDir::new("library");
            let tape_dir = dir.0.join("tape");
            write(&tape_dir.join("aips/a/primary.tar"), &contents(SIZE));
            write(&tape_dir.join("aips/b/primary.tar"), &contents(10));
            let manifest = dir.0.join("manifest.json");
            write(
                &manifest,
                br#"{"files": {"/aips/a/primary.tar": {"volume": "V001", "position": 1},
                               "/aips/gone.tar": {"volume": "V002", "state": "lost"}}}"#,
            );
            write(&dir.0.join("tokens"), b"secret-token\n");
            let cfg = tape_library::config::Config {
                listen: "127.0.0.1:0".into(),
                tape_dir,
                buffer_dir: dir.0.join("buffer"),
                manifest: Some(manifest),
                buffer_bytes: 1 << 30,
                drives: 1,
                mount_ms: 0,
                unmount_ms: 0,
                read_bytes_per_sec: 0,
                default_disk_lifetime: Duration::from_secs(3600),
                api_base: "/api/v1".into(),
                public_url: None,
                sitename: "tape-library".into(),
                description: "test".into(),
                token_file: Some(dir.0.join("tokens")),
                tls_cert: None,
                tls_key: None,
                port_file: None,
            };
            let server = tape_library::Server::bind(&cfg).await.unwrap();
            let url = server.url().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(server.run(async move {
                let _ = stopped.await;
            }));
            Self {
                url,
                dir,
                _stop: stop,
            }
        }

        fn location(&self) -> TapeLocationConfig {
            TapeLocationConfig {
                discovery_url: Some(format!("{}/.well-known/wlcg-tape-rest-api", self.url)),
                path_prefix: "/aips".into(),
                token_file: Some(self.dir.0.join("tokens")),
                ..Default::default()
            }
        }
    }

    fn tape() -> TapeConfig {
        TapeConfig {
            request_timeout_ms: 10_000,
            ..Default::default()
        }
    }

    async fn read_all(reader: &StagedReader, path: &str, offset: u64, size: u64) -> Vec<u8> {
        let mut r = reader.open(path, offset, size).await.unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        out
    }

    fn unreadable<T>(r: Result<T, OpenError>, says: &[&str]) {
        match r {
            Err(OpenError::Unreadable(m)) => {
                for s in says {
                    assert!(m.contains(s), "{s:?} not in {m}");
                }
            }
            Err(e) => panic!("not unreadable: {e:?}"),
            Ok(_) => panic!("opened"),
        }
    }

    #[tokio::test]
    async fn stage_read_and_release_on_the_tape_library() {
        let lib = Library::start().await;
        let cfg = lib.location();
        let client = TapeClient::new("lib", &cfg, &tape()).unwrap();
        let reader = StagedReader::new("lib", &cfg, &client, &tape()).unwrap();
        let a = client.namespace_path("a/primary.tar").unwrap();
        let gone = "/aips/gone.tar".to_owned();

        let info = client
            .archive_info(&[a.clone(), gone.clone(), "/aips/nope.tar".into()])
            .await
            .unwrap();
        assert_eq!(info[0], (a.clone(), Locality::Nearline));
        assert_eq!(info[1], (gone.clone(), Locality::Lost));
        assert!(
            matches!(&info[2].1, Locality::Error(e) if e.contains("does not exist")),
            "{info:?}"
        );
        unreadable(
            reader.open("a/primary.tar", 0, SIZE).await,
            &["409", "stage it first"],
        );

        let id = client
            .stage(&[a.clone(), gone.clone()], "PT1H")
            .await
            .unwrap();
        let mut online = false;
        for _ in 0..400 {
            let progress = client.progress(&id).await.unwrap().unwrap();
            assert!(
                matches!(&progress.file(&gone).unwrap().state, FileState::Failed(m) if m.contains("LOST"))
            );
            match &progress.file(&a).unwrap().state {
                FileState::Online => {
                    online = true;
                    break;
                }
                FileState::Failed(m) => panic!("{m}"),
                FileState::Pending { .. } => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
        assert!(online, "not staged in time");
        let info = client.archive_info(std::slice::from_ref(&a)).await.unwrap();
        assert_eq!(info[0].1, Locality::Online);

        let bytes = contents(SIZE);
        assert_eq!(read_all(&reader, "a/primary.tar", 0, SIZE).await, bytes);
        assert_eq!(
            read_all(&reader, "a/primary.tar", 1234, SIZE).await,
            bytes[1234..]
        );
        assert!(read_all(&reader, "a/primary.tar", SIZE, SIZE)
            .await
            .is_empty());
        unreadable(
            reader.open("a/primary.tar", 0, SIZE + 1).await,
            &["100000 bytes", "the catalog says 100001"],
        );
        unreadable(
            reader.open("a/primary.tar", 10, SIZE - 1).await,
            &["the catalog says 99999"],
        );
        unreadable(reader.open("b/primary.tar", 0, 10).await, &["409"]);
        assert!(matches!(
            reader.open("../etc/passwd", 0, 1).await,
            Err(OpenError::NoReader(_))
        ));

        // The same copy from the mounted buffer.
        let mounted = TapeLocationConfig {
            read_root: Some(lib.dir.0.join("buffer")),
            ..cfg.clone()
        };
        let from_disk = StagedReader::new("lib", &mounted, &client, &tape()).unwrap();
        assert_eq!(
            read_all(&from_disk, "a/primary.tar", 99_000, SIZE).await,
            bytes[99_000..]
        );
        unreadable(
            from_disk.open("a/primary.tar", 0, 5).await,
            &["the staged copy is 100000 bytes, the catalog says 5"],
        );
        unreadable(
            from_disk.open("b/primary.tar", 0, 10).await,
            &["not on the disk buffer: stage it first"],
        );

        client.release(&id, std::slice::from_ref(&a)).await.unwrap();
        client.delete(&id).await.unwrap();
        assert_eq!(client.progress(&id).await.unwrap(), None);
        client.delete(&id).await.unwrap();
        client.release(&id, std::slice::from_ref(&a)).await.unwrap();

        // Without the token: refused, with the tape system's reason.
        let anonymous = TapeLocationConfig {
            token_file: None,
            ..cfg
        };
        let anon = TapeClient::new("lib", &anonymous, &tape()).unwrap();
        match anon.archive_info(std::slice::from_ref(&a)).await {
            Err(TapeError::Refused(m)) => assert!(m.contains("401") && m.contains("lib"), "{m}"),
            other => panic!("{other:?}"),
        }
        let anon_reader = StagedReader::new("lib", &anonymous, &anon, &tape()).unwrap();
        unreadable(
            anon_reader.open("a/primary.tar", 0, SIZE).await,
            &["credentials refused", "401"],
        );
    }

    #[tokio::test]
    async fn redirects_stay_within_the_read_prefixes() {
        let app = Router::new()
            .route(
                "/files/away.tar",
                get(|| async { (Code::FOUND, [(h::LOCATION, "http://127.0.0.1:1/elsewhere")]) }),
            )
            .route(
                "/files/hop.tar",
                get(|| async { (Code::TEMPORARY_REDIRECT, [(h::LOCATION, "/pool/hop.tar")]) }),
            )
            .route("/pool/hop.tar", get(|| async { "hello world" }))
            .route(
                "/files/loop.tar",
                get(|| async { (Code::FOUND, [(h::LOCATION, "/files/loop.tar")]) }),
            )
            .route(
                "/files/busy.tar",
                get(|| async { (Code::SERVICE_UNAVAILABLE, "pool restarting") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let cfg = TapeLocationConfig {
            api_url: Some(format!("{url}/api")),
            read_url: Some(format!("{url}/files/")),
            read_redirect_prefixes: vec![format!("{url}/pool")],
            ..Default::default()
        };
        let client = TapeClient::new("door", &cfg, &tape()).unwrap();
        let reader = StagedReader::new("door", &cfg, &client, &tape()).unwrap();

        unreadable(
            reader.open("away.tar", 0, 5).await,
            &["redirected outside the configured read prefixes: http://127.0.0.1:1/elsewhere"],
        );
        assert_eq!(read_all(&reader, "hop.tar", 0, 11).await, b"hello world");
        // The pool ignores Range: the reader skips to the offset itself.
        assert_eq!(read_all(&reader, "hop.tar", 6, 11).await, b"world");
        unreadable(
            reader.open("loop.tar", 0, 1).await,
            &["more than 5 redirects"],
        );
        match reader.open("busy.tar", 0, 1).await {
            Err(OpenError::Transient(m)) => {
                assert!(m.contains("503") && m.contains("pool restarting"), "{m}")
            }
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("opened"),
        }

        let strict = StagedReader::new(
            "door",
            &TapeLocationConfig {
                read_redirect_prefixes: vec![format!("{url}/poo")],
                ..cfg
            },
            &client,
            &tape(),
        )
        .unwrap();
        unreadable(strict.open("hop.tar", 0, 11).await, &["outside"]);
        assert!(under(
            "https://door/x",
            &normalised_prefix("https://DOOR:443/")
        ));
        assert!(!under(
            "https://door.evil/x",
            &normalised_prefix("https://door")
        ));
    }
}

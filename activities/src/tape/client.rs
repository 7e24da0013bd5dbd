//! The WLCG Tape REST API v1 client of one tape location: ARCHIVEINFO,
//! STAGE and its progress, cancel, delete and release, as the reference
//! document and the notes in `docs/tape-library.md` have them.
//!
//! Failures come in two kinds. [`TapeError::Unavailable`] is worth
//! retrying: no connection, a timeout, a 5xx or 429, an answer that is not
//! the spec's shape. [`TapeError::Refused`] is not: the tape system (or
//! its token issuer) says our request or our credentials are wrong. Either
//! message names the location, the request and the tape system's own
//! reason (the problem's `detail`). A 404 for a request id means the
//! request is gone: progress says so with `None`, cancel, delete and
//! release take it as done.
//!
//! The API's base is `api_url`, or the `v1` endpoint of the discovery
//! document, fetched on first use and kept (a failed discovery is tried
//! again by the next call).

use super::token::{error_chain, TokenSource};
use anyhow::Context;
use platform::config::{TapeConfig, TapeLocationConfig};
use reqwest::{header, Method, StatusCode, Url};
use serde_json::{json, Value};
use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};
use tokio::sync::OnceCell;

/// Paths per ARCHIVEINFO call (servers answer at least this many).
const ARCHIVEINFO_CHUNK: usize = 1000;

/// A failed request to the tape system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapeError {
    /// No answer, a 5xx or 429, or an answer not in the spec's shape: retry.
    #[error("{0}")]
    Unavailable(String),
    /// Our request or credentials are wrong (4xx): retrying will not help.
    #[error("{0}")]
    Refused(String),
}

/// Where a file is, from ARCHIVEINFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locality {
    /// On disk (`DISK`, `DISK_AND_TAPE`): readable now.
    Online,
    /// On tape only (`TAPE`): stage it first.
    Nearline,
    /// The tape copy is unrecoverable (`LOST`).
    Lost,
    /// Temporarily unreadable (`UNAVAILABLE`).
    Unavailable,
    /// An empty file (`NONE`).
    Empty,
    /// The entry's `error`.
    Error(String),
    /// Anything else (a locality this client does not know, or no entry).
    Unknown(String),
}

impl Locality {
    /// For audit text.
    pub fn describe(&self) -> String {
        match self {
            Self::Online => "on disk (online)".into(),
            Self::Nearline => "on tape only (nearline)".into(),
            Self::Lost => "LOST: its tape copy is unrecoverable".into(),
            Self::Unavailable => "UNAVAILABLE: its tape copy cannot be read now".into(),
            Self::Empty => "NONE: an empty file".into(),
            Self::Error(e) => format!("error: {e}"),
            Self::Unknown(what) => format!("unknown locality: {what}"),
        }
    }

    fn of(entry: &Value) -> Self {
        if let Some(e) = entry.get("error").and_then(Value::as_str) {
            return Self::Error(e.to_owned());
        }
        match entry.get("locality").and_then(Value::as_str) {
            Some("DISK" | "DISK_AND_TAPE") => Self::Online,
            Some("TAPE") => Self::Nearline,
            Some("LOST") => Self::Lost,
            Some("UNAVAILABLE") => Self::Unavailable,
            Some("NONE") => Self::Empty,
            Some(other) => Self::Unknown(other.to_owned()),
            None => Self::Unknown("neither locality nor error in its entry".into()),
        }
    }
}

/// A STAGE request's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageProgress {
    pub created_at: Option<u64>,
    pub started_at: Option<u64>,
    pub files: Vec<FileProgress>,
}

/// One file of a STAGE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProgress {
    pub path: String,
    pub state: FileState,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
}

/// Where a staged file stands, in either dialect (`state` or `onDisk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// On disk: readable now.
    Online,
    /// Failed or cancelled, with the tape system's reason.
    Failed(String),
    /// Still coming; `started` once a drive reads it.
    Pending { started: bool },
}

impl StageProgress {
    /// The file with this path (slashes collapsed before comparing).
    pub fn file(&self, path: &str) -> Option<&FileProgress> {
        let key = path_key(path);
        self.files.iter().find(|f| path_key(&f.path) == key)
    }

    fn parse(v: &Value) -> Option<Self> {
        let files = v
            .get("files")?
            .as_array()?
            .iter()
            .map(FileProgress::parse)
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            created_at: seconds(v.get("createdAt")),
            started_at: seconds(v.get("startedAt")),
            files,
        })
    }
}

impl FileProgress {
    fn parse(v: &Value) -> Option<Self> {
        let path = v.get("path")?.as_str()?.to_owned();
        let state = v.get("state").and_then(Value::as_str);
        let error = v
            .get("error")
            .and_then(Value::as_str)
            .filter(|e| !e.trim().is_empty());
        let on_disk = v.get("onDisk").and_then(Value::as_bool) == Some(true);
        // gfal2's order: error, then onDisk, then state.
        let state = if let Some(e) = error {
            FileState::Failed(e.to_owned())
        } else if on_disk {
            FileState::Online
        } else {
            match state {
                Some("COMPLETED") => FileState::Online,
                Some(s @ ("FAILED" | "CANCELLED" | "CANCELED")) => {
                    FileState::Failed(format!("the tape system reports it {s}"))
                }
                Some("STARTED") => FileState::Pending { started: true },
                _ => FileState::Pending { started: false },
            }
        };
        Some(Self {
            path,
            state,
            started_at: seconds(v.get("startedAt")),
            finished_at: seconds(v.get("finishedAt")),
        })
    }
}

/// Seconds since the epoch, as an integer (or, leniently, a float).
fn seconds(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// A path for comparing: duplicate and trailing slashes collapsed.
pub(crate) fn path_key(p: &str) -> String {
    let joined = p
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    if p.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The client of one tape location; cheap to clone.
#[derive(Clone)]
pub struct TapeClient {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    http: reqwest::Client,
    token: TokenSource,
    discovery_url: Option<String>,
    base: OnceCell<String>,
    path_prefix: String,
    read_url: Option<String>,
}

impl TapeClient {
    /// The client of location `location_id`; nothing is fetched yet.
    pub fn new(
        location_id: &str,
        cfg: &TapeLocationConfig,
        tape: &TapeConfig,
    ) -> anyhow::Result<Self> {
        let http = http_builder(location_id, cfg)?
            .timeout(Duration::from_millis(tape.request_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .with_context(|| format!("tape location {location_id}: building its HTTP client"))?;
        let base = match (&cfg.api_url, &cfg.discovery_url) {
            (Some(api), _) => {
                Url::parse(api)
                    .with_context(|| format!("tape location {location_id}: api_url {api}"))?;
                Some(api.trim_end_matches('/').to_owned())
            }
            (None, Some(d)) => {
                Url::parse(d)
                    .with_context(|| format!("tape location {location_id}: discovery_url {d}"))?;
                None
            }
            (None, None) => {
                anyhow::bail!("tape location {location_id}: needs api_url or discovery_url")
            }
        };
        if let Some(r) = &cfg.read_url {
            Url::parse(r).with_context(|| format!("tape location {location_id}: read_url {r}"))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                id: location_id.to_owned(),
                token: TokenSource::new(cfg, http.clone()),
                http,
                discovery_url: cfg.discovery_url.clone(),
                base: OnceCell::new_with(base),
                path_prefix: cfg.path_prefix.clone(),
                read_url: cfg
                    .read_url
                    .as_ref()
                    .map(|r| r.trim_end_matches('/').to_owned()),
            }),
        })
    }

    /// The location's id.
    pub fn location_id(&self) -> &str {
        &self.inner.id
    }

    /// The location's bearer token source.
    pub fn tokens(&self) -> &TokenSource {
        &self.inner.token
    }

    /// The tape system's namespace path of a catalog `filePath`: the
    /// location's `path_prefix` joined with it. Empty, absolute or
    /// dot-dot paths and empty segments are refused.
    pub fn namespace_path(&self, file_path: &str) -> Result<String, TapeError> {
        namespace_path(&self.inner.path_prefix, file_path).map_err(|why| {
            TapeError::Refused(format!(
                "tape location {}: file path {file_path:?}: {why}",
                self.inner.id
            ))
        })
    }

    /// The API's base URL (discovered on first use when configured so).
    pub async fn base(&self) -> Result<&str, TapeError> {
        self.inner
            .base
            .get_or_try_init(|| self.discover())
            .await
            .map(String::as_str)
    }

    /// Where staged bytes are read: `{prefix}{namespace path}`; `read_url`,
    /// else the origin of the API's base.
    pub async fn read_prefix(&self) -> Result<String, TapeError> {
        if let Some(r) = &self.inner.read_url {
            return Ok(r.clone());
        }
        let base = self.base().await?;
        let url = Url::parse(base).map_err(|e| {
            TapeError::Unavailable(format!(
                "tape location {}: API base {base}: {e}",
                self.inner.id
            ))
        })?;
        Ok(url.origin().ascii_serialization())
    }

    /// Where each path is (one entry per path, in order).
    #[tracing::instrument(level = "debug", skip_all, fields(location = %self.inner.id, paths = paths.len()))]
    pub async fn archive_info(
        &self,
        paths: &[String],
    ) -> Result<Vec<(String, Locality)>, TapeError> {
        let mut out = Vec::with_capacity(paths.len());
        if paths.is_empty() {
            return Ok(out);
        }
        let url = format!("{}/archiveinfo", self.base().await?);
        for chunk in paths.chunks(ARCHIVEINFO_CHUNK) {
            let body = json!({ "paths": chunk });
            let (status, answer) = self.send(Method::POST, &url, Some(&body)).await?;
            if !status.is_success() {
                return Err(self.status_error(&Method::POST, &url, status, &answer));
            }
            let answer = self.json(&Method::POST, &url, status, &answer)?;
            let Some(entries) = answer.as_array() else {
                return Err(self.garbage(&Method::POST, &url, status, "not a JSON array"));
            };
            let mut found = HashMap::new();
            for entry in entries {
                let Some(path) = entry.get("path").and_then(Value::as_str) else {
                    return Err(self.garbage(
                        &Method::POST,
                        &url,
                        status,
                        "an entry without a path",
                    ));
                };
                found
                    .entry(path_key(path))
                    .or_insert_with(|| Locality::of(entry));
            }
            out.extend(chunk.iter().map(|p| {
                let locality = found
                    .get(&path_key(p))
                    .cloned()
                    .unwrap_or_else(|| Locality::Unknown("not in the tape system's answer".into()));
                (p.clone(), locality)
            }));
        }
        Ok(out)
    }

    /// Submits a STAGE request for `paths`, pinned for `disk_lifetime`
    /// (ISO 8601) once on disk; its request id.
    #[tracing::instrument(level = "debug", skip_all, fields(location = %self.inner.id, files = paths.len()))]
    pub async fn stage(&self, paths: &[String], disk_lifetime: &str) -> Result<String, TapeError> {
        let url = format!("{}/stage", self.base().await?);
        if paths.is_empty() {
            return Err(TapeError::Refused(format!(
                "{}: a STAGE request needs at least one file",
                self.what(&Method::POST, &url)
            )));
        }
        let files: Vec<Value> = paths
            .iter()
            .map(|p| json!({ "path": p, "diskLifetime": disk_lifetime }))
            .collect();
        let (status, answer) = self
            .send(Method::POST, &url, Some(&json!({ "files": files })))
            .await?;
        if status != StatusCode::CREATED {
            if status.is_success() {
                return Err(TapeError::Refused(format!(
                    "{}: HTTP {status} instead of 201 Created: not a STAGE answer",
                    self.what(&Method::POST, &url)
                )));
            }
            return Err(self.status_error(&Method::POST, &url, status, &answer));
        }
        let answer = self.json(&Method::POST, &url, status, &answer)?;
        answer
            .get("requestId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| self.garbage(&Method::POST, &url, status, "no requestId"))
    }

    /// A STAGE request's progress; `None` when the tape system no longer
    /// knows the request (deleted, expired, restarted): resubmit.
    #[tracing::instrument(level = "debug", skip_all, fields(location = %self.inner.id, request_id = %request_id))]
    pub async fn progress(&self, request_id: &str) -> Result<Option<StageProgress>, TapeError> {
        let url = format!("{}/stage/{}", self.base().await?, segment(request_id));
        let (status, answer) = self.send(Method::GET, &url, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.status_error(&Method::GET, &url, status, &answer));
        }
        let answer = self.json(&Method::GET, &url, status, &answer)?;
        StageProgress::parse(&answer).map(Some).ok_or_else(|| {
            self.garbage(&Method::GET, &url, status, "not a STAGE request's progress")
        })
    }

    /// Cancels these files of a STAGE request.
    pub async fn cancel(&self, request_id: &str, paths: &[String]) -> Result<(), TapeError> {
        let url = format!(
            "{}/stage/{}/cancel",
            self.base().await?,
            segment(request_id)
        );
        self.modify(Method::POST, &url, Some(&json!({ "paths": paths })))
            .await
    }

    /// Deletes a STAGE request: its files cancelled, its pins dropped.
    pub async fn delete(&self, request_id: &str) -> Result<(), TapeError> {
        let url = format!("{}/stage/{}", self.base().await?, segment(request_id));
        self.modify(Method::DELETE, &url, None).await
    }

    /// Ends a STAGE request's pins on these files.
    pub async fn release(&self, request_id: &str, paths: &[String]) -> Result<(), TapeError> {
        let url = format!("{}/release/{}", self.base().await?, segment(request_id));
        self.modify(Method::POST, &url, Some(&json!({ "paths": paths })))
            .await
    }

    /// 2xx, or 404 (the request is gone: nothing of it is pinned).
    async fn modify(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(), TapeError> {
        let (status, answer) = self.send(method.clone(), url, body).await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.status_error(&method, url, status, &answer))
        }
    }

    async fn discover(&self) -> Result<String, TapeError> {
        let id = &self.inner.id;
        let Some(url) = &self.inner.discovery_url else {
            return Err(TapeError::Refused(format!(
                "tape location {id}: neither api_url nor discovery_url"
            )));
        };
        let failed = |why: String| {
            TapeError::Unavailable(format!("tape location {id}: discovery GET {url}: {why}"))
        };
        let (status, answer) = self
            .send(Method::GET, url, None)
            .await
            .map_err(|e| match e {
                TapeError::Unavailable(m) | TapeError::Refused(m) => TapeError::Unavailable(m),
            })?;
        if !status.is_success() {
            let reason = problem_reason(&answer)
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            return Err(failed(format!("HTTP {status}{reason}")));
        }
        let doc: Value = serde_json::from_slice(&answer)
            .map_err(|e| failed(format!("HTTP {status} but the body is not JSON ({e})")))?;
        let uri = doc
            .get("endpoints")
            .and_then(Value::as_array)
            .and_then(|endpoints| {
                endpoints
                    .iter()
                    .filter(|e| e.get("version").and_then(Value::as_str) == Some("v1"))
                    .find_map(|e| e.get("uri").and_then(Value::as_str))
            })
            .ok_or_else(|| failed("no endpoint of version v1 in the discovery document".into()))?;
        // A relative `uri` is taken relative to the document.
        let base = Url::parse(url)
            .and_then(|u| u.join(uri))
            .map_err(|e| failed(format!("endpoint uri {uri:?}: {e}")))?;
        let base = base.as_str().trim_end_matches('/').to_owned();
        tracing::info!(location = %id, %base, "discovered the tape REST API");
        Ok(base)
    }

    /// One request: its status and body; no answer is Unavailable.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, bytes::Bytes), TapeError> {
        let what = self.what(&method, url);
        let mut req = self
            .inner
            .http
            .request(method, url)
            .header(header::ACCEPT, "application/json");
        let token = self.inner.token.bearer().await.map_err(|e| match e {
            TapeError::Unavailable(m) => TapeError::Unavailable(format!("{what}: {m}")),
            TapeError::Refused(m) => TapeError::Refused(format!("{what}: {m}")),
        })?;
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| {
            let builder = e.is_builder();
            let msg = format!("{what}: {}", error_chain(&e.without_url()));
            if builder {
                TapeError::Refused(msg)
            } else {
                TapeError::Unavailable(msg)
            }
        })?;
        let status = resp.status();
        let answer = resp.bytes().await.map_err(|e| {
            TapeError::Unavailable(format!(
                "{what}: HTTP {status}, reading the body: {}",
                error_chain(&e.without_url())
            ))
        })?;
        Ok((status, answer))
    }

    fn what(&self, method: &Method, url: &str) -> String {
        format!("tape location {}: {method} {url}", self.inner.id)
    }

    /// A non-success status: 5xx, 429 and 408 are worth retrying.
    fn status_error(
        &self,
        method: &Method,
        url: &str,
        status: StatusCode,
        body: &[u8],
    ) -> TapeError {
        let reason = problem_reason(body)
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let msg = format!("{}: HTTP {status}{reason}", self.what(method, url));
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_informational()
        {
            TapeError::Unavailable(msg)
        } else {
            TapeError::Refused(msg)
        }
    }

    fn json(
        &self,
        method: &Method,
        url: &str,
        status: StatusCode,
        body: &[u8],
    ) -> Result<Value, TapeError> {
        serde_json::from_slice(body)
            .map_err(|e| self.garbage(method, url, status, &format!("the body is not JSON ({e})")))
    }

    fn garbage(&self, method: &Method, url: &str, status: StatusCode, why: &str) -> TapeError {
        TapeError::Unavailable(format!(
            "{}: HTTP {status} but {why}",
            self.what(method, url)
        ))
    }
}

/// A client builder trusting the location's `ca_path` (a PEM file or a
/// folder of them, e.g. `/etc/grid-security/certificates`) besides the
/// built-in roots.
pub(crate) fn http_builder(
    location_id: &str,
    cfg: &TapeLocationConfig,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(ca) = &cfg.ca_path {
        let certs = ca_certificates(ca)
            .with_context(|| format!("tape location {location_id}: ca_path {}", ca.display()))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

fn ca_certificates(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    if !path.is_dir() {
        let pem = std::fs::read(path).context("reading it")?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).context("parsing its PEM")?;
        anyhow::ensure!(!certs.is_empty(), "no PEM certificate in it");
        return Ok(certs);
    }
    let mut certs = Vec::new();
    for entry in std::fs::read_dir(path).context("listing it")? {
        let file = entry.context("listing it")?.path();
        // Other files of a CA folder (CRLs, policies) hold no certificate.
        if let Ok(pem) = std::fs::read(&file) {
            if let Ok(found) = reqwest::Certificate::from_pem_bundle(&pem) {
                certs.extend(found);
            }
        }
    }
    anyhow::ensure!(!certs.is_empty(), "no PEM certificate in this folder");
    Ok(certs)
}

/// A problem's `detail` (else `title`), else the start of a text body.
pub(crate) fn problem_reason(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        return field("detail").or_else(|| field("title"));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then(|| text.chars().take(200).collect())
}

fn namespace_path(prefix: &str, file_path: &str) -> Result<String, &'static str> {
    if file_path.is_empty() {
        return Err("an empty path");
    }
    if file_path.starts_with('/') {
        return Err("absolute: a path is relative to the location's path_prefix");
    }
    if file_path.contains('\0') {
        return Err("a NUL in the path");
    }
    if file_path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("empty, '.' and '..' segments are refused");
    }
    Ok(path_key(&format!("/{prefix}/{file_path}")))
}

/// A request id as one URL path segment.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::{
        http::StatusCode as Code,
        routing::{get, post},
        Router,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn client(cfg: TapeLocationConfig) -> TapeClient {
        TapeClient::new("hpss", &cfg, &TapeConfig::default()).unwrap()
    }

    fn api(url: &str) -> TapeLocationConfig {
        TapeLocationConfig {
            api_url: Some(url.into()),
            path_prefix: "/aips/".into(),
            ..Default::default()
        }
    }

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[test]
    fn namespace_paths_stay_under_the_prefix() {
        let c = client(api("http://tape.example.org/api/v1"));
        assert_eq!(c.namespace_path("a/b.tar").unwrap(), "/aips/a/b.tar");
        for bad in ["../x", "/x", "a//b", "a/./b", "a/../../b", "a/", ""] {
            match c.namespace_path(bad) {
                Err(TapeError::Refused(m)) => assert!(m.contains("hpss"), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let root = client(TapeLocationConfig {
            path_prefix: "/".into(),
            ..api("http://tape.example.org/api/v1")
        });
        assert_eq!(root.namespace_path("x.tar").unwrap(), "/x.tar");
        assert_eq!(path_key("//a//b/"), "/a/b");
    }

    #[test]
    fn both_progress_dialects() {
        let answer = json!({"id": "r", "createdAt": 10, "startedAt": 11, "files": [
            {"path": "/a", "state": "COMPLETED", "startedAt": 11, "finishedAt": 12},
            {"path": "/b", "onDisk": true},
            {"path": "/c", "state": "STARTED"},
            {"path": "/d", "state": "SUBMITTED"},
            {"path": "/e", "onDisk": false},
            {"path": "/f", "state": "FAILED", "error": "the file is LOST"},
            {"path": "/g", "state": "CANCELED"},
            {"path": "/h", "error": "no such file", "onDisk": false},
        ]});
        let p = StageProgress::parse(&answer).unwrap();
        assert_eq!((p.created_at, p.started_at), (Some(10), Some(11)));
        let state = |path: &str| p.file(path).unwrap().state.clone();
        assert_eq!(state("//a"), FileState::Online);
        assert_eq!(p.file("/a").unwrap().finished_at, Some(12));
        assert_eq!(state("/b"), FileState::Online);
        assert_eq!(state("/c"), FileState::Pending { started: true });
        assert_eq!(state("/d"), FileState::Pending { started: false });
        assert_eq!(state("/e"), FileState::Pending { started: false });
        assert_eq!(state("/f"), FileState::Failed("the file is LOST".into()));
        assert!(matches!(state("/g"), FileState::Failed(m) if m.contains("CANCELED")));
        assert_eq!(state("/h"), FileState::Failed("no such file".into()));
        assert!(p.file("/z").is_none());
        assert!(StageProgress::parse(&json!({"files": "nope"})).is_none());
        assert!(StageProgress::parse(&json!({"files": [{"state": "COMPLETED"}]})).is_none());
    }

    #[tokio::test]
    async fn garbage_answers_are_unavailable() {
        let app = Router::new()
            .route("/api/archiveinfo", post(|| async { (Code::OK, "not json") }))
            .route(
                "/api/stage",
                post(|| async {
                    (
                        Code::INTERNAL_SERVER_ERROR,
                        [("content-type", "application/problem+json")],
                        r#"{"title": "Internal", "status": 500, "detail": "drive on fire"}"#,
                    )
                }),
            )
            .route(
                "/api/stage/{id}",
                get(|| async { (Code::OK, r#"{"files": "nope"}"#) }).delete(|| async {
                    (
                        Code::FORBIDDEN,
                        r#"{"title": "Forbidden", "status": 403, "detail": "no storage.stage scope"}"#,
                    )
                }),
            )
            .route("/api/release/{id}", post(|| async { Code::NOT_FOUND }))
            .route(
                "/api/stage/{id}/cancel",
                post(|| async { (Code::TOO_MANY_REQUESTS, "slow down") }),
            );
        let url = serve(app).await;
        let c = client(api(&format!("{url}/api/")));
        let paths = vec!["/aips/a.tar".to_owned()];

        let unavailable = |r: Result<(), TapeError>, says: &[&str]| match r {
            Err(TapeError::Unavailable(m)) => {
                for s in says {
                    assert!(m.contains(s), "{s:?} not in {m}");
                }
            }
            other => panic!("{other:?}"),
        };
        unavailable(
            c.archive_info(&paths).await.map(drop),
            &["hpss", "POST", "/api/archiveinfo", "200", "not JSON"],
        );
        unavailable(
            c.stage(&paths, "PT1H").await.map(drop),
            &["POST", "/api/stage", "500", "drive on fire"],
        );
        unavailable(
            c.progress("r1").await.map(drop),
            &["GET", "/api/stage/r1", "200", "progress"],
        );
        unavailable(c.cancel("r1", &paths).await, &["429", "slow down"]);
        match c.delete("r1").await {
            Err(TapeError::Refused(m)) => {
                assert!(
                    m.contains("403") && m.contains("no storage.stage scope"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Gone already: nothing pinned by it.
        c.release("r1", &paths).await.unwrap();

        let nobody = client(api("http://127.0.0.1:1/api"));
        unavailable(
            nobody.archive_info(&paths).await.map(drop),
            &["127.0.0.1:1"],
        );
    }

    #[tokio::test]
    async fn a_failed_discovery_is_tried_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = Router::new().route(
            "/.well-known/wlcg-tape-rest-api",
            get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        (Code::SERVICE_UNAVAILABLE, "starting".to_owned())
                    } else {
                        let doc = json!({"sitename": "x", "endpoints": [
                            {"uri": "/api/v0", "version": "v0", "metadata": {}},
                            {"uri": "/api/v1/", "version": "v1", "metadata": {}}]});
                        (Code::OK, doc.to_string())
                    }
                }
            }),
        );
        let url = serve(app).await;
        let c = client(TapeLocationConfig {
            discovery_url: Some(format!("{url}/.well-known/wlcg-tape-rest-api")),
            ..Default::default()
        });
        match c.base().await {
            Err(TapeError::Unavailable(m)) => assert!(m.contains("503"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.base().await.unwrap(), format!("{url}/api/v1"));
        assert_eq!(c.base().await.unwrap(), format!("{url}/api/v1"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(c.read_prefix().await.unwrap(), url);
    }
}

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

mod answers;
mod http;
mod paths;

pub use answers::{FileProgress, FileState, Locality, StageProgress};
pub(crate) use http::{http_builder, problem_reason};

use super::token::TokenSource;
use anyhow::Context;
use http::reason_suffix;
use paths::{namespace_path, path_key, segment};
use platform::config::{TapeConfig, TapeLocationConfig};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};
use std::{collections::HashMap, sync::Arc, time::Duration};
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
            return Err(failed(format!("HTTP {status}{}", reason_suffix(&answer))));
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

//! The HTTP side of the client: the `reqwest` client trusting the
//! location's CAs, one request with its bearer token, and how a failed or
//! garbled answer becomes a [`TapeError`] that names the location, the
//! request and the tape system's own reason.

use super::{TapeClient, TapeError};
use crate::tape::token::error_chain;
use anyhow::Context;
use platform::config::TapeLocationConfig;
use reqwest::{header, Method, StatusCode};
use serde_json::Value;
use std::path::Path;

impl TapeClient {
    /// One request: its status and body; no answer is Unavailable.
    pub(super) async fn send(
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

    pub(super) fn what(&self, method: &Method, url: &str) -> String {
        format!("tape location {}: {method} {url}", self.inner.id)
    }

    /// A non-success status: 5xx, 429 and 408 are worth retrying.
    pub(super) fn status_error(
        &self,
        method: &Method,
        url: &str,
        status: StatusCode,
        body: &[u8],
    ) -> TapeError {
        let msg = format!(
            "{}: HTTP {status}{}",
            self.what(method, url),
            reason_suffix(body)
        );
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

    pub(super) fn json(
        &self,
        method: &Method,
        url: &str,
        status: StatusCode,
        body: &[u8],
    ) -> Result<Value, TapeError> {
        serde_json::from_slice(body)
            .map_err(|e| self.garbage(method, url, status, &format!("the body is not JSON ({e})")))
    }

    pub(super) fn garbage(
        &self,
        method: &Method,
        url: &str,
        status: StatusCode,
        why: &str,
    ) -> TapeError {
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

/// `": {reason}"` after the status of a failed answer, or nothing.
pub(super) fn reason_suffix(body: &[u8]) -> String {
    problem_reason(body)
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
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

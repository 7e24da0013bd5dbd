//! The bearer token a tape location's requests carry: none, the contents
//! of a token file (read again whenever its size or modification time
//! changes, so an external agent can rotate it), or an OAuth2
//! client-credentials grant at the site's token issuer, cached and
//! refreshed ahead of its expiry by one caller while the others wait for
//! that same refresh.
//!
//! A token file that cannot be read or is empty is worth retrying (it may
//! be in the middle of a rotation); an issuer refusing our client (4xx) is
//! not.

use super::client::{problem_reason, TapeError};
use platform::config::TapeLocationConfig;
use reqwest::{header, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};
use tokio::sync::Mutex;

/// How long a token whose issuer gave no `expires_in` is reused.
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(300);
/// Longer lifetimes are taken as this (no overflow, and a day is plenty).
const LONGEST_LIFETIME: Duration = Duration::from_secs(86_400);

/// Where a tape location's bearer token comes from; cheap to clone.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Source>,
}

enum Source {
    None,
    File {
        path: PathBuf,
        cached: Mutex<Option<FileToken>>,
    },
    OAuth(Box<OAuth>),
}

struct OAuth {
    http: reqwest::Client,
    url: String,
    client_id: String,
    secret: SecretString,
    scope: Option<String>,
    cached: Mutex<Option<Issued>>,
}

struct FileToken {
    stamp: (u64, Option<SystemTime>),
    token: String,
}

struct Issued {
    token: String,
    refresh_at: Instant,
}

impl TokenSource {
    /// The location's token source: `token_url` (with `client_id` and
    /// `client_secret`), else `token_file`, else none. Token requests use
    /// `http`.
    pub fn new(cfg: &TapeLocationConfig, http: reqwest::Client) -> Self {
        let source = match (&cfg.token_url, &cfg.client_id, &cfg.client_secret) {
            (Some(url), Some(client_id), Some(secret)) => Source::OAuth(Box::new(OAuth {
                http,
                url: url.clone(),
                client_id: client_id.clone(),
                secret: secret.clone(),
                scope: cfg.token_scope.clone().filter(|s| !s.trim().is_empty()),
                cached: Mutex::new(None),
            })),
            _ => match &cfg.token_file {
                Some(path) => Source::File {
                    path: path.clone(),
                    cached: Mutex::new(None),
                },
                None => Source::None,
            },
        };
        Self {
            inner: Arc::new(source),
        }
    }

    /// The token to send as `Authorization: Bearer`, if the location has one.
    pub async fn bearer(&self) -> Result<Option<String>, TapeError> {
        match &*self.inner {
            Source::None => Ok(None),
            Source::File { path, cached } => read_file(path, cached).await.map(Some),
            Source::OAuth(oauth) => oauth.token().await.map(Some),
        }
    }
}

async fn read_file(path: &Path, cached: &Mutex<Option<FileToken>>) -> Result<String, TapeError> {
    let failed =
        |e: std::io::Error| TapeError::Unavailable(format!("token file {}: {e}", path.display()));
    let meta = tokio::fs::metadata(path).await.map_err(failed)?;
    let stamp = (meta.len(), meta.modified().ok());
    let mut cached = cached.lock().await;
    if let Some(c) = cached.as_ref().filter(|c| c.stamp == stamp) {
        return Ok(c.token.clone());
    }
    let text = tokio::fs::read_to_string(path).await.map_err(failed)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TapeError::Unavailable(format!(
            "token file {} is empty",
            path.display()
        )));
    }
    if token.contains(char::is_whitespace) {
        return Err(TapeError::Refused(format!(
            "token file {} holds more than one token (whitespace inside)",
            path.display()
        )));
    }
    let token = token.to_owned();
    *cached = Some(FileToken {
        stamp,
        token: token.clone(),
    });
    Ok(token)
}

/// Refreshed when less than this is left: max(60 s, a tenth of the
/// lifetime), at most half of it (a very short-lived token is still
/// reused for a while).
fn refresh_margin(lifetime: Duration) -> Duration {
    Duration::from_secs(60).max(lifetime / 10).min(lifetime / 2)
}

impl OAuth {
    async fn token(&self) -> Result<String, TapeError> {
        // Held across the fetch: concurrent callers share one refresh.
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let asked = Instant::now();
        let (token, lifetime) = self.fetch().await?;
        let lifetime = lifetime.min(LONGEST_LIFETIME);
        let issued = Issued {
            token: token.clone(),
            refresh_at: asked + lifetime - refresh_margin(lifetime),
        };
        *cached = Some(issued);
        Ok(token)
    }

    async fn fetch(&self) -> Result<(String, Duration), TapeError> {
        let what = format!("token endpoint POST {}", self.url);
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        // RFC 6749 2.3.1: id and secret are form-encoded, then Basic.
        let resp = self
            .http
            .post(&self.url)
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(self.secret.expose_secret())),
            )
            .header(header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| TapeError::Unavailable(format!("{what}: {}", error_chain(&e))))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| {
            TapeError::Unavailable(format!("{what}: HTTP {status}: {}", error_chain(&e)))
        })?;
        if !status.is_success() {
            let reason = oauth_reason(&body)
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let msg = format!("{what}: HTTP {status}{reason}");
            return Err(
                if status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT
                {
                    TapeError::Unavailable(msg)
                } else {
                    TapeError::Refused(msg)
                },
            );
        }
        let garbage = |why: &str| TapeError::Unavailable(format!("{what}: HTTP {status}: {why}"));
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|e| garbage(&format!("the body is not JSON ({e})")))?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| garbage("no access_token in the answer"))?;
        let lifetime = match answer.get("expires_in") {
            None | Some(Value::Null) => UNKNOWN_LIFETIME,
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .map(Duration::from_secs)
                .ok_or_else(|| garbage("expires_in is not a number of seconds"))?,
        };
        Ok((token.to_owned(), lifetime))
    }
}

/// An OAuth2 error answer's `error_description` / `error`, else a problem's.
fn oauth_reason(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let error = v.get("error").and_then(Value::as_str);
    let description = v.get("error_description").and_then(Value::as_str);
    match (error, description) {
        (Some(e), Some(d)) => Some(format!("{e}: {d}")),
        (Some(e), None) => Some(e.to_owned()),
        _ => problem_reason(body),
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An error with its causes, `a: b: c`.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::{
        extract::State,
        http::{HeaderMap, StatusCode},
        routing::post,
        Form, Json, Router,
    };
    use base64::Engine;
    use std::{
        collections::HashMap,
        sync::atomic::{AtomicUsize, Ordering},
    };

    fn temp_file(name: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir().join(format!("tape-token-{name}-{}-{nanos}", std::process::id()))
    }

    #[tokio::test]
    async fn a_token_file_is_read_again_when_it_changes() {
        let path = temp_file("file");
        let cfg = TapeLocationConfig {
            token_file: Some(path.clone()),
            ..Default::default()
        };
        let tokens = TokenSource::new(&cfg, reqwest::Client::new());
        assert!(matches!(
            tokens.bearer().await,
            Err(TapeError::Unavailable(_))
        ));
        std::fs::write(&path, "  tok-a\n").unwrap();
        assert_eq!(tokens.bearer().await.unwrap().as_deref(), Some("tok-a"));
        assert_eq!(tokens.bearer().await.unwrap().as_deref(), Some("tok-a"));
        std::fs::write(&path, "tok-bbb\n").unwrap();
        assert_eq!(tokens.bearer().await.unwrap().as_deref(), Some("tok-bbb"));
        std::fs::write(&path, "\n").unwrap();
        let err = tokens.bearer().await.unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        std::fs::remove_file(&path).unwrap();

        let none = TokenSource::new(&TapeLocationConfig::default(), reqwest::Client::new());
        assert_eq!(none.bearer().await.unwrap(), None);
    }

    #[test]
    fn refresh_margins() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(360)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(300)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert_eq!(form_encode("svc:a b/é"), "svc%3Aa+b%2F%C3%A9");
    }

    #[derive(Default)]
    struct Issuer {
        calls: AtomicUsize,
        seen: std::sync::Mutex<Vec<(String, HashMap<String, String>)>>,
    }

    async fn issue(
        State(issuer): State<Arc<Issuer>>,
        headers: HeaderMap,
        Form(form): Form<HashMap<String, String>>,
    ) -> (StatusCode, Json<Value>) {
        let basic = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default();
        issuer.seen.lock().unwrap().push((basic.clone(), form));
        if basic != "svc%3Adissemination:s3cret" {
            return (
                StatusCode::UNAUTHORIZED,
                Json(
                    serde_json::json!({"error": "invalid_client", "error_description": "bad secret"}),
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = issuer.calls.fetch_add(1, Ordering::SeqCst) + 1;
        (
            StatusCode::OK,
            Json(
                serde_json::json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600}),
            ),
        )
    }

    async fn issuer() -> (String, Arc<Issuer>) {
        let state = Arc::new(Issuer::default());
        let app = Router::new()
            .route("/token", post(issue))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, state)
    }

    fn oauth_cfg(url: &str, secret: &str) -> TapeLocationConfig {
        TapeLocationConfig {
            token_url: Some(url.into()),
            client_id: Some("svc:dissemination".into()),
            client_secret: Some(SecretString::from(secret.to_owned())),
            token_scope: Some("storage.read:/ storage.stage:/".into()),
            ..Default::default()
        }
    }

    fn expire(tokens: &TokenSource) {
        let Source::OAuth(oauth) = &*tokens.inner else {
            panic!("not OAuth")
        };
        let mut cached = oauth.cached.try_lock().unwrap();
        let issued = cached.as_mut().unwrap();
        // Within the refresh margin: the next caller refreshes.
        issued.refresh_at = Instant::now();
    }

    #[tokio::test]
    async fn oauth_tokens_are_cached_and_refreshed_before_expiry() {
        let (url, issuer) = issuer().await;
        let tokens = TokenSource::new(&oauth_cfg(&url, "s3cret"), reqwest::Client::new());
        assert_eq!(tokens.bearer().await.unwrap().as_deref(), Some("tok-1"));
        assert_eq!(tokens.bearer().await.unwrap().as_deref(), Some("tok-1"));
        assert_eq!(issuer.calls.load(Ordering::SeqCst), 1);
        {
            let seen = issuer.seen.lock().unwrap();
            let (basic, form) = &seen[0];
            assert_eq!(basic, "svc%3Adissemination:s3cret");
            assert_eq!(form["grant_type"], "client_credentials");
            assert_eq!(form["scope"], "storage.read:/ storage.stage:/");
        }

        expire(&tokens);
        assert_eq!(tokens.bearer().await.unwrap().as_deref(), Some("tok-2"));
        assert_eq!(issuer.calls.load(Ordering::SeqCst), 2);

        // Concurrent callers share one refresh.
        expire(&tokens);
        let all = futures::future::join_all((0..8).map(|_| {
            let tokens = tokens.clone();
            async move { tokens.bearer().await }
        }))
        .await;
        for t in all {
            assert_eq!(t.unwrap().as_deref(), Some("tok-3"));
        }
        assert_eq!(issuer.calls.load(Ordering::SeqCst), 3);

        let refused = TokenSource::new(&oauth_cfg(&url, "wrong"), reqwest::Client::new());
        match refused.bearer().await {
            Err(TapeError::Refused(m)) => {
                assert!(m.contains("401") && m.contains("bad secret"), "{m}")
            }
            other => panic!("{:?}", other.map_err(|e| e.to_string())),
        }
        let down = TokenSource::new(
            &oauth_cfg("http://127.0.0.1:1/token", "s3cret"),
            reqwest::Client::new(),
        );
        assert!(matches!(
            down.bearer().await,
            Err(TapeError::Unavailable(_))
        ));
    }
}

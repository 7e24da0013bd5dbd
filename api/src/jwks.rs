//! The issuer's signing keys. Either a fixed set read once at start (the
//! embedded default's local key) or the issuer's JWKS URL: cached for a
//! TTL, fetched again at once when a token names an unknown `kid` (at most
//! once per `jwks_min_refresh_interval_ms`, however many such tokens
//! arrive), and the last good set kept while the issuer is unreachable — a
//! key rotation needs no restart and an issuer outage locks nobody out.

use anyhow::Context;
use jsonwebtoken::{
    jwk::{AlgorithmParameters, JwkSet},
    DecodingKey,
};
use platform::config::AuthConfig;
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// RSA public keys by `kid`.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<(Option<String>, DecodingKey)>,
}

impl KeySet {
    /// The set's RSA keys (others are ignored); at least one is required.
    pub fn from_jwks(set: &JwkSet) -> anyhow::Result<Self> {
        let keys = set
            .keys
            .iter()
            .filter(|k| matches!(k.algorithm, AlgorithmParameters::RSA(_)))
            .map(|k| Ok((k.common.key_id.clone(), DecodingKey::from_jwk(k)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!keys.is_empty(), "the JWKS has no RSA key");
        Ok(Self { keys })
    }

    /// The key a token names; a token without `kid` only when the set has one key.
    fn find(&self, kid: Option<&str>) -> Option<DecodingKey> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _)| k.as_deref() == Some(kid))
                .map(|(_, key)| key.clone()),
            None if self.keys.len() == 1 => self.keys.first().map(|(_, key)| key.clone()),
            None => None,
        }
    }
}

/// Where verification keys come from.
pub enum Keys {
    Fixed(KeySet),
    Remote(RemoteKeys),
}

impl Keys {
    /// `auth.jwks_url` when set (first fetch at start; an unreachable issuer
    /// is logged, not fatal), else the file `auth.jwks_path`.
    pub async fn from_config(cfg: &AuthConfig) -> anyhow::Result<Self> {
        match &cfg.jwks_url {
            Some(url) => {
                let remote = RemoteKeys::new(url, cfg)?;
                remote.refresh().await;
                Ok(Self::Remote(remote))
            }
            None => {
                let path = &cfg.jwks_path;
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the JWKS at {}", path.display()))?;
                let set: JwkSet = serde_json::from_str(&text).context("parsing the JWKS")?;
                Ok(Self::Fixed(KeySet::from_jwks(&set)?))
            }
        }
    }

    /// The key for a token's `kid`, refreshing a remote set when it is
    /// stale or does not know the `kid`.
    pub async fn key_for(&self, kid: Option<&str>) -> Option<DecodingKey> {
        match self {
            Self::Fixed(set) => set.find(kid),
            Self::Remote(remote) => remote.key_for(kid).await,
        }
    }
}

/// The issuer's JWKS endpoint and the last good key set fetched from it.
pub struct RemoteKeys {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    min_interval: Duration,
    state: Mutex<State>,
    /// One fetch at a time; waiters then see its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: Arc<KeySet>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

impl RemoteKeys {
    fn new(url: &str, cfg: &AuthConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.jwks_fetch_timeout_ms))
            .build()
            .context("building the JWKS HTTP client")?;
        Ok(Self {
            url: url.to_owned(),
            http,
            ttl: Duration::from_secs(cfg.jwks_cache_ttl_secs),
            min_interval: Duration::from_millis(cfg.jwks_min_refresh_interval_ms),
            state: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn snapshot(&self) -> (Arc<KeySet>, bool) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stale = state.fetched_at.is_none_or(|t| t.elapsed() >= self.ttl);
        (state.keys.clone(), stale)
    }

    async fn key_for(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let (keys, stale) = self.snapshot();
        if !stale {
            if let Some(key) = keys.find(kid) {
                return Some(key);
            }
        }
        self.refresh().await;
        self.snapshot().0.find(kid)
    }

    /// Fetches the set unless a fetch was attempted within the minimum
    /// interval; on failure the previous set stays.
    async fn refresh(&self) {
        let _one = self.fetching.lock().await;
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state
                .last_attempt
                .is_some_and(|t| t.elapsed() < self.min_interval)
            {
                return;
            }
            state.last_attempt = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(set) => {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.keys = Arc::new(set);
                state.fetched_at = Some(Instant::now());
                tracing::debug!(url = %self.url, "JWKS refreshed");
            }
            Err(e) => tracing::warn!(url = %self.url, error = %format!("{e:#}"),
                "the issuer's JWKS is unreachable; the last good key set stays in use"),
        }
    }

    async fn fetch(&self) -> anyhow::Result<KeySet> {
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await
            .context("fetching the JWKS")?
            .error_for_status()
            .context("fetching the JWKS")?
            .json()
            .await
            .context("parsing the JWKS")?;
        KeySet::from_jwks(&set)
    }
}

//! `[auth]`: how bearer tokens are checked (the issuer's keys, issuer,
//! audience, the client whose roles count), and the embedded default's
//! issuer and audience.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The embedded default's issuer and audience: `mint-token` signs them and
/// the API checks them, as production checks its own.
pub const DEV_ISSUER: &str = "http://localhost/realms/dps";
pub const DEV_AUDIENCE: &str = "dissemination-service";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthConfig {
    /// JWKS document with the issuer's public keys (RS256), read once at
    /// start: the embedded default's local key. Unused when `jwks_url` is set.
    pub jwks_path: PathBuf,
    /// The issuer's JWKS endpoint (Keycloak:
    /// `{issuer}/protocol/openid-connect/certs`): fetched, cached, refreshed.
    pub jwks_url: Option<String>,
    /// How long a fetched key set is used before it is fetched again; while
    /// the issuer is unreachable the last good set keeps serving.
    pub jwks_cache_ttl_secs: u64,
    /// Least time between two fetches, however many tokens name an unknown `kid`.
    pub jwks_min_refresh_interval_ms: u64,
    /// Bound on one fetch of the key set.
    pub jwks_fetch_timeout_ms: u64,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// This API's client at the issuer: roles count from
    /// `realm_access.roles` and `resource_access[api_client_id].roles` only.
    /// Default: the audience, else `dissemination-service`.
    pub api_client_id: Option<String>,
    pub leeway_secs: u64,
}

impl AuthConfig {
    /// The `resource_access` entry whose roles count.
    pub fn api_client(&self) -> &str {
        self.api_client_id
            .as_deref()
            .or(self.audience.as_deref())
            .unwrap_or(DEV_AUDIENCE)
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwks_path: ".data/auth/jwks.json".into(),
            jwks_url: None,
            jwks_cache_ttl_secs: 300,
            jwks_min_refresh_interval_ms: 10_000,
            jwks_fetch_timeout_ms: 5_000,
            issuer: Some(DEV_ISSUER.into()),
            audience: Some(DEV_AUDIENCE.into()),
            api_client_id: None,
            leeway_secs: 30,
        }
    }
}

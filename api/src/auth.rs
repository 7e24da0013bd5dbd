//! Bearer tokens: RS256 JWTs checked against the issuer's keys (see
//! `jwks`), the same code path in development and production. The client
//! id is `azp` (or `client_id`). Roles count only from the realm
//! (`realm_access.roles`) and from this API's own client
//! (`resource_access[auth.api_client_id].roles`): other clients' entries are
//! administered by other teams and grant nothing here. `{contractId}_R` (or
//! `_W`) grants read access to a contract's AIPs.

use crate::jwks::Keys;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use model::{ClientId, ContractId};
use platform::config::AuthConfig;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("only RS256 tokens are accepted")]
    Algorithm,
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    Issuer,
    #[error("the token's audience is not accepted")]
    Audience,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token names no client (azp or client_id)")]
    NoClient,
    #[error("the token is invalid")]
    Invalid,
}

#[derive(Clone, Debug, Deserialize)]
struct RawClaims {
    azp: Option<String>,
    client_id: Option<String>,
    #[serde(default)]
    realm_access: Option<RoleList>,
    #[serde(default)]
    resource_access: Option<HashMap<String, RoleList>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RoleList {
    #[serde(default)]
    roles: Vec<String>,
}

/// What the API needs to know about the caller.
#[derive(Clone, Debug)]
pub struct Claims {
    pub client_id: ClientId,
    pub roles: Vec<String>,
}

impl Claims {
    pub fn can_read(&self, contract: &ContractId) -> bool {
        self.roles.iter().any(|r| contract.grants_read(r))
    }

    /// Every contract the roles grant read access to.
    pub fn readable_contracts(&self) -> Vec<ContractId> {
        let mut out: Vec<ContractId> = self
            .roles
            .iter()
            .filter_map(|r| r.strip_suffix("_R").or_else(|| r.strip_suffix("_W")))
            .filter_map(|c| ContractId::parse(c).ok())
            .collect();
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        out.dedup();
        out
    }
}

pub struct Verifier {
    keys: Keys,
    validation: Validation,
    api_client: String,
}

impl Verifier {
    pub async fn from_config(cfg: &AuthConfig) -> anyhow::Result<Self> {
        Ok(Self::new(Keys::from_config(cfg).await?, cfg))
    }

    pub fn new(keys: Keys, cfg: &AuthConfig) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = cfg.leeway_secs;
        validation.validate_nbf = true;
        // A configured issuer or audience must be present, not merely not wrong.
        let mut required = vec!["exp"];
        if cfg.issuer.is_some() {
            required.push("iss");
        }
        if cfg.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match &cfg.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &cfg.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Self {
            keys,
            validation,
            api_client: cfg.api_client().to_owned(),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm);
        }
        let key = self
            .keys
            .key_for(header.kid.as_deref())
            .await
            .ok_or(TokenError::UnknownKey)?;
        let data = decode::<RawClaims>(token, &key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidIssuer => TokenError::Issuer,
                K::InvalidAudience => TokenError::Audience,
                K::InvalidSignature => TokenError::Signature,
                K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => TokenError::Malformed,
                _ => TokenError::Invalid,
            }
        })?;
        let raw = data.claims;
        let client_id = raw
            .azp
            .or(raw.client_id)
            .filter(|c| !c.is_empty())
            .ok_or(TokenError::NoClient)?;
        let mut roles = raw.realm_access.map(|r| r.roles).unwrap_or_default();
        if let Some(own) = raw
            .resource_access
            .and_then(|mut map| map.remove(&self.api_client))
        {
            roles.extend(own.roles);
        }
        Ok(Claims {
            client_id: ClientId::new(client_id),
            roles,
        })
    }
}

/// Development tools: a local signing key and tokens for demos and tests.
pub mod dev {
    use anyhow::Context;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use rsa::{
        pkcs8::{EncodePrivateKey, LineEnding},
        traits::PublicKeyParts,
        RsaPrivateKey,
    };
    use serde::Serialize;
    use std::path::Path;

    pub struct KeyPair {
        pub private_pem: String,
        pub jwks: serde_json::Value,
        pub kid: String,
    }

    /// A fresh RSA-2048 key and the JWKS publishing its public half.
    pub fn generate(kid: &str) -> anyhow::Result<KeyPair> {
        let key =
            RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).context("generating an RSA key")?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .context("encoding the key")?;
        let jwks = serde_json::json!({ "keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        }]});
        Ok(KeyPair {
            private_pem: pem.to_string(),
            jwks,
            kid: kid.to_owned(),
        })
    }

    /// Writes `private.pem` and `jwks.json` into `dir` unless both exist.
    pub fn ensure_files(dir: &Path) -> anyhow::Result<()> {
        let (pem, jwks) = (dir.join("private.pem"), dir.join("jwks.json"));
        if pem.exists() && jwks.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)?;
        let pair = generate("dissemination-dev")?;
        std::fs::write(&pem, pair.private_pem)?;
        std::fs::write(&jwks, serde_json::to_vec_pretty(&pair.jwks)?)?;
        Ok(())
    }

    #[derive(Serialize)]
    struct MintClaims<'a> {
        iss: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        aud: Option<&'a str>,
        sub: &'a str,
        azp: &'a str,
        client_id: &'a str,
        realm_access: serde_json::Value,
        iat: i64,
        nbf: i64,
        exp: i64,
    }

    pub struct TokenSpec<'a> {
        pub client_id: &'a str,
        pub roles: &'a [String],
        pub issuer: &'a str,
        pub audience: Option<&'a str>,
        /// Seconds from now; negative for an already expired token.
        pub expires_in: i64,
        /// Seconds from now before which the token is not valid.
        pub not_before_in: i64,
    }

    pub fn mint(private_pem: &str, kid: &str, spec: &TokenSpec<'_>) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = MintClaims {
            iss: spec.issuer,
            aud: spec.audience,
            sub: spec.client_id,
            azp: spec.client_id,
            client_id: spec.client_id,
            realm_access: serde_json::json!({ "roles": spec.roles }),
            iat: now,
            nbf: now + spec.not_before_in,
            exp: now + spec.expires_in,
        };
        sign(private_pem, kid, &claims)
    }

    /// Signs any claims (RS256, `kid` in the header).
    pub fn sign(private_pem: &str, kid: &str, claims: &impl Serialize) -> anyhow::Result<String> {
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let key =
            EncodingKey::from_rsa_pem(private_pem.as_bytes()).context("reading the private key")?;
        Ok(encode(&header, claims, &key)?)
    }
}

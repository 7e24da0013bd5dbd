//! Bearer tokens: RS256 JWTs checked against the issuer's JWKS, the same
//! code path in development and production. The client id is `azp` (or
//! `client_id`); roles come from Keycloak's `realm_access.roles`,
//! `resource_access.*.roles` or a top-level `roles`. `{contractId}_R` (or
//! `_W`) grants read access to a contract's AIPs.

use anyhow::Context;
use jsonwebtoken::{
    decode, decode_header,
    jwk::{Jwk, JwkSet},
    Algorithm, DecodingKey, Validation,
};
use model::{config::AuthConfig, ContractId};
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
    #[serde(default)]
    roles: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RoleList {
    #[serde(default)]
    roles: Vec<String>,
}

/// What the API needs to know about the caller.
#[derive(Clone, Debug)]
pub struct Claims {
    pub client_id: String,
    pub roles: Vec<String>,
}

impl Claims {
    pub fn can_read(&self, contract: &ContractId) -> bool {
        self.roles.iter().any(|r| contract.grants_read(r))
    }
}

pub struct Verifier {
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
}

impl Verifier {
    pub fn from_config(cfg: &AuthConfig) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(&cfg.jwks_path)
            .with_context(|| format!("reading the JWKS at {}", cfg.jwks_path.display()))?;
        let set: JwkSet = serde_json::from_str(&text).context("parsing the JWKS")?;
        Self::new(&set, cfg)
    }

    pub fn new(set: &JwkSet, cfg: &AuthConfig) -> anyhow::Result<Self> {
        let keys = set
            .keys
            .iter()
            .filter(|k| is_rsa(k))
            .map(|k| Ok((k.common.key_id.clone(), DecodingKey::from_jwk(k)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!keys.is_empty(), "the JWKS has no RSA key");
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
        Ok(Self { keys, validation })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm);
        }
        let key = match &header.kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _)| k.as_deref() == Some(kid.as_str())),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
        .ok_or(TokenError::UnknownKey)?;
        let data = decode::<RawClaims>(token, &key.1, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidIssuer => TokenError::Issuer,
                K::InvalidAudience => TokenError::Audience,
                K::InvalidSignature => TokenError::Signature,
                K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => TokenError::Malformed,
                K::MissingRequiredClaim(_) => TokenError::Invalid,
                _ => TokenError::Invalid,
            }
        })?;
        let raw = data.claims;
        let client_id = raw
            .azp
            .or(raw.client_id)
            .filter(|c| !c.is_empty())
            .ok_or(TokenError::NoClient)?;
        let mut roles = raw.roles.unwrap_or_default();
        if let Some(r) = raw.realm_access {
            roles.extend(r.roles);
        }
        if let Some(map) = raw.resource_access {
            roles.extend(map.into_values().flat_map(|r| r.roles));
        }
        Ok(Claims { client_id, roles })
    }
}

fn is_rsa(k: &Jwk) -> bool {
    matches!(k.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_))
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
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let key =
            EncodingKey::from_rsa_pem(private_pem.as_bytes()).context("reading the private key")?;
        Ok(encode(&header, &claims, &key)?)
    }
}

//! `[clients.<id>]` and `[bagit]`: per-client delivery settings (webhook,
//! its secrets, bucket) and what every BagIt bag says about its source.

use super::expose_opt;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClientConfig {
    pub webhook_url: Option<String>,
    /// `whsec_<base64>`; several secrets separated by spaces during rotation.
    #[serde(serialize_with = "expose_opt")]
    pub webhook_secret: Option<SecretString>,
    pub bucket: Option<String>,
}

/// BagIt deliveries (`format: "bagit"`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct BagitConfig {
    /// `Source-Organization` in every bag's `bag-info.txt`.
    pub source_organization: String,
}

impl Default for BagitConfig {
    fn default() -> Self {
        Self {
            source_organization: "Dissemination Service (local)".into(),
        }
    }
}

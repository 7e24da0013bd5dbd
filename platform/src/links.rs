//! Download links, signed on the way out (the API on GET, the worker for
//! the webhook) with the delivery S3's public endpoint and credentials:
//! the workflow keeps object keys and times only, never a link.

use crate::config::Config;
use secrecy::ExposeSecret;
use std::time::{Duration, SystemTime};

impl Config {
    /// Signs links to `client_id`'s objects: (object key, signing time,
    /// lifetime) → a presigned GET URL.
    pub fn link_signer(
        &self,
        client_id: &str,
    ) -> impl Fn(&model::ObjectKey, SystemTime, Duration) -> String + '_ {
        let bucket = self.client_bucket(client_id);
        move |key, at, lifetime| {
            let signer = model::presign::Signer {
                endpoint: self.s3.public_endpoint(),
                region: &self.s3.region,
                access_key: &self.s3.access_key,
                secret_key: self.s3.secret_key.expose_secret(),
            };
            signer.presign_get(&bucket, key.as_str(), at, lifetime)
        }
    }
}

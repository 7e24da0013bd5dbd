//! `[events]`: the clients' event feed (`GET /v1/events`, webhook
//! recovery) and `[retention]`: what a client's acknowledgement releases.

use super::expose;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Where the event feed is kept: an S3 bucket on the delivery S3 endpoint
/// (its credentials), one ordered log per client.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct EventsConfig {
    /// The feed's bucket (created when missing, as the delivery buckets).
    pub bucket: String,
    /// Events are kept at least this long; recovery reaches this far back.
    pub retention_days: u32,
    /// Largest page of `GET /v1/events`.
    pub max_page_size: usize,
    /// A worker prunes a client's feed (what is a day past the window) after
    /// appending to it, at most once per this many seconds per client; 0:
    /// never (pruned by an operator, `Feed::prune`).
    pub prune_every_secs: u64,
    /// The key cursors are signed with (every API replica the same): a
    /// cursor of another client, or altered, is refused.
    #[serde(serialize_with = "expose")]
    pub cursor_secret: SecretString,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            bucket: "dissemination-events".into(),
            retention_days: 30,
            max_page_size: 500,
            prune_every_secs: 6 * 3600,
            cursor_secret: SecretString::from("dissemination-events-cursor-key"),
        }
    }
}

/// What happens to delivered objects.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RetentionConfig {
    /// A successful acknowledgement deletes the delivered objects within a
    /// minute instead of at the end of retention.
    pub release_on_ack: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            release_on_ack: true,
        }
    }
}

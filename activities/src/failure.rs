//! The activities' one failure type, converted once into the SDK's error:
//! the workflow tells the outcomes apart by the failure's type name, and
//! Temporal's retry policy by whether it is retryable.

use std::time::Duration;
use temporalio_common::{error::ApplicationFailure, ActivityError};
use workflows::FailureType;

/// Deliberately not a `std::error::Error`: the SDK turns any such error
/// into a plain retryable failure, and this one must keep its type.
#[derive(Debug)]
pub enum Failure {
    /// The bytes read do not match the stored digest (final for this copy).
    FixityMismatch(String),
    /// The copy cannot be opened at this location (absent, refused).
    LocationUnreadable(String),
    /// Nothing on this worker reads the copy (its location is not
    /// configured, or of a kind it cannot read): the next copy at once.
    NoReader(String),
    /// Configuration refuses the work.
    Misconfigured(String),
    /// Delivered objects are no longer in the bucket.
    ObjectsGone(String),
    /// The client's webhook endpoint answered 410 Gone.
    WebhookGone,
    /// The client's bucket refused or failed a write: retried.
    Upload(String),
    /// The repository, or anything else on the way: retried.
    Transient(String),
    /// Retried without progress for longer than the configured duration.
    GaveUp {
        upload: bool,
        message: String,
        waited: Duration,
    },
    /// The endpoint wants the next attempt no sooner than this.
    RetryAfter {
        message: String,
        after: Duration,
    },
    Cancelled,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FixityMismatch(m)
            | Self::LocationUnreadable(m)
            | Self::NoReader(m)
            | Self::Misconfigured(m)
            | Self::ObjectsGone(m)
            | Self::Upload(m)
            | Self::Transient(m) => f.write_str(m),
            Self::WebhookGone => f.write_str("the endpoint answered 410 Gone"),
            Self::GaveUp {
                message, waited, ..
            } => write!(
                f,
                "{message} (no progress for {}s; giving up)",
                waited.as_secs()
            ),
            Self::RetryAfter { message, .. } => f.write_str(message),
            Self::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl Failure {
    /// Worth another attempt (and subject to the retry duration).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Upload(_) | Self::Transient(_))
    }

    /// The retryable failure `self`, ended for good after `waited`.
    pub fn give_up(self, waited: Duration) -> Self {
        match self {
            Self::Upload(message) => Self::GaveUp {
                upload: true,
                message,
                waited,
            },
            Self::Transient(message) => Self::GaveUp {
                upload: false,
                message,
                waited,
            },
            other => other,
        }
    }
}

fn typed(type_name: Option<FailureType>, message: String, non_retryable: bool) -> ActivityError {
    let failure = match type_name {
        Some(t) => ApplicationFailure::builder(message)
            .type_name(t.as_str().to_owned())
            .non_retryable(non_retryable)
            .build(),
        None => ApplicationFailure::builder(message)
            .non_retryable(non_retryable)
            .build(),
    };
    ActivityError::application(failure)
}

impl From<Failure> for ActivityError {
    fn from(f: Failure) -> Self {
        let message = f.to_string();
        match f {
            Failure::FixityMismatch(_) => typed(Some(FailureType::FixityMismatch), message, true),
            Failure::LocationUnreadable(_) => {
                typed(Some(FailureType::LocationUnreadable), message, true)
            }
            Failure::NoReader(_) => typed(Some(FailureType::NoReader), message, true),
            Failure::Misconfigured(_) => typed(Some(FailureType::Misconfigured), message, true),
            Failure::ObjectsGone(_) => typed(Some(FailureType::ObjectsGone), message, true),
            Failure::WebhookGone => typed(Some(FailureType::WebhookGone), message, true),
            Failure::Upload(_) => typed(Some(FailureType::UploadError), message, false),
            Failure::Transient(_) => typed(None, message, false),
            Failure::GaveUp { upload, .. } => {
                typed(upload.then_some(FailureType::UploadError), message, true)
            }
            Failure::RetryAfter { after, .. } => ActivityError::application(
                ApplicationFailure::builder(message)
                    .next_retry_delay(after)
                    .build(),
            ),
            Failure::Cancelled => ActivityError::cancelled(),
        }
    }
}

impl From<crate::s3::S3Error> for Failure {
    fn from(e: crate::s3::S3Error) -> Self {
        Self::Upload(e.to_string())
    }
}

impl From<crate::repository::OpenError> for Failure {
    fn from(e: crate::repository::OpenError) -> Self {
        use crate::repository::OpenError;
        match e {
            OpenError::Unreadable(m) => Self::LocationUnreadable(m),
            OpenError::NoReader(m) => Self::NoReader(m),
            OpenError::Misconfigured(m) => Self::Misconfigured(m),
            OpenError::Transient(m) => Self::Transient(m),
        }
    }
}

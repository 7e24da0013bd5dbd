//! Activity implementations. Each holds its clients behind `self: Arc<Self>`
//! and maps failures onto the workflow's failure types: a fixity mismatch or
//! an unreadable location is final for that attempt path; I/O errors are
//! retried by the workflow's retry policy.

pub mod digest;
pub mod impls;
pub mod observe;
pub mod repository;
pub mod s3;
pub mod staged;
pub mod staging;
pub mod transfer;
pub mod webhook;

pub use impls::Activities;

use temporalio_common::{error::ApplicationFailure, ActivityError};

/// A non-retryable failure the workflow recognises by its type.
pub(crate) fn final_failure(type_name: &str, message: impl Into<String>) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message.into())
            .type_name(type_name.to_owned())
            .non_retryable(true)
            .build(),
    )
}

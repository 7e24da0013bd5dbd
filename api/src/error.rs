//! One error type for the API and its one `IntoResponse`: every 4xx/5xx body
//! is `{"error":{"code","message","details"}}`, its code one of `ErrorCode`
//! (which also fixes the status). 5xx bodies never carry internals: the
//! error that caused one is kept as its `source`, with that error's own
//! causes, and logged with the whole chain where the response is made.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use temporalio_client::errors::{WorkflowInteractionError, WorkflowStartError};

/// The stable code of an error body, upper snake case. A code always comes
/// with the same HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(example = "ARCHIVE_NOT_FOUND")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidArchiveId,
    InvalidPriority,
    InvalidFormat,
    InvalidSelect,
    InvalidDisseminationId,
    InvalidBatchId,
    InvalidStatus,
    InvalidPageSize,
    InvalidCursor,
    InvalidAcknowledgement,
    InvalidEventType,
    InvalidSince,
    Unauthorized,
    Forbidden,
    NotFound,
    ArchiveNotFound,
    DisseminationNotFound,
    BatchNotFound,
    MethodNotAllowed,
    DisseminationInProgress,
    NotDelivered,
    DisseminationEnded,
    BatchEnded,
    LinkRegenerationLimit,
    AcknowledgementMismatch,
    AlreadyAcknowledged,
    AcknowledgementLimit,
    RetentionEnded,
    PayloadTooLarge,
    UnsupportedMediaType,
    ArchiveNotPreserved,
    TooManyRepositoryFiles,
    RateLimited,
    InternalError,
    ServiceUnavailable,
}

impl ErrorCode {
    /// What a batch item refused as a single POST would be records: the
    /// refusals an item can have (any other is no item's, and a server
    /// error refuses the whole batch).
    pub fn item_error_code(self) -> workflows::ItemErrorCode {
        use workflows::ItemErrorCode;
        match self {
            ErrorCode::ArchiveNotFound => ItemErrorCode::ArchiveNotFound,
            ErrorCode::ArchiveNotPreserved => ItemErrorCode::ArchiveNotPreserved,
            ErrorCode::TooManyRepositoryFiles => ItemErrorCode::TooManyRepositoryFiles,
            _ => ItemErrorCode::Forbidden,
        }
    }

    /// The one status every response with this code has.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidRequest
            | InvalidArchiveId
            | InvalidPriority
            | InvalidFormat
            | InvalidSelect
            | InvalidDisseminationId
            | InvalidBatchId
            | InvalidStatus
            | InvalidPageSize
            | InvalidCursor
            | InvalidAcknowledgement
            | InvalidEventType
            | InvalidSince => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden => StatusCode::FORBIDDEN,
            NotFound | ArchiveNotFound | DisseminationNotFound | BatchNotFound => {
                StatusCode::NOT_FOUND
            }
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            DisseminationInProgress
            | NotDelivered
            | DisseminationEnded
            | BatchEnded
            | LinkRegenerationLimit
            | AcknowledgementMismatch
            | AlreadyAcknowledged
            | AcknowledgementLimit => StatusCode::CONFLICT,
            RetentionEnded => StatusCode::GONE,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ArchiveNotPreserved | TooManyRepositoryFiles => StatusCode::UNPROCESSABLE_ENTITY,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error that caused a response, with its chain of causes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<String>,
    /// Why a 5xx happened: logged with its chain of causes, never sent.
    pub source: Option<BoxError>,
    /// Rarely needed parts, boxed to keep the error small.
    pub extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
pub struct Extra {
    /// Extra headers (`Location` on 409, `WWW-Authenticate` on 401, `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// A body other than the envelope (409 carries the existing dissemination).
    pub body: Option<serde_json::Value>,
    /// The dependency that is down (503).
    pub dependency: Option<&'static str>,
}

/// Every 4xx/5xx body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            source: None,
            extra: None,
        }
    }

    /// Keeps what caused this error (logged on a 5xx, never sent).
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.extra_mut().headers.push((name, v));
        }
        self
    }

    /// Replaces the envelope with another body (one that still carries it).
    pub fn with_body(mut self, body: impl Serialize) -> Self {
        if let Ok(v) = serde_json::to_value(body) {
            self.extra_mut().body = Some(v);
        }
        self
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// The envelope of this error, e.g. to embed it in another body.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message.clone(),
            details: self.details.clone(),
        }
    }

    pub fn unauthorized(details: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, "a valid bearer token is required")
            .with_details(details)
            .with_header(header::WWW_AUTHENTICATE, "Bearer")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// Over the client's rate limit: retry in `secs`.
    pub fn rate_limited(secs: u64) -> Self {
        Self::new(
            ErrorCode::RateLimited,
            format!("too many requests; retry in {secs} s"),
        )
        .with_header(header::RETRY_AFTER, &secs.to_string())
    }

    /// A dependency is down: answered with 503, its cause logged.
    pub fn unavailable(what: &'static str, cause: impl Into<BoxError>) -> Self {
        let mut e = Self::new(
            ErrorCode::ServiceUnavailable,
            format!("{what} is unavailable, try again later"),
        )
        .with_header(header::RETRY_AFTER, "5")
        .with_source(cause);
        e.extra_mut().dependency = Some(what);
        e
    }

    /// Unexpected: answered with an opaque 500, its cause logged.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self::new(ErrorCode::InternalError, "an unexpected error occurred").with_source(cause)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// An error and its causes, outermost first: `a: b: c`.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// A refused identifier or value, with the code of the field it was in.
impl From<model::IdError> for ApiError {
    fn from(e: model::IdError) -> Self {
        let code = match e {
            model::IdError::ArchiveId => ErrorCode::InvalidArchiveId,
            model::IdError::DisseminationId => ErrorCode::InvalidDisseminationId,
            model::IdError::BatchId => ErrorCode::InvalidBatchId,
            model::IdError::Priority => ErrorCode::InvalidPriority,
            model::IdError::ContractId => ErrorCode::InvalidRequest,
        };
        Self::new(code, e.to_string())
    }
}

impl From<crate::auth::TokenError> for ApiError {
    fn from(e: crate::auth::TokenError) -> Self {
        Self::unauthorized(e.to_string())
    }
}

/// Whatever the catalog reports, the request can be tried again later.
impl From<model::catalog::CatalogError> for ApiError {
    fn from(e: model::catalog::CatalogError) -> Self {
        Self::unavailable("the catalog", e)
    }
}

/// Callers handle the outcomes they expect (an id already taken); any other
/// is Temporal failing.
impl From<WorkflowStartError> for ApiError {
    fn from(e: WorkflowStartError) -> Self {
        Self::unavailable("Temporal", e)
    }
}

/// Callers handle `NotFound` where it means something; any other is
/// Temporal failing.
impl From<WorkflowInteractionError> for ApiError {
    fn from(e: WorkflowInteractionError) -> Self {
        Self::unavailable("Temporal", e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let Extra {
            headers,
            body,
            dependency,
        } = self.extra.map(|e| *e).unwrap_or_default();
        if status.is_server_error() {
            let error = self.source.as_deref().map(|e| Chain(e).to_string());
            let error = error.as_deref().unwrap_or_default();
            match dependency {
                Some(dependency) => tracing::error!(dependency, error, "dependency unavailable"),
                None => tracing::error!(error, code = ?self.code, "internal error"),
            }
        }
        let mut response = match body {
            Some(body) => (status, Json(body)).into_response(),
            None => {
                let error = ErrorDetail {
                    code: self.code,
                    message: self.message,
                    details: self.details,
                };
                (status, Json(ErrorBody { error })).into_response()
            }
        };
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_upper_snake_case_on_the_wire() {
        let wire = |c: ErrorCode| serde_json::to_value(c).ok();
        assert_eq!(
            wire(ErrorCode::InvalidArchiveId),
            Some("INVALID_ARCHIVE_ID".into())
        );
        assert_eq!(
            wire(ErrorCode::DisseminationInProgress),
            Some("DISSEMINATION_IN_PROGRESS".into())
        );
        assert_eq!(
            wire(ErrorCode::TooManyRepositoryFiles),
            Some("TOO_MANY_REPOSITORY_FILES".into())
        );
        assert_eq!(
            wire(ErrorCode::InternalError),
            Some("INTERNAL_ERROR".into())
        );
    }

    #[tokio::test]
    async fn a_server_error_keeps_its_chain_and_sends_none_of_it() {
        #[derive(Debug, thiserror::Error)]
        #[error("describing the workflow")]
        struct Outer(#[source] std::io::Error);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = ApiError::unavailable("Temporal", Outer(io));
        let source = e.source.as_deref().map(|s| Chain(s).to_string());
        assert_eq!(source.as_deref(), Some("describing the workflow: refused"));
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        let body = String::from_utf8(body.map(|b| b.to_vec()).unwrap_or_default());
        assert!(body.is_ok_and(|b| b.contains("SERVICE_UNAVAILABLE") && !b.contains("refused")));
        let ApiError { source, .. } = ApiError::internal("the batch's input is not readable");
        assert_eq!(
            source.map(|s| s.to_string()).as_deref(),
            Some("the batch's input is not readable")
        );
    }
}

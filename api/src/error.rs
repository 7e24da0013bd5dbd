//! One error type for the API and its one `IntoResponse`: every 4xx/5xx body
//! is `{"error":{"code","message","details"}}`; 5xx bodies never carry
//! internals (they are logged instead).

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<String>,
    /// Rarely needed parts, boxed to keep the error small.
    pub extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
pub struct Extra {
    /// Extra headers (`Location` on 409, `WWW-Authenticate` on 401, `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// A body other than the envelope (409 carries the existing dissemination).
    pub body: Option<serde_json::Value>,
}

/// Every 4xx/5xx body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, upper snake case, e.g. `ARCHIVE_NOT_FOUND`.
    #[schema(example = "ARCHIVE_NOT_FOUND")]
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            extra: None,
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.extra
                .get_or_insert_with(Box::default)
                .headers
                .push((name, v));
        }
        self
    }

    /// Replaces the envelope with another body.
    pub fn with_body(mut self, body: serde_json::Value) -> Self {
        self.extra.get_or_insert_with(Box::default).body = Some(body);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "a valid bearer token is required",
        )
        .with_details(details)
        .with_header(header::WWW_AUTHENTICATE, "Bearer")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// A dependency is down: logged with its cause, answered with 503.
    pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(dependency = what, error = %cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            format!("{what} is unavailable, try again later"),
        )
        .with_header(header::RETRY_AFTER, "5")
    }

    /// Unexpected: logged with its cause, answered with an opaque 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "an unexpected error occurred",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Extra { headers, body } = self.extra.map(|e| *e).unwrap_or_default();
        let body = body.unwrap_or_else(|| {
            serde_json::json!(ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: self.message,
                    details: self.details
                },
            })
        });
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

//! Errors as the spec has them: RFC 7807 problem details
//! (`application/problem+json`, `{"title", "status", "detail"}`), for every
//! non-2xx answer of every route, the file routes and admin routes
//! included. 5xx bodies carry no internals; the cause is logged here.
//!
//! `ApiJson<T>` is the one JSON body extractor: a body that is not JSON or
//! not the expected shape is a 400 "JSON Validation error", the spec's own
//! title for it, whatever the `Content-Type` (gfal2 sends
//! `application/json`; curl users often forget it, and the spec does not
//! ask servers to insist).

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};

/// An RFC 7807 problem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Sent with a 401.
    #[serde(skip)]
    challenge: bool,
}

impl Problem {
    pub fn new(status: StatusCode, title: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            title: title.into(),
            status: status.as_u16(),
            detail,
            challenge: false,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", Some(detail.into()))
    }

    pub fn json_validation(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "JSON Validation error",
            Some(detail.into()),
        )
    }

    pub fn bad_request(title: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title, Some(detail.into()))
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self {
            challenge: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some(detail.into()),
            )
        }
    }

    /// A 500 whose cause stays in the log.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error",
            None,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tape-library\""),
            );
        }
        res
    }
}

/// A JSON request body of type `T`, or a 400 problem.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::bad_request("Bad request", e.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| Problem::json_validation(e.to_string()))
    }
}

/// The answer to any path or method no route serves.
pub async fn no_route() -> Problem {
    Problem::not_found("no such resource")
}

//! Request extractors: a JSON body that answers 415/413/400 with the error
//! envelope, and the authenticated client.

use crate::{
    auth::Claims,
    error::{ApiError, ErrorCode},
    state::AppState,
};
use axum::{
    body::Bytes,
    extract::{FromRef, FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
};
use serde::de::DeserializeOwned;

/// A JSON body: `Content-Type: application/json`, at most the configured size.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        // A batch carries up to a thousand archiveIds.
        let limit = if req.uri().path().ends_with("/dissemination-batches") {
            app.cfg.api.batch_body_limit_bytes
        } else {
            app.cfg.api.body_limit_bytes
        };
        let too_large = || {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is over {limit} bytes"),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let body = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| too_large())?;
        parse_json(&body).map(AppJson)
    }
}

fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let message = if e.is_syntax() || e.is_eof() {
            "the body is not valid JSON"
        } else {
            "the body does not match the schema"
        };
        ApiError::new(ErrorCode::InvalidRequest, message).with_details(e.to_string())
    })
}

/// The caller, from a valid bearer token.
#[derive(Clone, Debug)]
pub struct AuthenticatedClient(pub Claims);

impl<S> FromRequestParts<S> for AuthenticatedClient
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("the Authorization header is missing"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("expected: Authorization: Bearer <token>"))?;
        let claims = app.verifier.verify(token).await?;
        if let Err(wait) = app.limiter.check(&claims.client_id) {
            return Err(ApiError::rate_limited(wait.as_secs() + 1));
        }
        Ok(Self(claims))
    }
}

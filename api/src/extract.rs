//! Request extractors: the authenticated client, the ids of the path, the
//! query and the body, each parsed before the handler runs and refused
//! with the error envelope (crates.io's `CratePath`, zero-to-production's
//! `TryFrom<FormData>`): a handler sees domain types only.

use crate::{
    auth::Claims,
    error::{ApiError, ErrorCode},
    state::AppState,
};
use axum::{
    body::Bytes,
    extract::{FromRef, FromRequest, FromRequestParts, Path, Query, Request},
    http::{header, request::Parts},
};
use model::{BatchId, DisseminationId, IdError};
use platform::config::ApiConfig;
use serde::de::DeserializeOwned;
use utoipa::openapi::{
    path::{Parameter, ParameterBuilder, ParameterIn},
    schema::{ObjectBuilder, Type},
    Required,
};

/// A typed request made from a JSON body, checked field by field so each
/// mistake gets its own code.
pub trait RequestBody: Sized {
    /// The body as it arrives (fields as any JSON, unknown ones refused).
    type Wire: DeserializeOwned;

    /// The largest body accepted.
    fn limit(api: &ApiConfig) -> usize {
        api.body_limit_bytes
    }

    fn parse(wire: Self::Wire, api: &ApiConfig) -> Result<Self, ApiError>;
}

/// A JSON body (`Content-Type: application/json`, at most `T::limit`
/// bytes) parsed into the typed request `T`.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: RequestBody,
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
        let limit = T::limit(&app.cfg.api);
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
        let wire = parse_json(&body)?;
        T::parse(wire, &app.cfg.api).map(AppJson)
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

/// Query parameters; malformed ones (or unknown ones, where the type
/// refuses them) are 400 `INVALID_REQUEST`.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(query)) => Ok(Self(query)),
            Err(e) => Err(
                ApiError::new(ErrorCode::InvalidRequest, "invalid query parameters")
                    .with_details(e.body_text()),
            ),
        }
    }
}

/// The `{disseminationId}` of the path, parsed: 400
/// `INVALID_DISSEMINATION_ID` when malformed.
pub struct DisseminationPath(pub DisseminationId);

/// The `{batchId}` of the path, parsed: 400 `INVALID_BATCH_ID` when malformed.
pub struct BatchPath(pub BatchId);

impl<S: Send + Sync> FromRequestParts<S> for DisseminationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        path_id(
            parts,
            state,
            DisseminationId::parse,
            IdError::DisseminationId,
        )
        .await
        .map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BatchPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        path_id(parts, state, BatchId::parse, IdError::BatchId)
            .await
            .map(Self)
    }
}

/// The route's one path parameter, parsed; one that is no text at all
/// (not UTF-8 once decoded) is malformed too.
async fn path_id<S: Send + Sync, T>(
    parts: &mut Parts,
    state: &S,
    parse: fn(&str) -> Result<T, IdError>,
    malformed: IdError,
) -> Result<T, ApiError> {
    match Path::<String>::from_request_parts(parts, state).await {
        Ok(Path(raw)) => Ok(parse(&raw)?),
        Err(e) => Err(ApiError::from(malformed).with_details(e.body_text())),
    }
}

impl utoipa::IntoParams for DisseminationPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![id_parameter("disseminationId")]
    }
}

impl utoipa::IntoParams for BatchPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![id_parameter("batchId")]
    }
}

/// A 22-character base62 id in the path, as the document states it.
fn id_parameter(name: &str) -> Parameter {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[0-9A-Za-z]{22}$"));
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .description(Some("22 base62 characters"))
        .required(Required::True)
        .schema(Some(schema))
        .build()
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
        if let Err(wait) = app.limiter.check(claims.client_id.as_str()) {
            return Err(ApiError::rate_limited(wait.as_secs() + 1));
        }
        Ok(Self(claims))
    }
}

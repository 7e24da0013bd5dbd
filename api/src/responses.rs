//! Error responses that many operations share, declared once for the
//! OpenAPI document: an operation lists its own responses and names these
//! sets (`responses(..., Authenticated)`).

use crate::error::ErrorBody;
use std::collections::BTreeMap;
use utoipa::{
    openapi::{header::HeaderBuilder, ContentBuilder, Ref, RefOr, Response, ResponseBuilder},
    IntoResponses, PartialSchema, ToSchema,
};

/// An error envelope response.
fn error(description: &str) -> ResponseBuilder {
    let body = Ref::from_schema_name(ErrorBody::name());
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(body)).build(),
    )
}

fn set(responses: Vec<(&str, ResponseBuilder)>) -> BTreeMap<String, RefOr<Response>> {
    responses
        .into_iter()
        .map(|(status, response)| (status.to_owned(), response.build().into()))
        .collect()
}

fn authenticated() -> Vec<(&'static str, ResponseBuilder)> {
    let retry_after = HeaderBuilder::new()
        .schema(Some(<u64 as PartialSchema>::schema()))
        .description(Some("Seconds to wait"))
        .build();
    vec![
        ("401", error("No or invalid token")),
        (
            "429",
            error("Over the client's rate limit").header("Retry-After", retry_after),
        ),
    ]
}

/// 401 (no or invalid token) and 429 (over the rate limit, with
/// `Retry-After`): every operation behind a token.
pub struct Authenticated;

impl IntoResponses for Authenticated {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(authenticated())
    }
}

/// `Authenticated`'s and 400 for a malformed id in the path.
pub struct ById;

impl IntoResponses for ById {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = authenticated();
        responses.push(("400", error("Malformed id")));
        set(responses)
    }
}

/// `Authenticated`'s, 413 (body too large) and 415 (not JSON): operations
/// that take a body.
pub struct JsonBody;

impl IntoResponses for JsonBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = authenticated();
        responses.push(("413", error("Body too large")));
        responses.push(("415", error("Not JSON")));
        set(responses)
    }
}

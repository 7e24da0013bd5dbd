//! The HTTP face: the spec's discovery document and API under the API base,
//! the staged bytes at their namespace path, and admin routes for tests.
//!
//! Reserved prefixes: `/.well-known/`, the API base (`/api/v1` by default)
//! and `/admin/`; every other path is a file's namespace path, served by
//! `GET`/`HEAD`. Every error is a problem-details body (`problem`).

pub mod admin;
pub mod auth;
pub mod discovery;
pub mod files;
pub mod problem;
pub mod tape_api;
#[cfg(test)]
mod tests;

use crate::Shared;
use axum::{
    extract::{DefaultBodyLimit, Request},
    http::{header, HeaderMap, StatusCode},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
    Router,
};
use problem::Problem;
use std::sync::Arc;

/// What the discovery document and the Location headers say.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// `/api/v1`: leading slash, no trailing slash.
    pub base: String,
    pub public_url: Option<String>,
    pub sitename: String,
    pub description: String,
    pub scheme: &'static str,
}

impl ApiConfig {
    /// The origin clients reach us by: `--public-url`, else the scheme we
    /// serve and the request's `Host`.
    pub fn origin(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("{}://{host}", self.scheme)
    }

    /// Whether a request path falls under a reserved prefix.
    pub fn is_reserved(&self, path: &str) -> bool {
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        under(&self.base) || under("/admin") || under("/.well-known")
    }
}

pub struct App {
    pub shared: Arc<Shared>,
    pub tokens: Option<auth::TokenFile>,
    pub api: ApiConfig,
}

pub type AppState = Arc<App>;

/// Large enough for stage requests of tens of thousands of files.
const BODY_LIMIT: usize = 16 << 20;

pub fn router(app: AppState) -> Router {
    let b = app.api.base.clone();
    // gfal2 posts to `{base}/stage/` and `{base}/archiveinfo/` (trailing
    // slash); the spec writes them without. Both are served.
    let protected = Router::new()
        .route(&format!("{b}/archiveinfo"), post(tape_api::archiveinfo))
        .route(&format!("{b}/archiveinfo/"), post(tape_api::archiveinfo))
        .route(&format!("{b}/stage"), post(tape_api::stage))
        .route(&format!("{b}/stage/"), post(tape_api::stage))
        .route(
            &format!("{b}/stage/{{id}}"),
            get(tape_api::status).delete(tape_api::delete),
        )
        .route(&format!("{b}/stage/{{id}}/cancel"), post(tape_api::cancel))
        .route(&format!("{b}/release/{{id}}"), post(tape_api::release))
        .route("/admin/state", get(admin::state))
        .route("/admin/forget", post(admin::forget))
        .route("/admin/evict", post(admin::evict))
        .fallback(files::serve)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            app.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/.well-known/wlcg-tape-rest-api", get(discovery::document))
        .merge(protected)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}

/// One debug line per request (`RUST_LOG=tape_library=debug`): what a
/// client such as gfal2 sent, and what it got.
async fn log_request(req: Request, next: Next) -> Response {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let res = next.run(req).await;
    tracing::debug!(%method, %uri, status = res.status().as_u16(), "request");
    res
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        Some("this resource does not take that method".into()),
    )
}

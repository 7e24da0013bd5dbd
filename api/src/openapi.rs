//! The OpenAPI 3.1 document, generated from the handlers and types, served
//! at `{base}/openapi.json` with Swagger UI (vendored assets: no network
//! needed to view it) at `{base}/swagger-ui/`.

use crate::{batches, disseminations, error, health};
use axum::Router;
use utoipa::{
    openapi::{
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        server::Server,
    },
    Modify, OpenApi,
};
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dissemination Service",
        description = "Delivers preserved packages (AIPs) to client systems: request one by archiveId, \
follow its status, receive a signed webhook with presigned download links.",
        version = "1.0.0"
    ),
    paths(
        disseminations::create::create,
        disseminations::read::read,
        disseminations::list::list,
        disseminations::links::regenerate_links,
        disseminations::cancel::cancel,
        disseminations::read::events,
        disseminations::read::receipt,
        batches::create::create,
        batches::read::read,
        batches::read::list,
        batches::read::cancel,
        health::healthz,
        health::readyz,
    ),
    components(schemas(
        disseminations::create::DisseminationIn,
        disseminations::create::ConflictBody,
        disseminations::list::DisseminationPage,
        disseminations::read::EventList,
        workflows::DisseminationEvent,
        error::ErrorBody,
        error::ErrorDetail,
        error::ErrorCode,
        workflows::DisseminationView,
        workflows::DisseminationRecord,
        workflows::Format,
        batches::create::BatchIn,
        batches::create::ArchiveIdString,
        batches::create::BatchCreated,
        batches::read::BatchPage,
        batches::read::BatchList,
        workflows::BatchView,
        workflows::BatchRecord,
        workflows::BatchCounts,
        workflows::BatchItem,
        workflows::ItemError,
        disseminations::create::SelectPattern,
        workflows::DeliveredFile,
        workflows::Reason,
        workflows::WebhookDelivery,
        workflows::Progress,
        model::DisseminationStatus,
    )),
    modifiers(&BearerAuth),
    tags((name = "disseminations", description = "Requests for AIPs"), (name = "batches", description = "Many AIPs in one request"), (name = "probes", description = "Health"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "RS256 JWT from the client-credentials flow; role {contractId}_R grants access",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document for a deployment mounted at `base_path`.
pub fn document(base_path: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let base = base_path.trim_end_matches('/');
    doc.servers = Some(vec![Server::new(if base.is_empty() { "/" } else { base })]);
    doc
}

/// Routes serving the document and Swagger UI, at their full paths.
pub fn router(base_path: &str) -> Router {
    let base = base_path.trim_end_matches('/');
    SwaggerUi::new(format!("{base}/swagger-ui"))
        .url(format!("{base}/openapi.json"), document(base))
        .into()
}

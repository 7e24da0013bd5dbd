//! The OpenAPI 3.1 document, generated from the handlers and types, served
//! at `{base}/openapi.json` with Swagger UI (vendored assets: no network
//! needed to view it) at `{base}/swagger-ui/`. Each create links to the
//! operations that take the id it returns (`CreateLinks`).

use crate::{batches, disseminations, error, events, health};
use axum::Router;
use utoipa::{
    openapi::{
        link::LinkBuilder,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        server::Server,
        RefOr,
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
        version = "1.2.0"
    ),
    paths(
        disseminations::create::create,
        disseminations::read::read,
        disseminations::list::list,
        disseminations::links::regenerate_links,
        disseminations::cancel::cancel,
        disseminations::read::events,
        disseminations::read::receipt,
        disseminations::acknowledge::acknowledge,
        events::list,
        events::recover,
        batches::create::create,
        batches::read::read,
        batches::read::list,
        batches::read::cancel,
        health::healthz,
        health::readyz,
    ),
    components(schemas(
        disseminations::request::DisseminationIn,
        disseminations::create::ConflictBody,
        disseminations::list::DisseminationPage,
        workflows::Acknowledgement,
        workflows::AcknowledgedFile,
        workflows::Acknowledged,
        workflows::QueuePosition,
        events::EventPage,
        events::FeedEvent,
        events::RecoverIn,
        events::RecoveryStarted,
        disseminations::read::EventList,
        workflows::DisseminationEvent,
        error::ErrorBody,
        error::ErrorDetail,
        error::ErrorCode,
        workflows::DisseminationView,
        workflows::DisseminationRecord,
        workflows::Format,
        batches::request::BatchIn,
        batches::request::ArchiveIdString,
        batches::create::BatchCreated,
        batches::read::BatchPage,
        batches::read::BatchList,
        workflows::BatchView,
        workflows::BatchRecord,
        workflows::BatchCounts,
        workflows::BatchItem,
        workflows::ItemError,
        disseminations::request::SelectPattern,
        workflows::DeliveredFile,
        workflows::Reason,
        workflows::WebhookDelivery,
        workflows::Progress,
        model::DisseminationStatus,
    )),
    modifiers(&BearerAuth, &CreateLinks),
    tags((name = "disseminations", description = "Requests for AIPs"), (name = "batches", description = "Many AIPs in one request"), (name = "events", description = "The caller's event feed and webhook recovery"), (name = "probes", description = "Health"))
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

/// Links from each create (its 201) to the operations that take the id it
/// returns: a client, or schemathesis's stateful phase, follows them with
/// real ids. A batch's items are reached through its first item.
struct CreateLinks;

const DISSEMINATION: &str = "/v1/disseminations/{disseminationId}";
const BATCH: &str = "/v1/dissemination-batches/{batchId}";

impl Modify for CreateLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let (create, create_batch) = ("/v1/disseminations", "/v1/dissemination-batches");
        let id = "disseminationId";
        for (verb, path, method) in [
            ("Get", DISSEMINATION, "get"),
            ("Cancel", DISSEMINATION, "delete"),
            (
                "Events",
                "/v1/disseminations/{disseminationId}/events",
                "get",
            ),
            (
                "Receipt",
                "/v1/disseminations/{disseminationId}/receipt",
                "get",
            ),
            (
                "NewLinks",
                "/v1/disseminations/{disseminationId}/links",
                "post",
            ),
            (
                "Acknowledge",
                "/v1/disseminations/{disseminationId}/acknowledgement",
                "post",
            ),
        ] {
            let to = (path, method, id);
            let name = format!("{verb}Dissemination");
            add_link(
                openapi,
                create,
                &name,
                to,
                "$response.body#/disseminationId",
            );
            let name = format!("{verb}FirstItem");
            add_link(
                openapi,
                create_batch,
                &name,
                to,
                "$response.body#/items/0/disseminationId",
            );
        }
        for (name, method) in [("GetBatch", "get"), ("CancelBatch", "delete")] {
            let to = (BATCH, method, "batchId");
            add_link(openapi, create_batch, name, to, "$response.body#/batchId");
        }
    }
}

/// Adds to the 201 of `POST create` the link `name` to `(path, method)`,
/// its parameter `param` set to `value` (a runtime expression).
fn add_link(
    openapi: &mut utoipa::openapi::OpenApi,
    create: &str,
    name: &str,
    (path, method, param): (&str, &str, &str),
    value: &str,
) {
    let created = openapi
        .paths
        .paths
        .get_mut(create)
        .and_then(|item| item.post.as_mut())
        .and_then(|post| post.responses.responses.get_mut("201"));
    let Some(RefOr::T(created)) = created else {
        return;
    };
    // A JSON pointer into `paths`, as a URI fragment.
    let pointer = path
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D");
    let link = LinkBuilder::new()
        .operation_ref(format!("#/paths/{pointer}/{method}"))
        .parameter(param, value)
        .build();
    created.links.insert(name.to_owned(), RefOr::T(link));
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

//! The published contract: the OpenAPI document and Swagger UI, served from
//! the service itself with no network needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{Options, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_swagger_ui_are_served_offline() {
    let app = TestApp::start_with(Options::without_worker()).await;
    let api = app.anonymous();
    let doc = api.openapi().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/disseminations",
        "/v1/disseminations/{disseminationId}",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    let post = &paths["/v1/disseminations"]["post"];
    for code in [
        "201", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503",
    ] {
        assert!(post["responses"].get(code).is_some(), "POST lacks {code}");
    }
    assert_eq!(post["security"][0]["bearer"], serde_json::json!([]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "DisseminationIn",
        "DisseminationView",
        "DeliveredFile",
        "ErrorBody",
        "DisseminationStatus",
    ] {
        assert!(schemas.contains_key(s), "missing schema {s}");
    }
    let statuses = serde_json::to_string(&schemas["DisseminationStatus"]).unwrap();
    assert!(statuses.contains("DOWNLOADING_FROM_REPOSITORY") && statuses.contains("REJECTED"));

    // Swagger UI: the page and its assets come from the service.
    let html = api.page("/swagger-ui/").await;
    assert!(html.contains("swagger-ui"));
    assert!(
        !html.contains("https://"),
        "the page must not load anything from the network"
    );
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let body = api.page(&format!("/swagger-ui/{asset}")).await;
        assert!(body.len() > 100, "{asset}");
        if asset == "swagger-initializer.js" {
            assert!(body.contains("/openapi.json"), "the UI loads our document");
        }
    }
}

//! `GET /.well-known/wlcg-tape-rest-api`: the discovery document (RFC 8615),
//! one endpoint object for the one version served, its `uri` absolute on
//! the origin the client used (or `--public-url`). gfal2 takes the highest
//! `version` it knows (`v0` or `v1`) and appends `/stage/`, `/archiveinfo/`
//! etc. to `uri`.

use super::AppState;
use axum::{extract::State, http::HeaderMap, Json};
use serde::Serialize;

#[derive(Serialize)]
pub struct Discovery {
    sitename: String,
    description: String,
    endpoints: Vec<Endpoint>,
}

#[derive(Serialize)]
struct Endpoint {
    uri: String,
    version: &'static str,
    metadata: serde_json::Map<String, serde_json::Value>,
}

pub async fn document(State(app): State<AppState>, headers: HeaderMap) -> Json<Discovery> {
    let api = &app.api;
    Json(Discovery {
        sitename: api.sitename.clone(),
        description: api.description.clone(),
        endpoints: vec![Endpoint {
            uri: format!("{}{}", api.origin(&headers), api.base),
            version: "v1",
            metadata: serde_json::Map::new(),
        }],
    })
}

//! The spec's operations: ARCHIVEINFO, STAGE (submit, progress, cancel,
//! delete) and RELEASE.
//!
//! Choices where the spec leaves one:
//! - `paths`/`files` must be non-empty arrays, else 400 "JSON Validation
//!   error"; unknown fields and `targetedMetadata` are ignored (the spec
//!   forbids refusing site-specific information);
//! - an invalid `diskLifetime` refuses the whole submission (400), as
//!   dCache does; an invalid or missing path fails only its file;
//! - ARCHIVEINFO answers at most `MAX_ARCHIVEINFO` paths (the spec: "only
//!   return the response about the files it could fetch"), in request
//!   order, each path once;
//! - cancel and release answer 200 with no body; an unknown request id is
//!   404 for progress, cancel and delete, but not for release (see
//!   `Library::release`).

use super::{
    problem::{ApiJson, Problem},
    AppState,
};
use crate::{
    catalog::Lookup,
    lifetime, now_ms,
    nspath::NsPath,
    state::{key_of, requests::RequestId, CoreError, Locality, StageFile, NO_SUCH_FILE},
};
use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The most paths one ARCHIVEINFO call answers.
pub const MAX_ARCHIVEINFO: usize = 10_000;

const EMPTY_PATHS: &str = "paths – Field does not exist or is not a valid non-empty array";
const EMPTY_FILES: &str = "files – Field does not exist or is not a valid non-empty array";

#[derive(Deserialize)]
pub struct PathsIn {
    paths: Vec<String>,
}

#[derive(Deserialize)]
pub struct StageIn {
    files: Vec<StageFileIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageFileIn {
    path: String,
    disk_lifetime: Option<String>,
}

#[derive(Serialize)]
pub struct ArchiveInfo {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    locality: Option<Locality>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    request_id: String,
}

/// `POST {base}/archiveinfo`: each path's locality, or why it has none.
pub async fn archiveinfo(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<PathsIn>,
) -> Result<Json<Vec<ArchiveInfo>>, Problem> {
    if body.paths.is_empty() {
        return Err(Problem::json_validation(EMPTY_PATHS));
    }
    let mut seen = HashSet::new();
    let raws: Vec<String> = body
        .paths
        .into_iter()
        .filter(|p| seen.insert(key_of(p)))
        .take(MAX_ARCHIVEINFO)
        .collect();
    let resolved = resolve(&app, raws).await?;
    let lib = app.shared.lock();
    let out = resolved
        .into_iter()
        .map(|(raw, r)| match r {
            Err(e) => ArchiveInfo {
                path: raw,
                locality: None,
                error: Some(e),
            },
            Ok((path, lookup)) => {
                let locality = lib.locality(&path, &lookup);
                ArchiveInfo {
                    path: path.as_str().to_owned(),
                    locality,
                    error: locality.is_none().then(|| not_stored(&lookup)),
                }
            }
        })
        .collect();
    Ok(Json(out))
}

/// `POST {base}/stage`: 201, `{"requestId"}`, `Location` of its progress.
pub async fn stage(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StageIn>,
) -> Result<Response, Problem> {
    if body.files.is_empty() {
        return Err(Problem::json_validation(EMPTY_FILES));
    }
    let mut lifetimes = Vec::with_capacity(body.files.len());
    let mut raws = Vec::with_capacity(body.files.len());
    for f in body.files {
        let lifetime = match &f.disk_lifetime {
            Some(l) => {
                Some(lifetime::parse(l).map_err(|e| Problem::json_validation(e.to_string()))?)
            }
            None => None,
        };
        lifetimes.push(lifetime);
        raws.push(f.path);
    }
    let resolved = resolve(&app, raws).await?;
    let files = resolved
        .into_iter()
        .zip(lifetimes)
        .map(|((raw, resolved), lifetime)| StageFile {
            raw,
            resolved,
            lifetime,
        })
        .collect();
    let id = app
        .shared
        .lock()
        .submit(RequestId::generate(), files, now_ms());
    app.shared.notify();
    tracing::info!(request_id = %id, "stage request submitted");
    let location = format!("{}{}/stage/{id}", app.api.origin(&headers), app.api.base);
    let mut res = (
        StatusCode::CREATED,
        Json(Created {
            request_id: id.0.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// `GET {base}/stage/{id}`: the request's progress.
pub async fn status(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match app.shared.lock().request_view(&RequestId(id.clone())) {
        Some(view) => Json(view).into_response(),
        None => unknown(&id).into_response(),
    }
}

/// `POST {base}/stage/{id}/cancel`.
pub async fn cancel(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PathsIn>,
) -> Result<StatusCode, Problem> {
    let keys = keys(body)?;
    let result = app.shared.lock().cancel(&RequestId(id), &keys, now_ms());
    app.shared.notify();
    result.map(|()| StatusCode::OK).map_err(core_problem)
}

/// `DELETE {base}/stage/{id}`: cancels what is not done, then forgets it.
pub async fn delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let result = app.shared.lock().delete(&RequestId(id), now_ms());
    app.shared.notify();
    result.map(|()| StatusCode::OK).map_err(core_problem)
}

/// `POST {base}/release/{id}`: the files need no disk copy any more.
pub async fn release(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PathsIn>,
) -> Result<StatusCode, Problem> {
    let keys = keys(body)?;
    let result = app.shared.lock().release(&RequestId(id), &keys);
    result.map(|()| StatusCode::OK).map_err(core_problem)
}

fn keys(body: PathsIn) -> Result<Vec<String>, Problem> {
    if body.paths.is_empty() {
        return Err(Problem::json_validation(EMPTY_PATHS));
    }
    Ok(body.paths.iter().map(|p| key_of(p)).collect())
}

type Resolved = Vec<(String, Result<(NsPath, Lookup), String>)>;

/// Parses each path and looks it up on the tape folder (off the runtime:
/// a `stat` per file).
async fn resolve(app: &AppState, raws: Vec<String>) -> Result<Resolved, Problem> {
    let shared = app.shared.clone();
    tokio::task::spawn_blocking(move || {
        raws.into_iter()
            .map(|raw| {
                let r = NsPath::parse(&raw)
                    .map(|p| {
                        let lookup = shared.catalog.lookup(&p);
                        (p, lookup)
                    })
                    .map_err(|e| format!("invalid path: {e}"));
                (raw, r)
            })
            .collect()
    })
    .await
    .map_err(|e| Problem::internal("looking paths up", e))
}

fn not_stored(lookup: &Lookup) -> String {
    match lookup {
        Lookup::NotAFile => "not a file: only files are stored on tape".into(),
        _ => NO_SUCH_FILE.into(),
    }
}

fn unknown(id: &str) -> Problem {
    Problem::not_found(format!("no STAGE request with id {id}"))
}

fn core_problem(e: CoreError) -> Problem {
    match e {
        CoreError::UnknownRequest(id) => unknown(&id.0),
        e @ CoreError::NotInRequest { .. } => {
            Problem::bad_request("File missing from stage request", e.to_string())
        }
    }
}

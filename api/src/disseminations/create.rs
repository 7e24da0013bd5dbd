//! `POST /v1/disseminations`: the body parsed field by field, the AIP
//! checked against the catalog and the token, then the dissemination
//! started behind its per-(client, AIP) lock.

use crate::{
    error::{ApiError, ErrorBody, ErrorCode, ErrorDetail},
    extract::{AppJson, AuthenticatedClient},
    state::AppState,
    temporal::{self, StartOutcome, StartRequest},
};
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use model::{ArchiveId, ClientId, DisseminationId, Priority};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use workflows::{DisseminationInput, DisseminationRecord, DisseminationView, Format};

/// The request body. Fields are checked one by one so each mistake gets
/// its own code; unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DisseminationIn {
    /// The AIP's id: a UUID, or a legacy 24-hex object id.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "019e404e-60ab-7457-b7c9-94c453242c69",
        pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{24})$")]
    archive_id: Option<serde_json::Value>,
    /// 1 (most urgent) to 100; 50 when absent.
    #[serde(default)]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 100, example = 50)]
    priority: Option<serde_json::Value>,
    /// `files` (default: each repository file, or each selected member, as
    /// its own object) or `bagit` (one BagIt 1.0 bag as one TAR object).
    #[serde(default)]
    #[schema(value_type = Option<Format>, example = "bagit")]
    format: Option<serde_json::Value>,
    /// Member paths or globs inside the AIP's TAR files (`*` within a
    /// segment, `**` across segments); only matching members are delivered.
    /// Relative, no `..` segment, no empty segment, no control characters.
    #[serde(default)]
    #[schema(value_type = Option<Vec<SelectPattern>>, min_items = 1, max_items = 100,
        example = json!(["METS.xml", "content/*.jp2"]))]
    select: Option<serde_json::Value>,
}

/// One `select` pattern as the schema states it (the API checks the same):
/// relative, no `..` segment, no empty segment, no control characters.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, min_length = 1, max_length = 1024, example = "content/*.jp2",
    pattern = r"^(?:[^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.[^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.\.[^/\u0000-\u001f\u007f-\u009f]+|\.)(?:/(?:[^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.[^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.\.[^/\u0000-\u001f\u007f-\u009f]+|\.))*$")]
pub struct SelectPattern(#[allow(dead_code)] String);

/// At most this many characters in one `select` pattern.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// What a request asks to be delivered, checked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) format: Format,
    pub(crate) select: Vec<String>,
}

/// 409: a dissemination of the AIP for this client is in progress.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictBody {
    pub error: ErrorDetail,
    /// The dissemination in progress (also in `Location`).
    pub dissemination_id: String,
    pub dissemination: Option<DisseminationView>,
}

impl DisseminationIn {
    fn parse(&self) -> Result<(ArchiveId, Priority), ApiError> {
        let archive_id = match &self.archive_id {
            Some(serde_json::Value::String(s)) => ArchiveId::parse(s),
            Some(_) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidArchiveId,
                    "archiveId must be a string",
                ))
            }
            None => {
                return Err(ApiError::new(
                    ErrorCode::InvalidArchiveId,
                    "archiveId is required",
                ))
            }
        }?;
        let priority = parse_priority(&self.priority)?;
        Ok((archive_id, priority))
    }

    fn delivery(&self) -> Result<Delivery, ApiError> {
        parse_delivery(&self.format, &self.select)
    }
}

/// `priority`: an integer 1..100 (`19.0` is 19), 50 when absent.
pub(crate) fn parse_priority(value: &Option<serde_json::Value>) -> Result<Priority, ApiError> {
    Ok(match value {
        None | Some(serde_json::Value::Null) => Priority::DEFAULT,
        // JSON Schema's integer is a value, not a spelling: 19.0 and
        // 1.9e1 are 19 (2.5 is no integer).
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() <= 1e6)
                    .map(|f| f as i64)
            })
            .ok_or(model::IdError::Priority)
            .and_then(Priority::new)?,
        Some(_) => return Err(model::IdError::Priority.into()),
    })
}

/// `format` and `select`, checked.
pub(crate) fn parse_delivery(
    format: &Option<serde_json::Value>,
    select: &Option<serde_json::Value>,
) -> Result<Delivery, ApiError> {
    let format = match format {
        None | Some(serde_json::Value::Null) => Format::Files,
        Some(serde_json::Value::String(s)) if s == "files" => Format::Files,
        Some(serde_json::Value::String(s)) if s == "bagit" => Format::Bagit,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidFormat,
                format!("format must be \"files\" or \"bagit\", not {other}"),
            ))
        }
    };
    let bad = |m: String| ApiError::new(ErrorCode::InvalidSelect, m);
    let select = match select {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => {
            if items.is_empty() {
                return Err(bad("select must list at least one pattern".into()));
            }
            let mut patterns = Vec::with_capacity(items.len());
            for item in items {
                let serde_json::Value::String(p) = item else {
                    return Err(bad(format!("select patterns are strings, not {item}")));
                };
                if p.chars().count() > MAX_PATTERN_CHARS {
                    return Err(bad(format!(
                        "a select pattern has at most {MAX_PATTERN_CHARS} characters"
                    )));
                }
                patterns.push(p.clone());
            }
            packaging::select::Selection::new(&patterns).map_err(|e| bad(e.to_string()))?;
            patterns
        }
        Some(other) => {
            return Err(bad(format!(
                "select must be a list of patterns, not {other}"
            )))
        }
    };
    Ok(Delivery { format, select })
}

fn location(state: &AppState, id: &str) -> String {
    format!(
        "{}/v1/disseminations/{id}",
        state.cfg.api.base_path.trim_end_matches('/')
    )
}

/// Create a dissemination of an AIP for the calling client.
///
/// Checks, in order: the token (401), the body (400/413/415), that the AIP
/// exists (404), the token's role for its contract (403), that it is
/// preserved (422) and that no dissemination of it for this client is in
/// progress (409, naming that one).
#[utoipa::path(post, path = "/v1/disseminations", tag = "disseminations",
    request_body = DisseminationIn,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Accepted", body = DisseminationView,
            headers(("Location" = String, description = "The new dissemination"))),
        (status = 400, description = "Invalid archiveId, priority, format, select or body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "The token has no role for the AIP's contract", body = ErrorBody),
        (status = 404, description = "ARCHIVE_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "DISSEMINATION_IN_PROGRESS", body = ConflictBody,
            headers(("Location" = String, description = "The dissemination in progress"))),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "ARCHIVE_NOT_PRESERVED", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Temporal or the catalog is unavailable", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    AppJson(body): AppJson<DisseminationIn>,
) -> Result<Response, ApiError> {
    let (archive_id, priority) = body.parse()?;
    let delivery = body.delivery()?;
    let ask = Ask {
        priority,
        delivery: &delivery,
        batch: None,
        staging: None,
    };
    let id = DisseminationId::generate();
    match admit(&state, &claims, archive_id, id, &ask).await? {
        Admission::Started(view, _) => {
            let record = &view.record;
            let span = tracing::Span::current();
            span.set_attribute("disseminationId", record.dissemination_id.to_string());
            span.set_attribute("archiveId", record.archive_id.to_string());
            span.set_attribute("clientId", record.client_id.as_str().to_owned());
            span.set_attribute("contractId", record.contract_id.to_string());
            span.set_attribute("priority", i64::from(priority.get()));
            let loc = location(&state, record.dissemination_id.as_str());
            Ok((StatusCode::CREATED, [(header::LOCATION, loc)], Json(*view)).into_response())
        }
        Admission::InProgress(existing) => {
            let loc = location(&state, &existing.id);
            let error = ApiError::new(
                ErrorCode::DisseminationInProgress,
                "a dissemination of this AIP for this client is in progress",
            )
            .with_details(format!("disseminationId {}", existing.id));
            let body = ConflictBody {
                error: error.detail(),
                dissemination_id: existing.id,
                dissemination: existing
                    .view
                    .map(|v| v.with_links(state.cfg.link_signer(&claims.client_id))),
            };
            Err(error.with_header(header::LOCATION, &loc).with_body(body))
        }
    }
}

/// What is asked of every AIP of a request (one, or a batch's).
pub(crate) struct Ask<'a> {
    pub(crate) priority: Priority,
    pub(crate) delivery: &'a Delivery,
    /// The batch it belongs to.
    pub(crate) batch: Option<&'a str>,
    /// A batch's: its tape files staged by the batch, within this many
    /// files in all (what is left of the budget), as its group `group`.
    pub(crate) staging: Option<BatchStaging<'a>>,
}

/// How many tape files a batch stages itself at most: its `stage` step's
/// input and heartbeat stay far below Temporal's payload limits. Items
/// beyond stage their own.
pub(crate) const BATCH_STAGE_MAX_FILES: usize = 4000;

pub(crate) struct BatchStaging<'a> {
    pub(crate) budget: &'a std::sync::atomic::AtomicUsize,
    pub(crate) group: u32,
}

impl BatchStaging<'_> {
    /// Takes `n` files of the budget, if it has them.
    fn take(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }
}

pub(crate) enum Admission {
    /// Started; with the tape files its batch is to stage for it.
    Started(Box<DisseminationView>, Vec<workflows::TapeFile>),
    InProgress(Box<temporal::Existing>),
}

/// The checks of a single POST for one AIP (404, 403, 422), then its
/// dissemination started behind its per-(client, AIP) lock, as `id`.
pub(crate) async fn admit(
    state: &AppState,
    claims: &crate::auth::Claims,
    archive_id: ArchiveId,
    id: DisseminationId,
    ask: &Ask<'_>,
) -> Result<Admission, ApiError> {
    // Each asks again what did not answer (a Temporal busy for a moment):
    // every call is idempotent by the dissemination id.
    let tries = if ask.batch.is_some() {
        state.cfg.api.batch_start_tries
    } else {
        state.cfg.api.start_tries
    };
    let aip = temporal::persist(tries, || async {
        Ok(state.catalog.get(&archive_id).await?)
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::ArchiveNotFound,
            format!("no AIP with archiveId {archive_id}"),
        )
    })?;
    let entity = &aip.intellectual_entity;
    if !claims.can_read(&entity.access_group_id) {
        // Which contract the AIP belongs to is not the caller's to learn.
        return Err(ApiError::forbidden(
            "the token has no role that grants access to this AIP",
        ));
    }
    if !entity.is_preserved() {
        return Err(ApiError::new(
            ErrorCode::ArchiveNotPreserved,
            format!(
                "the AIP is {:?}, only preserved AIPs can be disseminated",
                entity.status
            ),
        ));
    }
    let priority = ask.priority;
    let record = DisseminationRecord {
        dissemination_id: id,
        archive_id,
        client_id: ClientId::new(claims.client_id.clone()),
        contract_id: entity.access_group_id.clone(),
        object_id: entity.object_id.clone(),
        sum_size_in_bytes: entity.sum_size_in_bytes,
        priority,
        date_created: model::time::Timestamp::now(),
        format: ask.delivery.format,
        select: ask.delivery.select.clone(),
    };
    let view = DisseminationView::received(record.clone());
    let cfg = &state.cfg;
    refuse_oversized(cfg, &aip.repository_files)?;
    // Started QUEUED: the workflow writes nothing until its final status.
    let queued = DisseminationView {
        status: model::DisseminationStatus::Queued,
        ..view.clone()
    };
    let settings = crate::settings::workflow_settings(cfg);
    // A batch's item: its first tape copies are staged by the batch.
    let tape = match &ask.staging {
        Some(staging) => {
            let tape = workflows::first_tape_copies(&aip.repository_files, &settings.locations);
            if !tape.is_empty() && staging.take(tape.len()) {
                tape
            } else {
                Vec::new()
            }
        }
        None => Vec::new(),
    };
    let staged_by_batch = match (&ask.staging, ask.batch) {
        (Some(staging), Some(batch)) if !tape.is_empty() => Some(workflows::StagedByBatch {
            batch_id: batch.to_owned(),
            group: staging.group,
            files: tape.len() as u32,
            bytes: tape.iter().map(|f| f.size).sum(),
        }),
        _ => None,
    };
    let request = StartRequest {
        input: DisseminationInput {
            record: record.clone(),
            files: aip.repository_files.clone(),
            lock: None,
            settings,
            batch: ask.batch.map(str::to_owned),
            flow: workflows::FLOW,
            staged_by_batch: staged_by_batch.is_some(),
        },
        staged_by_batch,
        band_queue: cfg.band_queue(cfg.band_for(priority)),
        lock_queue: cfg.held_lock_queue(),
        // A batch's items queue behind single requests of the same priority:
        // a collection never holds back another request for longer than
        // one item (within a priority, clients share by fairness key).
        priority_key: if ask.batch.is_some() {
            (priority.priority_key() + 1).min(5)
        } else {
            priority.priority_key()
        },
        view: &queued,
        tries,
    };
    Ok(match temporal::start(&state.temporal, request).await? {
        StartOutcome::Started => {
            tracing::info!(dissemination_id = %record.dissemination_id, archive_id = %record.archive_id,
                client_id = %record.client_id, priority = priority.get(), batch = ?ask.batch,
                "dissemination accepted");
            Admission::Started(Box::new(view), tape)
        }
        StartOutcome::InProgress(existing) => Admission::InProgress(existing),
    })
}

/// Temporal carries a dissemination's input and its view (one entry per
/// file) as payloads of at most 2 MB: an AIP with too many repository files
/// for that is refused before anything starts.
fn refuse_oversized(
    cfg: &platform::config::Config,
    files: &[model::catalog::RepositoryFile],
) -> Result<(), ApiError> {
    /// Input and view each stay well inside the 2 MB payload limit.
    const MAX_INPUT_BYTES: usize = 512 * 1024;
    let max = cfg.api.max_repository_files;
    let bytes = serde_json::to_vec(files).map_or(usize::MAX, |v| v.len());
    if files.len() > max || bytes > MAX_INPUT_BYTES {
        return Err(ApiError::new(
            ErrorCode::TooManyRepositoryFiles,
            format!(
                "the AIP has {} repository files; one dissemination carries at most {max}",
                files.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<(ArchiveId, Priority), ErrorCode> {
        let body: DisseminationIn =
            serde_json::from_str(json).map_err(|_| ErrorCode::InvalidRequest)?;
        body.parse().map_err(|e| e.code)
    }

    #[test]
    fn body_rules() {
        let id = "019e404e-60ab-7457-b7c9-94c453242c69";
        assert_eq!(
            parse(&format!(r#"{{"archiveId":"{id}"}}"#)).map(|p| p.1.get()),
            Ok(50)
        );
        assert_eq!(
            parse(&format!(r#"{{"archiveId":"{id}","priority":1}}"#)).map(|p| p.1.get()),
            Ok(1)
        );
        assert_eq!(
            parse(&format!(r#"{{"archiveId":"{id}","priority":100}}"#)).map(|p| p.1.get()),
            Ok(100)
        );
        for (integral, value) in [("19.0", 19), ("1e2", 100), ("5.0e1", 50)] {
            assert_eq!(
                parse(&format!(r#"{{"archiveId":"{id}","priority":{integral}}}"#))
                    .map(|p| p.1.get()),
                Ok(value),
                "{integral}"
            );
        }
        for bad in [
            "0", "101", "2.5", "\"high\"", "-1", "true", "0.0", "100.5", "1e3", "-0.0",
        ] {
            assert_eq!(
                parse(&format!(r#"{{"archiveId":"{id}","priority":{bad}}}"#)).err(),
                Some(ErrorCode::InvalidPriority),
                "{bad}"
            );
        }
        assert_eq!(
            parse(r#"{"priority":1}"#).err(),
            Some(ErrorCode::InvalidArchiveId)
        );
        assert_eq!(
            parse(r#"{"archiveId":42}"#).err(),
            Some(ErrorCode::InvalidArchiveId)
        );
        assert_eq!(
            parse(r#"{"archiveId":"nope"}"#).err(),
            Some(ErrorCode::InvalidArchiveId)
        );
        assert_eq!(
            parse(&format!(r#"{{"archiveId":"{id}","extra":1}}"#)).err(),
            Some(ErrorCode::InvalidRequest)
        );
    }

    fn delivery(json: &str) -> Result<(Format, Vec<String>), ErrorCode> {
        let body: DisseminationIn =
            serde_json::from_str(json).map_err(|_| ErrorCode::InvalidRequest)?;
        body.delivery()
            .map(|d| (d.format, d.select))
            .map_err(|e| e.code)
    }

    #[test]
    fn format_and_select_rules() {
        assert_eq!(delivery("{}"), Ok((Format::Files, vec![])));
        assert_eq!(
            delivery(r#"{"format":"bagit","select":["METS.xml","content/**/*.jp2"]}"#),
            Ok((
                Format::Bagit,
                vec!["METS.xml".to_owned(), "content/**/*.jp2".to_owned()]
            ))
        );
        assert_eq!(
            delivery(r#"{"format":"files","select":null}"#),
            Ok((Format::Files, vec![]))
        );
        for bad in [r#""zip""#, r#""Bagit""#, "1", r#"["bagit"]"#, r#""""#] {
            assert_eq!(
                delivery(&format!(r#"{{"format":{bad}}}"#)).err(),
                Some(ErrorCode::InvalidFormat),
                "{bad}"
            );
        }
        let many = format!(
            "[{}]",
            (0..101)
                .map(|i| format!(r#""f{i}""#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let long = format!(r#"["{}"]"#, "x".repeat(MAX_PATTERN_CHARS + 1));
        for bad in [
            r#""METS.xml""#,
            "[]",
            r#"[""]"#,
            r#"["/abs"]"#,
            r#"["../up"]"#,
            r#"["a/../b"]"#,
            r#"["a//b"]"#,
            r#"["tab\there"]"#,
            "[1]",
            many.as_str(),
            long.as_str(),
        ] {
            assert_eq!(
                delivery(&format!(r#"{{"select":{bad}}}"#)).err(),
                Some(ErrorCode::InvalidSelect),
                "{bad}"
            );
        }
    }
}

//! The body of `POST /v1/dissemination-batches`, parsed at the edge into
//! a `NewBatch`: its archiveIds, then the options every item shares
//! (checked as a single request's).

use crate::{
    disseminations::request::{parse_delivery, parse_priority, Delivery},
    error::{ApiError, ErrorCode},
    extract::RequestBody,
};
use model::{ArchiveId, Priority};
use platform::config::ApiConfig;
use serde::Deserialize;
use std::collections::BTreeSet;
use workflows::Format;

/// The request body: the same options as a single request, for every item.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BatchIn {
    /// 1 to 1,000 distinct archiveIds.
    #[serde(default)]
    #[schema(schema_with = archive_ids_schema, required = true)]
    archive_ids: Option<serde_json::Value>,
    /// 1 (most urgent) to 100; 50 when absent.
    #[serde(default)]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 100, example = 70)]
    priority: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<Format>)]
    format: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::disseminations::request::SelectPattern>>, min_items = 1, max_items = 100)]
    select: Option<serde_json::Value>,
}

/// An archiveId: a UUID, or a legacy 24-hex object id.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, example = "019e404e-60ab-7457-b7c9-94c453242c69",
    pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{24})$")]
pub struct ArchiveIdString(#[allow(dead_code)] String);

/// `archiveIds`: 1 to 1,000 distinct archiveIds.
fn archive_ids_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::{schema::ArrayBuilder, Ref};
    ArrayBuilder::new()
        .items(Ref::from_schema_name("ArchiveIdString"))
        .min_items(Some(1))
        .max_items(Some(1000))
        .unique_items(true)
        .examples([serde_json::json!([
            "019e404e-60ab-7457-b7c9-94c453242c69",
            "019e404e-7c1d-7a2b-8f3e-2b5d9c1e4a10"
        ])])
        .build()
}

/// A batch's request, checked.
#[derive(Debug)]
pub struct NewBatch {
    /// 1 to `api.batch_max_items`, distinct.
    pub archive_ids: Vec<ArchiveId>,
    pub priority: Priority,
    pub delivery: Delivery,
}

impl RequestBody for NewBatch {
    type Wire = BatchIn;

    /// A batch carries up to a thousand archiveIds.
    fn limit(api: &ApiConfig) -> usize {
        api.batch_body_limit_bytes
    }

    /// In order: archiveIds, priority, format, select.
    fn parse(body: BatchIn, api: &ApiConfig) -> Result<Self, ApiError> {
        Ok(Self {
            archive_ids: archive_ids(&body.archive_ids, api.batch_max_items)?,
            priority: parse_priority(&body.priority)?,
            delivery: parse_delivery(&body.format, &body.select)?,
        })
    }
}

fn archive_ids(value: &Option<serde_json::Value>, max: usize) -> Result<Vec<ArchiveId>, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::InvalidArchiveId, m);
    let Some(serde_json::Value::Array(items)) = value else {
        return Err(bad("archiveIds must be a list of archiveIds".into()));
    };
    if items.is_empty() || items.len() > max {
        return Err(bad(format!("archiveIds holds 1 to {max} archiveIds")));
    }
    let mut seen = BTreeSet::new();
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let serde_json::Value::String(s) = item else {
            return Err(bad(format!("archiveIds[{i}] is not a string")));
        };
        let id = ArchiveId::parse(s).map_err(|e| bad(format!("archiveIds[{i}]: {e}")))?;
        if !seen.insert(id.to_string()) {
            return Err(bad(format!("archiveIds[{i}] ({id}) appears twice")));
        }
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_ids_are_one_to_max_distinct_ids() {
        let a = "019e404e-60ab-7457-b7c9-94c453242c69";
        let b = "5f1b2c3d4e5f6a7b8c9d0e1f";
        let ok = archive_ids(&Some(serde_json::json!([a, b])), 3).map(|v| v.len());
        assert_eq!(ok.ok(), Some(2));
        for bad in [
            serde_json::json!([]),
            serde_json::json!([a, a]),
            serde_json::json!([a, "nope"]),
            serde_json::json!([a, 1]),
            serde_json::json!(a),
            serde_json::json!([
                a,
                b,
                "019e404e-7c1d-7a2b-8f3e-2b5d9c1e4a10",
                "5f1b2c3d4e5f6a7b8c9d0e1a"
            ]),
        ] {
            assert_eq!(
                archive_ids(&Some(bad.clone()), 3).err().map(|e| e.code),
                Some(ErrorCode::InvalidArchiveId),
                "{bad}"
            );
        }
        assert!(archive_ids(&None, 3).is_err());
    }
}

//! The body of `POST /v1/disseminations`, parsed at the edge into a
//! `NewDissemination` (zero-to-production's `TryFrom<FormData>`): each
//! field checked on its own so each mistake gets its own code, `select`
//! kept compiled. `format`, `priority` and `select` are a batch's too.

use crate::{
    error::{ApiError, ErrorCode},
    extract::RequestBody,
};
use model::{ArchiveId, IdError, Priority};
use packaging::select::Selection;
use platform::config::ApiConfig;
use serde::Deserialize;
use serde_json::Value;
use workflows::Format;

/// The request body. Fields are checked one by one so each mistake gets
/// its own code; unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DisseminationIn {
    /// The AIP's id: a UUID, or a legacy 24-hex object id.
    #[serde(default)]
    #[schema(value_type = String, required = true, example = "019e404e-60ab-7457-b7c9-94c453242c69",
        pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{24})$")]
    archive_id: Option<Value>,
    /// 1 (most urgent) to 100; 50 when absent.
    #[serde(default)]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 100, example = 50)]
    priority: Option<Value>,
    /// `files` (default: each repository file, or each selected member, as
    /// its own object) or `bagit` (one BagIt 1.0 bag as one TAR object).
    #[serde(default)]
    #[schema(value_type = Option<Format>, example = "bagit")]
    format: Option<Value>,
    /// Member paths or globs inside the AIP's TAR files (`*` within a
    /// segment, `**` across segments); only matching members are delivered.
    /// Relative, no `..` segment, no empty segment, no control characters.
    #[serde(default)]
    #[schema(value_type = Option<Vec<SelectPattern>>, min_items = 1, max_items = 100,
        example = json!(["METS.xml", "content/*.jp2"]))]
    select: Option<Value>,
}

/// One `select` pattern as the schema states it (the API checks the same):
/// relative, no `..` segment, no empty segment, no control characters.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, min_length = 1, max_length = 1024, example = "content/*.jp2",
    pattern = r"^(?:[^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.[^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.\.[^/\u0000-\u001f\u007f-\u009f]+|\.)(?:/(?:[^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.[^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.\.[^/\u0000-\u001f\u007f-\u009f]+|\.))*$")]
pub struct SelectPattern(#[allow(dead_code)] String);

/// At most this many characters in one `select` pattern.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// A request for one AIP, checked.
#[derive(Debug)]
pub struct NewDissemination {
    pub archive_id: ArchiveId,
    pub priority: Priority,
    pub delivery: Delivery,
}

/// What a request asks to be delivered, checked.
#[derive(Debug, Default)]
pub struct Delivery {
    pub format: Format,
    /// Absent: the repository files as stored.
    pub select: Option<Select>,
}

/// `select`, parsed: compiled, and its patterns as the client wrote them
/// (the record keeps them so, and the worker compiles them again).
#[derive(Debug)]
pub struct Select {
    patterns: Vec<String>,
    selection: Selection,
}

impl Select {
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    pub fn selection(&self) -> &Selection {
        &self.selection
    }
}

impl Delivery {
    /// The patterns the record keeps (none: the repository files as stored).
    pub fn patterns(&self) -> Vec<String> {
        self.select
            .as_ref()
            .map(|s| s.patterns.clone())
            .unwrap_or_default()
    }
}

impl TryFrom<DisseminationIn> for NewDissemination {
    type Error = ApiError;

    /// In order: archiveId, priority, format, select.
    fn try_from(body: DisseminationIn) -> Result<Self, ApiError> {
        let archive_id = match &body.archive_id {
            Some(Value::String(s)) => ArchiveId::parse(s)?,
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
        };
        Ok(Self {
            archive_id,
            priority: parse_priority(&body.priority)?,
            delivery: parse_delivery(&body.format, &body.select)?,
        })
    }
}

impl RequestBody for NewDissemination {
    type Wire = DisseminationIn;

    fn parse(wire: DisseminationIn, _: &ApiConfig) -> Result<Self, ApiError> {
        wire.try_into()
    }
}

/// `priority`: an integer 1..100 (`19.0` is 19), 50 when absent.
pub(crate) fn parse_priority(value: &Option<Value>) -> Result<Priority, ApiError> {
    Ok(match value {
        None | Some(Value::Null) => Priority::DEFAULT,
        // JSON Schema's integer is a value, not a spelling: 19.0 and
        // 1.9e1 are 19 (2.5 is no integer).
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() <= 1e6)
                    .map(|f| f as i64)
            })
            .ok_or(IdError::Priority)
            .and_then(Priority::new)?,
        Some(_) => return Err(IdError::Priority.into()),
    })
}

/// `format` and `select`, checked.
pub(crate) fn parse_delivery(
    format: &Option<Value>,
    select: &Option<Value>,
) -> Result<Delivery, ApiError> {
    let format = match format {
        None | Some(Value::Null) => Format::Files,
        Some(Value::String(s)) if s == "files" => Format::Files,
        Some(Value::String(s)) if s == "bagit" => Format::Bagit,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidFormat,
                format!("format must be \"files\" or \"bagit\", not {other}"),
            ))
        }
    };
    let select = match select {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_select(value)?),
    };
    Ok(Delivery { format, select })
}

/// 1 to 100 patterns, each at most `MAX_PATTERN_CHARS` characters, each as
/// `Selection` takes it.
fn parse_select(value: &Value) -> Result<Select, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::InvalidSelect, m);
    let Value::Array(items) = value else {
        return Err(bad(format!(
            "select must be a list of patterns, not {value}"
        )));
    };
    if items.is_empty() {
        return Err(bad("select must list at least one pattern".into()));
    }
    let mut patterns = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(p) = item else {
            return Err(bad(format!("select patterns are strings, not {item}")));
        };
        if p.chars().count() > MAX_PATTERN_CHARS {
            return Err(bad(format!(
                "a select pattern has at most {MAX_PATTERN_CHARS} characters"
            )));
        }
        patterns.push(p.clone());
    }
    let selection = Selection::new(&patterns).map_err(|e| bad(e.to_string()))?;
    Ok(Select {
        patterns,
        selection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<NewDissemination, ErrorCode> {
        let body: DisseminationIn =
            serde_json::from_str(json).map_err(|_| ErrorCode::InvalidRequest)?;
        NewDissemination::try_from(body).map_err(|e| e.code)
    }

    fn priority(json: &str) -> Result<u8, ErrorCode> {
        parse(json).map(|r| r.priority.get())
    }

    #[test]
    fn body_rules() {
        let id = "019e404e-60ab-7457-b7c9-94c453242c69";
        assert_eq!(priority(&format!(r#"{{"archiveId":"{id}"}}"#)), Ok(50));
        assert_eq!(
            priority(&format!(r#"{{"archiveId":"{id}","priority":1}}"#)),
            Ok(1)
        );
        assert_eq!(
            priority(&format!(r#"{{"archiveId":"{id}","priority":100}}"#)),
            Ok(100)
        );
        for (integral, value) in [("19.0", 19), ("1e2", 100), ("5.0e1", 50)] {
            assert_eq!(
                priority(&format!(r#"{{"archiveId":"{id}","priority":{integral}}}"#)),
                Ok(value),
                "{integral}"
            );
        }
        for bad in [
            "0", "101", "2.5", "\"high\"", "-1", "true", "0.0", "100.5", "1e3", "-0.0",
        ] {
            assert_eq!(
                priority(&format!(r#"{{"archiveId":"{id}","priority":{bad}}}"#)).err(),
                Some(ErrorCode::InvalidPriority),
                "{bad}"
            );
        }
        for (bad, code) in [
            (r#"{"priority":1}"#.to_owned(), ErrorCode::InvalidArchiveId),
            (
                r#"{"archiveId":42}"#.to_owned(),
                ErrorCode::InvalidArchiveId,
            ),
            (
                r#"{"archiveId":"nope"}"#.to_owned(),
                ErrorCode::InvalidArchiveId,
            ),
            // The archiveId first, then the priority, then the delivery.
            (
                r#"{"archiveId":"nope","priority":0}"#.to_owned(),
                ErrorCode::InvalidArchiveId,
            ),
            (
                format!(r#"{{"archiveId":"{id}","priority":0,"format":"zip"}}"#),
                ErrorCode::InvalidPriority,
            ),
            (
                format!(r#"{{"archiveId":"{id}","extra":1}}"#),
                ErrorCode::InvalidRequest,
            ),
        ] {
            assert_eq!(parse(&bad).err(), Some(code), "{bad}");
        }
    }

    fn delivery(json: &str) -> Result<(Format, Vec<String>), ErrorCode> {
        let body: DisseminationIn =
            serde_json::from_str(json).map_err(|_| ErrorCode::InvalidRequest)?;
        parse_delivery(&body.format, &body.select)
            .map(|d| (d.format, d.patterns()))
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
        // Kept as written; compiled without the leading `./`.
        let body: DisseminationIn =
            serde_json::from_str(r#"{"select":["./METS.xml"]}"#).expect("a body");
        let select = parse_delivery(&body.format, &body.select)
            .ok()
            .and_then(|d| d.select);
        assert_eq!(
            select.as_ref().map(Select::patterns),
            Some(&["./METS.xml".to_owned()][..])
        );
        assert!(select.is_some_and(|s| s.selection().matches("METS.xml")));
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

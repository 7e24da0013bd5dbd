//! Paging of the lists (a client's disseminations, its batches, a batch's
//! items): `pageSize` 1..100, and an opaque `cursor` the API issued as the
//! previous page's `nextCursor`. A size out of range is 400
//! `INVALID_PAGE_SIZE`, a cursor the API could not have issued 400
//! `INVALID_CURSOR` (one the visibility store no longer knows is found out
//! by the store, see `temporal::list_memos`).

use crate::{
    error::{ApiError, ErrorCode},
    extract::AppQuery,
};
use axum::{extract::FromRequestParts, http::request::Parts};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Deserialize;

/// The largest page.
pub const MAX_PAGE_SIZE: u32 = 100;

/// `pageSize`: 1..=100, `default` when absent.
pub fn page_size(asked: Option<i32>, default: u32) -> Result<u32, ApiError> {
    let size = asked.map_or(Ok(default), u32::try_from);
    match size {
        Ok(size) if (1..=MAX_PAGE_SIZE).contains(&size) => Ok(size),
        _ => Err(ApiError::new(
            ErrorCode::InvalidPageSize,
            "pageSize must be 1..100",
        )),
    }
}

fn invalid_cursor() -> ApiError {
    ApiError::new(ErrorCode::InvalidCursor, "the cursor is not valid")
}

/// A cursor as a list reads it.
pub trait Cursor: Sized {
    /// The first page's when absent.
    fn parse(cursor: Option<&str>) -> Result<Self, ApiError>;
}

/// A cursor over Temporal's visibility store: its page token, base64url
/// without padding. Empty: the first page.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoreCursor(pub Vec<u8>);

impl Cursor for StoreCursor {
    fn parse(cursor: Option<&str>) -> Result<Self, ApiError> {
        match cursor {
            Some(c) => URL_SAFE_NO_PAD
                .decode(c)
                .map(Self)
                .map_err(|_| invalid_cursor()),
            None => Ok(Self::default()),
        }
    }
}

impl StoreCursor {
    /// The next page's cursor from the store's page token; none after the
    /// last page.
    pub fn next(token: Vec<u8>) -> Option<String> {
        (!token.is_empty()).then(|| URL_SAFE_NO_PAD.encode(token))
    }
}

/// A cursor into a batch's items: the index of the next one, in decimal.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OffsetCursor(pub u32);

impl Cursor for OffsetCursor {
    fn parse(cursor: Option<&str>) -> Result<Self, ApiError> {
        match cursor {
            None | Some("") => Ok(Self(0)),
            Some(c) => c.parse().map(Self).map_err(|_| invalid_cursor()),
        }
    }
}

impl OffsetCursor {
    /// The next page's cursor after `shown` items from here, of `total`.
    pub fn next(&self, shown: usize, total: u32) -> Option<String> {
        let next = self.0 + shown as u32;
        (next < total).then(|| next.to_string())
    }
}

/// Paging of a batch's items, or of the list of batches.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1..100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<i32>,
    /// `nextCursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

/// `PageParams` parsed: checked before the handler runs (and before the
/// path's id, so a request wrong in both is told about its paging).
pub struct Paging<C> {
    pub size: u32,
    pub cursor: C,
}

impl<S: Send + Sync, C: Cursor> FromRequestParts<S> for Paging<C> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let AppQuery(params) = AppQuery::<PageParams>::from_request_parts(parts, state).await?;
        Ok(Self {
            size: page_size(params.page_size, MAX_PAGE_SIZE)?,
            cursor: C::parse(params.cursor.as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cursors() {
        assert_eq!(page_size(None, 20).ok(), Some(20));
        assert_eq!(page_size(Some(100), 20).ok(), Some(100));
        for bad in [0, -1, 101, i32::MIN] {
            let code = page_size(Some(bad), 20).err().map(|e| e.code);
            assert_eq!(code, Some(ErrorCode::InvalidPageSize), "{bad}");
        }
        let token = vec![0xfb, 0xff, 1];
        let next = StoreCursor::next(token.clone());
        assert_eq!(next.as_deref(), Some("-_8B"));
        assert_eq!(
            StoreCursor::parse(next.as_deref()).ok(),
            Some(StoreCursor(token))
        );
        assert_eq!(StoreCursor::next(Vec::new()), None);
        assert_eq!(StoreCursor::parse(Some("")).ok(), Some(StoreCursor(vec![])));
        assert!(StoreCursor::parse(Some("a=")).is_err());
        assert_eq!(OffsetCursor::parse(Some("")).ok(), Some(OffsetCursor(0)));
        assert_eq!(OffsetCursor::parse(Some("40")).ok(), Some(OffsetCursor(40)));
        assert!(OffsetCursor::parse(Some("-1")).is_err());
        assert_eq!(OffsetCursor(40).next(20, 100).as_deref(), Some("60"));
        assert_eq!(OffsetCursor(80).next(20, 100), None);
    }
}

//! The staged bytes: `GET`/`HEAD` of a file's namespace path (the path the
//! API calls use, e.g. `GET /aips/x/primary.tar`), with single `Range`s.
//!
//! - `GET` serves the buffer's copy only. A file that is on tape but not on
//!   disk answers 409 Conflict ("stage it first"): its state, not the
//!   request, is what is wrong, and a retry without a STAGE will not help.
//!   Real systems differ here (a dCache door may recall on read and keep
//!   the client waiting; EOS-CTA refuses a file with no disk replica), so
//!   a client stages first and treats any failure of this `GET` as "not on
//!   disk (any more)";
//! - `HEAD` answers from the namespace, as a WebDAV door's stat does: 200
//!   and the size for any file on tape, on disk or not;
//! - an unknown file is 404; a multi-range or malformed `Range` is ignored
//!   (the whole file, 200), as RFC 9110 allows; an unsatisfiable one is 416.

use super::{problem::Problem, AppState};
use crate::{catalog::Lookup, now_ms, nspath::NsPath};
use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use std::io::SeekFrom;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const CHUNK: usize = 256 << 10;

pub async fn serve(
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut res = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            Some("files are read with GET or HEAD".into()),
        )
        .into_response();
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    if app.api.is_reserved(uri.path()) {
        return Problem::not_found("no such resource").into_response();
    }
    let Some(path) = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8()
        .ok()
        .and_then(|p| NsPath::parse(&p).ok())
    else {
        return Problem::not_found("no such file").into_response();
    };
    let head = method == Method::HEAD;
    match serve_copy(&app, &path, head, &headers).await {
        Ok(Some(res)) => return res,
        Ok(None) => {}
        Err(p) => return p.into_response(),
    }
    let shared = app.shared.clone();
    let lookup_path = path.clone();
    let lookup = tokio::task::spawn_blocking(move || shared.catalog.lookup(&lookup_path)).await;
    match lookup {
        Ok(Lookup::File(f)) if head => {
            OctetHead::new(StatusCode::OK, f.size, None).body(Body::empty())
        }
        Ok(Lookup::File(_)) => Problem::new(
            StatusCode::CONFLICT,
            "File not on disk",
            Some(format!(
                "{path} is on tape only: stage it first (POST {}/stage)",
                app.api.base
            )),
        )
        .into_response(),
        Ok(_) => Problem::not_found("no such file").into_response(),
        Err(e) => Problem::internal("looking a file up", e).into_response(),
    }
}

/// The buffer's copy, if there is one (`None`: not on disk).
async fn serve_copy(
    app: &AppState,
    path: &NsPath,
    head: bool,
    headers: &HeaderMap,
) -> Result<Option<Response>, Problem> {
    if !app.shared.lock().use_copy(path, now_ms()) {
        return Ok(None);
    }
    let file_path = path.under(&app.shared.buffer_dir);
    // Evicted since we looked: the same as never there.
    let Ok(mut file) = tokio::fs::File::open(&file_path).await else {
        return Ok(None);
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| Problem::internal("reading a staged copy", e))?
        .len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(ByteRange::Full, |r| ByteRange::parse(r, len));
    let (status, start, count, content_range) = match range {
        ByteRange::Full => (StatusCode::OK, 0, len, None),
        ByteRange::Part(a, b) => (
            StatusCode::PARTIAL_CONTENT,
            a,
            b - a + 1,
            Some(format!("bytes {a}-{b}/{len}")),
        ),
        ByteRange::Unsatisfiable => {
            let mut res = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "Range not satisfiable",
                Some(format!("the file has {len} bytes")),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(Some(res));
        }
    };
    let builder = OctetHead::new(status, count, content_range);
    if head {
        return Ok(Some(builder.body(Body::empty())));
    }
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(|e| Problem::internal("reading a staged copy", e))?;
    Ok(Some(builder.body(stream(file.take(count)))))
}

/// The head of a response carrying `count` bytes of a file.
struct OctetHead {
    status: StatusCode,
    count: u64,
    content_range: Option<String>,
}

impl OctetHead {
    fn new(status: StatusCode, count: u64, content_range: Option<String>) -> Self {
        Self {
            status,
            count,
            content_range,
        }
    }

    fn body(self, body: Body) -> Response {
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(self.count));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Some(v) = self
            .content_range
            .and_then(|r| HeaderValue::from_str(&r).ok())
        {
            h.insert(header::CONTENT_RANGE, v);
        }
        res
    }
}

/// The reader's bytes as a body, ending at the first error.
fn stream<R: tokio::io::AsyncRead + Unpin + Send + 'static>(reader: R) -> Body {
    let chunks = futures::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let mut buf = vec![0u8; CHUNK];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Body::from_stream(chunks)
}

/// A `Range: bytes=…` header against a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum ByteRange {
    Full,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

impl ByteRange {
    pub fn parse(header: &str, len: u64) -> Self {
        let Some(spec) = header.trim().strip_prefix("bytes=") else {
            return Self::Full;
        };
        if spec.contains(',') {
            return Self::Full;
        }
        let Some((a, b)) = spec.trim().split_once('-') else {
            return Self::Full;
        };
        let (a, b) = (a.trim(), b.trim());
        match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(first), Ok(last)) if first <= last => {
                if first >= len {
                    Self::Unsatisfiable
                } else {
                    Self::Part(first, last.min(len - 1))
                }
            }
            (Ok(first), Err(_)) if b.is_empty() => {
                if first >= len {
                    Self::Unsatisfiable
                } else {
                    Self::Part(first, len - 1)
                }
            }
            (Err(_), Ok(suffix)) if a.is_empty() => {
                if suffix == 0 || len == 0 {
                    Self::Unsatisfiable
                } else {
                    Self::Part(len.saturating_sub(suffix), len - 1)
                }
            }
            _ => Self::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange::{self, *};

    #[test]
    fn ranges_as_rfc_9110_has_them() {
        assert_eq!(ByteRange::parse("bytes=0-9", 100), Part(0, 9));
        assert_eq!(ByteRange::parse("bytes=90-200", 100), Part(90, 99));
        assert_eq!(ByteRange::parse("bytes=95-", 100), Part(95, 99));
        assert_eq!(ByteRange::parse("bytes=-10", 100), Part(90, 99));
        assert_eq!(ByteRange::parse("bytes=-500", 100), Part(0, 99));
        assert_eq!(ByteRange::parse("bytes=100-", 100), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=-0", 100), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=0-1,5-6", 100), Full);
        assert_eq!(ByteRange::parse("bytes=9-1", 100), Full);
        assert_eq!(ByteRange::parse("items=0-1", 100), Full);
    }
}

//! Paths as the tape system sees them: a catalog `filePath` under the
//! location's `path_prefix` (never escaping it), paths compared with their
//! slashes collapsed, and a request id as one URL path segment.

/// A path for comparing: duplicate and trailing slashes collapsed.
pub(super) fn path_key(p: &str) -> String {
    let joined = p
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    if p.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

pub(super) fn namespace_path(prefix: &str, file_path: &str) -> Result<String, &'static str> {
    if file_path.is_empty() {
        return Err("an empty path");
    }
    if file_path.starts_with('/') {
        return Err("absolute: a path is relative to the location's path_prefix");
    }
    if file_path.contains('\0') {
        return Err("a NUL in the path");
    }
    if file_path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("empty, '.' and '..' segments are refused");
    }
    Ok(path_key(&format!("/{prefix}/{file_path}")))
}

/// A request id as one URL path segment.
pub(super) fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

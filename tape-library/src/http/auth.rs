//! Bearer tokens, when `--token-file` is given: every route but the
//! discovery document wants `Authorization: Bearer <token>` with one of the
//! file's tokens (one a line; blank lines and `#` comments skipped), else
//! 401. The file is checked on each request and read again when its size or
//! modification time changed, so tokens can be rotated without a restart.
//! Without `--token-file` nothing is checked.
//!
//! Discovery stays open, as on dCache and EOS-CTA: a client finds the
//! endpoint before it knows which credentials it takes. gfal2 sends its
//! token (`BEARER_TOKEN`) there too; it is ignored.

use super::{problem::Problem, AppState};
use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{path::PathBuf, sync::Mutex, time::SystemTime};

/// The accepted tokens, from a file re-read when it changes.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    cached: Mutex<Option<Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    stamp: (u64, Option<SystemTime>),
    tokens: Vec<String>,
}

impl TokenFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            cached: Mutex::new(None),
        }
    }

    /// Whether `token` is one of the file's tokens (an unreadable file
    /// accepts none).
    pub fn accepts(&self, token: &str) -> bool {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            tracing::warn!(path = %self.path.display(), "token file unreadable: refusing all tokens");
            return false;
        };
        let stamp = (meta.len(), meta.modified().ok());
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if cached.as_ref().is_none_or(|c| c.stamp != stamp) {
            let Ok(text) = std::fs::read_to_string(&self.path) else {
                return false;
            };
            *cached = Some(Cached {
                stamp,
                tokens: parse_tokens(&text),
            });
        }
        cached
            .as_ref()
            .is_some_and(|c| c.tokens.iter().any(|t| same(t, token)))
    }
}

fn parse_tokens(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Compares without returning early on the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The middleware in front of the protected routes.
pub async fn require_token(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(tokens) = &app.tokens else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        None => Problem::unauthorized("a bearer token is required").into_response(),
        Some(t) if tokens.accepts(t) => next.run(req).await,
        Some(_) => Problem::unauthorized("the bearer token is not accepted").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lines_without_blanks_or_comments() {
        assert_eq!(parse_tokens("a\n\n# c\n  b  \n"), vec!["a", "b"]);
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn the_file_is_read_again_when_it_changes() {
        let path = std::env::temp_dir().join(format!("tape-library-tokens-{}", std::process::id()));
        std::fs::write(&path, "one\n").expect("write");
        let file = TokenFile::new(path.clone());
        assert!(file.accepts("one"));
        assert!(!file.accepts("two"));
        std::fs::write(&path, "one\ntwo-longer\n").expect("write");
        assert!(file.accepts("two-longer"));
        std::fs::remove_file(&path).expect("remove");
        assert!(!file.accepts("one"), "a vanished file accepts nothing");
    }
}

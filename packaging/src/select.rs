//! Which TAR members a request takes: `select` patterns are member paths
//! or globs, `*` within one path segment, `**` across segments.

/// Why a pattern is refused (the API answers 400 with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

/// At most this many patterns in one request.
pub const MAX_PATTERNS: usize = 100;

/// At most this many bytes in one pattern.
const MAX_PATTERN_LEN: usize = 4096;

/// The patterns of one request, checked.
#[derive(Debug, Clone)]
pub struct Selection {
    patterns: Vec<String>,
    compiled: Vec<Vec<Segment>>,
}

/// One `/`-separated segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more path segments.
    AnySegments,
    /// Characters, `*` and `?` within one path segment.
    Glob(Vec<Token>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: one character.
    One,
    /// `*`: any run of characters.
    Any,
}

impl Selection {
    /// Checks every pattern: non-empty, relative (no leading `/`), no `..`
    /// segment, no NUL or control characters, at most [`MAX_PATTERNS`].
    ///
    /// Also refused: empty segments (`a//b`, a trailing `/`) and patterns
    /// longer than 4096 bytes. A leading `./` is removed. An empty list is
    /// valid and matches nothing.
    pub fn new(patterns: &[String]) -> Result<Self, PatternError> {
        if patterns.len() > MAX_PATTERNS {
            return Err(PatternError(format!(
                "too many patterns: {} (at most {MAX_PATTERNS})",
                patterns.len()
            )));
        }
        let mut checked = Vec::with_capacity(patterns.len());
        let mut compiled = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let p = check(pattern)?;
            compiled.push(compile(p));
            checked.push(p.to_string());
        }
        Ok(Self {
            patterns: checked,
            compiled,
        })
    }

    /// Whether the member at `path` is taken.
    pub fn matches(&self, path: &str) -> bool {
        if self.compiled.is_empty() {
            return false;
        }
        let segments: Vec<&str> = path.split('/').collect();
        self.patterns
            .iter()
            .zip(&self.compiled)
            .any(|(literal, pattern)| literal == path || matches_segments(pattern, &segments))
    }
}

/// Checks one pattern; returns it without its leading `./`.
fn check(pattern: &str) -> Result<&str, PatternError> {
    let refuse = |why: &str| Err(PatternError(format!("pattern {pattern:?} refused: {why}")));
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(PatternError(format!(
            "pattern of {} bytes refused: at most {MAX_PATTERN_LEN} bytes",
            pattern.len()
        )));
    }
    if pattern.chars().any(char::is_control) {
        return refuse("it contains a NUL or control character");
    }
    let mut p = pattern;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    if p.is_empty() {
        return refuse("it is empty");
    }
    if p.starts_with('/') {
        return refuse("it is absolute (starts with '/')");
    }
    for segment in p.split('/') {
        if segment.is_empty() {
            return refuse("it has an empty segment");
        }
        if segment == ".." {
            return refuse("it has a '..' segment");
        }
    }
    Ok(p)
}

fn compile(pattern: &str) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    for segment in pattern.split('/') {
        if segment == "**" {
            // `**/**` is the same as `**`.
            if segments.last() != Some(&Segment::AnySegments) {
                segments.push(Segment::AnySegments);
            }
            continue;
        }
        let mut tokens: Vec<Token> = Vec::with_capacity(segment.len());
        for c in segment.chars() {
            let token = match c {
                '*' => Token::Any,
                '?' => Token::One,
                c => Token::Char(c),
            };
            // `**` inside a segment is the same as `*`.
            if !(token == Token::Any && tokens.last() == Some(&Token::Any)) {
                tokens.push(token);
            }
        }
        segments.push(Segment::Glob(tokens));
    }
    segments
}

/// Whether the pattern's segments match the path's, `**` taking zero or
/// more path segments: a dynamic programme over (pattern, path) prefixes.
fn matches_segments(pattern: &[Segment], path: &[&str]) -> bool {
    // reach[j]: the pattern so far matches the first j path segments.
    let mut reach = vec![false; path.len() + 1];
    reach[0] = true;
    for segment in pattern {
        match segment {
            Segment::AnySegments => {
                let mut any = false;
                for r in &mut reach {
                    any |= *r;
                    *r = any;
                }
            }
            Segment::Glob(tokens) => {
                for j in (0..path.len()).rev() {
                    reach[j + 1] = reach[j] && matches_glob(tokens, path[j]);
                }
                reach[0] = false;
            }
        }
        if !reach.contains(&true) {
            return false;
        }
    }
    reach[path.len()]
}

/// Whether one path segment matches `*`/`?` tokens: greedy with a return
/// to the last `*`, at most O(pattern × text).
fn matches_glob(tokens: &[Token], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < text.len() {
        match tokens.get(t) {
            Some(Token::Any) => {
                star = Some((t, s));
                t += 1;
            }
            Some(Token::One) => {
                t += 1;
                s += 1;
            }
            Some(Token::Char(c)) if *c == text[s] => {
                t += 1;
                s += 1;
            }
            _ => match star {
                Some((st, ss)) => {
                    t = st + 1;
                    s = ss + 1;
                    star = Some((st, ss + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|&token| token == Token::Any)
}

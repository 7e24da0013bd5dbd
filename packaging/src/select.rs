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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn selection(patterns: &[&str]) -> Selection {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        Selection::new(&patterns).unwrap()
    }

    fn refused(pattern: &str) -> String {
        Selection::new(&[pattern.to_string()]).unwrap_err().0
    }

    #[test]
    fn an_empty_selection_matches_nothing() {
        let s = selection(&[]);
        assert!(!s.matches("a"));
        assert!(!s.matches(""));
    }

    #[test]
    fn exact_paths() {
        let s = selection(&["data/METS.xml", "./content/a b.jp2", "ünï/名前"]);
        assert!(s.matches("data/METS.xml"));
        assert!(s.matches("content/a b.jp2"));
        assert!(s.matches("ünï/名前"));
        assert!(!s.matches("data/METS.xm"));
        assert!(!s.matches("data/METS.xml/x"));
        assert!(!s.matches("x/data/METS.xml"));
        assert!(!s.matches("data"));
        assert!(!s.matches("data/mets.xml"), "case-sensitive");
        assert!(!s.matches("DATA/METS.xml"), "case-sensitive");
    }

    #[test]
    fn star_stays_within_a_segment() {
        let s = selection(&["*.jp2"]);
        assert!(s.matches("a.jp2"));
        assert!(s.matches(".jp2"), "* matches the empty run");
        assert!(!s.matches("content/a.jp2"));
        assert!(!s.matches("a.jp2x"));
        let s = selection(&["content/*.jp2"]);
        assert!(s.matches("content/0001.jp2"));
        assert!(!s.matches("content/sub/0001.jp2"));
        assert!(!s.matches("0001.jp2"));
        assert!(!s.matches("other/0001.jp2"));
        let s = selection(&["*"]);
        assert!(s.matches("anything"));
        assert!(!s.matches("a/b"));
        let s = selection(&["a*b*c"]);
        assert!(s.matches("abc"));
        assert!(s.matches("aXXbYYc"));
        assert!(s.matches("abcbc"));
        assert!(!s.matches("acb"));
        assert!(!s.matches("a/b/c"));
    }

    #[test]
    fn question_mark_is_one_character() {
        let s = selection(&["page?.jp2"]);
        assert!(s.matches("page1.jp2"));
        assert!(s.matches("pageü.jp2"), "one character, not one byte");
        assert!(!s.matches("page.jp2"));
        assert!(!s.matches("page12.jp2"));
        assert!(!selection(&["a?b"]).matches("a/b"));
    }

    #[test]
    fn double_star_spans_segments() {
        let s = selection(&["**/*.xml"]);
        assert!(s.matches("METS.xml"));
        assert!(s.matches("a/b/METS.xml"));
        assert!(!s.matches("a/b/METS.xml.bak"));
        let s = selection(&["content/**"]);
        assert!(s.matches("content/a"));
        assert!(s.matches("content/a/b/c.jp2"));
        assert!(s.matches("content"), "** matches zero segments");
        assert!(!s.matches("contents/a"));
        assert!(!s.matches("x/content/a"));
        let s = selection(&["a/**/b"]);
        assert!(s.matches("a/b"));
        assert!(s.matches("a/x/b"));
        assert!(s.matches("a/x/y/b"));
        assert!(!s.matches("a/x/y/b/c"));
        assert!(!s.matches("a/xb"));
        assert!(!s.matches("b"));
        assert!(selection(&["**"]).matches("any/thing/at/all"));
        let s = selection(&["**/x/**/y"]);
        assert!(s.matches("x/y"));
        assert!(s.matches("1/x/2/3/y"));
        assert!(!s.matches("1/x/2/3/y/4"));
        // `**` not alone in its segment is two `*`.
        let s = selection(&["a**b"]);
        assert!(s.matches("aXb"));
        assert!(!s.matches("a/b"));
    }

    #[test]
    fn brackets_and_other_characters_are_literal() {
        let s = selection(&["[ab].txt", "a+b(c)^$.txt", "x\\y"]);
        assert!(s.matches("[ab].txt"));
        assert!(!s.matches("a.txt"));
        assert!(s.matches("a+b(c)^$.txt"));
        assert!(s.matches("x\\y"));
        assert!(!s.matches("xy"));
    }

    #[test]
    fn any_pattern_of_several_matches() {
        let s = selection(&["METS.xml", "content/*.jp2"]);
        assert!(s.matches("METS.xml"));
        assert!(s.matches("content/1.jp2"));
        assert!(!s.matches("content/1.tif"));
    }

    #[test]
    fn refusals_name_the_pattern() {
        for (pattern, why) in [
            ("", "empty"),
            ("./", "empty"),
            ("/etc/passwd", "absolute"),
            ("..", ".."),
            ("a/../b", ".."),
            ("./../b", ".."),
            ("a/..", ".."),
            ("a\0b", "control"),
            ("a\nb", "control"),
            ("a\tb", "control"),
            ("a\u{7f}b", "control"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
        ] {
            let e = refused(pattern);
            assert!(e.contains(why), "{pattern:?}: {e}");
            assert!(e.contains(&format!("{pattern:?}")), "{pattern:?}: {e}");
        }
        let long = "a".repeat(4097);
        assert!(refused(&long).contains("4096"));
        assert!(Selection::new(&["a".repeat(4096)]).is_ok());
        // Not refused: ".." inside a segment, "." segments.
        assert!(selection(&["a..b/..c"]).matches("a..b/..c"));
    }

    #[test]
    fn at_most_max_patterns() {
        let ok: Vec<String> = (0..MAX_PATTERNS).map(|i| format!("f{i}")).collect();
        let s = Selection::new(&ok).unwrap();
        assert!(s.matches("f99"));
        let too_many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("f{i}")).collect();
        let e = Selection::new(&too_many).unwrap_err().0;
        assert!(e.contains("101") && e.contains("100"), "{e}");
        // One bad pattern among good ones is named.
        let mut mixed = ok[..3].to_vec();
        mixed.push("/abs".into());
        assert!(Selection::new(&mixed).unwrap_err().0.contains("\"/abs\""));
    }

    #[test]
    fn pathological_patterns_finish_fast() {
        let start = std::time::Instant::now();
        let deep = "**/".repeat(50) + "a";
        let path = vec!["x"; 2000].join("/") + "/b";
        let patterns = vec![
            deep.clone(),
            "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b".to_string(),
            "**/*a*a*a*a*a*a*a*a*/**/*a*a*a*a*a*a*a*b/**/c".to_string(),
        ];
        let s = Selection::new(&patterns).unwrap();
        assert!(!s.matches(&path));
        assert!(!s.matches(&"a".repeat(4000)));
        let long = vec!["a".repeat(100); 200].join("/");
        assert!(!s.matches(&long));
        assert!(s.matches(&(long.clone() + "/a")));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}

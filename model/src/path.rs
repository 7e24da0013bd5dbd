//! A delivered file's path: the repository file's `relativePath` (or a
//! selected member's path below it) in one normal form, so that two names
//! of one file are one name and no name leaves the dissemination's prefix.
//! Object keys, bag paths, the webhook and the receipt all use it.

use std::collections::BTreeMap;

/// Why a path has no normal form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path has a control character")]
    ControlCharacter,
    #[error("the path's \"..\" segments climb above its root")]
    Escapes,
}

/// The normal form of a relative path: `/` separators (a backslash is one
/// too), no leading `/`, no empty or `.` segment, `..` resolved within the
/// path. A path that climbs above its root, has a control character or
/// is empty has none.
pub fn normalise(raw: &str) -> Result<String, PathError> {
    if raw.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathError::Escapes)?;
            }
            s => segments.push(s),
        }
    }
    if segments.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(segments.join("/"))
}

/// Two delivered names that cannot both exist: the same path, or a path
/// that is a folder of another (`a` and `a/b`: no bag, bucket listing or
/// file system holds both). Each as (its source, its normal form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathClash {
    pub first: (String, String),
    pub second: (String, String),
}

impl std::fmt::Display for PathClash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ((a, pa), (b, pb)) = (&self.first, &self.second);
        if pa == pb {
            write!(f, "{a:?} and {b:?} would both be delivered as {pa:?}")
        } else {
            write!(
                f,
                "{a:?} and {b:?} would be delivered as {pa:?} and {pb:?}: one a folder of the other"
            )
        }
    }
}

/// Collects delivered paths and finds the first that clashes with one
/// already taken.
#[derive(Debug, Default, Clone)]
pub struct PathSet {
    /// Normal form → its source name.
    taken: BTreeMap<String, String>,
}

impl PathSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `path` (already normal) for `source`, or names the clash.
    pub fn take(&mut self, source: &str, path: &str) -> Result<(), Box<PathClash>> {
        let clash = |(other_path, other_source): (&String, &String)| {
            Box::new(PathClash {
                first: (other_source.clone(), other_path.clone()),
                second: (source.to_owned(), path.to_owned()),
            })
        };
        if let Some(found) = self.taken.get_key_value(path) {
            return Err(clash(found));
        }
        // A folder of `path` already taken as a file.
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            if let Some(found) = self.taken.get_key_value(&path[..end]) {
                return Err(clash(found));
            }
            end += 1;
        }
        // `path` is a folder of one already taken: the next key in order
        // starting with `path/`.
        let folder = format!("{path}/");
        if let Some(found) = self.taken.range(folder.clone()..).next() {
            if found.0.starts_with(&folder) {
                return Err(clash(found));
            }
        }
        self.taken.insert(path.to_owned(), source.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        for (raw, normal) in [
            ("primary.tar", "primary.tar"),
            ("v1/primary.tar", "v1/primary.tar"),
            ("/v1/primary.tar", "v1/primary.tar"),
            ("v1//./primary.tar", "v1/primary.tar"),
            ("v1\\primary.tar", "v1/primary.tar"),
            ("a/../b", "b"),
            ("a/b/../../c/", "c"),
            ("./x", "x"),
            ("ünïcode/ß.tar", "ünïcode/ß.tar"),
        ] {
            assert_eq!(normalise(raw).as_deref(), Ok(normal), "{raw:?}");
        }
        for (raw, why) in [
            ("", PathError::Empty),
            ("/", PathError::Empty),
            ("./.", PathError::Empty),
            ("a/..", PathError::Empty),
            ("../x", PathError::Escapes),
            ("a/../../b", PathError::Escapes),
            ("..\\x", PathError::Escapes),
            ("a\tb", PathError::ControlCharacter),
            ("a\u{0}b", PathError::ControlCharacter),
            ("a\u{85}b", PathError::ControlCharacter),
        ] {
            assert_eq!(normalise(raw), Err(why), "{raw:?}");
        }
    }

    #[test]
    fn clashes_are_found_whatever_the_order() {
        let mut set = PathSet::new();
        assert!(set.take("v1/primary.tar", "v1/primary.tar").is_ok());
        assert!(set.take("v2/primary.tar", "v2/primary.tar").is_ok());
        assert!(set.take("v1", "v").is_ok());
        let same = set.take("./v1/primary.tar", "v1/primary.tar");
        assert_eq!(
            same.map_err(|c| c.first.0),
            Err("v1/primary.tar".to_owned())
        );
        // A folder of a file already taken, and a file whose folder is one.
        assert!(set.take("v1/primary.tar/x", "v1/primary.tar/x").is_err());
        assert!(set.take("v2", "v2").is_err());
        let mut other = PathSet::new();
        assert!(other.take("a/b/c", "a/b/c").is_ok());
        assert!(other.take("a/b", "a/b").is_err());
        assert!(other.take("a/bc", "a/bc").is_ok());
        assert!(other.take("a/b.c", "a/b.c").is_ok());
        let clash = other.take("./a", "a").err().map(|c| c.to_string());
        assert_eq!(
            clash.as_deref(),
            Some(
                "\"a/b.c\" and \"./a\" would be delivered as \"a/b.c\" and \"a\": \
                 one a folder of the other"
            )
        );
    }
}

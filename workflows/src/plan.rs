//! The copies and names of a dissemination, fixed when it starts (from its
//! input, so a replay never depends on configuration changed later).
//!
//! - Names: each repository file is delivered under its relative path in
//!   normal form (`model::path`), folders kept. An entry with no usable
//!   path, location or digest is refused by name (`INVALID_CATALOG_ENTRY`);
//!   two files that would get one name, or one a folder of the other, are
//!   refused (`DUPLICATE_PATH`) before any byte moves.
//! - Copies: tried by the configured preference of their location (lower
//!   first; a location nobody configured after every configured one), the
//!   catalog's order breaking ties; a copy the repository's own audit found
//!   bad (`fixityStatus` other than `valid`) after every other copy.

use crate::contract::{LocationPolicy, Reason, ReasonCode};
use crate::outcome::Ending;
use model::{
    catalog::{FileLocation, RepositoryFile},
    path::{normalise, PathSet},
    DisseminationStatus,
};
use std::collections::BTreeMap;

/// The files as they will be delivered: normal paths, copies in the order
/// they are tried; or why the dissemination is refused.
pub(crate) fn plan(
    files: &[RepositoryFile],
    locations: &BTreeMap<String, LocationPolicy>,
) -> Result<Vec<RepositoryFile>, Ending> {
    let mut reasons = Vec::new();
    let mut planned = Vec::with_capacity(files.len());
    let mut names = PathSet::new();
    for file in files {
        let raw = &file.relative_path;
        let invalid = |why: String| Reason {
            code: ReasonCode::InvalidCatalogEntry,
            message: format!("repository file {raw:?}: {why}"),
            file_path: Some(raw.clone()),
        };
        let path = match normalise(raw) {
            Ok(p) => p,
            Err(e) => {
                reasons.push(invalid(format!("its relativePath has no normal form: {e}")));
                continue;
            }
        };
        if file.locations.is_empty() {
            reasons.push(invalid("the catalog lists no location for it".into()));
            continue;
        }
        if let Some(l) = file.locations.iter().find(|l| l.file_path.is_empty()) {
            reasons.push(invalid(format!(
                "its copy at location {:?} has no filePath",
                l.location_id
            )));
            continue;
        }
        if file.strongest_fixity().is_none() {
            reasons.push(invalid("the catalog stores no digest for it".into()));
            continue;
        }
        if let Err(clash) = names.take(raw, &path) {
            reasons.push(Reason {
                code: ReasonCode::DuplicatePath,
                message: clash.to_string(),
                file_path: Some(raw.clone()),
            });
            continue;
        }
        planned.push(RepositoryFile {
            relative_path: path,
            locations: ordered(&file.locations, locations),
            ..file.clone()
        });
    }
    if reasons.is_empty() {
        Ok(planned)
    } else {
        Err(Ending {
            status: DisseminationStatus::Rejected,
            reasons,
            discard: false,
        })
    }
}

/// The copies in the order they are tried.
fn ordered(
    copies: &[FileLocation],
    locations: &BTreeMap<String, LocationPolicy>,
) -> Vec<FileLocation> {
    let mut order: Vec<(usize, &FileLocation)> = copies.iter().enumerate().collect();
    order.sort_by_key(|(i, l)| (l.known_bad(), preference(l, locations), *i));
    order.into_iter().map(|(_, l)| l.clone()).collect()
}

fn preference(l: &FileLocation, locations: &BTreeMap<String, LocationPolicy>) -> u32 {
    locations
        .get(&l.location_id)
        .map_or(u32::MAX, |p| p.preference)
}

/// Why the copies after the one that served a file were not read, for the
/// audit trail ("s3: lower preference (20)").
pub(crate) fn untried(
    copies: &[FileLocation],
    locations: &BTreeMap<String, LocationPolicy>,
) -> Vec<String> {
    copies
        .iter()
        .map(|l| {
            let why = match locations.get(&l.location_id) {
                _ if l.known_bad() => format!(
                    "the repository's audit found it {}",
                    l.fixity_status.as_deref().unwrap_or_default()
                ),
                Some(p) => format!("lower preference ({})", p.preference),
                None => "no reader (location not configured)".into(),
            };
            format!("{}: {why}", l.location_id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::catalog::{DigestAlgorithm, Fixity, LocationKind};

    fn copy(id: &str, status: Option<&str>) -> FileLocation {
        FileLocation {
            location_id: id.into(),
            file_path: format!("{id}/x"),
            fixity_status: status.map(Into::into),
        }
    }

    fn file(path: &str, copies: Vec<FileLocation>) -> RepositoryFile {
        RepositoryFile {
            relative_path: path.into(),
            size: 1,
            fixities: vec![Fixity {
                algorithm: DigestAlgorithm::Sha256,
                digest: "ab".into(),
                originator: "dps".into(),
            }],
            locations: copies,
        }
    }

    fn configured() -> BTreeMap<String, LocationPolicy> {
        [
            ("disk", LocationKind::Disk, 10),
            ("s3", LocationKind::S3, 20),
            ("hpss", LocationKind::Tape, 90),
        ]
        .into_iter()
        .map(|(id, kind, preference)| (id.to_owned(), LocationPolicy { kind, preference }))
        .collect()
    }

    fn order(copies: Vec<FileLocation>) -> Vec<String> {
        let planned = plan(&[file("a.tar", copies)], &configured())
            .ok()
            .unwrap_or_default();
        planned[0]
            .locations
            .iter()
            .map(|l| l.location_id.clone())
            .collect()
    }

    #[test]
    fn copies_by_preference_then_catalog_order_bad_ones_last() {
        let valid = Some("valid");
        assert_eq!(
            order(vec![
                copy("hpss", None),
                copy("s3", valid),
                copy("disk", valid)
            ]),
            ["disk", "s3", "hpss"]
        );
        assert_eq!(
            order(vec![copy("nearline", None), copy("s3", None)]),
            ["s3", "nearline"]
        );
        assert_eq!(
            order(vec![copy("disk", Some("invalid")), copy("s3", valid)]),
            ["s3", "disk"]
        );
        // Ties keep the catalog's order, bad ones after unconfigured ones.
        assert_eq!(
            order(vec![
                copy("disk", Some("MISMATCH")),
                copy("x", None),
                copy("disk", None),
                copy("y", None),
                copy("disk", Some("VALID")),
            ]),
            ["disk", "disk", "x", "y", "disk"]
        );
    }

    fn refused(files: &[RepositoryFile]) -> Vec<(ReasonCode, Option<String>)> {
        match plan(files, &configured()) {
            Ok(_) => Vec::new(),
            Err(end) => {
                assert_eq!(end.status, DisseminationStatus::Rejected);
                end.reasons
                    .into_iter()
                    .map(|r| (r.code, r.file_path))
                    .collect()
            }
        }
    }

    #[test]
    fn paths_are_kept_normal_and_never_shared() {
        let planned = plan(
            &[
                file("v1/primary.tar", vec![copy("disk", None)]),
                file("/v2//primary.tar", vec![copy("disk", None)]),
            ],
            &configured(),
        )
        .ok()
        .unwrap_or_default();
        let paths: Vec<&str> = planned.iter().map(|f| f.relative_path.as_str()).collect();
        assert_eq!(paths, ["v1/primary.tar", "v2/primary.tar"]);

        let dup = |a: &str, b: &str| {
            refused(&[
                file(a, vec![copy("disk", None)]),
                file(b, vec![copy("disk", None)]),
            ])
        };
        let code = ReasonCode::DuplicatePath;
        assert_eq!(dup("a.tar", "a.tar"), [(code, Some("a.tar".into()))]);
        assert_eq!(dup("a.tar", "./a.tar"), [(code, Some("./a.tar".into()))]);
        assert_eq!(dup("a", "a/b.tar"), [(code, Some("a/b.tar".into()))]);
        assert!(dup("a.tar", "b/a.tar").is_empty());
    }

    #[test]
    fn faulty_entries_are_refused_by_name() {
        let code = ReasonCode::InvalidCatalogEntry;
        let mut no_path = copy("disk", None);
        no_path.file_path.clear();
        let mut no_digest = file("d.tar", vec![copy("disk", None)]);
        no_digest.fixities.clear();
        let reasons = refused(&[
            file("../x", vec![copy("disk", None)]),
            file("a/../../b", vec![copy("disk", None)]),
            file("ok.tar", vec![copy("disk", None)]),
            file("none.tar", vec![]),
            file("c.tar", vec![copy("s3", None), no_path]),
            no_digest,
        ]);
        let named: Vec<Option<String>> = reasons.iter().map(|r| r.1.clone()).collect();
        assert!(reasons.iter().all(|r| r.0 == code));
        assert_eq!(
            named,
            ["../x", "a/../../b", "none.tar", "c.tar", "d.tar"].map(|p| Some(p.to_owned()))
        );
    }

    #[test]
    fn untried_copies_say_why() {
        let why = untried(
            &[
                copy("s3", None),
                copy("tape9", None),
                copy("disk", Some("bad")),
            ],
            &configured(),
        );
        assert_eq!(
            why,
            [
                "s3: lower preference (20)",
                "tape9: no reader (location not configured)",
                "disk: the repository's audit found it bad"
            ]
        );
    }
}

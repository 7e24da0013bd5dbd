//! Where the `package` step writes: one bag (members appended with their
//! TAR headers, each payload file's SHA-256 kept for the manifest), or one
//! object per selected member (completed once its TAR is verified).

use super::{Beat, FileResult, Targets, MAX_SELECTED_FILES};
use crate::{failure::Failure, package::writer::ObjectWriter};
use model::path::PathSet;
use packaging::tar;
use sha2::{Digest, Sha256};
use workflows::ReasonCode;

/// Where the step writes: one bag, or one object per selected member.
pub(crate) enum Output {
    Bag(BagOut),
    Files {
        /// Members of the file being read, complete once it is verified.
        pending: Vec<ObjectWriter>,
        current: Option<ObjectWriter>,
        selected: u32,
        /// Every name delivered so far: none may be delivered twice.
        names: PathSet,
    },
}

pub(crate) struct BagOut {
    pub(crate) writer: ObjectWriter,
    pub(crate) root: String,
    /// (SHA-256, path in the bag, bytes) of every payload file.
    pub(crate) payload: Vec<(String, String, u64)>,
    /// The member being written: its bag path, size and running SHA-256
    /// (none when the member is a whole repository file: its digest is the file's).
    pub(crate) current: Option<(String, u64, Option<Sha256>)>,
    /// Every payload path so far: none may be in the bag twice.
    pub(crate) names: PathSet,
}

/// What opening a member needs to know.
pub(crate) struct MemberTarget<'t> {
    pub(crate) record: &'t workflows::DisseminationRecord,
    pub(crate) targets: &'t Targets,
    pub(crate) fixity_tag: String,
    pub(crate) mtime: u64,
}

impl Output {
    pub(crate) fn is_open(&self) -> bool {
        match self {
            Output::Bag(b) => b.current.is_some(),
            Output::Files { current, .. } => current.is_some(),
        }
    }

    /// Starts member `path` (below the payload / the bucket prefix; `source`
    /// names it in the catalog's or the TAR's words) of `size` bytes;
    /// `hashed`: its SHA-256 is computed here. A path delivered before is
    /// refused: nothing is ever overwritten.
    pub(crate) async fn open(
        &mut self,
        t: &MemberTarget<'_>,
        (source, path, size, hashed): (&str, String, u64, bool),
        beat: &mut Beat<'_>,
    ) -> Result<Option<FileResult>, Failure> {
        let names = match self {
            Output::Bag(b) => &mut b.names,
            Output::Files { names, .. } => names,
        };
        if let Err(clash) = names.take(source, &path) {
            return Ok(Some(FileResult::Rejected {
                code: ReasonCode::DuplicatePath,
                message: clash.to_string(),
            }));
        }
        match self {
            Output::Bag(b) => {
                let bag_path = format!("data/{path}");
                let header = tar::header(&format!("{}/{bag_path}", b.root), size, t.mtime);
                b.writer.write(&header, beat).await?;
                b.current = Some((bag_path, size, hashed.then(Sha256::new)));
            }
            Output::Files {
                current, selected, ..
            } => {
                // (The name check above holds every name, counted or not.)
                *selected += 1;
                if *selected > MAX_SELECTED_FILES {
                    return Ok(Some(FileResult::Rejected {
                        code: ReasonCode::TooManyFiles,
                        message: format!(
                            "select matched more than {MAX_SELECTED_FILES} members; \
                             ask for format \"bagit\""
                        ),
                    }));
                }
                *current = Some(ObjectWriter::new(t.targets.target(
                    t.record.object_key(&path),
                    "application/octet-stream",
                    t.fixity_tag.clone(),
                    size,
                )));
            }
        }
        Ok(None)
    }

    pub(crate) async fn data(&mut self, data: &[u8], beat: &mut Beat<'_>) -> Result<(), Failure> {
        match self {
            Output::Bag(b) => {
                if let Some((_, _, Some(h))) = &mut b.current {
                    h.update(data);
                }
                b.writer.write(data, beat).await
            }
            Output::Files { current, .. } => match current {
                Some(w) => w.write(data, beat).await,
                None => Ok(()),
            },
        }
    }

    /// The member's data is complete; `sha256`: its digest when not hashed here.
    pub(crate) async fn end(
        &mut self,
        sha256: Option<&str>,
        beat: &mut Beat<'_>,
    ) -> Result<(), Failure> {
        match self {
            Output::Bag(b) => {
                let Some((path, size, hasher)) = b.current.take() else {
                    return Ok(());
                };
                let pad = [0u8; 512];
                b.writer.write(&pad[..tar::padding(size)], beat).await?;
                let digest = match hasher {
                    Some(h) => hex::encode(h.finalize()),
                    None => sha256.unwrap_or_default().to_owned(),
                };
                b.payload.push((digest, path, size));
            }
            Output::Files {
                pending, current, ..
            } => pending.extend(current.take()),
        }
        Ok(())
    }

    pub(crate) async fn abort_all(self) {
        match self {
            Output::Bag(b) => b.writer.abort().await,
            Output::Files {
                pending, current, ..
            } => {
                for w in pending.into_iter().chain(current) {
                    w.abort().await;
                }
            }
        }
    }

    pub(crate) fn stop_all(&mut self) {
        match self {
            Output::Bag(b) => b.writer.stop(),
            Output::Files {
                pending, current, ..
            } => {
                for w in pending.iter_mut().chain(current.iter_mut()) {
                    w.stop();
                }
            }
        }
    }
}

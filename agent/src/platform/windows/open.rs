//! `open_no_follow` on Windows: every folder on the way and the file itself
//! are looked at without following them, and none may be a reparse point
//! (a symbolic link, a junction, a mount point); the file is then opened
//! with `FILE_FLAG_OPEN_REPARSE_POINT`, so a link put in its place after the
//! look is opened as itself and refused, not followed.

use std::fs::{File, OpenOptions};
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use windows_sys::Win32::Storage::FileSystem::{
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
};

use crate::platform::OpenError;

/// Opens `path` for reading without following any link; see the contract
/// in the `platform` module.
pub fn open_no_follow(path: &Path) -> Result<File, OpenError> {
    let mut walked = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => walked.push(component),
            Component::CurDir => {}
            Component::ParentDir => return Err(OpenError::NotPlain(path.to_owned())),
            Component::Normal(name) => {
                if !walked.has_root() {
                    return Err(OpenError::NotPlain(path.to_owned()));
                }
                walked.push(name);
                let seen = std::fs::symlink_metadata(&walked).map_err(OpenError::Io)?;
                if is_link(&seen) {
                    return Err(OpenError::Link);
                }
            }
        }
    }
    if !walked.has_root() || walked.parent().is_none() {
        return Err(OpenError::NotPlain(path.to_owned()));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
        .open(&walked)
        .map_err(OpenError::Io)?;
    let opened = file.metadata().map_err(OpenError::Io)?;
    if is_link(&opened) {
        return Err(OpenError::Link);
    }
    Ok(file)
}

fn is_link(metadata: &std::fs::Metadata) -> bool {
    metadata.file_type().is_symlink()
        || metadata.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0
}

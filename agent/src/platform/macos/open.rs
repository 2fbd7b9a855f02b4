//! `open_no_follow` on macOS: the folder-by-folder walk with `O_NOFOLLOW`
//! it shares with Linux (macOS has no `openat2`).

use std::fs::File;
use std::path::Path;

use crate::platform::OpenError;

/// Opens `path` for reading without following any link; see the contract
/// in the `platform` module.
pub fn open_no_follow(path: &Path) -> Result<File, OpenError> {
    crate::platform::unix::open::open_walking(path)
}

//! `open_no_follow` on Linux: one `openat2` call that refuses every
//! symbolic and magic link on the way (`RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS`), so the kernel checks the whole path at once.
//! A kernel older than 5.6, or a sandbox that does not allow the call,
//! gets the folder-by-folder walk Linux shares with macOS.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Mode, ResolveFlags, openat2};
use rustix::io::Errno;

use crate::platform::OpenError;
use crate::platform::unix::open::{FILE_FLAGS, io, open_walking, plain_names};

/// Opens `path` for reading without following any link; see the contract
/// in the `platform` module.
pub fn open_no_follow(path: &Path) -> Result<File, OpenError> {
    let plain = plain_path(&plain_names(path)?);
    let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match openat2(CWD, &plain, FILE_FLAGS, Mode::empty(), resolve) {
        Ok(fd) => Ok(File::from(fd)),
        Err(Errno::LOOP) => Err(OpenError::Link),
        // A socket, or a device with nothing behind it.
        Err(Errno::NXIO) => Err(OpenError::NotAFile),
        Err(Errno::NOSYS | Errno::PERM) => open_walking(&plain),
        Err(e) => Err(io(e)),
    }
}

/// The plain path written out, as the kernel is given it.
fn plain_path(names: &[&OsStr]) -> PathBuf {
    std::iter::once(OsStr::new("/"))
        .chain(names.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_plain_paths_without_links() {
        crate::platform::unix::open::tests::opens_only_plain_paths_without_links(open_no_follow);
    }
}

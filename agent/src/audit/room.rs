//! Room for the log on its disk. Before the agent shows a code, and before
//! it asks the person about a run, it checks that the disk holding the log
//! has [`ROOM`] free, so a full disk is a clear error then rather than a
//! record that fails to be written after the person said yes. It also sets
//! that much aside past the log's end, so the records that follow (a run's
//! end, when the script itself filled the disk) still find room.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, fallocate};
use nix::sys::statvfs::fstatvfs;

use super::chain::io_error;
use super::damage::AuditError;

/// Free space the log needs ahead of it: the records of a run (its
/// question, start and end) many times over.
pub const ROOM: u64 = 64 * 1024;

/// Checks that the disk holding `file` has [`ROOM`] free and sets it aside.
pub(super) fn ensure(file: &File, path: &Path) -> Result<(), AuditError> {
    let stat = fstatvfs(file)
        .map_err(|e| io_error("check the free space of", path)(std::io::Error::from(e)))?;
    // The field types differ between platforms.
    #[allow(clippy::unnecessary_cast)]
    let free = (stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64);
    let no_room = |free| AuditError::NoRoom {
        path: path.to_owned(),
        free,
        needed: ROOM,
    };
    if free < ROOM {
        return Err(no_room(free));
    }
    let len = file
        .metadata()
        .map_err(io_error("check the size of", path))?
        .len();
    let offset = i64::try_from(len).unwrap_or(i64::MAX);
    let room = i64::try_from(ROOM).unwrap_or(i64::MAX);
    match fallocate(
        file.as_raw_fd(),
        FallocateFlags::FALLOC_FL_KEEP_SIZE,
        offset,
        room,
    ) {
        Ok(()) => Ok(()),
        // Not every file system can set room aside; the free space is checked.
        Err(Errno::EOPNOTSUPP | Errno::ENOSYS) => Ok(()),
        Err(Errno::ENOSPC | Errno::EDQUOT) => Err(no_room(free)),
        Err(e) => Err(io_error("set room aside for", path)(std::io::Error::from(
            e,
        ))),
    }
}
